"""The checkout domain's queries: sessions (confined to an organization, except the lookups
by the provider's id that webhooks and the hosted page make), the webhook inbox, and the
secrets the gateway generated for itself."""

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from billgraph.core.unit import UnitOfWork
from billgraph.db.models import (
    CheckoutSession,
    GeneratedSecret,
    ProviderCustomer,
    Refund,
    WebhookEvent,
)
from billgraph.db.queries import by_ids


def _insert(unit: UnitOfWork, model: type[Any]) -> Any:
    """INSERT ... ON CONFLICT DO NOTHING in the unit's dialect (both speak it)."""
    return (sqlite.insert if unit.is_sqlite else postgresql.insert)(model)


async def session_by_key(
    session: AsyncSession, organization_id: int, idempotency_key: str
) -> CheckoutSession | None:
    return await session.scalar(
        select(CheckoutSession).where(
            CheckoutSession.organization_id == organization_id,
            CheckoutSession.idempotency_key == idempotency_key,
        )
    )


async def sessions_by_ids(
    session: AsyncSession, organization_id: int, ids: Sequence[int]
) -> dict[int, CheckoutSession]:
    return await by_ids(session, CheckoutSession, organization_id, ids)


async def session_by_id(
    session: AsyncSession, organization_id: int, session_id: int, *, lock: bool = False
) -> CheckoutSession | None:
    query = select(CheckoutSession).where(
        CheckoutSession.organization_id == organization_id, CheckoutSession.id == session_id
    )
    return await session.scalar(query.with_for_update() if lock else query)


async def session_by_provider_id(
    session: AsyncSession, provider: str, provider_session_id: str, *, lock: bool = False
) -> CheckoutSession | None:
    """Any organization's session: the provider's id is what its events and pages carry."""
    query = select(CheckoutSession).where(
        CheckoutSession.provider == provider,
        CheckoutSession.provider_session_id == provider_session_id,
    )
    return await session.scalar(query.with_for_update() if lock else query)


async def customer_sessions_pages(
    session: AsyncSession,
    organization_id: int,
    pages: Sequence[tuple[int, int | None]],
    *,
    limit: int,
    status: str | None,
    now: datetime,
) -> dict[int, list[CheckoutSession]]:
    """Newest-first sessions of many customers in one statement: for each (customer_id,
    before_id), at most `limit` sessions with a smaller id. `status` is the one the graph
    shows: an OPEN session past its expiry is EXPIRED.

    A window function over the customers' sessions: a customer has few checkout sessions
    (unlike a wallet's ledger, which pages through its index instead).
    """
    if not pages:
        return {}
    lapsed = and_(CheckoutSession.status == "OPEN", CheckoutSession.expires_at <= now)
    conditions = [
        and_(CheckoutSession.customer_id == customer_id, CheckoutSession.id < before_id)
        if before_id is not None
        else CheckoutSession.customer_id == customer_id
        for customer_id, before_id in pages
    ]
    ranked = select(
        CheckoutSession.id,
        func.row_number()
        .over(partition_by=CheckoutSession.customer_id, order_by=CheckoutSession.id.desc())
        .label("position"),
    ).where(CheckoutSession.organization_id == organization_id, or_(*conditions))
    if status == "OPEN":
        ranked = ranked.where(CheckoutSession.status == status, CheckoutSession.expires_at > now)
    elif status == "EXPIRED":
        ranked = ranked.where(or_(CheckoutSession.status == status, lapsed))
    elif status is not None:
        ranked = ranked.where(CheckoutSession.status == status)
    window = ranked.subquery()
    rows = await session.scalars(
        select(CheckoutSession)
        .join(window, window.c.id == CheckoutSession.id)
        .where(window.c.position <= limit)
        .order_by(CheckoutSession.customer_id, CheckoutSession.id.desc())
    )
    found: dict[int, list[CheckoutSession]] = defaultdict(list)
    for row in rows:
        found[row.customer_id].append(row)
    return found


async def insert_session(unit: UnitOfWork, values: dict[str, object]) -> int | None:
    """The new session's id; None if the organization's idempotency key was taken meanwhile."""
    statement = (
        _insert(unit, CheckoutSession)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["organization_id", "idempotency_key"])
        .returning(CheckoutSession.id)
    )
    return await unit.session.scalar(statement)  # type: ignore[no-any-return]


async def record_event(
    unit: UnitOfWork,
    *,
    provider: str,
    provider_event_id: str,
    event_type: str,
    outcome: str,
    checkout_session_id: int | None,
) -> bool:
    """Put the processed event in the inbox; False if it is there already (a duplicate). A
    concurrent delivery of the same event waits here until the first one's transaction ends."""
    statement = (
        _insert(unit, WebhookEvent)
        .values(
            provider=provider,
            provider_event_id=provider_event_id,
            event_type=event_type,
            outcome=outcome,
            checkout_session_id=checkout_session_id,
        )
        .on_conflict_do_nothing(index_elements=["provider", "provider_event_id"])
        .returning(WebhookEvent.id)
    )
    return await unit.session.scalar(statement) is not None


async def ensure_secret(unit: UnitOfWork, name: str, candidate: str) -> str:
    """The stored secret `name`; `candidate` becomes it if none is stored yet (the first
    replica to store one wins, the others read it)."""
    await unit.session.execute(
        _insert(unit, GeneratedSecret)
        .values(name=name, value=candidate)
        .on_conflict_do_nothing(index_elements=["name"])
    )
    value = await unit.session.scalar(
        select(GeneratedSecret.value).where(GeneratedSecret.name == name)
    )
    assert value is not None
    return value


async def provider_customer_id(
    session: AsyncSession, customer_id: int, provider: str
) -> str | None:
    return await session.scalar(
        select(ProviderCustomer.provider_customer_id).where(
            ProviderCustomer.customer_id == customer_id, ProviderCustomer.provider == provider
        )
    )


async def insert_provider_customer(
    unit: UnitOfWork, *, organization_id: int, customer_id: int, provider: str, provider_id: str
) -> None:
    """Store the customer's id at the provider, unless a racing request stored one first."""
    await unit.session.execute(
        _insert(unit, ProviderCustomer)
        .values(
            organization_id=organization_id,
            customer_id=customer_id,
            provider=provider,
            provider_customer_id=provider_id,
        )
        .on_conflict_do_nothing(index_elements=["customer_id", "provider"])
    )


async def provider_customers(
    session: AsyncSession, organization_id: int, customer_ids: Sequence[int]
) -> dict[int, list[ProviderCustomer]]:
    rows = await session.scalars(
        select(ProviderCustomer)
        .where(
            ProviderCustomer.organization_id == organization_id,
            ProviderCustomer.customer_id.in_(customer_ids),
        )
        .order_by(ProviderCustomer.customer_id, ProviderCustomer.provider)
    )
    found: dict[int, list[ProviderCustomer]] = defaultdict(list)
    for row in rows:
        found[row.customer_id].append(row)
    return found


async def session_by_payment_id(
    session: AsyncSession, provider: str, provider_payment_id: str, *, lock: bool = False
) -> CheckoutSession | None:
    """Any organization's session, by the provider's id of its payment (a refund's event)."""
    query = select(CheckoutSession).where(
        CheckoutSession.provider == provider,
        CheckoutSession.provider_payment_id == provider_payment_id,
    )
    return await session.scalar(query.with_for_update() if lock else query)


async def refund_by_key(
    session: AsyncSession, organization_id: int, idempotency_key: str, *, lock: bool = False
) -> Refund | None:
    query = select(Refund).where(
        Refund.organization_id == organization_id, Refund.idempotency_key == idempotency_key
    )
    return await session.scalar(query.with_for_update() if lock else query)


async def refunded_amount(
    session: AsyncSession, checkout_session_id: int, *, status: str | None = None
) -> int:
    """What the session's refunds give back or may still: a PENDING refund counts, a FAILED
    one does not (`status`: only those)."""
    condition = Refund.status == status if status else Refund.status != "FAILED"
    total = await session.scalar(
        select(func.coalesce(func.sum(Refund.amount), 0)).where(
            Refund.checkout_session_id == checkout_session_id, condition
        )
    )
    return int(total or 0)


async def pending_refunds(session: AsyncSession, checkout_session_id: int) -> list[Refund]:
    """The session's PENDING refunds, oldest first, locked."""
    rows = await session.scalars(
        select(Refund)
        .where(Refund.checkout_session_id == checkout_session_id, Refund.status == "PENDING")
        .order_by(Refund.id)
        .with_for_update()
    )
    return list(rows)


async def refunds_by_session_ids(
    session: AsyncSession, organization_id: int, ids: Sequence[int]
) -> dict[int, list[Refund]]:
    rows = await session.scalars(
        select(Refund)
        .where(Refund.organization_id == organization_id, Refund.checkout_session_id.in_(ids))
        .order_by(Refund.checkout_session_id, Refund.id)
    )
    found: dict[int, list[Refund]] = defaultdict(list)
    for row in rows:
        found[row.checkout_session_id].append(row)
    return found


async def refunds_by_ids(
    session: AsyncSession, organization_id: int, ids: Sequence[int]
) -> dict[int, Refund]:
    return await by_ids(session, Refund, organization_id, ids)
