"""Mutation results: a success type and the typed errors a client must handle, as unions."""

from typing import Annotated

import strawberry

from billgraph.schema.errors import (
    ConflictError,
    IdempotencyConflictError,
    InsufficientBalanceError,
    NotFoundError,
    ValidationError,
)
from billgraph.schema.types import ApiKey, Customer, LedgerEntry, Wallet


@strawberry.type
class CreateCustomerSuccess:
    customer: Customer
    wallet: Wallet = strawberry.field(description="The customer's first wallet, balance 0.")


@strawberry.type
class UpdateCustomerSuccess:
    customer: Customer


@strawberry.type
class DeleteCustomerSuccess:
    deleted_customer_id: strawberry.ID


@strawberry.type
class CreateLedgerEntrySuccess:
    entry: LedgerEntry
    wallet: Wallet
    replayed: bool = strawberry.field(
        description="True when this key was already used with the same input: nothing new was written."
    )


@strawberry.type
class UpdateWalletSuccess:
    wallet: Wallet


@strawberry.type
class CreateApiKeySuccess:
    api_key: ApiKey
    secret: str = strawberry.field(description="Shown only here: store it now.")


@strawberry.type
class RevokeApiKeySuccess:
    api_key: ApiKey


CreateCustomerResult = Annotated[
    CreateCustomerSuccess | ValidationError | ConflictError,
    strawberry.union("CreateCustomerResult"),
]
UpdateCustomerResult = Annotated[
    UpdateCustomerSuccess | ValidationError | ConflictError | NotFoundError,
    strawberry.union("UpdateCustomerResult"),
]
DeleteCustomerResult = Annotated[
    DeleteCustomerSuccess | NotFoundError | ValidationError,
    strawberry.union("DeleteCustomerResult"),
]
CreateLedgerEntryResult = Annotated[
    CreateLedgerEntrySuccess
    | InsufficientBalanceError
    | IdempotencyConflictError
    | NotFoundError
    | ValidationError,
    strawberry.union("CreateLedgerEntryResult"),
]
UpdateWalletResult = Annotated[
    UpdateWalletSuccess | NotFoundError | ValidationError, strawberry.union("UpdateWalletResult")
]
CreateApiKeyResult = Annotated[
    CreateApiKeySuccess | ValidationError, strawberry.union("CreateApiKeyResult")
]
RevokeApiKeyResult = Annotated[
    RevokeApiKeySuccess | NotFoundError | ValidationError, strawberry.union("RevokeApiKeyResult")
]
