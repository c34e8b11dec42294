"""Wallet, with its ledger entries (newest first) and its customer."""

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, cast

import strawberry
from graphql import GraphQLError

from billgraph.graphql.context import Info
from billgraph.graphql.currencies import CURRENCY_BY_CODE, Currency
from billgraph.graphql.ledger.loaders import EntryPageKey, Page
from billgraph.graphql.ledger.types import EntryType, LedgerEntry
from billgraph.graphql.lookahead import child_arguments
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
        # As LedgerEntry.from_model: a lookup for the enum, BigInt is int at runtime.
        return cls(
            id=to_global_id("Wallet", row.id),
            db_id=row.id,
            customer_db_id=row.customer_id,
            currency=CURRENCY_BY_CODE[row.currency],
            balance=cast(BigInt, row.balance),
            version=cast(BigInt, row.version),
            low_balance_threshold=cast("BigInt | None", row.low_balance_threshold),
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
        page = entry_page(first, after, entry_type)
        rows = await info.context.loaders.ledger_page.load(EntryPageKey(self.db_id, *page))
        return build_connection(
            rows, page.limit - 1, ENTRY_CURSOR, lambda r: r[3], LedgerEntry.from_row
        )


def entry_page(first: int | None, after: str | None, entry_type: EntryType | None) -> Page:
    """The page a wallet's ledgerEntries(first, after, entryType) reads; BAD_USER_INPUT for
    arguments out of range."""
    limit = page_size(first)
    return Page(
        before_sequence=decode_cursor(ENTRY_CURSOR, after),
        limit=limit + 1,  # one more than asked tells whether there is a next page
        entry_type=entry_type.value if entry_type else None,
    )


def entries_ahead(info: Info, *wallets: str) -> Page | None:
    """The page of entries that the wallets this field returns (or the wallets reached from
    its objects by the field names `wallets`) will be asked for: that of a ledgerEntries
    selected on them (the first, outside fragments), to be read with them. None if there is
    none, or its arguments are out of range (its resolver will say so)."""
    arguments = child_arguments(info, *wallets, "ledgerEntries")
    if arguments is None:
        return None
    try:
        return entry_page(
            arguments.get("first"), arguments.get("after"), arguments.get("entryType")
        )
    except GraphQLError:
        return None


@node_loader("Wallet")
async def _load(info: Info, db_id: int) -> Wallet | None:
    row = await info.context.loaders.wallet.load(db_id)
    return Wallet.from_row(row) if row is not None else None


async def load_paged_wallet(info: Info, db_id: int) -> Wallet | None:
    """The wallet a field returns (`wallet(id:)`), read with the page of entries its
    selection asks for when there is one."""
    page = entries_ahead(info)
    if page is None:
        return cast(Wallet | None, await _load(info, db_id))
    rows = await info.context.loaders.paged_wallet.load((db_id, page))
    return Wallet.from_row(rows[0]) if rows else None
