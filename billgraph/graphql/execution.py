"""GraphQL execution with a short path for plain leaf fields.

Most fields of a page are plain attributes of the object built from a row (an entry's id,
amount, createdAt: about a hundred per wallet read). For each, graphql-core builds a resolve
info, calls Strawberry's default resolver through the middleware manager, checks for an
awaitable and walks `complete_value`; that costs several times what the attribute read and
the scalar's serialization cost. A field with no resolver, no arguments and no field
extensions, whose type is a scalar or an enum, is answered here by reading the attribute and
serializing it. Anything else, and any such field whose value is null or fails to serialize,
takes graphql-core's own path, which raises and reports exactly as before.
"""

from typing import Any

from graphql import (
    GraphQLField,
    GraphQLLeafType,
    GraphQLObjectType,
    GraphQLSchema,
    Undefined,
    get_nullable_type,
    is_leaf_type,
)
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.types.field import StrawberryField

# The definition's key in a GraphQL field's extensions (Strawberry's own).
STRAWBERRY_FIELD = "strawberry-definition"
# The cache of plans on a GraphQLSchema: (type name, field name) -> plan or None.
PLANS = "_billgraph_plain_fields"

Plan = tuple[str, GraphQLLeafType] | None  # the attribute to read, the type that serializes it


def _plan(field: GraphQLField) -> Plan:
    definition = (field.extensions or {}).get(STRAWBERRY_FIELD)
    if not isinstance(definition, StrawberryField) or field.args:
        return None
    if not definition.is_basic_field or not getattr(field.resolve, "_is_default", False):
        return None
    leaf = get_nullable_type(field.type)
    if not is_leaf_type(leaf):
        return None
    return definition.python_name, leaf


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
        self._plain = (
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
        plans = self._plain
        if plans is not None:
            node = field_details_list[0].node
            key = (parent_type.name, node.name.value)
            if key in plans:
                plan = plans[key]
            else:
                field = self.schema.get_field(parent_type, node.name.value)
                plan = plans[key] = _plan(field) if field is not None else None
            if plan is not None and not node.arguments:
                attribute, leaf = plan
                try:
                    value = leaf.coerce_output_value(getattr(source, attribute))
                except Exception:  # noqa: BLE001 - the full path below reports it
                    value = None
                if value is not None and value is not Undefined:
                    return value
        return super().execute_field(
            parent_type, source, field_details_list, path, position_context
        )
