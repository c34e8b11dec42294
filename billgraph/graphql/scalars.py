"""Custom scalars. BigInt carries money: GraphQL's Int is 32-bit, too small for minor units."""

from typing import Any, NewType

import strawberry
from graphql import IntValueNode, ValueNode
from strawberry.types.scalar import ScalarDefinition

from billgraph.core.validation import MAX_AMOUNT

BigInt = NewType("BigInt", int)


class ScalarInputError(ValueError):
    """A client sent a value the scalar refuses (reported as BAD_USER_INPUT)."""


def _parse_big_int(value: Any) -> int:
    # bool is an int subclass and JSON floats like 10.0 are floats: both are refused.
    if isinstance(value, bool) or not isinstance(value, int):
        raise ScalarInputError("BigInt must be a JSON integer (not a string, float or boolean).")
    if not -MAX_AMOUNT <= value <= MAX_AMOUNT:
        raise ScalarInputError(f"BigInt must be within ±{MAX_AMOUNT} (2^53 - 1).")
    return value


def _parse_big_int_literal(node: ValueNode, _variables: dict[str, Any] | None = None) -> int:
    if not isinstance(node, IntValueNode):
        raise ScalarInputError("BigInt must be an integer literal.")
    if len(node.value.lstrip("-")) > len(str(MAX_AMOUNT)):  # and int() has a limit of its own
        raise ScalarInputError(f"BigInt must be within ±{MAX_AMOUNT} (2^53 - 1).")
    return _parse_big_int(int(node.value))


SCALAR_MAP: dict[object, ScalarDefinition] = {
    BigInt: strawberry.scalar(
        name="BigInt",
        description=(
            "A 64-bit integer serialized as a JSON number, limited to the range a JavaScript "
            "client holds exactly: ±(2^53 - 1). Money is always an integer in minor units."
        ),
        serialize=_parse_big_int,  # what goes out is checked as what comes in
        parse_value=_parse_big_int,
        parse_literal=_parse_big_int_literal,
    )
}
