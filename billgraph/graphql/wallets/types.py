"""Wallet, with its ledger entries (newest first) and its customer."""

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, cast

import strawberry

from billgraph.graphql.context import Info
from billgraph.graphql.currencies import CURRENCY_BY_CODE, Currency
from billgraph.graphql.ledger.loaders import EntryPageKey
from billgraph.graphql.ledger.types import EntryType, LedgerEntry
from billgraph.graphql.node import Node, load_existing, node_loader, to_global_id
from billgraph.graphql.pagination import Connection, build_connection, decode_cursor, page_size
from billgraph.graphql.scalars import BigInt
from billgraph.live.events import AnyWallet
from billgraph.wallets.repository import WalletRow

if TYPE_CHECKING:
    from billgraph.graphql.customers.types import Customer

ENTRY_CURSOR = "entry"


@strawberry.type(description="A customer's balance in one currency, and its ledger.")
class Wallet(Node):
    db_id: strawberry.Private[int]
    customer_db_id: strawberry.Private[int]
    currency: Currency
    balance: BigInt = strawberry.field(description="In the currency's minor unit.")
    version: BigInt = strawberry.field(
        description="The sequence of the wallet's latest ledger entry (0 before any)."
    )
    low_balance_threshold: BigInt | None = strawberry.field(
        description="A debit that takes the balance from at-or-above this to below it raises "
        "walletLowBalance. Null: no alerts."
    )
    updated_at: datetime

    @classmethod
    def from_model(cls, row: AnyWallet | WalletRow) -> "Wallet":
        return cls(
            id=to_global_id("Wallet", row.id),
            db_id=row.id,
            customer_db_id=row.customer_id,
            currency=Currency(row.currency),
            balance=BigInt(row.balance),
            version=BigInt(row.version),
            low_balance_threshold=(
                None if row.low_balance_threshold is None else BigInt(row.low_balance_threshold)
            ),
            updated_at=row.updated_at,
        )

    @classmethod
    def from_row(cls, row: WalletRow) -> "Wallet":
        """From a row of the loaders' statements (the table's columns in order), unpacked:
        cheaper than reading its attributes."""
        id_, _, customer_id, currency, balance, version, threshold, _, updated_at = row
        return cls(
            id=to_global_id("Wallet", id_),
            db_id=id_,
            customer_db_id=customer_id,
            currency=CURRENCY_BY_CODE[currency],
            balance=balance,
            version=version,
            low_balance_threshold=threshold,
            updated_at=updated_at,
        )

    @strawberry.field
    async def customer(
        self, info: Info
    ) -> Annotated["Customer", strawberry.lazy("billgraph.graphql.customers.types")]:
        return cast("Customer", await load_existing(info, "Customer", self.customer_db_id))

    @strawberry.field(description="The wallet's ledger, newest entry first.")
    async def ledger_entries(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        entry_type: EntryType | None = None,
    ) -> Connection[LedgerEntry]:
        limit = page_size(first)
        key = EntryPageKey(
            wallet_id=self.db_id,
            before_sequence=decode_cursor(ENTRY_CURSOR, after),
            limit=limit + 1,  # one more than asked tells whether there is a next page
            entry_type=entry_type.value if entry_type else None,
        )
        rows = await info.context.loaders.ledger_page.load(key)
        return build_connection(rows, limit, ENTRY_CURSOR, lambda r: r[3], LedgerEntry.from_row)


@node_loader("Wallet")
async def _load(info: Info, db_id: int) -> Wallet | None:
    row = await info.context.loaders.wallet.load(db_id)
    return Wallet.from_row(row) if row is not None else None
