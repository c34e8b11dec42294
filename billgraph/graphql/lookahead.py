"""What a field's selection will ask of the objects it returns, read before they are resolved,
so that the rows for a child field can be read in the same statement as the objects (or in
one statement for all of them)."""

from typing import Any

from graphql import FieldNode, GraphQLError, GraphQLField, GraphQLObjectType, get_named_type
from graphql.execution.values import VariableValues, get_argument_values

from billgraph.graphql.context import Info


def child_arguments(info: Info, *names: str) -> dict[str, Any] | None:
    """The arguments, coerced as graphql-core coerces them for its resolver, of the field
    reached from this field's objects by `names` (a child, or a child's child...), each the
    first selected directly on its parent; None if there is none (one inside a fragment is
    not looked for). Read once per request and field node."""
    raw = info._raw_info
    memo = info.context.loaders.ahead
    key = (id(raw.field_nodes[0]), names)
    if key not in memo:
        variables: Any = raw.variable_values
        if not isinstance(variables, VariableValues):  # Strawberry's Info: the coerced dict
            variables = VariableValues(sources={}, coerced=variables)
        memo[key] = _child_arguments(raw.field_nodes, raw.return_type, variables, names)
    return memo[key]


def _child_arguments(
    nodes: list[FieldNode], return_type: Any, variables: VariableValues, names: tuple[str, ...]
) -> dict[str, Any] | None:
    parent = get_named_type(return_type)
    field: GraphQLField | None = None
    found: FieldNode | None = None
    for name in names:
        if not isinstance(parent, GraphQLObjectType) or name not in parent.fields:
            return None
        found = next(
            (
                selection
                for node in nodes
                for selection in (node.selection_set.selections if node.selection_set else ())
                if isinstance(selection, FieldNode) and selection.name.value == name
            ),
            None,
        )
        if found is None:
            return None
        field, nodes = parent.fields[name], [found]
        parent = get_named_type(field.type)
    if field is None or found is None:
        return None
    try:
        return get_argument_values(field, found, variables)
    except GraphQLError:
        return None
