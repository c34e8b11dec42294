"""The wallets' queries, confined to one organization and to live customers."""

from collections import defaultdict
from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Row, Select, Table, bindparam, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from billgraph.db.models import Customer, Wallet, utcnow
from billgraph.db.plain import PlainConnection, Prebuilt

WalletRow = Row[*tuple[Any, ...]]
"""A wallets row as the loaders read it (billgraph.db.plain): the columns by position or name."""

_wallets = cast(Table, Wallet.__table__)
_customers = cast(Table, Customer.__table__)
_CUSTOMER_ID = _wallets.c.keys().index("customer_id")

# Built once: these run on most requests, and building a statement costs more than its
# round trip. A plain row per wallet, no ORM object.
_LIVE_WALLETS = (
    select(*_wallets.c)
    .join(_customers, _customers.c.id == _wallets.c.customer_id)
    .where(
        _wallets.c.organization_id == bindparam("organization_id"),
        _customers.c.deleted_at.is_(None),
    )
)
WALLETS_BY_IDS = Prebuilt(_LIVE_WALLETS.where(_wallets.c.id.in_(bindparam("ids", expanding=True))))
WALLETS_BY_CUSTOMER_IDS = Prebuilt(
    _LIVE_WALLETS.where(
        _wallets.c.customer_id.in_(bindparam("customer_ids", expanding=True))
    ).order_by(_wallets.c.customer_id, _wallets.c.id)
)


def _live_wallets(organization_id: int) -> Select[Wallet]:
    return (
        select(Wallet)
        .join(Customer, Customer.id == Wallet.customer_id)
        .where(Wallet.organization_id == organization_id, Customer.deleted_at.is_(None))
    )


async def wallet_rows_by_ids(
    connection: PlainConnection, organization_id: int, ids: Sequence[int]
) -> dict[int, WalletRow]:
    rows = await connection.rows(WALLETS_BY_IDS, {"organization_id": organization_id, "ids": ids})
    return {row[0]: row for row in rows}


async def wallet_rows_by_customer_ids(
    connection: PlainConnection, organization_id: int, customer_ids: Sequence[int]
) -> dict[int, list[WalletRow]]:
    """Each customer's wallets, oldest first."""
    rows = await connection.rows(
        WALLETS_BY_CUSTOMER_IDS,
        {"organization_id": organization_id, "customer_ids": customer_ids},
    )
    found: dict[int, list[WalletRow]] = defaultdict(list)
    for row in rows:
        found[row[_CUSTOMER_ID]].append(row)
    return found


async def wallets_by_customer_ids(
    session: AsyncSession, organization_id: int, customer_ids: Sequence[int]
) -> dict[int, list[Wallet]]:
    """Each customer's wallets as models, oldest first (for units of work that hold them)."""
    rows = await session.scalars(
        _live_wallets(organization_id)
        .where(Wallet.customer_id.in_(customer_ids))
        .order_by(Wallet.customer_id, Wallet.id)
    )
    found: dict[int, list[Wallet]] = defaultdict(list)
    for wallet in rows:
        found[wallet.customer_id].append(wallet)
    return found


async def open_wallet(
    session: AsyncSession, organization_id: int, customer_id: int, currency: str
) -> Wallet:
    """The customer's wallet in `currency`, inserted with balance 0 if missing; two callers
    racing to open it get the same row."""
    now = utcnow()
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    await session.execute(
        insert(Wallet)
        .values(
            organization_id=organization_id,
            customer_id=customer_id,
            currency=currency,
            balance=0,
            version=0,
            created_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing(index_elements=["customer_id", "currency"])
    )
    wallet = await session.scalar(
        select(Wallet).where(Wallet.customer_id == customer_id, Wallet.currency == currency)
    )
    assert wallet is not None
    return wallet


async def set_threshold(
    session: AsyncSession, organization_id: int, wallet_id: int, threshold: int | None
) -> Wallet | None:
    """The wallet with its new low-balance threshold; None if it is not a live one of the
    organization."""
    return await session.scalar(
        update(Wallet)
        .where(
            Wallet.id == wallet_id,
            Wallet.organization_id == organization_id,
            Wallet.customer_id.in_(select(Customer.id).where(Customer.deleted_at.is_(None))),
        )
        .values(low_balance_threshold=threshold, updated_at=utcnow())
        .returning(Wallet)
    )


async def wallet_by_id(session: AsyncSession, wallet_id: int) -> Wallet:
    """The wallet row, which must exist (a ledger entry points to it)."""
    return await session.get_one(Wallet, wallet_id)


async def locked_balance(
    session: AsyncSession, organization_id: int, customer_id: int, currency: str
) -> int:
    """The balance of the customer's wallet in `currency` (0 without one), the wallet row
    locked until the transaction ends (on SQLite the unit's writer lock does that), so a
    debit sized from it cannot be refused by a concurrent one."""
    balance = await session.scalar(
        select(Wallet.balance)
        .where(
            Wallet.organization_id == organization_id,
            Wallet.customer_id == customer_id,
            Wallet.currency == currency,
        )
        .with_for_update()
    )
    return balance or 0
