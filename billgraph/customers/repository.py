"""The customers' queries. Every read is confined to one organization and skips deleted
customers; the batched ones are one SQL statement whatever the number of keys."""

from collections.abc import Sequence

from sqlalchemy import Select, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from billgraph.db.models import Customer


def _live_customers(organization_id: int) -> Select[Customer]:
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


async def live_customer(
    session: AsyncSession, organization_id: int, customer_id: int
) -> Customer | None:
    return await session.scalar(_live_customers(organization_id).where(Customer.id == customer_id))


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
