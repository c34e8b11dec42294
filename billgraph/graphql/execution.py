"""GraphQL execution with a short path for plain fields.

Most fields of a page are plain attributes of the objects built from rows (an entry's id,
amount, createdAt; an edge's node): about a hundred per wallet read. For each, graphql-core
builds a resolve info, calls Strawberry's default resolver through the middleware manager,
checks for an awaitable and walks `complete_value`, several times what reading the attribute
costs. A field with no resolver, no arguments and no field extensions is answered here:
- a scalar or enum: the attribute, serialized by its type;
- an object type (not an interface or union) whose Strawberry type has no is_type_of of its
  own (the one Strawberry makes for a type with interfaces reads no resolve info): its
  subfields executed on the attribute, their errors handled as graphql-core does.
Anything else takes graphql-core's own path, and so does such a field whose value is null or
fails to serialize: that path raises and reports exactly as before.
"""

from collections.abc import Awaitable
from typing import Any, cast

from graphql import (
    GraphQLField,
    GraphQLLeafType,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLResolveInfo,
    GraphQLSchema,
    Undefined,
    get_nullable_type,
    is_leaf_type,
    is_object_type,
)
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.types.base import StrawberryObjectDefinition
from strawberry.types.field import StrawberryField

# The definition's key in a GraphQL type's or field's extensions (Strawberry's own).
STRAWBERRY = "strawberry-definition"
# The cache of plans on a GraphQLSchema: (type name, field name) -> plan or None.
PLANS = "_billgraph_plain_fields"
# What Strawberry's own is_type_of is given for the resolve info it does not read.
NO_INFO = cast("GraphQLResolveInfo[Any]", None)


class Leaf:
    __slots__ = ("attribute", "type")

    def __init__(self, attribute: str, type_: GraphQLLeafType) -> None:
        self.attribute = attribute
        self.type = type_


class Object:
    __slots__ = ("attribute", "return_type", "type")

    def __init__(self, attribute: str, return_type: GraphQLOutputType, type_: GraphQLObjectType):
        self.attribute = attribute
        self.return_type = return_type  # as declared, NonNull or not: errors depend on it
        self.type = type_


Plan = Leaf | Object | None


def _plan(field: GraphQLField) -> Plan:
    definition = (field.extensions or {}).get(STRAWBERRY)
    if not isinstance(definition, StrawberryField) or field.args:
        return None
    if not definition.is_basic_field or not getattr(field.resolve, "_is_default", False):
        return None
    target = get_nullable_type(field.type)
    if is_leaf_type(target):
        return Leaf(definition.python_name, target)
    if is_object_type(target):
        object_definition = (target.extensions or {}).get(STRAWBERRY)
        if isinstance(object_definition, StrawberryObjectDefinition) and (
            object_definition.is_type_of is None
        ):
            return Object(definition.python_name, field.type, target)
    return None


def _plans(schema: GraphQLSchema) -> dict[tuple[str, str], Plan]:
    plans: dict[tuple[str, str], Plan] | None = getattr(schema, PLANS, None)
    if plans is None:
        plans = {}
        setattr(schema, PLANS, plans)
    return plans


class LeanExecution(StrawberryGraphQLCoreExecutionContext):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        middleware = self.middleware_manager
        # A middleware that hooks every resolve must see every field: no short path then.
        self._plans = (
            _plans(self.schema)
            if middleware is None or not middleware._middleware_resolvers
            else None
        )

    def execute_field(
        self,
        parent_type: GraphQLObjectType,
        source: Any,
        field_details_list: Any,
        path: Any,
        position_context: Any,
    ) -> Any:
        plans = self._plans
        if plans is not None:
            node = field_details_list[0].node
            key = (parent_type.name, node.name.value)
            if key in plans:
                plan = plans[key]
            else:
                field = self.schema.get_field(parent_type, node.name.value)
                plan = plans[key] = _plan(field) if field is not None else None
            if plan is not None and not node.arguments:
                try:
                    value = getattr(source, plan.attribute)
                    if isinstance(plan, Leaf) and value is not None:
                        value = plan.type.coerce_output_value(value)
                except Exception:  # noqa: BLE001 - the full path below reports it
                    value = None
                if value is not None and value is not Undefined:
                    if isinstance(plan, Leaf):
                        return value
                    is_type_of = plan.type.is_type_of
                    if is_type_of is None or is_type_of(value, NO_INFO) is True:
                        return self._object(plan, value, field_details_list, path, position_context)
        return super().execute_field(
            parent_type, source, field_details_list, path, position_context
        )

    def _object(
        self, plan: Object, value: Any, field_details_list: Any, path: Any, position_context: Any
    ) -> Any:
        """What complete_value does for a non-null object of a type without is_type_of."""
        try:
            completed = self.collect_and_execute_subfields(
                plan.type, field_details_list, path, value, position_context
            )
        except Exception as error:  # noqa: BLE001 - located and reported as graphql-core does
            self.handle_field_error(error, plan.return_type, field_details_list, path)
            return None
        if not self.is_awaitable(completed):
            return completed

        async def awaited(completed: Awaitable[Any]) -> Any:
            try:
                return await completed
            except Exception as error:  # noqa: BLE001 - as above
                self.handle_field_error(error, plan.return_type, field_details_list, path)
                return None

        return awaited(completed)
