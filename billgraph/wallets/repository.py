"""The wallets' queries, confined to one organization and to live customers."""

from collections import defaultdict
from collections.abc import Sequence

from sqlalchemy import Select, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from billgraph.db.models import Customer, Wallet, utcnow


def _live_wallets(organization_id: int) -> Select[Wallet]:
    return (
        select(Wallet)
        .join(Customer, Customer.id == Wallet.customer_id)
        .where(Wallet.organization_id == organization_id, Customer.deleted_at.is_(None))
    )


async def wallets_by_ids(
    session: AsyncSession, organization_id: int, ids: Sequence[int]
) -> dict[int, Wallet]:
    rows = await session.scalars(_live_wallets(organization_id).where(Wallet.id.in_(ids)))
    return {w.id: w for w in rows}


async def wallets_by_customer_ids(
    session: AsyncSession, organization_id: int, customer_ids: Sequence[int]
) -> dict[int, list[Wallet]]:
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
