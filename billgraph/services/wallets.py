"""Wallets: one per customer and currency, opened at customer creation or on first credit."""

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from billgraph.db.models import Customer, Wallet, utcnow
from billgraph.services import validation
from billgraph.services.errors import NotFoundError


async def open_wallet(
    session: AsyncSession, organization_id: int, customer_id: int, currency: str
) -> Wallet:
    """The customer's wallet in `currency`, created with balance 0 if missing.

    Safe under races: two callers opening the same wallet get the same row.
    """
    now = utcnow()
    insert = pg_insert if session.bind.dialect.name == "postgresql" else sqlite_insert
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


async def set_low_balance_threshold(
    session: AsyncSession, organization_id: int, wallet_id: int, threshold: int | None
) -> Wallet:
    """Set (or with None clear) the balance under which the wallet raises low-balance events.

    A live event fires when a debit takes the balance from at-or-above the threshold to below
    it, not when the threshold itself moves above the balance.
    """
    checked = validation.threshold(threshold, "lowBalanceThreshold")
    wallet = await session.scalar(
        update(Wallet)
        .where(
            Wallet.id == wallet_id,
            Wallet.organization_id == organization_id,
            Wallet.customer_id.in_(select(Customer.id).where(Customer.deleted_at.is_(None))),
        )
        .values(low_balance_threshold=checked, updated_at=utcnow())
        .returning(Wallet)
    )
    if wallet is None:
        raise NotFoundError("Wallet not found.")
    return wallet
