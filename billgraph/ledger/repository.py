"""The ledger's reads: entries by id, newest-first pages of many wallets at once, and what a
posting that matched no row needs to find out why. Confined to one organization."""

from collections import defaultdict
from collections.abc import Sequence
from operator import itemgetter
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    Integer,
    Row,
    Select,
    Table,
    and_,
    bindparam,
    func,
    select,
    true,
    union_all,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from billgraph.db.models import Customer, LedgerEntry, Wallet
from billgraph.db.plain import PlainConnection, Prebuilt

LedgerEntryRow = Row[*tuple[Any, ...]]
"""A ledger_entries row as the loaders read it (billgraph.db.plain): the columns by position or
name."""

# Keyset "after" for a first page of entries: larger than any sequence.
NO_CURSOR = 2**62
SQLITE_UNION_TERMS = 400

_entries = cast(Table, LedgerEntry.__table__)
_wallets = cast(Table, Wallet.__table__)
_customers = cast(Table, Customer.__table__)
# Positions in an entry's row: indexing a row is much cheaper than reading its attributes.
_WALLET_ID = _entries.c.keys().index("wallet_id")
_SEQUENCE = itemgetter(_entries.c.keys().index("sequence"))

# Built once, like the ledger's write statements: a request only binds their parameters.
_LIVE_ENTRIES = (
    select(*_entries.c)
    .join(_wallets, _wallets.c.id == _entries.c.wallet_id)
    .join(_customers, _customers.c.id == _wallets.c.customer_id)
    .where(
        _entries.c.organization_id == bindparam("organization_id"),
        _customers.c.deleted_at.is_(None),
    )
)
ENTRIES_BY_IDS = Prebuilt(_LIVE_ENTRIES.where(_entries.c.id.in_(bindparam("ids", expanding=True))))


def _pages_lateral(*, by_type: bool) -> Select[Any]:
    """PostgreSQL's pages: each (wallet, before) of the arrays, its `limit` newest entries
    from the (wallet_id, sequence) index."""
    keys = select(
        func.unnest(bindparam("wallet_ids", type_=ARRAY(BigInteger))).label("wallet_id"),
        func.unnest(bindparam("befores", type_=ARRAY(BigInteger))).label("before"),
    ).subquery("keys")
    page = select(*_entries.c).where(
        _entries.c.wallet_id == keys.c.wallet_id,
        _entries.c.sequence < keys.c.before,
        _entries.c.organization_id == bindparam("organization_id"),
    )
    if by_type:
        page = page.where(_entries.c.entry_type == bindparam("entry_type"))
    lateral = (
        page.order_by(_entries.c.sequence.desc())
        .limit(bindparam("limit", type_=Integer()))
        .lateral("page")
    )
    return select(*lateral.c).select_from(keys).join(lateral, true())


# Filtered by entry type or not -> the statement (PostgreSQL's; SQLite's is built per call).
ENTRY_PAGES = {by_type: Prebuilt(_pages_lateral(by_type=by_type)) for by_type in (False, True)}


async def entries_by_ids(
    connection: PlainConnection, organization_id: int, ids: Sequence[int]
) -> dict[int, LedgerEntryRow]:
    rows = await connection.rows(ENTRIES_BY_IDS, {"organization_id": organization_id, "ids": ids})
    return {row[0]: row for row in rows}


async def entries_pages(
    connection: PlainConnection,
    organization_id: int,
    pages: Sequence[tuple[int, int | None]],
    *,
    limit: int,
    entry_type: str | None,
) -> dict[int, list[LedgerEntryRow]]:
    """Newest-first entries of many wallets at once: for each (wallet_id, before_sequence),
    at most `limit` entries with a smaller sequence.

    Each wallet's page is read from its (wallet_id, sequence) index and stops after `limit`
    rows: LATERAL on PostgreSQL, a UNION ALL of per-wallet subqueries on SQLite (which has no
    LATERAL). A window function would read every entry of every wallet instead.
    """
    if not pages:
        return {}
    found: dict[int, list[LedgerEntryRow]] = defaultdict(list)
    if connection.dialect == "postgresql":
        params: dict[str, object] = {
            "wallet_ids": [w for w, _ in pages],
            "befores": [NO_CURSOR if b is None else b for _, b in pages],
            "organization_id": organization_id,
            "limit": limit,
        }
        if entry_type is not None:
            params["entry_type"] = entry_type
        for row in await connection.rows(ENTRY_PAGES[entry_type is not None], params):
            found[row[_WALLET_ID]].append(row)
    else:  # SQLite allows 500 terms in a compound SELECT
        for i in range(0, len(pages), SQLITE_UNION_TERMS):
            query = _pages_union(
                organization_id, pages[i : i + SQLITE_UNION_TERMS], limit, entry_type
            )
            for row in await connection.rows(Prebuilt(query), {}):
                found[row[_WALLET_ID]].append(row)
    for rows in found.values():
        rows.sort(key=_SEQUENCE, reverse=True)
    return found


def _pages_union(
    organization_id: int,
    pages: Sequence[tuple[int, int | None]],
    limit: int,
    entry_type: str | None,
) -> Select[Any]:
    parts = []
    for wallet_id, before in pages:
        part = select(*_entries.c).where(
            _entries.c.wallet_id == wallet_id,
            _entries.c.sequence < (NO_CURSOR if before is None else before),
            _entries.c.organization_id == organization_id,
        )
        if entry_type is not None:
            part = part.where(_entries.c.entry_type == entry_type)
        parts.append(part.order_by(_entries.c.sequence.desc()).limit(limit).subquery().select())
    union = union_all(*parts).subquery("pages")
    return select(*union.c)


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
