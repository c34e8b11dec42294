"""Typed business errors returned inside mutation results, and GraphQL-level error helpers."""

import strawberry
from graphql import GraphQLError

from billgraph.schema.enums import Currency
from billgraph.schema.scalars import BigInt
from billgraph.services import errors


@strawberry.interface(description="A business outcome the client must handle.")
class UserError:
    code: str = strawberry.field(description="Stable machine-readable code.")
    message: str


@strawberry.type(description="The input was refused; nothing was written.")
class ValidationError(UserError):
    field: str | None = strawberry.field(description="The input field at fault, if one is.")


@strawberry.type(description="No such object in this organization; nothing was written.")
class NotFoundError(UserError):
    pass


@strawberry.type(description="A unique value is already used in this organization.")
class ConflictError(UserError):
    field: str | None


@strawberry.type(description="The debit exceeds the balance; nothing was written.")
class InsufficientBalanceError(UserError):
    balance: BigInt
    requested: BigInt
    currency: Currency


@strawberry.type(
    description="The idempotency key was used with other parameters; nothing was written."
)
class IdempotencyConflictError(UserError):
    idempotency_key: str


def to_user_error(exc: errors.BillingError) -> UserError:
    """The schema type for a service error."""
    match exc:
        case errors.ValidationError():
            return ValidationError(code=exc.code, message=exc.message, field=exc.field)
        case errors.NotFoundError():
            return NotFoundError(code=exc.code, message=exc.message)
        case errors.ConflictError():
            return ConflictError(code=exc.code, message=exc.message, field=exc.field)
        case errors.InsufficientBalanceError():
            return InsufficientBalanceError(
                code=exc.code,
                message=exc.message,
                balance=BigInt(exc.balance),
                requested=BigInt(exc.requested),
                currency=Currency[exc.currency],
            )
        case errors.IdempotencyConflictError():
            return IdempotencyConflictError(
                code=exc.code, message=exc.message, idempotency_key=exc.idempotency_key
            )
    raise TypeError(f"no schema type for {type(exc).__name__}")


def graphql_error(message: str, code: str) -> GraphQLError:
    """An error outside the result unions, carrying `extensions.code`."""
    return GraphQLError(message, extensions={"code": code})
