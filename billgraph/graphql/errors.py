"""Typed business errors inside mutation results, and how each mutation declares them.

A mutation names the domain errors it can return once, with `@result(...)`: its union (the
success type and those errors' GraphQL types) and the mapping of a raised domain error to its
GraphQL type both derive from that declaration. A domain error the mutation did not declare is
a bug: it is masked as INTERNAL_SERVER_ERROR and logged, and a test walks every mutation's
code to prove none can escape.
"""

import inspect
from collections.abc import Awaitable, Callable
from typing import Annotated, ParamSpec, Self, TypeVar, Union, cast

import strawberry
from graphql import GraphQLError

from billgraph.core import errors
from billgraph.graphql.checkout.enums import PaymentProvider
from billgraph.graphql.context import Info
from billgraph.graphql.currencies import Currency
from billgraph.graphql.scalars import BigInt

P = ParamSpec("P")
S = TypeVar("S")


@strawberry.interface(description="A business outcome the client must handle.")
class UserError:
    code: str = strawberry.field(description="Stable machine-readable code.")
    message: str


@strawberry.type(description="The input was refused; nothing was written.")
class ValidationError(UserError):
    field: str | None = strawberry.field(description="The input field at fault, if one is.")

    @classmethod
    def from_error(cls, exc: errors.ValidationError) -> Self:
        return cls(code=exc.code, message=exc.message, field=exc.field)


@strawberry.type(description="No such object in this organization; nothing was written.")
class NotFoundError(UserError):
    @classmethod
    def from_error(cls, exc: errors.NotFoundError) -> Self:
        return cls(code=exc.code, message=exc.message)


@strawberry.type(description="A unique value is already used in this organization.")
class ConflictError(UserError):
    field: str | None

    @classmethod
    def from_error(cls, exc: errors.ConflictError) -> Self:
        return cls(code=exc.code, message=exc.message, field=exc.field)


@strawberry.type(description="The debit exceeds the balance; nothing was written.")
class InsufficientBalanceError(UserError):
    balance: BigInt
    requested: BigInt
    currency: Currency

    @classmethod
    def from_error(cls, exc: errors.InsufficientBalanceError) -> Self:
        return cls(
            code=exc.code,
            message=exc.message,
            balance=BigInt(exc.balance),
            requested=BigInt(exc.requested),
            currency=Currency(exc.currency),
        )


@strawberry.type(
    description="The idempotency key was used with other parameters; nothing was written."
)
class IdempotencyConflictError(UserError):
    idempotency_key: str

    @classmethod
    def from_error(cls, exc: errors.IdempotencyConflictError) -> Self:
        return cls(code=exc.code, message=exc.message, idempotency_key=exc.idempotency_key)


@strawberry.type(
    description="The payment provider refused or failed the call, or is not configured here; "
    "nothing was written."
)
class ProviderError(UserError):
    provider: PaymentProvider
    decline_code: str | None = strawberry.field(
        description="The provider's own code (Stripe's decline_code, Toss's error code)."
    )

    @classmethod
    def from_error(cls, exc: errors.ProviderError) -> Self:
        return cls(
            code=exc.code,
            message=exc.message,
            provider=PaymentProvider(exc.provider),
            decline_code=exc.decline_code,
        )


# The GraphQL type of each domain error.
ERROR_TYPES: dict[type[errors.BillingError], type] = {
    errors.ValidationError: ValidationError,
    errors.NotFoundError: NotFoundError,
    errors.ConflictError: ConflictError,
    errors.InsufficientBalanceError: InsufficientBalanceError,
    errors.IdempotencyConflictError: IdempotencyConflictError,
    errors.ProviderError: ProviderError,
}


class UndeclaredError(Exception):
    """A mutation raised a domain error its result does not declare (masked, logged)."""


def result(
    name: str, success: type[S], *raises: type[errors.BillingError]
) -> Callable[[Callable[P, Awaitable[S]]], Callable[P, Awaitable[S | UserError]]]:
    """Declare a mutation's result: the union `name` of `success` and the GraphQL types of
    the domain errors in `raises`, which are returned as those types when the resolver raises
    them. The resolver itself returns only its success."""
    union = Annotated[Union[(success, *(ERROR_TYPES[e] for e in raises))], strawberry.union(name)]  # type: ignore[valid-type]

    def declare(resolver: Callable[P, Awaitable[S]]) -> Callable[P, Awaitable[S | UserError]]:
        signature = inspect.signature(resolver)
        if "info" not in signature.parameters:
            raise TypeError(f"{resolver.__qualname__} takes no `info`: it cannot be a mutation")
        info_position = list(signature.parameters).index("info")

        async def resolve(*args: P.args, **kwargs: P.kwargs) -> S | UserError:
            info = kwargs["info"] if "info" in kwargs else args[info_position]
            context = cast(Info, info).context
            # Mutation fields run one after another: what earlier fields of the document
            # loaded may be what this one changes, and what this one loads before its write
            # is stale after it. Its payload reads afresh.
            context.fresh_loaders()
            try:
                return await resolver(*args, **kwargs)
            except errors.BillingError as exc:
                if not isinstance(exc, raises):
                    raise UndeclaredError(
                        f"{resolver.__qualname__} raised {type(exc).__name__}, "
                        f"which its result {name} does not declare"
                    ) from exc
                return _to_graphql(exc)
            finally:
                context.fresh_loaders()

        # Strawberry reads the arguments and the return type from the signature.
        resolve.__name__ = resolver.__name__
        resolve.__qualname__ = resolver.__qualname__
        resolve.__module__ = resolver.__module__
        resolve.__doc__ = resolver.__doc__
        resolve.__signature__ = signature.replace(  # type: ignore[attr-defined]
            return_annotation=union
        )
        resolve.__annotations__ = {**resolver.__annotations__, "return": union}
        resolve.declared = (resolver, raises)  # type: ignore[attr-defined]
        return resolve

    return declare


def _to_graphql(exc: errors.BillingError) -> UserError:
    for kind in type(exc).__mro__:
        if kind in ERROR_TYPES:
            return ERROR_TYPES[kind].from_error(exc)  # type: ignore[attr-defined, no-any-return]
    raise TypeError(f"no GraphQL type for {type(exc).__name__}")


def graphql_error(message: str, code: str) -> GraphQLError:
    """An error outside the result unions, carrying `extensions.code`."""
    return GraphQLError(message, extensions={"code": code})
