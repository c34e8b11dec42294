"""Batched reads behind the GraphQL loaders. Every query is confined to one organization and
skips deleted customers; each function is one SQL statement whatever the number of keys."""

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import BigInteger, Select, bindparam, func, select, true, union_all
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from billgraph.db.models import ApiKey, Customer, LedgerEntry, Wallet

# Keyset "after" for a first page of entries: larger than any sequence.
NO_CURSOR = 2**62
SQLITE_UNION_TERMS = 400


def _live_customers(organization_id: int) -> Select[tuple[Customer]]:
    return select(Customer).where(
        Customer.organization_id == organization_id, Customer.deleted_at.is_(None)
    )


async def customers_by_ids(
    session: AsyncSession, organization_id: int, ids: Sequence[int]
) -> dict[int, Customer]:
    rows = await session.scalars(_live_customers(organization_id).where(Customer.id.in_(ids)))
    return {c.id: c for c in rows}


async def customers_page(
    session: AsyncSession,
    organization_id: int,
    *,
    limit: int,
    after_id: int | None,
    email: str | None,
) -> list[Customer]:
    """Customers in creation order after `after_id`; `limit` rows at most."""
    query = _live_customers(organization_id)
    if after_id is not None:
        query = query.where(Customer.id > after_id)
    if email is not None:
        query = query.where(Customer.email_normalized == email.strip().lower())
    return list(await session.scalars(query.order_by(Customer.id).limit(limit)))


def _live_wallets(organization_id: int) -> Select[tuple[Wallet]]:
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


async def ledger_entries_by_ids(
    session: AsyncSession, organization_id: int, ids: Sequence[int]
) -> dict[int, LedgerEntry]:
    rows = await session.scalars(
        select(LedgerEntry)
        .join(Wallet, Wallet.id == LedgerEntry.wallet_id)
        .join(Customer, Customer.id == Wallet.customer_id)
        .where(
            LedgerEntry.organization_id == organization_id,
            LedgerEntry.id.in_(ids),
            Customer.deleted_at.is_(None),
        )
    )
    return {e.id: e for e in rows}


async def ledger_entries_pages(
    session: AsyncSession,
    organization_id: int,
    pages: Sequence[tuple[int, int | None]],
    *,
    limit: int,
    entry_type: str | None,
) -> dict[int, list[LedgerEntry]]:
    """Newest-first entries of many wallets at once: for each (wallet_id, before_sequence),
    at most `limit` entries with a smaller sequence.

    Each wallet's page is read from its (wallet_id, sequence) index and stops after `limit`
    rows: LATERAL on PostgreSQL, a UNION ALL of per-wallet subqueries on SQLite (which has no
    LATERAL). A window function would read every entry of every wallet instead.
    """
    if not pages:
        return {}
    if session.bind.dialect.name == "postgresql":
        queries = [_pages_lateral(organization_id, pages, limit, entry_type)]
    else:  # SQLite allows 500 terms in a compound SELECT
        queries = [
            _pages_union(organization_id, pages[i : i + SQLITE_UNION_TERMS], limit, entry_type)
            for i in range(0, len(pages), SQLITE_UNION_TERMS)
        ]
    found: dict[int, list[LedgerEntry]] = defaultdict(list)
    for query in queries:
        for entry in await session.scalars(query):
            found[entry.wallet_id].append(entry)
    for rows in found.values():
        rows.sort(key=lambda e: e.sequence, reverse=True)
    return found


def _page_filter(
    query: Select[tuple[LedgerEntry]], organization_id: int, entry_type: str | None
) -> Select[tuple[LedgerEntry]]:
    query = query.where(LedgerEntry.organization_id == organization_id)
    if entry_type is not None:
        query = query.where(LedgerEntry.entry_type == entry_type)
    return query


def _pages_lateral(
    organization_id: int,
    pages: Sequence[tuple[int, int | None]],
    limit: int,
    entry_type: str | None,
) -> Select[tuple[LedgerEntry]]:
    wallet_ids = [w for w, _ in pages]
    befores = [NO_CURSOR if b is None else b for _, b in pages]
    keys = select(
        func.unnest(bindparam("wallet_ids", wallet_ids, type_=ARRAY(BigInteger))).label(
            "wallet_id"
        ),
        func.unnest(bindparam("befores", befores, type_=ARRAY(BigInteger))).label("before"),
    ).subquery("keys")
    page = _page_filter(
        select(LedgerEntry).where(
            LedgerEntry.wallet_id == keys.c.wallet_id, LedgerEntry.sequence < keys.c.before
        ),
        organization_id,
        entry_type,
    )
    page = page.order_by(LedgerEntry.sequence.desc()).limit(limit).lateral("page")
    entry = aliased(LedgerEntry, page)
    return select(entry).select_from(keys).join(page, true())


def _pages_union(
    organization_id: int,
    pages: Sequence[tuple[int, int | None]],
    limit: int,
    entry_type: str | None,
) -> Select[tuple[LedgerEntry]]:
    parts = [
        _page_filter(
            select(LedgerEntry).where(
                LedgerEntry.wallet_id == wallet_id,
                LedgerEntry.sequence < (NO_CURSOR if before is None else before),
            ),
            organization_id,
            entry_type,
        )
        .order_by(LedgerEntry.sequence.desc())
        .limit(limit)
        .subquery()
        .select()
        for wallet_id, before in pages
    ]
    union = union_all(*parts).subquery("pages")
    return select(aliased(LedgerEntry, union))


# Reads behind live events (billgraph/events): the ledger as the source of truth for what an
# event stream missed.


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
