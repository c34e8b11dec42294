"""Wallets and their ledger entries, read through the per-request loaders."""

import strawberry

from billgraph.schema.context import Info
from billgraph.schema.enums import EntryType
from billgraph.schema.errors import UserError, to_user_error
from billgraph.schema.inputs import UpdateWalletInput
from billgraph.schema.loaders import EntryPageKey
from billgraph.schema.node import db_id_of
from billgraph.schema.pagination import Connection, build_connection, decode_cursor, page_size
from billgraph.schema.payloads import UpdateWalletSuccess
from billgraph.schema.types import LedgerEntry, Wallet
from billgraph.services import wallets as wallet_service
from billgraph.services.errors import BillingError, NotFoundError

CURSOR_KIND = "entry"


async def wallet(info: Info, wallet_id: strawberry.ID) -> Wallet | None:
    db_id = db_id_of(wallet_id, "Wallet")
    if db_id is None:
        return None
    row = await info.context.loaders.wallet.load(db_id)
    return Wallet.from_model(row) if row is not None else None


async def wallet_of_entry(info: Info, wallet_db_id: int) -> Wallet:
    row = await info.context.loaders.wallet.load(wallet_db_id)
    assert row is not None  # an entry is only in the graph while its wallet is
    return Wallet.from_model(row)


async def customer_wallets(info: Info, customer_db_id: int) -> list[Wallet]:
    rows = await info.context.loaders.wallets_by_customer.load(customer_db_id)
    return [Wallet.from_model(r) for r in rows]


async def customer_wallet(info: Info, customer_db_id: int, currency: str) -> Wallet | None:
    rows = await info.context.loaders.wallets_by_customer.load(customer_db_id)
    return next((Wallet.from_model(r) for r in rows if r.currency == currency), None)


async def ledger_entries(
    info: Info,
    wallet_db_id: int,
    *,
    first: int | None,
    after: str | None,
    entry_type: EntryType | None,
) -> Connection[LedgerEntry]:
    limit = page_size(first)
    key = EntryPageKey(
        wallet_id=wallet_db_id,
        before_sequence=decode_cursor(CURSOR_KIND, after),
        limit=limit + 1,  # one more than asked tells whether there is a next page
        entry_type=entry_type.value if entry_type else None,
    )
    rows = await info.context.loaders.ledger_page.load(key)
    return build_connection(rows, limit, CURSOR_KIND, lambda r: r.sequence, LedgerEntry.from_model)


async def update_wallet(info: Info, input: UpdateWalletInput) -> UpdateWalletSuccess | UserError:
    context = info.context
    try:
        db_id = db_id_of(input.wallet_id, "Wallet", "walletId")
        if db_id is None:
            raise NotFoundError("Wallet not found.")
        if input.low_balance_threshold is strawberry.UNSET:  # nothing to change
            row = await context.loaders.wallet.load(db_id)
            if row is None:
                raise NotFoundError("Wallet not found.")
        else:
            async with context.database.write_session() as session:
                row = await wallet_service.set_low_balance_threshold(
                    session, context.organization_id, db_id, input.low_balance_threshold
                )
    except BillingError as exc:
        return to_user_error(exc)
    return UpdateWalletSuccess(wallet=Wallet.from_model(row))
