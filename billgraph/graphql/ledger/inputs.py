import strawberry

from billgraph.graphql.currencies import Currency
from billgraph.graphql.ledger.types import EntryType
from billgraph.graphql.scalars import BigInt


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
