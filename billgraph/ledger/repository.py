"""The ledger's reads: entries by id, newest-first pages of many wallets at once (alone, or
with their wallets), and what a posting that matched no row needs to find out why. Confined to
one organization."""

from collections import defaultdict
from collections.abc import Sequence
from operator import itemgetter
from typing import Any, cast

from sqlalchemy import (
    LABEL_STYLE_TABLENAME_PLUS_COL,
    BigInteger,
    Integer,
    Row,
    Select,
    Table,
    and_,
    bindparam,
    case,
    func,
    literal_column,
    select,
    true,
    union_all,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.selectable import LateralFromClause

from billgraph.customers import repository as customers
from billgraph.customers.repository import CustomerRow
from billgraph.db.models import Customer, LedgerEntry, Wallet
from billgraph.db.plain import PlainConnection, Prebuilt, named_rows
from billgraph.wallets import repository as wallets
from billgraph.wallets.repository import WalletRow

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


def _newest(
    wallet_id: Any, before: Any, *, by_type: bool, limit: str = "limit"
) -> LateralFromClause:
    """A LATERAL page: the newest entries of `wallet_id` below `before` (of the type
    `entry_type` if `by_type`), as many as the parameter `limit` says, read from the
    (wallet_id, sequence) index."""
    page = select(*_entries.c).where(
        _entries.c.wallet_id == wallet_id,
        _entries.c.sequence < before,
        _entries.c.organization_id == bindparam("organization_id"),
    )
    if by_type:
        page = page.where(_entries.c.entry_type == bindparam("entry_type"))
    return (
        page.order_by(_entries.c.sequence.desc())
        .limit(bindparam(limit, type_=Integer()))
        .lateral("page")
    )


def _pages_lateral(*, by_type: bool) -> Select[Any]:
    """PostgreSQL's pages: each (wallet, before) of the arrays, its `limit` newest entries."""
    keys = select(
        func.unnest(bindparam("wallet_ids", type_=ARRAY(BigInteger))).label("wallet_id"),
        func.unnest(bindparam("befores", type_=ARRAY(BigInteger))).label("before"),
    ).subquery("keys")
    lateral = _newest(keys.c.wallet_id, keys.c.before, by_type=by_type)
    return select(*lateral.c).select_from(keys).join(lateral, true())


# Filtered by entry type or not -> the statement (PostgreSQL's; SQLite's is built per call).
ENTRY_PAGES = {by_type: Prebuilt(_pages_lateral(by_type=by_type)) for by_type in (False, True)}

# A row of WALLETS_WITH_PAGES: an entry's columns (all null for a wallet without any), then
# its wallet's.
_ENTRY_COLUMNS = len(_entries.c)
_WALLET_COLUMNS = len(_wallets.c)
_CUSTOMER_AT = _ENTRY_COLUMNS + _WALLET_COLUMNS  # where a row's customer columns start


def _wallets_with_pages(*, by_customer: bool, by_type: bool) -> Select[Any]:
    """PostgreSQL's wallets by id (or by customer id) with a page of each one's entries: the
    wallet read and its entries in one statement. A wallet without entries in the page is one
    row of null entry columns."""
    before = bindparam("before", type_=BigInteger())
    lateral = _newest(_wallets.c.id, before, by_type=by_type)
    key = _wallets.c.customer_id if by_customer else _wallets.c.id
    return (
        select(*lateral.c, *_wallets.c)
        .select_from(
            _wallets.join(_customers, _customers.c.id == _wallets.c.customer_id).outerjoin(
                lateral, true()
            )
        )
        .where(
            _wallets.c.organization_id == bindparam("organization_id"),
            _customers.c.deleted_at.is_(None),
            key.in_(bindparam("ids", expanding=True)),
        )
        .order_by(_wallets.c.customer_id, _wallets.c.id, lateral.c.sequence.desc())
    )


# (by customer id, filtered by entry type) -> the statement.
WALLETS_WITH_PAGES = {
    (by_customer, by_type): Prebuilt(_wallets_with_pages(by_customer=by_customer, by_type=by_type))
    for by_customer in (False, True)
    for by_type in (False, True)
}


def _customers_with_pages(*, after: bool, email: bool, by_type: bool) -> Select[Any]:
    """PostgreSQL's page of customers (customers.page_select) with their wallets, each with
    a page of its entries (`entries` of them): the three reads of a customers page in one
    statement. The page's extra customer, read only to tell that a next page exists, comes
    without wallets; a customer without wallets is one row of null wallet and entry columns,
    a wallet without entries one of null entry columns."""
    listed = customers.page_select(after=after, email=email).subquery("listed")
    numbered = select(
        *listed.c, func.row_number().over(order_by=listed.c.id).label("position")
    ).subquery("numbered")
    # Each customer's wallets by the (customer_id, currency) index, however few wallets the
    # organization has: as a join, the planner hashed every wallet of the organization (1,000
    # in the benchmark) for a page of ten customers. OFFSET 0 keeps it from flattening this
    # LATERAL back into that join.
    owned = (
        select(*_wallets.c)
        .where(
            _wallets.c.customer_id == numbered.c.id,
            _wallets.c.organization_id == bindparam("organization_id"),
            numbered.c.position < bindparam("limit", type_=Integer()),
        )
        .offset(literal_column("0"))
        .lateral("owned")
    )
    before = bindparam("before", type_=BigInteger())
    lateral = _newest(owned.c.id, before, by_type=by_type, limit="entries")
    # A customer's columns come on its first row only, and a wallet's on its first row: the
    # rows after carry their ids alone (nulls are free to decode). Decoding the repeats
    # cost the gateway about as much as the rest of the page's rows.
    newest = lateral.c.sequence.desc()
    paged = (
        select(
            *lateral.c,
            *owned.c,
            *(numbered.c[column.key] for column in _customers.c),
            func.row_number()
            .over(partition_by=numbered.c.id, order_by=(owned.c.id, newest))
            .label("customer_row"),
            func.row_number()
            .over(partition_by=(numbered.c.id, owned.c.id), order_by=newest)
            .label("wallet_row"),
        )
        .select_from(numbered.outerjoin(owned, true()).outerjoin(lateral, true()))
        .set_label_style(LABEL_STYLE_TABLENAME_PLUS_COL)
        .subquery("paged")
    )
    columns = list(paged.c)
    entry, wallet = columns[:_ENTRY_COLUMNS], columns[_ENTRY_COLUMNS:_CUSTOMER_AT]
    customer = columns[_CUSTOMER_AT : _CUSTOMER_AT + len(_customers.c)]
    return select(
        *entry,
        *(_once(c, k, paged.c.wallet_row) for c, k in zip(wallet, _wallets.c.keys(), strict=True)),
        *(
            _once(c, k, paged.c.customer_row)
            for c, k in zip(customer, _customers.c.keys(), strict=True)
        ),
    ).order_by(paged.c.numbered_id, paged.c.owned_id, paged.c.page_sequence.desc())


def _once(column: Any, key: str, row: Any) -> Any:
    """`column` on the first row of its customer or wallet (`row` 1), null on the others;
    an id on every row."""
    if key == "id":
        return column
    return case((row == literal_column("1"), column)).label(key)


# (after a cursor, filtered by email, entries filtered by type) -> the statement.
CUSTOMERS_WITH_PAGES = {
    (a, e, t): Prebuilt(_customers_with_pages(after=a, email=e, by_type=t))
    for a in (False, True)
    for e in (False, True)
    for t in (False, True)
}
_customer_row = named_rows(_customers)
_wallet_row = named_rows(_wallets)

PagedWallets = list[tuple[WalletRow, list[LedgerEntryRow]]]


async def customers_with_pages(
    connection: PlainConnection,
    organization_id: int,
    *,
    limit: int,
    after_id: int | None,
    email: str | None,
    before: int | None,
    entries: int,
    entry_type: str | None,
) -> list[tuple[CustomerRow, PagedWallets]]:
    """A page of customers (customers.customers_page: `limit` rows at most, the last one of
    them read only to tell that a next page exists, and without wallets), each with its live
    wallets, oldest first, each with at most `entries` of its entries below `before`, newest
    first. One statement on PostgreSQL; on SQLite (no LATERAL) the customers, then the
    wallets and their pages (wallets_with_pages).

    The customers and wallets are read by position and by name; the entries by position."""
    if connection.dialect != "postgresql":
        rows = await customers.customers_page(
            connection, organization_id, limit=limit, after_id=after_id, email=email
        )
        grouped: dict[int, PagedWallets] = defaultdict(list)
        for wallet, page in await wallets_with_pages(
            connection,
            organization_id,
            [row[0] for row in rows[: limit - 1]],
            by_customer=True,
            before=before,
            limit=entries,
            entry_type=entry_type,
        ):
            grouped[wallet[2]].append((wallet, page))
        return [(row, grouped.get(row[0], [])) for row in rows]
    params = customers.page_params(organization_id, limit=limit, after_id=after_id, email=email)
    params["before"] = NO_CURSOR if before is None else before
    params["entries"] = entries
    if entry_type is not None:
        params["entry_type"] = entry_type
    statement = CUSTOMERS_WITH_PAGES[
        after_id is not None, email is not None, entry_type is not None
    ]
    found: list[tuple[CustomerRow, PagedWallets]] = []
    for row in await connection.rows(statement, params):
        if not found or found[-1][0][0] != row[_CUSTOMER_AT]:
            found.append((_customer_row(row[_CUSTOMER_AT:]), []))
        _add_paged(found[-1][1], row, _CUSTOMER_AT)
    return found


def _add_paged(paged: PagedWallets, row: Any, end: int) -> None:
    """A row's wallet (its columns from _ENTRY_COLUMNS to `end`; none if they are null) and
    entry (the first columns; none if null) added to `paged`, the rows coming in wallet
    order, each wallet's entries newest first."""
    wallet_id = row[_ENTRY_COLUMNS]
    if wallet_id is None:
        return
    if not paged or paged[-1][0][0] != wallet_id:
        paged.append((_wallet_row(row[_ENTRY_COLUMNS:end]), []))
    if row[0] is not None:
        paged[-1][1].append(row[:_ENTRY_COLUMNS])


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


async def wallets_with_pages(
    connection: PlainConnection,
    organization_id: int,
    ids: Sequence[int],
    *,
    by_customer: bool,
    before: int | None,
    limit: int,
    entry_type: str | None,
) -> PagedWallets:
    """The live wallets of `ids` (wallet ids, or customer ids `by_customer`), ordered by
    customer then wallet, each with at most `limit` of its entries below `before`, newest
    first. One statement on PostgreSQL; on SQLite (no LATERAL) the wallets, then their pages.

    The wallets are read by position and by name; the entries by position (on PostgreSQL an
    entry's row came with its wallet's columns after its own)."""
    if not ids:
        return []
    if connection.dialect != "postgresql":
        if by_customer:
            grouped = await wallets.wallet_rows_by_customer_ids(connection, organization_id, ids)
            rows = [w for customer_id in sorted(grouped) for w in grouped[customer_id]]
        else:
            by_id = await wallets.wallet_rows_by_ids(connection, organization_id, ids)
            rows = sorted(by_id.values(), key=lambda w: (w.customer_id, w.id))
        pages = await entries_pages(
            connection,
            organization_id,
            [(w[0], before) for w in rows],
            limit=limit,
            entry_type=entry_type,
        )
        return [(w, pages.get(w[0], [])) for w in rows]
    params: dict[str, object] = {
        "ids": ids,
        "before": NO_CURSOR if before is None else before,
        "organization_id": organization_id,
        "limit": limit,
    }
    if entry_type is not None:
        params["entry_type"] = entry_type
    found: PagedWallets = []
    for row in await connection.rows(
        WALLETS_WITH_PAGES[by_customer, entry_type is not None], params
    ):
        _add_paged(found, row, len(row))
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
