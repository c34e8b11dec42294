"""Mutation inputs. Lengths and formats are checked by the services, which answer with a
typed ValidationError naming the field."""

import strawberry

from billgraph.schema.enums import ApiKeyScope, Currency, EntryType
from billgraph.schema.scalars import BigInt


@strawberry.input
class CreateCustomerInput:
    email: str
    name: str | None = None
    external_id: str | None = strawberry.field(
        default=None, description="Your own id for the customer; unique in the organization."
    )
    currency: Currency | None = strawberry.field(
        default=None, description="Currency of the first wallet; the organization's by default."
    )


@strawberry.input(description="Fields left out stay as they are; null clears name or externalId.")
class UpdateCustomerInput:
    customer_id: strawberry.ID
    email: str | None = strawberry.UNSET
    name: str | None = strawberry.UNSET
    external_id: str | None = strawberry.UNSET


@strawberry.input
class CreateLedgerEntryInput:
    customer_id: strawberry.ID
    amount: BigInt = strawberry.field(description="Positive, in the currency's minor unit.")
    currency: Currency
    entry_type: EntryType
    idempotency_key: str = strawberry.field(
        description="Unique per organization: a retry with the same key and input returns the "
        "original entry (replayed: true); with other input it is an IdempotencyConflictError."
    )
    reason: str | None = None


@strawberry.input
class CreateApiKeyInput:
    name: str
    scopes: list[ApiKeyScope]


@strawberry.input
class UpdateWalletInput:
    wallet_id: strawberry.ID
    low_balance_threshold: BigInt | None = strawberry.field(
        default=strawberry.UNSET,
        description="In minor units; null clears it, leaving it out keeps it.",
    )
