"""Refuse abusive operations before they run: a query cost, mutations per document, page size.

Cost: every field costs 1; a connection field (one taking `first`) multiplies the cost of what
it selects by `first`, so `customers(first: 100) { wallets { ledgerEntries(first: 100) { ... } } }`
costs what it would really fetch. Depth, aliases and tokens are Strawberry's own limiters.
"""

from collections.abc import Iterator
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLInt,
    GraphQLNamedType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    Undefined,
    get_named_type,
    get_operation_ast,
    value_from_ast,
)
from graphql.execution.values import VariableValues, get_variable_values
from strawberry.extensions import SchemaExtension

from billgraph.graphql.errors import graphql_error
from billgraph.graphql.extensions.errors import refuse
from billgraph.graphql.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE


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
        for field, field_parent in self.fields(selection_set, parent):
            definition = getattr(field_parent, "fields", {}).get(field.name.value)
            if definition is None:  # __typename and introspection
                total += 1
                continue
            child = 0
            if field.selection_set is not None:
                child = self.cost(field.selection_set, get_named_type(definition.type))
            multiplier = self.page_size(field) if "first" in definition.args else 1
            total += 1 + multiplier * child
        return total

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


class QueryLimits(SchemaExtension):
    """Computes the operation's cost before it runs; refuses it above `max_cost` or with more
    than `max_mutations` mutations. The cost is reported in the response's `extensions`."""

    def __init__(self, max_cost: int, max_mutations: int) -> None:
        self.max_cost = max_cost
        self.max_mutations = max_mutations
        self.cost: int | None = None

    def on_execute(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        operation = get_operation_ast(document, context.operation_name) if document else None
        if document is not None and operation is not None and context.result is None:
            try:
                schema = context.schema._schema
                variables = get_variable_values(
                    schema, operation.variable_definitions or (), context.variables or {}
                )
                # Bad variables are reported by execution itself, with better messages.
                if isinstance(variables, VariableValues):
                    self._check(schema, document, operation, variables.coerced)
            except GraphQLError as error:
                refuse(context, error)
            if self.cost is not None:
                # Into the response's `extensions`; later hooks (tracing) read it here too.
                context.extensions_results["cost"] = {
                    "requestedQueryCost": self.cost,
                    "maximumAvailable": self.max_cost,
                }
        yield

    def _check(
        self,
        schema: GraphQLSchema,
        document: DocumentNode,
        operation: OperationDefinitionNode,
        variables: dict[str, Any],
    ) -> None:
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
            count = sum(1 for _ in walk.fields(operation.selection_set, root))
            if count > self.max_mutations:
                raise graphql_error(
                    f"At most {self.max_mutations} mutations per request ({count} sent).",
                    "BAD_USER_INPUT",
                )
        self.cost = walk.cost(operation.selection_set, root)
        if self.cost > self.max_cost:
            raise graphql_error(
                f"Query cost {self.cost} exceeds the maximum of {self.max_cost}; "
                "ask for smaller pages or fewer nested connections.",
                "QUERY_TOO_COSTLY",
            )
