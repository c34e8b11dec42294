"""LedgerEntry and the EntryType enum (the ledger's own)."""

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, cast

import strawberry

from billgraph.graphql.context import Info
from billgraph.graphql.currencies import CURRENCY_BY_CODE, Currency
from billgraph.graphql.node import Node, load_existing, node_loader, to_global_id
from billgraph.graphql.scalars import BigInt
from billgraph.ledger import posting
from billgraph.ledger.repository import LedgerEntryRow
from billgraph.live.events import AnyEntry

if TYPE_CHECKING:
    from billgraph.graphql.wallets.types import Wallet

# The GraphQL enum is the ledger's own, declared to Strawberry.
strawberry.enum(
    posting.EntryType, description="Whether a ledger entry adds to or takes from a wallet."
)
EntryType = posting.EntryType
# Enum members by value: a dict lookup, not an Enum call, for every row.
ENTRY_TYPE_BY_VALUE = {t.value: t for t in EntryType}


@strawberry.type(description="One append-only movement of money on a wallet.")
class LedgerEntry(Node):
    db_id: strawberry.Private[int]
    wallet_db_id: strawberry.Private[int]
    entry_type: EntryType
    amount: BigInt
    currency: Currency
    balance_after: BigInt = strawberry.field(description="The wallet's balance right after it.")
    sequence: BigInt = strawberry.field(description="Position in the wallet's ledger: 1, 2, 3...")
    reason: str | None
    idempotency_key: str
    created_at: datetime

    @classmethod
    def from_model(cls, row: AnyEntry | LedgerEntryRow) -> "LedgerEntry":
        # Lookups, not Enum calls (a posting's answer builds one); BigInt is int at runtime.
        return cls(
            id=to_global_id("LedgerEntry", row.id),
            db_id=row.id,
            wallet_db_id=row.wallet_id,
            entry_type=ENTRY_TYPE_BY_VALUE[row.entry_type],
            amount=cast(BigInt, row.amount),
            currency=CURRENCY_BY_CODE[row.currency],
            balance_after=cast(BigInt, row.balance_after),
            sequence=cast(BigInt, row.sequence),
            reason=row.reason,
            idempotency_key=row.idempotency_key,
            created_at=row.created_at,
        )

    @classmethod
    def from_row(cls, row: LedgerEntryRow) -> "LedgerEntry":
        """From a row of the loaders' statements (the table's columns in order): unpacking
        it is several times cheaper than reading its attributes, on up to 100 entries a page."""
        id_, _, wallet_id, sequence, entry_type, amount, currency, balance_after, *rest = row
        reason, idempotency_key, _, created_at = rest
        return cls(
            id=to_global_id("LedgerEntry", id_),
            db_id=id_,
            wallet_db_id=wallet_id,
            entry_type=ENTRY_TYPE_BY_VALUE[entry_type],
            amount=amount,
            currency=CURRENCY_BY_CODE[currency],
            balance_after=balance_after,
            sequence=sequence,
            reason=reason,
            idempotency_key=idempotency_key,
            created_at=created_at,
        )

    @strawberry.field
    async def wallet(
        self, info: Info
    ) -> Annotated["Wallet", strawberry.lazy("billgraph.graphql.wallets.types")]:
        return cast("Wallet", await load_existing(info, "Wallet", self.wallet_db_id))


@node_loader("LedgerEntry")
async def _load(info: Info, db_id: int) -> LedgerEntry | None:
    row = await info.context.loaders.ledger_entry.load(db_id)
    return LedgerEntry.from_row(row) if row is not None else None
