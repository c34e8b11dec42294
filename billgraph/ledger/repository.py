"""The ledger's reads: entries by id, newest-first pages of many wallets at once, and what a
posting that matched no row needs to find out why. Confined to one organization."""

from collections import defaultdict
from collections.abc import Sequence

from sqlalchemy import BigInteger, Row, Select, and_, bindparam, func, select, true, union_all
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from billgraph.db.models import Customer, LedgerEntry, Wallet

# Keyset "after" for a first page of entries: larger than any sequence.
NO_CURSOR = 2**62
SQLITE_UNION_TERMS = 400


async def entries_by_ids(
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


async def entries_pages(
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
    if session.get_bind().dialect.name == "postgresql":
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
    query: Select[LedgerEntry], organization_id: int, entry_type: str | None
) -> Select[LedgerEntry]:
    query = query.where(LedgerEntry.organization_id == organization_id)
    if entry_type is not None:
        query = query.where(LedgerEntry.entry_type == entry_type)
    return query


def _pages_lateral(
    organization_id: int,
    pages: Sequence[tuple[int, int | None]],
    limit: int,
    entry_type: str | None,
) -> Select[LedgerEntry]:
    wallet_ids = [w for w, _ in pages]
    befores = [NO_CURSOR if b is None else b for _, b in pages]
    keys = select(
        func.unnest(bindparam("wallet_ids", wallet_ids, type_=ARRAY(BigInteger))).label(
            "wallet_id"
        ),
        func.unnest(bindparam("befores", befores, type_=ARRAY(BigInteger))).label("before"),
    ).subquery("keys")
    page = (
        _page_filter(
            select(LedgerEntry).where(
                LedgerEntry.wallet_id == keys.c.wallet_id, LedgerEntry.sequence < keys.c.before
            ),
            organization_id,
            entry_type,
        )
        .order_by(LedgerEntry.sequence.desc())
        .limit(limit)
        .lateral("page")
    )
    entry = aliased(LedgerEntry, page)
    return select(entry).select_from(keys).join(page, true())


def _pages_union(
    organization_id: int,
    pages: Sequence[tuple[int, int | None]],
    limit: int,
    entry_type: str | None,
) -> Select[LedgerEntry]:
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


async def entry_by_key(
    session: AsyncSession, organization_id: int, idempotency_key: str
) -> LedgerEntry | None:
    return await session.scalar(
        select(LedgerEntry).where(
            LedgerEntry.organization_id == organization_id,
            LedgerEntry.idempotency_key == idempotency_key,
        )
    )


async def customer_balance(
    session: AsyncSession, organization_id: int, customer_id: int, currency: str
) -> Row[int, int | None] | None:
    """(customer id, balance in `currency` or None without a wallet) of a live customer of
    the organization; None for an unknown, deleted or other organization's customer."""
    return (
        await session.execute(
            select(Customer.id, Wallet.balance)
            .outerjoin(Wallet, and_(Wallet.customer_id == Customer.id, Wallet.currency == currency))
            .where(
                Customer.id == customer_id,
                Customer.organization_id == organization_id,
                Customer.deleted_at.is_(None),
            )
        )
    ).first()
