"""GraphQL execution with a short path for plain fields.

Most fields of a page are plain attributes of the objects built from rows (an entry's id,
amount, createdAt; an edge's node; a connection's edges): about a hundred per wallet read.
For each, graphql-core builds a path and a resolve info, calls Strawberry's default resolver
through the middleware manager, checks for an awaitable and walks `complete_value`, several
times what reading the attribute costs. A field is plain when it has no arguments and no field
extensions and either no resolver (and the schema's default resolver is getattr) or a
synchronous resolver of the object alone (an edge's cursor, encoded only when selected: such a
resolver is a computed attribute, pure, and may be called again by graphql-core's path below),
and its type is
- a scalar or enum: the attribute, serialized by its type;
- an object type (not an interface or union) whose Strawberry type has no is_type_of of its
  own (the one Strawberry makes for a type with interfaces reads no resolve info);
- a list of these.

A plain field whose whole selection is plain (fields only: no fragments, no directives, no
response key twice) is answered by a completer compiled once per document node: the
attribute, the items, the subfields, read and built into the result in one walk. Anything it
does not expect (a null where the type says non-null, a value that fails to serialize, an
awaitable, a list that is not a list) gives up, and the field is executed again by
graphql-core, which raises and reports exactly as before: reading attributes twice changes
nothing. A plain object field whose selection is not all plain (a customer's wallets have a
resolver) executes its subfields through graphql-core on the attribute. Anything else takes
graphql-core's own path.
"""

from collections.abc import Awaitable, Callable
from operator import attrgetter
from types import FunctionType
from typing import Any, cast

from graphql import (
    FieldNode,
    GraphQLField,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLResolveInfo,
    GraphQLSchema,
    SelectionSetNode,
    Undefined,
    get_nullable_type,
    is_leaf_type,
    is_list_type,
    is_non_null_type,
    is_object_type,
)
from graphql.type.scalars import serialize_id, serialize_string
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.types.base import StrawberryObjectDefinition
from strawberry.types.field import StrawberryField

# The definition's key in a GraphQL type's or field's extensions (Strawberry's own).
STRAWBERRY = "strawberry-definition"
# The caches on a GraphQLSchema: plain attributes by (type name, field name), and the
# completers compiled for document nodes.
PLANS = "_billgraph_plain_fields"
COMPLETERS = "_billgraph_completers"
# Compiled completers kept; all are dropped when full (documents come from a bounded cache).
MAX_COMPLETERS = 4096
# Values that are neither awaitable nor errors, told apart without a call.
SIMPLE = frozenset({str, int, bool, float})
# What Strawberry's own is_type_of is given for the resolve info it does not read.
NO_INFO = cast("GraphQLResolveInfo[Any]", None)

Completer = Callable[[Any], Any]
# What a plain field's value is read with: the attribute's getter, or the computed resolver.
Reader = Callable[[Any], Any]


def _typename(_: Any) -> None:
    """The completer of __typename, never called: the type's name is the value."""


# What the short path gives for a field it leaves to graphql-core.
LONG = object()


class GiveUp(Exception):
    """The completer cannot answer this value: graphql-core's path will."""


def _read(definition: StrawberryField, resolve: Any) -> Reader | None:
    """How a field without arguments is read: its attribute, or its resolver of the object
    alone; None if it needs more (an Info, a coroutine) or has field extensions."""
    if definition.extensions:
        return None
    resolver = definition.base_resolver
    if resolver is None:
        return (
            attrgetter(definition.python_name) if getattr(resolve, "_is_default", False) else None
        )
    if resolver.is_async or resolver.self_parameter is None or definition.arguments:
        return None
    if resolver.info_parameter or resolver.parent_parameter or resolver.root_parameter:
        return None
    function = resolver.wrapped_func
    return function if isinstance(function, FunctionType) else None


def _reader(field: GraphQLField) -> Reader | None:
    """What a plain field's value is read with, None if the field is not plain."""
    definition = (field.extensions or {}).get(STRAWBERRY)
    if not isinstance(definition, StrawberryField) or field.args:
        return None
    read = _read(definition, field.resolve)
    if read is None:
        return None
    target = get_nullable_type(field.type)
    while is_list_type(target):
        target = get_nullable_type(target.of_type)
    if is_leaf_type(target):
        return read
    if is_object_type(target):
        object_definition = (target.extensions or {}).get(STRAWBERRY)
        if isinstance(object_definition, StrawberryObjectDefinition) and (
            object_definition.is_type_of is None
        ):
            return read
    return None


def _cache(schema: GraphQLSchema, name: str) -> dict[Any, Any]:
    cache: dict[Any, Any] | None = getattr(schema, name, None)
    if cache is None:
        cache = {}
        setattr(schema, name, cache)
    return cache


class LeanExecution(StrawberryGraphQLCoreExecutionContext):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        middleware = self.middleware_manager
        # A middleware that hooks every resolve must see every field: no short path then.
        self._plans: dict[tuple[str, str], Reader | None] | None = None
        # Reading the attribute is what the default resolver does only if it is getattr.
        strawberry_schema = getattr(self.schema, "_strawberry_schema", None)
        config = getattr(strawberry_schema, "config", None)
        plain_reads = config is not None and config.default_resolver is getattr
        if plain_reads and (middleware is None or not middleware._middleware_resolvers):
            self._plans = _cache(self.schema, PLANS)
            self._completers: dict[tuple[int, str], tuple[FieldNode, Completer | None]] = _cache(
                self.schema, COMPLETERS
            )

    def _plain(self, parent_type: GraphQLObjectType, name: str) -> Reader | None:
        plans = self._plans
        assert plans is not None
        key = (parent_type.name, name)
        if key in plans:
            return plans[key]
        field = parent_type.fields.get(name)
        read = plans[key] = _reader(field) if field is not None else None
        return read

    def execute_field(
        self,
        parent_type: GraphQLObjectType,
        source: Any,
        field_details_list: Any,
        path: Any,
        position_context: Any,
    ) -> Any:
        if self._plans is not None:
            answer = self._short(parent_type, source, field_details_list, path, position_context)
            if answer is not LONG:
                return answer
        return super().execute_field(
            parent_type, source, field_details_list, path, position_context
        )

    def _short(
        self,
        parent_type: GraphQLObjectType,
        source: Any,
        field_details_list: Any,
        path: Any,
        position_context: Any,
    ) -> Any:
        """The field answered on the short path, or LONG for graphql-core's."""
        node: FieldNode = field_details_list[0].node
        read = None if node.arguments else self._plain(parent_type, node.name.value)
        if read is None:
            return LONG
        field = parent_type.fields[node.name.value]
        complete = (
            self._completer(parent_type, node, field.type) if len(field_details_list) == 1 else None
        )
        try:
            value = read(source)
            if complete is not None:
                return complete(value)
        except Exception:  # noqa: BLE001 - graphql-core's path reports it
            return LONG
        # Not compiled (a merged field, a selection that is not all plain): an object's
        # subfields still go through graphql-core, on the attribute.
        target = get_nullable_type(field.type)
        if (
            not is_object_type(target)
            or value is None
            or value is Undefined
            or isinstance(value, Exception)
            or self.is_awaitable(value)
        ):
            return LONG
        is_type_of = target.is_type_of
        if is_type_of is not None and is_type_of(value, NO_INFO) is not True:
            return LONG
        return self._object(target, field.type, value, field_details_list, path, position_context)

    def _completer(
        self, parent_type: GraphQLObjectType, node: FieldNode, type_: GraphQLOutputType
    ) -> Completer | None:
        """The completer of `node` on `parent_type`, compiled on first use."""
        key = (id(node), parent_type.name)
        found = self._completers.get(key)
        if found is not None and found[0] is node:
            return found[1]
        if len(self._completers) >= MAX_COMPLETERS:
            self._completers.clear()
        # A directive of the field's own beyond @include/@skip (which collecting the fields
        # applied already), such as @stream, is graphql-core's to carry out.
        own = any(d.name.value not in ("include", "skip") for d in node.directives or ())
        complete = None if own else self._compile(type_, node.selection_set)
        # The node is kept with its completer: its id cannot be another node's meanwhile.
        self._completers[key] = (node, complete)
        return complete

    def _compile(
        self, type_: GraphQLOutputType, selection_set: SelectionSetNode | None
    ) -> Completer | None:
        """What complete_value does for a value of `type_` with this selection, when nothing
        in it can fail, wait or need a path; None if something could."""
        nullable = not is_non_null_type(type_)
        target = get_nullable_type(type_)
        if is_leaf_type(target):
            if selection_set is not None:
                return None
            coerce = target.coerce_output_value
            is_awaitable = self.is_awaitable

            def leaf(value: Any) -> Any:
                if value is None:
                    if nullable:
                        return None
                    raise GiveUp
                # A scalar may serialize anything (Decimal's str): graphql-core raises an
                # error and awaits an awaitable first.
                if type(value) not in SIMPLE and (
                    is_awaitable(value) or isinstance(value, Exception)
                ):
                    raise GiveUp
                coerced = coerce(value)
                if coerced is None or coerced is Undefined:
                    raise GiveUp
                return coerced

            if coerce not in (serialize_string, serialize_id):
                return leaf

            def text(value: Any) -> Any:
                # Ids and strings: a str is its own output (the two serializers' first case).
                return value if type(value) is str else leaf(value)

            return text
        if is_list_type(target):
            item = self._compile(target.of_type, selection_set)
            if item is None:
                return None

            def items(value: Any) -> Any:
                if value is None:
                    if nullable:
                        return None
                    raise GiveUp
                if type(value) is not list and type(value) is not tuple:
                    raise GiveUp
                return [item(v) for v in value]

            return items
        if not is_object_type(target) or selection_set is None:
            return None
        fields = self._fields(target, selection_set)
        if fields is None:
            return None
        is_type_of = target.is_type_of
        is_awaitable = self.is_awaitable
        type_name = target.name

        def object_(value: Any) -> Any:
            if value is None:
                if nullable:
                    return None
                raise GiveUp
            if is_awaitable(value) or isinstance(value, Exception):
                raise GiveUp
            if is_type_of is not None and is_type_of(value, NO_INFO) is not True:
                raise GiveUp
            result = {}
            for key, read, complete in fields:
                result[key] = complete(read(value)) if read else type_name
            return result

        return object_

    def _fields(
        self, type_: GraphQLObjectType, selection_set: SelectionSetNode
    ) -> list[tuple[str, Reader | None, Completer]] | None:
        """(response key, reader, completer) per selected field, __typename with no reader;
        None unless every selection is a plain field without directives."""
        fields: list[tuple[str, Reader | None, Completer]] = []
        keys: set[str] = set()
        for selection in selection_set.selections:
            if not isinstance(selection, FieldNode) or selection.directives:
                return None
            name = selection.name.value
            key = selection.alias.value if selection.alias else name
            if key in keys:
                return None
            keys.add(key)
            if name == "__typename" and selection.selection_set is None:
                fields.append((key, None, _typename))
                continue
            read = None if selection.arguments else self._plain(type_, name)
            if read is None:
                return None
            complete = self._compile(type_.fields[name].type, selection.selection_set)
            if complete is None:
                return None
            fields.append((key, read, complete))
        return fields

    def _object(
        self,
        type_: GraphQLObjectType,
        return_type: GraphQLOutputType,
        value: Any,
        field_details_list: Any,
        path: Any,
        position_context: Any,
    ) -> Any:
        """What complete_value does for a non-null object of a type without is_type_of."""
        try:
            completed = self.collect_and_execute_subfields(
                type_, field_details_list, path, value, position_context
            )
        except Exception as error:  # noqa: BLE001 - located and reported as graphql-core does
            self.handle_field_error(error, return_type, field_details_list, path)
            return None
        if not self.is_awaitable(completed):
            return completed

        async def awaited(completed: Awaitable[Any]) -> Any:
            try:
                return await completed
            except Exception as error:  # noqa: BLE001 - as above
                self.handle_field_error(error, return_type, field_details_list, path)
                return None

        return awaited(completed)
