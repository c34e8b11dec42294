"""The customers' queries. Every read is confined to one organization and skips deleted
customers; the batched ones are one SQL statement whatever the number of keys."""

from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Integer, Row, Select, Table, bindparam, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from billgraph.db.models import Customer
from billgraph.db.plain import PlainConnection, Prebuilt

CustomerRow = Row[*tuple[Any, ...]]
"""A customers row as the loaders read it (billgraph.db.plain): the columns by position or name."""

_customers = cast(Table, Customer.__table__)

# Built once (they run on most requests): a plain row per customer, no ORM object.
_LIVE_CUSTOMERS = select(*_customers.c).where(
    _customers.c.organization_id == bindparam("organization_id"),
    _customers.c.deleted_at.is_(None),
)
CUSTOMERS_BY_IDS = Prebuilt(
    _LIVE_CUSTOMERS.where(_customers.c.id.in_(bindparam("ids", expanding=True)))
)


def page_select(*, after: bool, email: bool) -> Select[Any]:
    """A page of live customers in creation order: after `after_id`, of `email`, `limit`."""
    query = _LIVE_CUSTOMERS
    if after:
        query = query.where(_customers.c.id > bindparam("after_id"))
    if email:
        query = query.where(_customers.c.email_normalized == bindparam("email"))
    return query.order_by(_customers.c.id).limit(bindparam("limit", type_=Integer()))


# (after a cursor, filtered by email) -> the page's statement
CUSTOMER_PAGES = {
    (a, e): Prebuilt(page_select(after=a, email=e)) for a in (False, True) for e in (False, True)
}


def _live_customers(organization_id: int) -> Select[Customer]:
    return select(Customer).where(
        Customer.organization_id == organization_id, Customer.deleted_at.is_(None)
    )


async def customer_rows_by_ids(
    connection: PlainConnection, organization_id: int, ids: Sequence[int]
) -> dict[int, CustomerRow]:
    rows = await connection.rows(CUSTOMERS_BY_IDS, {"organization_id": organization_id, "ids": ids})
    return {row[0]: row for row in rows}


async def customers_page(
    connection: PlainConnection,
    organization_id: int,
    *,
    limit: int,
    after_id: int | None,
    email: str | None,
) -> list[CustomerRow]:
    """Customers in creation order after `after_id`; `limit` rows at most."""
    statement = CUSTOMER_PAGES[(after_id is not None, email is not None)]
    params = page_params(organization_id, limit=limit, after_id=after_id, email=email)
    return list(await connection.rows(statement, params))


def page_params(
    organization_id: int, *, limit: int, after_id: int | None, email: str | None
) -> dict[str, object]:
    """The parameters of page_select's statement."""
    params: dict[str, object] = {"organization_id": organization_id, "limit": limit}
    if after_id is not None:
        params["after_id"] = after_id
    if email is not None:
        params["email"] = email.strip().lower()
    return params


async def live_customer(
    session: AsyncSession, organization_id: int, customer_id: int, *, lock: bool = False
) -> Customer | None:
    statement = _live_customers(organization_id).where(Customer.id == customer_id)
    return await session.scalar(statement.with_for_update() if lock else statement)


async def holders_of(
    session: AsyncSession,
    organization_id: int,
    *,
    email: str | None,
    external_id: str | None,
    exclude_id: int | None,
) -> list[Customer]:
    """Customers of the organization (deleted ones included: their values are erased) that
    hold this normalized email or this external id."""
    conditions = []
    if email is not None:
        conditions.append(Customer.email_normalized == email)
    if external_id is not None:
        conditions.append(Customer.external_id == external_id)
    if not conditions:
        return []
    query = select(Customer).where(Customer.organization_id == organization_id, or_(*conditions))
    if exclude_id is not None:
        query = query.where(Customer.id != exclude_id)
    return list(await session.scalars(query))
