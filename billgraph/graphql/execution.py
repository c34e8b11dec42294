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
nothing.

A selection that reaches fields with resolvers (a page of customers, each with its wallets)
is answered by a deep completer, compiled once per document node too: the plain parts read
in the same walk, each field with a resolver executed by execute_field where it stands, and
every step doing what graphql-core does there with the same errors, nulls and awaitables. A
deep completer never gives up (a value it does not expect goes to graphql-core's
complete_value at that position), so no resolver runs twice. It completes the values that
resolvers return too (complete_value): a wallet, a page of entries, a customer's wallets.
Fragments and directives inside a selection leave it to graphql-core, and anything else
takes graphql-core's own path.

An object of exactly the class its type was declared with (or the generic class the type
specializes), neither cast nor given an __await__ of its own, is completed without the
checks graphql-core makes of every value (awaitable? an error? is_type_of?): each would say
what its class already says (_exact).

A deep completer runs each coroutine it meets (a resolver's, a completion's) up to its first
wait where it meets it, as the task that graphql-core would gather it in would run it first:
one that finishes (its loader's rows were read ahead) needs no task, and a page whose rows
were all read ahead completes in one walk (_run). A field with a resolver inside it is
executed in graphql-core's steps, its arguments coerced once per request and a value its
resolver has at once completed without another coroutine (_execute).
"""

from collections.abc import Awaitable, Callable, Coroutine, Generator
from datetime import date, datetime
from enum import Enum
from operator import attrgetter
from types import CoroutineType, FunctionType
from typing import Any, NamedTuple, cast

from graphql import (
    FieldNode,
    GraphQLAbstractType,
    GraphQLField,
    GraphQLList,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLResolveInfo,
    GraphQLSchema,
    InlineFragmentNode,
    SelectionSetNode,
    Undefined,
    get_nullable_type,
    is_leaf_type,
    is_list_type,
    is_non_null_type,
    is_object_type,
)
from graphql.execution.collect_fields import FieldDetails, does_fragment_condition_match
from graphql.execution.values import get_argument_values
from graphql.pyutils import Path, gather_with_cancel
from graphql.type.scalars import serialize_id, serialize_string
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.types.base import StrawberryObjectDefinition
from strawberry.types.cast import TYPE_CAST_ATTRIBUTE
from strawberry.types.field import StrawberryField

# The definition's key in a GraphQL type's or field's extensions (Strawberry's own).
STRAWBERRY = "strawberry-definition"
# The caches on a GraphQLSchema: plain attributes by (type name, field name), and the
# completers compiled for document nodes.
PLANS = "_billgraph_plain_fields"
COMPLETERS = "_billgraph_completers"
DEEPS = "_billgraph_value_completers"
# Compiled completers kept; all are dropped when full (documents come from a bounded cache).
MAX_COMPLETERS = 4096
# Values that are neither awaitable nor errors, told apart without a call.
SIMPLE = frozenset({str, int, bool, float})
# The same among a leaf's values: timestamps too (an enum's members are added per field).
READY = SIMPLE | {datetime, date}
# What Strawberry's own is_type_of is given for the resolve info it does not read.
NO_INFO = cast("GraphQLResolveInfo[Any]", None)

Completer = Callable[[Any], Any]
# A value's completer at a position where some fields have resolvers (see Deep below).
DeepCompleter = Callable[["LeanExecution", Any, Path, Any, "GraphQLResolveInfo[Any] | None"], Any]
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


def _exact(type_: GraphQLObjectType) -> frozenset[type]:
    """The classes whose instances complete as `type_` with no check: an instance of exactly
    one of them, neither cast (strawberry.cast) nor given an __await__ of its own, is no
    awaitable and no error, and Strawberry's is_type_of (when the type has interfaces) says
    True for it. The type's class, and the generic one it specializes (an Edge[Wallet] is an
    Edge); none when the type has an is_type_of of its own."""
    definition = (type_.extensions or {}).get(STRAWBERRY)
    if not isinstance(definition, StrawberryObjectDefinition) or definition.is_type_of:
        return frozenset()
    classes = [definition.origin]
    if definition.concrete_of is not None:
        classes.append(definition.concrete_of.origin)
    return frozenset(
        c
        for c in classes
        if not (
            hasattr(c, "__await__")
            or issubclass(c, BaseException)
            or hasattr(c, TYPE_CAST_ATTRIBUTE)
            or not c.__dictoffset__  # no __dict__ (slots), where instances' own are read
        )
    )


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
            self._deeps: dict[tuple[int, str, int], Compiled] = _cache(self.schema, DEEPS)
        # A compiled field's arguments, coerced once per request (see _execute).
        self.arguments: dict[At, dict[str, Any]] = {}

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

    def complete_value(
        self,
        return_type: GraphQLOutputType,
        field_details_list: Any,
        info: "GraphQLResolveInfo[Any]",
        path: Path,
        result: Any,
        position_context: Any,
    ) -> Any:
        # A resolver's object or list (a wallet, a page of entries, a customer's wallets):
        # completed by what was compiled for its selection, as graphql-core would.
        if self._plans is not None and len(field_details_list) == 1:
            node: FieldNode = field_details_list[0].node
            if node.selection_set is not None:
                compiled = self._value_completers(info.parent_type, node, return_type)
                completed = self._compiled(compiled, result, path, position_context, info)
                if completed is not LONG:
                    return completed
        return super().complete_value(
            return_type, field_details_list, info, path, result, position_context
        )

    def complete_abstract_value(
        self,
        return_type: GraphQLAbstractType,
        field_details_list: Any,
        info: "GraphQLResolveInfo[Any]",
        path: Path,
        result: Any,
        position_context: Any,
    ) -> Any:
        # A union's or an interface's value (a mutation's payload, a node): its object type
        # resolved and checked as graphql-core does, then completed by what was compiled for
        # the part of the selection that applies to that type.
        if self._plans is None or len(field_details_list) != 1:
            return super().complete_abstract_value(
                return_type, field_details_list, info, path, result, position_context
            )
        resolve_type = return_type.resolve_type or self.type_resolver
        name = resolve_type(result, info, return_type)
        if self.is_awaitable(name):
            return self._abstract_later(
                name, return_type, field_details_list, info, path, result, position_context
            )
        # graphql-core's errors for None, a value that is no name, a type that is no member.
        runtime = self.ensure_valid_runtime_type(
            name, return_type, field_details_list, info, result
        )
        node: FieldNode = field_details_list[0].node
        if node.selection_set is not None:
            compiled = self._value_completers(info.parent_type, node, runtime, runtime=True)
            completed = self._compiled(compiled, result, path, position_context, info)
            if completed is not LONG:
                return completed
        return self.complete_object_value(
            runtime, field_details_list, info, path, result, position_context
        )

    def _compiled(
        self,
        compiled: "Compiled",
        result: Any,
        path: Path,
        position_context: Any,
        info: "GraphQLResolveInfo[Any]",
    ) -> Any:
        """`result` completed by what was compiled for it; LONG if nothing was, or the plain
        completer gave up (graphql-core's path then completes and reports it)."""
        if compiled.plain is not None:
            try:
                return compiled.plain(result)
            except Exception:  # noqa: BLE001 - graphql-core's path reports it
                return LONG
        if compiled.deep is not None:
            return compiled.deep(self, result, path, position_context, info)
        return LONG

    def _abstract_later(
        self,
        name: Any,
        return_type: GraphQLAbstractType,
        field_details_list: Any,
        info: "GraphQLResolveInfo[Any]",
        path: Path,
        result: Any,
        position_context: Any,
    ) -> Any:
        """graphql-core's complete_abstract_value when the type resolver answered with an
        awaitable `name`."""

        async def awaited() -> Any:
            runtime = self.ensure_valid_runtime_type(
                await self.with_abort_signal(name), return_type, field_details_list, info, result
            )
            value = self.complete_object_value(
                runtime, field_details_list, info, path, result, position_context
            )
            return await value if self.is_awaitable(value) else value

        return awaited()

    def _applying(
        self, runtime: GraphQLObjectType, selection_set: SelectionSetNode
    ) -> SelectionSetNode | None:
        """The fields of an abstract type's selection that apply to a value of `runtime`:
        its fields, and those of the inline fragments whose condition `runtime` meets, in
        graphql-core's order; None if the selection has a fragment spread or a fragment with
        directives."""
        selections: list[FieldNode] = []
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                selections.append(selection)
                continue
            if not isinstance(selection, InlineFragmentNode) or selection.directives:
                return None
            if does_fragment_condition_match(self.schema, selection, runtime):
                inner = self._applying(runtime, selection.selection_set)
                if inner is None:
                    return None
                selections.extend(cast("tuple[FieldNode, ...]", inner.selections))
        return SelectionSetNode(selections=tuple(selections))

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
        if len(field_details_list) == 1:
            compiled = self._value_completers(parent_type, node, field.type)
            if compiled.deep is not None and compiled.at is not None:
                return _field(self, compiled.at, compiled.deep, value, path, position_context)
        # Not compiled (a merged field, a selection with fragments): an object's subfields
        # still go through graphql-core, on the attribute.
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
            ready = READY
            enum = (target.extensions or {}).get(STRAWBERRY)
            members = getattr(enum, "wrapped_cls", None)
            if isinstance(members, type) and not hasattr(members, "__await__"):
                ready = READY | {members}

            def leaf(value: Any) -> Any:
                if value is None:
                    if nullable:
                        return None
                    raise GiveUp
                # A scalar may serialize anything (Decimal's str): graphql-core raises an
                # error and awaits an awaitable first.
                if type(value) not in ready and (
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
        exact = _exact(target)

        def object_(value: Any) -> Any:
            # (Inline, as below: it runs for every object of a page.)
            if (
                type(value) not in exact
                or TYPE_CAST_ATTRIBUTE in value.__dict__
                or "__await__" in value.__dict__
            ):
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

    def _value_completers(
        self,
        parent_type: GraphQLObjectType,
        node: FieldNode,
        type_: GraphQLOutputType,
        *,
        runtime: bool = False,
    ) -> "Compiled":
        """For a value of `type_` at `node`: its completer if the selection is plain
        throughout, else its deep completer if one compiles; compiled on first use.
        `runtime`: the field's type is abstract and `type_` is the object type of the value,
        which the part of the selection that applies to it completes."""
        # The field's own type, or an object type where the field's type is abstract: a
        # type object of its own either way.
        key = (id(node), parent_type.name, id(type_))
        found = self._deeps.get(key)
        if found is not None and found.node is node:
            return found
        if len(self._deeps) >= MAX_COMPLETERS:
            self._deeps.clear()
        pure = deep = at = None
        field = parent_type.fields.get(node.name.value)
        selection = node.selection_set
        if runtime and selection is not None:
            selection = self._applying(cast("GraphQLObjectType", type_), selection)
        # As in _completer: a directive of the field's own is graphql-core's to carry out.
        if (
            field is not None
            and not (runtime and selection is None)
            and not any(d.name.value not in ("include", "skip") for d in node.directives or ())
        ):
            pure = self._compile(type_, selection)
            if pure is None and selection is not None:
                at = At(parent_type, field, [FieldDetails(node, None)])
                deep = self._deep(at, selection, type_)
        found = self._deeps[key] = Compiled(node, pure, deep if at else None, at)
        return found

    def _deep(
        self, at: "At", selection_set: SelectionSetNode, type_: GraphQLOutputType
    ) -> DeepCompleter | None:
        """What complete_value does for a value of `type_` (the type of the field `at`, or
        an item type of it) whose selection has fields that resolvers
        answer: the plain parts read and built in one walk, each field with a resolver
        executed by execute_field, errors handled where graphql-core handles them; None
        unless the selection is fields only (no fragments, no directives) down to each
        resolver's field."""
        if is_non_null_type(type_):
            inner = self._deep(at, selection_set, type_.of_type)
            return None if inner is None else _non_null(inner, at)
        if is_list_type(type_):
            item = self._deep(at, selection_set, type_.of_type)
            return None if item is None else _list(item, type_.of_type, at)
        if not is_object_type(type_):
            return None
        definition = (type_.extensions or {}).get(STRAWBERRY)
        if not (
            isinstance(definition, StrawberryObjectDefinition) and definition.is_type_of is None
        ):
            return None
        members = self._members(type_, selection_set)
        return None if members is None else _object(type_, members, at)

    def _members(
        self, type_: GraphQLObjectType, selection_set: SelectionSetNode
    ) -> list["Member"] | None:
        """The selected fields of a deep completer's object, in order; None unless every
        selection is a field without directives, each response key once."""
        members: list[Member] = []
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
                members.append(Member(key, Kind.TYPENAME, None, None, None))
                continue
            field = type_.fields.get(name)
            if field is None:
                return None
            at = At(type_, field, [FieldDetails(selection, None)])
            read = None if selection.arguments else self._plain(type_, name)
            if read is not None:
                pure = self._compile(field.type, selection.selection_set)
                if pure is not None:
                    members.append(Member(key, Kind.PURE, read, pure, at))
                    continue
                if selection.selection_set is not None:
                    deep = self._deep(at, selection.selection_set, field.type)
                    if deep is not None:
                        members.append(Member(key, Kind.DEEP, read, deep, at))
                        continue
            members.append(Member(key, Kind.RESOLVED, None, None, at))
        return members

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


# Deep completers (see the module's docstring): each step does what graphql-core's
# complete_value, complete_list_value and execute_fields do at that step.
CORE = StrawberryGraphQLCoreExecutionContext


class Kind(Enum):
    TYPENAME = "typename"
    PURE = "pure"  # plain throughout: read and completed without a path
    DEEP = "deep"  # read as an attribute, completed by a deep completer
    RESOLVED = "resolved"  # anything else: execute_field


class At:
    """A field of a compiled selection: where its errors are located, its resolve info."""

    __slots__ = ("details", "field", "message", "parent")

    def __init__(self, parent: GraphQLObjectType, field: GraphQLField, details: Any) -> None:
        self.parent = parent
        self.field = field
        self.details = details  # one, of the field's node
        name = details[0].node.name.value
        self.message = f"Cannot return null for non-nullable field {parent.name}.{name}."

    def info(self, executor: LeanExecution, path: Path) -> "GraphQLResolveInfo[Any]":
        nodes = [d.node for d in self.details]
        return executor.build_resolve_info(self.field, nodes, self.parent, path)


class Compiled(NamedTuple):
    """What is compiled for the values at a field node: a plain completer, or a deep one
    with its field."""

    node: FieldNode
    plain: Completer | None
    deep: DeepCompleter | None
    at: "At | None"


class Member:
    __slots__ = ("at", "complete", "key", "kind", "read")

    def __init__(
        self,
        key: str,
        kind: Kind,
        read: Reader | None,
        complete: Any,
        at: At | None,
    ) -> None:
        self.key = key
        self.kind = kind
        self.read = read
        self.complete = complete
        self.at = at


def _field(
    executor: LeanExecution,
    at: At,
    deep: DeepCompleter,
    value: Any,
    path: Path,
    position_context: Any,
) -> Any:
    """What execute_field gives for a plain field whose attribute is `value`, completed by
    its deep completer."""
    type_ = at.field.type
    try:
        if executor.is_awaitable(value):
            return executor.complete_awaitable_value(
                type_, at.details, at.info(executor, path), path, value, position_context
            )
        completed = deep(executor, value, path, position_context, None)
        if executor.is_awaitable(completed):
            return _guarded(executor, completed, type_, at.details, path)
        return completed
    except Exception as error:  # noqa: BLE001 - located and reported as graphql-core does
        executor.handle_field_error(error, type_, at.details, path)
        return None


async def _guarded(
    executor: LeanExecution, completed: Awaitable[Any], type_: Any, details: Any, path: Path
) -> Any:
    """An awaited completion whose error is the field's (or the item's), as graphql-core
    handles it: null where the type allows, else raised on to the parent."""
    try:
        return await completed
    except Exception as error:  # noqa: BLE001 - as above
        executor.handle_field_error(error, type_, details, path)
        return None


def _non_null(inner: DeepCompleter, at: At) -> DeepCompleter:
    def non_null(
        executor: LeanExecution,
        value: Any,
        path: Path,
        position_context: Any,
        info: "GraphQLResolveInfo[Any] | None",
    ) -> Any:
        if isinstance(value, Exception):
            raise value
        completed = inner(executor, value, path, position_context, info)
        if completed is None:
            raise TypeError(at.message)
        return completed

    return non_null


def _list(item: DeepCompleter, item_type: GraphQLOutputType, at: At) -> DeepCompleter:
    list_type = GraphQLList(item_type)

    def items(
        executor: LeanExecution,
        value: Any,
        path: Path,
        position_context: Any,
        info: "GraphQLResolveInfo[Any] | None",
    ) -> Any:
        if isinstance(value, Exception):
            raise value
        if value is None or value is Undefined:
            return None
        if info is None:
            info = at.info(executor, path)
        if type(value) is not list and type(value) is not tuple:
            return CORE.complete_value(
                executor, list_type, at.details, info, path, value, position_context
            )
        is_awaitable = executor.is_awaitable
        results: list[Any] = []
        waiting: list[int] = []
        index = 0
        try:
            for index, element in enumerate(value):
                item_path = path.add_key(index, None)
                if is_awaitable(element):
                    finished, completed = _run(
                        executor.complete_awaitable_list_item_value(
                            element, item_type, at.details, info, item_path, position_context
                        )
                    )
                    results.append(completed)
                    if not finished:
                        waiting.append(index)
                    continue
                try:
                    completed = item(executor, element, item_path, position_context, info)
                    if is_awaitable(completed):
                        finished, completed = _run(
                            _guarded(executor, completed, item_type, at.details, item_path)
                        )
                        if not finished:
                            waiting.append(index)
                except Exception as error:  # noqa: BLE001 - as complete_list_item_value
                    executor.handle_field_error(error, item_type, at.details, item_path)
                    completed = None
                results.append(completed)
        except Exception:
            # As graphql-core: what was started settles in the background, and so do the
            # awaitable items not reached.
            pending = [results[i] for i in waiting if i < len(results)]
            pending.extend(v for v in value[index + 1 :] if is_awaitable(v))
            if pending:
                executor.settle_in_background(pending)
            raise
        if not waiting:
            return results
        return _gathered(results, waiting)

    return items


def _object(type_: GraphQLObjectType, members: list[Member], at: At) -> DeepCompleter:
    is_type_of = type_.is_type_of
    name = type_.name
    exact = _exact(type_)

    def object_(
        executor: LeanExecution,
        value: Any,
        path: Path,
        position_context: Any,
        info: "GraphQLResolveInfo[Any] | None",
    ) -> Any:
        if (
            type(value) in exact
            and TYPE_CAST_ATTRIBUTE not in value.__dict__
            and "__await__" not in value.__dict__
        ):
            pass  # see _exact
        elif isinstance(value, Exception):
            raise value
        elif value is None or value is Undefined:
            return None
        elif is_type_of is not None and is_type_of(value, NO_INFO) is not True:
            # graphql-core's complete_value raises its error for the value.
            return CORE.complete_value(
                executor,
                type_,
                at.details,
                info or at.info(executor, path),
                path,
                value,
                position_context,
            )
        is_awaitable = executor.is_awaitable
        result: dict[str, Any] = {}
        waiting: list[str] = []
        try:
            for member in members:
                key = member.key
                kind = member.kind
                if kind is Kind.TYPENAME:
                    result[key] = name
                    continue
                child: At = member.at  # type: ignore[assignment] # only __typename has none
                if kind is Kind.PURE:
                    try:
                        result[key] = member.complete(member.read(value))  # type: ignore[misc]
                        continue
                    except Exception:  # noqa: BLE001 - graphql-core's path reports it
                        completed = CORE.execute_field(
                            executor,
                            type_,
                            value,
                            child.details,
                            Path(path, key, name),
                            position_context,
                        )
                    result[key] = completed
                    if is_awaitable(completed):
                        waiting.append(key)
                    continue
                field_path = Path(path, key, name)
                if kind is Kind.DEEP:
                    try:
                        attribute = member.read(value)  # type: ignore[misc]
                    except Exception as error:  # noqa: BLE001 - as a resolver's error
                        executor.handle_field_error(
                            error, child.field.type, child.details, field_path
                        )
                        completed = None
                    else:
                        completed = _field(
                            executor,
                            child,
                            member.complete,
                            attribute,
                            field_path,
                            position_context,
                        )
                else:
                    completed = _execute(executor, child, value, field_path, position_context)
                if is_awaitable(completed):
                    finished, completed = _run(completed)
                    if not finished:
                        waiting.append(key)
                result[key] = completed
        except Exception:
            if waiting:
                executor.settle_in_background([result[k] for k in waiting])
            raise
        if not waiting:
            return result
        return _gathered(result, waiting)

    return object_


def _execute(
    executor: LeanExecution, at: At, source: Any, path: Path, position_context: Any
) -> Any:
    """What execute_field gives for a field with a resolver, in graphql-core's steps, with
    two savings: its arguments are coerced once per request (the field's node and the
    request's variables decide them: ten wallets' ledgerEntries(first: 5) are one coercion),
    and a coroutine that finishes without waiting (its loader was primed) is completed at
    once, without the coroutine that graphql-core awaits it in (complete_awaitable_value).
    With an abort signal, or the default resolver, graphql-core's own execute_field."""
    field = at.field
    resolve = field.resolve
    if resolve is None or executor.abort_signal is not None:
        return executor.execute_field(at.parent, source, at.details, path, position_context)
    type_ = field.type
    info = at.info(executor, path)
    try:
        arguments = executor.arguments.get(at)
        if arguments is None:
            node = at.details[0].node
            arguments = (
                get_argument_values(
                    field, node, executor.variable_values, None, executor.hide_suggestions
                )
                if field.args or node.arguments
                else {}
            )
            executor.arguments[at] = arguments
        result = resolve(source, info, **arguments)
        if executor.is_awaitable(result):
            finished, result = _run(result)
            if not finished:
                return _resolved(executor, at, info, path, result, position_context)
        completed = executor.complete_value(type_, at.details, info, path, result, position_context)
        if executor.is_awaitable(completed):
            return _guarded(executor, completed, type_, at.details, path)
        return completed
    except Exception as error:  # noqa: BLE001 - located and reported as graphql-core does
        executor.handle_field_error(error, type_, at.details, path)
        return None


async def _resolved(
    executor: LeanExecution,
    at: At,
    info: "GraphQLResolveInfo[Any]",
    path: Path,
    result: Any,
    position_context: Any,
) -> Any:
    """A resolver's awaited value, completed: graphql-core's complete_awaitable_value."""
    type_ = at.field.type
    try:
        value = await result
        completed = executor.complete_value(type_, at.details, info, path, value, position_context)
        if executor.is_awaitable(completed):
            completed = await completed
    except Exception as error:  # noqa: BLE001 - as above
        executor.handle_field_error(error, type_, at.details, path)
        return None
    return completed


def _run(awaitable: Any) -> tuple[bool, Any]:
    """A coroutine run up to its first wait, as the task that awaits it would run it first:
    (True, its value) if it finished without waiting (its loader's rows were read ahead),
    else (False, what awaiting goes on from there). Anything else (a future) is left as is.

    This spares a task per value that is ready: a page of customers whose wallets were read
    with the page completes without one. Loads still batch: a coroutine that waits has put
    its key in the loader's queue, which is dispatched on the loop's next turn."""
    if type(awaitable) is not CoroutineType:
        return False, awaitable
    try:
        yielded = awaitable.send(None)
    except StopIteration as stop:
        return True, stop.value
    except Exception as error:  # noqa: BLE001 - raised where it is awaited, as before
        return False, _raised(error)
    return False, _Started(awaitable, _held(yielded))


def _held(yielded: Any) -> Any:
    """A future that a coroutine's await yielded, taken as a task takes it: its waited-on
    mark cleared, or another await of the same future (two fields of one loader key) would
    find it set and fail. _Started sets it again when it hands the future to its task."""
    if getattr(yielded, "_asyncio_future_blocking", False) is True:
        yielded._asyncio_future_blocking = False
    return yielded


async def _raised(error: Exception) -> Any:
    raise error


class _Started:
    """A coroutine that waits on `yielded`: awaiting this goes on from there, passing what
    the awaiting task sends or throws (a wake-up, a cancellation) to the coroutine."""

    __slots__ = ("coroutine", "yielded")

    def __init__(self, coroutine: "Coroutine[Any, Any, Any]", yielded: Any) -> None:
        self.coroutine = coroutine
        self.yielded = yielded

    def __await__(self) -> Generator[Any, Any, Any]:
        coroutine, yielded = self.coroutine, self.yielded
        # Marked as waited on again for the task it goes to (see _held).
        if getattr(yielded, "_asyncio_future_blocking", None) is False:
            yielded._asyncio_future_blocking = True
        while True:
            try:
                sent = yield yielded
            except GeneratorExit:
                coroutine.close()
                raise
            except BaseException as error:  # noqa: BLE001 - the coroutine's to handle
                try:
                    yielded = coroutine.throw(error)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    yielded = coroutine.send(sent)
                except StopIteration as stop:
                    return stop.value


async def _gathered(result: Any, waiting: list[Any]) -> Any:
    """`result` (a dict or a list) with its awaitables at `waiting` awaited, as graphql-core
    awaits a selection's or a list's: one directly, several together."""
    if len(waiting) == 1:
        result[waiting[0]] = await result[waiting[0]]
    else:
        values = await gather_with_cancel(*(result[k] for k in waiting))
        for k, v in zip(waiting, values, strict=True):
            result[k] = v
    return result
