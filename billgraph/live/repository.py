"""Reads behind live events: the ledger as the source of truth for what an event stream
missed, the revocations a reconnected listener may have missed, and the billing rows a
billing event names."""

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from billgraph.db.models import (
    ApiKey,
    Invoice,
    LedgerEntry,
    Subscription,
    SubscriptionEvent,
    Wallet,
)


async def entries_after(
    session: AsyncSession,
    wallet_id: int,
    after_sequence: int,
    *,
    upto: int | None,
    limit: int,
    written_since: datetime | None = None,
) -> list[LedgerEntry]:
    """A wallet's entries with a sequence above `after_sequence` (up to `upto`), oldest
    first; with `written_since`, only those written since then, `upto` itself always."""
    query = select(LedgerEntry).where(
        LedgerEntry.wallet_id == wallet_id, LedgerEntry.sequence > after_sequence
    )
    if upto is not None:
        query = query.where(LedgerEntry.sequence <= upto)
    if written_since is not None:
        query = query.where(
            (LedgerEntry.created_at >= written_since) | (LedgerEntry.sequence == upto)
        )
    return list(await session.scalars(query.order_by(LedgerEntry.sequence).limit(limit)))


async def entries_since(
    session: AsyncSession, organization_ids: Sequence[int], since: datetime, *, limit: int
) -> list[tuple[Wallet, LedgerEntry]]:
    """Entries of these organizations written since `since`, with their wallets, each
    wallet's in ledger order; `limit` rows at most."""
    rows = await session.execute(
        select(Wallet, LedgerEntry)
        .join(LedgerEntry, LedgerEntry.wallet_id == Wallet.id)
        .where(
            Wallet.organization_id.in_(organization_ids),
            Wallet.updated_at >= since,
            LedgerEntry.created_at >= since,
        )
        .order_by(Wallet.id, LedgerEntry.sequence)
        .limit(limit)
    )
    return [(wallet, entry) for wallet, entry in rows.tuples()]


async def wallets_changed_since(
    session: AsyncSession, organization_ids: Sequence[int], since: datetime
) -> list[tuple[Wallet, LedgerEntry]]:
    """Wallets of these organizations written since `since`, each with its latest entry."""
    rows = await session.execute(
        select(Wallet, LedgerEntry)
        .join(
            LedgerEntry,
            (LedgerEntry.wallet_id == Wallet.id) & (LedgerEntry.sequence == Wallet.version),
        )
        .where(Wallet.organization_id.in_(organization_ids), Wallet.updated_at >= since)
    )
    return [(wallet, entry) for wallet, entry in rows.tuples()]


async def revoked_api_key_ids(session: AsyncSession, ids: Sequence[int]) -> list[int]:
    rows = await session.scalars(
        select(ApiKey.id).where(ApiKey.id.in_(ids), ApiKey.revoked_at.is_not(None))
    )
    return list(rows)


async def subscription_with_event(
    session: AsyncSession, subscription_id: int, event_id: int | None
) -> tuple[Subscription, SubscriptionEvent | None] | None:
    """The subscription and, if `event_id` is given, that event of it: one statement."""
    if event_id is None:
        subscription = await session.get(Subscription, subscription_id)
        return None if subscription is None else (subscription, None)
    query = (
        select(Subscription, SubscriptionEvent)
        .outerjoin(
            SubscriptionEvent,
            (SubscriptionEvent.subscription_id == Subscription.id)
            & (SubscriptionEvent.id == event_id),
        )
        .where(Subscription.id == subscription_id)
    )
    row = (await session.execute(query)).first()
    return None if row is None else (row[0], row[1])


async def invoice(session: AsyncSession, invoice_id: int) -> Invoice | None:
    return await session.get(Invoice, invoice_id)
