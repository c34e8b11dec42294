"""Refuse abusive operations before they run: their shape as soon as they are parsed (depth,
fragment nesting, integer literals), then a query cost, mutations per document, page size.

Depth counts fields nested in one another, through fragments, as Strawberry's depth limiter
does: the root fields are at depth 0, introspection (`__schema`, `__type`) adds none.
Aliases are counted through fragments, once per spread. Cost: every field costs 1; a
connection field (one taking `first`) multiplies the cost of what it selects by `first`, so
`customers(first: 100) { wallets { ledgerEntries(first: 100) { ... } } }` costs what it would
really fetch. Tokens are limited while parsing (documents.Documents), which runs
check_document on each document it parses.
"""

from collections.abc import Hashable, Iterator
from itertools import islice
from typing import Any, NamedTuple

from graphql import (
    ArgumentNode,
    DocumentNode,
    ExecutableDefinitionNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLInt,
    GraphQLNamedType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    Node,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    Undefined,
    VariableNode,
    get_named_type,
    get_operation_ast,
    value_from_ast,
)
from graphql.execution.values import VariableValues, get_variable_values
from strawberry.extensions import SchemaExtension

from billgraph.graphql.errors import graphql_error
from billgraph.graphql.extensions.caches import MISSING, ByDocument
from billgraph.graphql.extensions.errors import refuse
from billgraph.graphql.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from billgraph.http.bodies import MAX_INTEGER_DIGITS

# Fragments, named or inline, nested in one another along any path of a document.
MAX_FRAGMENT_NESTING = 32


def check_document(document: DocumentNode, max_depth: int, max_aliases: int) -> None:
    """Raises BAD_USER_INPUT for fields nested deeper than `max_depth`, more than
    `max_aliases` aliases (both counted through fragments), fragments nested more than
    MAX_FRAGMENT_NESTING deep or an integer literal of more than MAX_INTEGER_DIGITS digits.

    Run once a document is parsed, before it is validated: validation and the cost walk
    recurse through fragments, and Python's int() refuses literals over 4,300 digits, so past
    these limits no document reaches them. The walk itself is iterative and measures each
    fragment once, however often it is spread, so it takes time linear in the document
    whatever its shape (a fragment spread twice in a fragment spread twice, 30 times over,
    is a billion fields to a walk that expands spreads)."""
    for node in _nodes(document):
        if isinstance(node, IntValueNode) and len(node.value.lstrip("-")) > MAX_INTEGER_DIGITS:
            raise graphql_error(
                f"An integer literal has more than {MAX_INTEGER_DIGITS} digits.",
                "BAD_USER_INPUT",
            )
    definitions = [d for d in document.definitions if isinstance(d, ExecutableDefinitionNode)]
    fragments = {
        d.name.value: d.selection_set for d in definitions if isinstance(d, FragmentDefinitionNode)
    }
    measured = _measure([d.selection_set for d in definitions], fragments)
    aliases = sum(
        measured[id(d.selection_set)].aliases
        for d in definitions
        if isinstance(d, OperationDefinitionNode)
    )
    if aliases > max_aliases:
        raise graphql_error(
            f"{aliases} aliases found; at most {max_aliases} are allowed.", "BAD_USER_INPUT"
        )
    for definition in definitions:
        depth, nesting, _ = measured[id(definition.selection_set)]
        if nesting > MAX_FRAGMENT_NESTING:
            raise graphql_error(
                f"Fragments nested {nesting} deep; at most {MAX_FRAGMENT_NESTING} are allowed.",
                "BAD_USER_INPUT",
            )
        if depth > max_depth:
            raise graphql_error(
                f"Query depth {depth} exceeds the maximum depth of {max_depth}.",
                "BAD_USER_INPUT",
            )


def _nodes(root: Node) -> Iterator[Node]:
    """Every node of an AST, without recursion."""
    pending = [root]
    while pending:
        node = pending.pop()
        yield node
        for key in node.keys:
            value = getattr(node, key, None)
            if isinstance(value, Node):
                pending.append(value)
            elif isinstance(value, (list, tuple)):
                pending.extend(v for v in value if isinstance(v, Node))


class _Measure(NamedTuple):
    depth: int  # the most fields with a selection nested in one another, as Strawberry's
    # depth limiter counts (a leaf adds nothing, nor does introspection: `__schema`, `__type`)
    nesting: int  # the most fragments nested in one another
    aliases: int  # aliased fields, each spread of a fragment counting its own again


_NOTHING = _Measure(0, 0, 0)

# A selection set's children: (selection set, depth added or None for none, fragments added).
_Children = list[tuple[SelectionSetNode, int | None, int]]


def _measure(
    roots: list[SelectionSetNode], fragments: dict[str, SelectionSetNode]
) -> dict[int, _Measure]:
    """Each selection set reachable from `roots` (by id), measured through fragment spreads.
    Depth-first with an explicit stack; a spread back into a set being measured (a cycle,
    which validation refuses) adds nothing."""

    def children(selection_set: SelectionSetNode) -> tuple[int, _Children]:
        aliased = 0
        found: _Children = []
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                aliased += selection.alias is not None
                if selection.selection_set is not None:
                    introspection = selection.name.value.startswith("__")
                    found.append((selection.selection_set, None if introspection else 1, 0))
            elif isinstance(selection, InlineFragmentNode):
                found.append((selection.selection_set, 0, 1))
            elif isinstance(selection, FragmentSpreadNode):
                target = fragments.get(selection.name.value)
                if target is not None:  # an unknown one is validation's to report
                    found.append((target, 0, 1))
        return aliased, found

    measured: dict[int, _Measure] = {}
    open_sets: set[int] = set()
    stack: list[tuple[SelectionSetNode, bool]] = [(root, False) for root in roots]
    while stack:
        selection_set, expanded = stack.pop()
        key = id(selection_set)
        if expanded:
            aliases, found = children(selection_set)
            depth = nesting = 0
            for child, more_depth, more_fragments in found:
                inner = measured.get(id(child), _NOTHING)
                if more_depth is not None:
                    depth = max(depth, inner.depth + more_depth)
                nesting = max(nesting, inner.nesting + more_fragments)
                aliases += inner.aliases
            measured[key] = _Measure(depth, nesting, aliases)
            open_sets.discard(key)
        elif key not in measured and key not in open_sets:
            open_sets.add(key)
            stack.append((selection_set, True))
            for child, _, _ in children(selection_set)[1]:
                if id(child) not in measured and id(child) not in open_sets:
                    stack.append((child, False))
    return measured


class _Walk:
    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: dict[str, FragmentDefinitionNode],
        variables: dict[str, Any],
    ) -> None:
        self.schema = schema
        self.fragments = fragments
        self.variables = variables
        # Each fragment's cost, computed once however often it is spread (check_document
        # has bounded how deep this walk recurses).
        self._fragment_costs: dict[str, int] = {}
        self._costing: set[str] = set()

    def fields(
        self,
        selection_set: SelectionSetNode,
        parent: GraphQLNamedType,
        seen: frozenset[str] = frozenset(),
    ) -> Iterator[tuple[FieldNode, GraphQLNamedType]]:
        """The fields of a selection set with fragments expanded (each with its parent type)."""
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                yield selection, parent
            elif isinstance(selection, InlineFragmentNode):
                on = selection.type_condition
                inner = self.schema.get_type(on.name.value) if on else parent
                yield from self.fields(selection.selection_set, inner or parent, seen)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = self.fragments.get(name)
                if fragment is None or name in seen:  # cycles are refused by validation anyway
                    continue
                inner = self.schema.get_type(fragment.type_condition.name.value)
                yield from self.fields(fragment.selection_set, inner or parent, seen | {name})

    def cost(self, selection_set: SelectionSetNode, parent: GraphQLNamedType) -> int:
        total = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                total += self.field_cost(selection, parent)
            elif isinstance(selection, InlineFragmentNode):
                on = selection.type_condition
                inner = self.schema.get_type(on.name.value) if on else parent
                total += self.cost(selection.selection_set, inner or parent)
            elif isinstance(selection, FragmentSpreadNode):
                total += self.fragment_cost(selection.name.value, parent)
        return total

    def fragment_cost(self, name: str, parent: GraphQLNamedType) -> int:
        if name in self._fragment_costs:
            return self._fragment_costs[name]
        fragment = self.fragments.get(name)
        if fragment is None or name in self._costing:  # cycles are refused by validation
            return 0
        self._costing.add(name)
        inner = self.schema.get_type(fragment.type_condition.name.value)
        cost = self._fragment_costs[name] = self.cost(fragment.selection_set, inner or parent)
        self._costing.discard(name)
        return cost

    def field_cost(self, field: FieldNode, parent: GraphQLNamedType) -> int:
        definition = getattr(parent, "fields", {}).get(field.name.value)
        if definition is None:  # __typename and introspection
            return 1
        child = 0
        if field.selection_set is not None:
            child = self.cost(field.selection_set, get_named_type(definition.type))
        multiplier = self.page_size(field) if "first" in definition.args else 1
        return 1 + multiplier * child

    def page_size(self, field: FieldNode) -> int:
        for argument in field.arguments or ():
            if argument.name.value == "first":
                value = value_from_ast(argument.value, GraphQLInt, self.variables)
                if value is None or value is Undefined:  # null, or a variable left out
                    return DEFAULT_PAGE_SIZE
                if not isinstance(value, int) or not 0 <= value <= MAX_PAGE_SIZE:
                    raise graphql_error(
                        f"`first` must be between 0 and {MAX_PAGE_SIZE}.", "BAD_USER_INPUT"
                    )
                return max(value, 1)
        return DEFAULT_PAGE_SIZE


class CostRefused(Exception):
    """An operation past a limit: the error it is answered with, and its cost if known."""

    def __init__(self, error: GraphQLError, cost: int | None) -> None:
        super().__init__(error.message)
        self.error = error
        self.cost = cost


class Costs:
    """Operations' costs, checked against `max_cost` and `max_mutations`; those that passed
    are remembered by document, operation and page sizes: what else a request varies (a
    wallet's id) leaves the cost as it is."""

    def __init__(self, max_cost: int, max_mutations: int, size: int = 256) -> None:
        self.max_cost = max_cost
        self.max_mutations = max_mutations
        self._passed: ByDocument[int] = ByDocument(size)

    def of(
        self,
        schema: GraphQLSchema,
        document: DocumentNode,
        operation_name: str | None,
        variables: dict[str, Any],
    ) -> int | None:
        """The operation's cost, or None if it has none (no such operation, or variables
        that execution refuses, with better messages); CostRefused past a limit."""
        key = _cost_key(document, operation_name, variables)
        cost = self._passed.get(document, key) if key is not None else MISSING
        if cost is not MISSING:
            return cost
        operation = get_operation_ast(document, operation_name)
        if operation is None:
            return None
        try:
            coerced = get_variable_values(schema, operation.variable_definitions or (), variables)
            if not isinstance(coerced, VariableValues):
                return None
            cost = self._check(schema, document, operation, coerced.coerced)
        except GraphQLError as error:
            raise CostRefused(error, None) from None
        if key is not None:
            self._passed.put(document, key, cost)
        return cost

    def report(self, cost: int) -> dict[str, int]:
        """The response's `extensions.cost`."""
        return {"requestedQueryCost": cost, "maximumAvailable": self.max_cost}

    def _check(
        self,
        schema: GraphQLSchema,
        document: DocumentNode,
        operation: OperationDefinitionNode,
        variables: dict[str, Any],
    ) -> int:
        root = schema.get_root_type(operation.operation)
        assert root is not None
        walk = _Walk(
            schema,
            {
                d.name.value: d
                for d in document.definitions
                if isinstance(d, FragmentDefinitionNode)
            },
            variables,
        )
        if operation.operation == OperationType.MUTATION:
            # Counted up to one too many: fragments spread many times expand without end.
            fields = walk.fields(operation.selection_set, root)
            count = sum(1 for _ in islice(fields, self.max_mutations + 1))
            if count > self.max_mutations:
                raise graphql_error(
                    f"At most {self.max_mutations} mutations per request.", "BAD_USER_INPUT"
                )
        cost = walk.cost(operation.selection_set, root)
        if cost > self.max_cost:
            raise CostRefused(
                graphql_error(
                    f"Query cost {cost} exceeds the maximum of {self.max_cost}; "
                    "ask for smaller pages or fewer nested connections.",
                    "QUERY_TOO_COSTLY",
                ),
                cost,
            )
        return cost


class QueryLimits(SchemaExtension):
    """Computes the operation's cost before it runs (Costs); refuses it past the limits. The
    cost is reported in the response's `extensions`, a refused one's too."""

    def __init__(self, costs: Costs) -> None:
        self._costs = costs

    def on_execute(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        cost = None
        if document is not None and context.result is None:
            try:
                cost = self._costs.of(
                    context.schema._schema,
                    document,
                    context.operation_name,
                    context.variables or {},
                )
            except CostRefused as refused:
                cost = refused.cost
                refuse(context, refused.error)
        if cost is not None:
            # Into the response's `extensions`; later hooks (tracing) read it here too.
            context.extensions_results["cost"] = self._costs.report(cost)
        yield


# The variables each document's page sizes (`first`) read, by document.
_PAGE_SIZE_VARIABLES: ByDocument[tuple[str, ...]] = ByDocument()


def _cost_key(
    document: DocumentNode, operation: str | None, variables: dict[str, Any]
) -> Hashable | None:
    """What an operation's cost depends on beside its document: the operation's name and the
    variables its page sizes read, as sent (absent and null apart: a variable's default
    applies only to the first); None if these cannot be a key."""
    names = _PAGE_SIZE_VARIABLES.get(document)
    if names is MISSING:
        names = tuple(
            sorted(
                {
                    variable.name.value
                    for argument in _nodes(document)
                    if isinstance(argument, ArgumentNode) and argument.name.value == "first"
                    for variable in _nodes(argument.value)
                    if isinstance(variable, VariableNode)
                }
            )
        )
        _PAGE_SIZE_VARIABLES.put(document, None, names)
    values = tuple(variables.get(name, MISSING) for name in names)
    key = (operation, tuple((type(v), v) for v in values))
    try:
        hash(key)
    except TypeError:  # a list or an object where a page size goes: refused later
        return None
    return key
