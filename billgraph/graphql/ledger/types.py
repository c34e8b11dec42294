"""LedgerEntry and the EntryType enum (the ledger's own)."""

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, cast

import strawberry

from billgraph.db import models
from billgraph.graphql.context import Info
from billgraph.graphql.currencies import Currency
from billgraph.graphql.node import Node, load_existing, node_loader, to_global_id
from billgraph.graphql.scalars import BigInt
from billgraph.ledger import posting
from billgraph.ledger.repository import LedgerEntryRow

if TYPE_CHECKING:
    from billgraph.graphql.wallets.types import Wallet

# The GraphQL enum is the ledger's own, declared to Strawberry.
strawberry.enum(
    posting.EntryType, description="Whether a ledger entry adds to or takes from a wallet."
)
EntryType = posting.EntryType


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
    def from_model(cls, row: models.LedgerEntry | LedgerEntryRow) -> "LedgerEntry":
        return cls(
            id=to_global_id("LedgerEntry", row.id),
            db_id=row.id,
            wallet_db_id=row.wallet_id,
            entry_type=EntryType(row.entry_type),
            amount=BigInt(row.amount),
            currency=Currency(row.currency),
            balance_after=BigInt(row.balance_after),
            sequence=BigInt(row.sequence),
            reason=row.reason,
            idempotency_key=row.idempotency_key,
            created_at=row.created_at,
        )

    @strawberry.field
    async def wallet(
        self, info: Info
    ) -> Annotated["Wallet", strawberry.lazy("billgraph.graphql.wallets.types")]:
        return cast("Wallet", await load_existing(info, "Wallet", self.wallet_db_id))


@node_loader("LedgerEntry")
async def _load(info: Info, db_id: int) -> LedgerEntry | None:
    row = await info.context.loaders.ledger_entry.load(db_id)
    return LedgerEntry.from_model(row) if row is not None else None
