"""Billing's queries, confined to one organization (except the billing run's, which picks
due subscriptions of every organization)."""

from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Select, and_, delete, func, literal, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from billgraph.adapters.base import Provider
from billgraph.billing import announcements
from billgraph.core.unit import UnitOfWork
from billgraph.db.models import (
    CustomerTestClock,
    Invoice,
    InvoiceAttempt,
    InvoiceCounter,
    InvoiceLine,
    PaymentMethod,
    Plan,
    Subscription,
    SubscriptionEvent,
    TestClock,
    UTCDateTime,
)
from billgraph.db.queries import by_ids

_Query = TypeVar("_Query", bound=Select[Any])


def _locked(query: _Query, lock: bool) -> _Query:
    """`query` FOR UPDATE (its rows refreshed from the database even if the session holds
    them: what was read before the lock may be stale), or as it is."""
    if not lock:
        return query
    return query.with_for_update().execution_options(populate_existing=True)


def _insert(unit: UnitOfWork, model: type[Any]) -> Any:
    """INSERT ... ON CONFLICT DO NOTHING in the unit's dialect (both speak it)."""
    return (sqlite.insert if unit.is_sqlite else postgresql.insert)(model)


# --- plans and clocks ---------------------------------------------------------------------


async def plan_by_id(session: AsyncSession, organization_id: int, plan_id: int) -> Plan | None:
    return await session.scalar(
        select(Plan).where(Plan.organization_id == organization_id, Plan.id == plan_id)
    )


async def plans_page(
    session: AsyncSession,
    organization_id: int,
    *,
    limit: int,
    after_id: int | None = None,
    active: bool | None = None,
) -> list[Plan]:
    """Plans in creation order after `after_id`."""
    query = select(Plan).where(Plan.organization_id == organization_id)
    if after_id is not None:
        query = query.where(Plan.id > after_id)
    if active is not None:
        query = query.where(Plan.active.is_(active))
    return list(await session.scalars(query.order_by(Plan.id).limit(limit)))


async def clock_by_id(
    session: AsyncSession, organization_id: int, clock_id: int, *, lock: bool = False
) -> TestClock | None:
    query = select(TestClock).where(
        TestClock.organization_id == organization_id, TestClock.id == clock_id
    )
    return await session.scalar(_locked(query, lock))


async def attach_clock(
    unit: UnitOfWork, organization_id: int, customer_id: int, clock_id: int
) -> bool:
    """Put the customer on the clock; False if it lives on one already."""
    inserted = await unit.session.scalar(
        _insert(unit, CustomerTestClock)
        .values(organization_id=organization_id, customer_id=customer_id, test_clock_id=clock_id)
        .on_conflict_do_nothing(index_elements=["customer_id"])
        .returning(CustomerTestClock.customer_id)
    )
    return inserted is not None


# --- payment methods ----------------------------------------------------------------------


async def payment_method_by_id(
    session: AsyncSession, organization_id: int, payment_method_id: int
) -> PaymentMethod | None:
    return await session.scalar(
        select(PaymentMethod).where(
            PaymentMethod.organization_id == organization_id,
            PaymentMethod.id == payment_method_id,
        )
    )


# --- subscriptions ------------------------------------------------------------------------


async def subscription_by_id(
    session: AsyncSession, organization_id: int, subscription_id: int, *, lock: bool = False
) -> Subscription | None:
    query = select(Subscription).where(
        Subscription.organization_id == organization_id, Subscription.id == subscription_id
    )
    return await session.scalar(_locked(query, lock))


async def subscription_by_key(
    session: AsyncSession, organization_id: int, idempotency_key: str
) -> Subscription | None:
    return await session.scalar(
        select(Subscription).where(
            Subscription.organization_id == organization_id,
            Subscription.idempotency_key == idempotency_key,
        )
    )


async def customer_has_subscriptions(session: AsyncSession, customer_id: int) -> bool:
    found = await session.scalar(
        select(Subscription.id).where(Subscription.customer_id == customer_id).limit(1)
    )
    return found is not None


async def insert_subscription(unit: UnitOfWork, values: dict[str, object]) -> int | None:
    """The new subscription's id; None if the organization's key was taken meanwhile.
    Announced (a status change from none) once the unit commits."""
    statement = (
        _insert(unit, Subscription)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["organization_id", "idempotency_key"])
        .returning(Subscription.id)
    )
    new_id: int | None = await unit.session.scalar(statement)
    if new_id is not None:
        announcements.subscription_inserted(unit, new_id, values)
    return new_id


def _due(now: datetime, test_clock_id: int | None, *, sqlite: bool) -> list[Any]:
    """Subscriptions whose next action has come: by their clock's time, or by `now`. Never
    one Stripe runs (it bills them itself; billgraph only mirrors them)."""
    moment = literal(now, UTCDateTime())
    clock_time = (
        select(TestClock.frozen_time)
        .where(TestClock.id == Subscription.test_clock_id)
        .scalar_subquery()
    )
    conditions: list[Any] = [
        Subscription.next_action_at.is_not(None),
        Subscription.next_action_at <= func.coalesce(clock_time, moment),
        Subscription.provider != Provider.STRIPE.value,
    ]
    if not sqlite:
        # The same bound as an index condition (nothing is due after the latest of `now` and
        # every clock's time): without it the scan filters every subscription not yet due.
        latest_clock = select(func.max(TestClock.frozen_time)).scalar_subquery()
        conditions.append(Subscription.next_action_at <= func.greatest(moment, latest_clock))
    if test_clock_id is not None:
        conditions.append(Subscription.test_clock_id == test_clock_id)
    return conditions


async def lock_due_subscription(
    unit: UnitOfWork, now: datetime, *, skip: Sequence[int], test_clock_id: int | None = None
) -> Subscription | None:
    """The next due subscription, locked until the unit ends. On PostgreSQL a row another
    run holds is skipped (FOR UPDATE SKIP LOCKED), so concurrent runs share the work; on
    SQLite the unit's writer lock serializes runs."""
    # By next_action_at alone, as ix_subscriptions_next_action_at is: the scan stops at the
    # first due row. Ordering ties by id as well would sort every subscription due at the
    # same instant, once per subscription billed (ties follow the index: rowid on SQLite,
    # insertion order on PostgreSQL).
    query = (
        select(Subscription)
        .where(*_due(now, test_clock_id, sqlite=unit.is_sqlite))
        .order_by(Subscription.next_action_at)
        .limit(1)
    )
    if skip:
        query = query.where(Subscription.id.not_in(skip))
    if not unit.is_sqlite:
        query = query.with_for_update(skip_locked=True)
    return await unit.session.scalar(query)


async def subscriptions_page(
    session: AsyncSession,
    organization_id: int,
    customer_id: int,
    *,
    limit: int,
    before_id: int | None = None,
    status: str | None = None,
) -> list[Subscription]:
    """A customer's subscriptions, newest first."""
    query = select(Subscription).where(
        Subscription.organization_id == organization_id, Subscription.customer_id == customer_id
    )
    if before_id is not None:
        query = query.where(Subscription.id < before_id)
    if status is not None:
        query = query.where(Subscription.status == status)
    return list(await session.scalars(query.order_by(Subscription.id.desc()).limit(limit)))


# --- invoices -----------------------------------------------------------------------------


async def next_invoice_number(unit: UnitOfWork, organization_id: int) -> int:
    """The organization's next invoice number. The counter row stays locked until the unit
    ends, so numbers are allocated one transaction at a time and a rollback gives it back."""
    await unit.session.execute(
        _insert(unit, InvoiceCounter)
        .values(organization_id=organization_id, last_number=0)
        .on_conflict_do_nothing(index_elements=["organization_id"])
    )
    number = await unit.session.scalar(
        update(InvoiceCounter)
        .where(InvoiceCounter.organization_id == organization_id)
        .values(last_number=InvoiceCounter.last_number + 1)
        .returning(InvoiceCounter.last_number)
    )
    assert number is not None
    return int(number)


async def invoice_by_id(
    session: AsyncSession, organization_id: int, invoice_id: int, *, lock: bool = False
) -> Invoice | None:
    query = select(Invoice).where(
        Invoice.organization_id == organization_id, Invoice.id == invoice_id
    )
    return await session.scalar(_locked(query, lock))


async def invoice_by_hosted_token(session: AsyncSession, token: str) -> Invoice | None:
    """Any organization's invoice, by the secret of its hosted page's address."""
    return await session.scalar(select(Invoice).where(Invoice.hosted_token == token))


async def invoice_for_period(
    session: AsyncSession, subscription_id: int, period_start: datetime
) -> Invoice | None:
    return await session.scalar(
        select(Invoice).where(
            Invoice.subscription_id == subscription_id, Invoice.period_start == period_start
        )
    )


async def open_invoices(
    session: AsyncSession, subscription_id: int, *, lock: bool = False
) -> list[Invoice]:
    """The subscription's OPEN invoices, oldest first."""
    query = (
        select(Invoice)
        .where(Invoice.subscription_id == subscription_id, Invoice.status == "OPEN")
        .order_by(Invoice.id)
    )
    return list(await session.scalars(_locked(query, lock)))


async def invoices_page(
    session: AsyncSession,
    organization_id: int,
    *,
    limit: int,
    customer_id: int | None = None,
    subscription_id: int | None = None,
    before_id: int | None = None,
    status: str | None = None,
) -> list[Invoice]:
    """Invoices of a customer or a subscription, newest first."""
    query = select(Invoice).where(Invoice.organization_id == organization_id)
    if customer_id is not None:
        query = query.where(Invoice.customer_id == customer_id)
    if subscription_id is not None:
        query = query.where(Invoice.subscription_id == subscription_id)
    if before_id is not None:
        query = query.where(Invoice.id < before_id)
    if status is not None:
        query = query.where(Invoice.status == status)
    return list(await session.scalars(query.order_by(Invoice.id.desc()).limit(limit)))


async def invoice_lines(session: AsyncSession, invoice_ids: Sequence[int]) -> list[InvoiceLine]:
    return list(
        await session.scalars(
            select(InvoiceLine)
            .where(InvoiceLine.invoice_id.in_(invoice_ids))
            .order_by(InvoiceLine.invoice_id, InvoiceLine.id)
        )
    )


async def attempts(session: AsyncSession, invoice_id: int) -> list[InvoiceAttempt]:
    return list(
        await session.scalars(
            select(InvoiceAttempt)
            .where(InvoiceAttempt.invoice_id == invoice_id)
            .order_by(InvoiceAttempt.number)
        )
    )


async def open_invoices_and_pending(
    session: AsyncSession, subscription_id: int
) -> tuple[list[Invoice], datetime | None]:
    """The subscription's OPEN invoices, oldest first, and when the PENDING attempt of the
    newest of them that has one was created (None: no attempt is pending), in one query."""
    rows = await session.execute(
        select(Invoice, InvoiceAttempt.created_at)
        .outerjoin(
            InvoiceAttempt,
            and_(InvoiceAttempt.invoice_id == Invoice.id, InvoiceAttempt.outcome == "PENDING"),
        )
        .where(Invoice.subscription_id == subscription_id, Invoice.status == "OPEN")
        .order_by(Invoice.id)
    )
    found: dict[int, Invoice] = {}
    pending_at = None
    for invoice, created_at in rows:
        found.setdefault(invoice.id, invoice)
        if created_at is not None:
            pending_at = created_at
    return list(found.values()), pending_at


async def attempt_to_charge(
    session: AsyncSession, attempt_id: int
) -> tuple[InvoiceAttempt, Invoice, Subscription, PaymentMethod | None] | None:
    """A PENDING attempt with its invoice, subscription and the subscription's payment method
    (None if it has none), in one query; None if the attempt is unknown or settled."""
    row = (
        await session.execute(
            select(InvoiceAttempt, Invoice, Subscription, PaymentMethod)
            .join(Invoice, Invoice.id == InvoiceAttempt.invoice_id)
            .join(Subscription, Subscription.id == Invoice.subscription_id)
            .outerjoin(
                PaymentMethod,
                and_(
                    PaymentMethod.id == Subscription.payment_method_id,
                    PaymentMethod.organization_id == Subscription.organization_id,
                ),
            )
            .where(InvoiceAttempt.id == attempt_id, InvoiceAttempt.outcome == "PENDING")
        )
    ).first()
    return None if row is None else (row[0], row[1], row[2], row[3])


async def pending_attempt(
    session: AsyncSession, invoice_id: int, *, lock: bool = False
) -> InvoiceAttempt | None:
    query = select(InvoiceAttempt).where(
        InvoiceAttempt.invoice_id == invoice_id, InvoiceAttempt.outcome == "PENDING"
    )
    return await session.scalar(_locked(query, lock))


# --- events -------------------------------------------------------------------------------


async def events_page(
    session: AsyncSession,
    organization_id: int,
    subscription_id: int,
    *,
    limit: int,
    before_id: int | None = None,
) -> list[SubscriptionEvent]:
    """A subscription's events, newest first."""
    query = select(SubscriptionEvent).where(
        SubscriptionEvent.organization_id == organization_id,
        SubscriptionEvent.subscription_id == subscription_id,
    )
    if before_id is not None:
        query = query.where(SubscriptionEvent.id < before_id)
    return list(await session.scalars(query.order_by(SubscriptionEvent.id.desc()).limit(limit)))


# --- the graph's batched reads: by ids, and newest-first pages of many owners at once ------


async def plans_by_ids(
    session: AsyncSession, organization_id: int, ids: Sequence[int]
) -> dict[int, Plan]:
    return await by_ids(session, Plan, organization_id, ids)


async def clocks_by_ids(
    session: AsyncSession, organization_id: int, ids: Sequence[int]
) -> dict[int, TestClock]:
    return await by_ids(session, TestClock, organization_id, ids)


async def subscriptions_by_ids(
    session: AsyncSession, organization_id: int, ids: Sequence[int]
) -> dict[int, Subscription]:
    return await by_ids(session, Subscription, organization_id, ids)


async def invoices_by_ids(
    session: AsyncSession, organization_id: int, ids: Sequence[int]
) -> dict[int, Invoice]:
    return await by_ids(session, Invoice, organization_id, ids)


async def lines_by_invoice_ids(
    session: AsyncSession, organization_id: int, ids: Sequence[int]
) -> dict[int, list[InvoiceLine]]:
    """Each invoice's lines in order (lines have no organization: their invoices are
    confined to it)."""
    rows = await session.scalars(
        select(InvoiceLine)
        .join(Invoice, Invoice.id == InvoiceLine.invoice_id)
        .where(Invoice.organization_id == organization_id, InvoiceLine.invoice_id.in_(ids))
        .order_by(InvoiceLine.invoice_id, InvoiceLine.id)
    )
    found: dict[int, list[InvoiceLine]] = {}
    for row in rows:
        found.setdefault(row.invoice_id, []).append(row)
    return found


async def _pages(
    session: AsyncSession,
    model: Any,
    owner: Any,
    organization_id: int,
    pages: Sequence[tuple[int, int | None]],
    *,
    limit: int,
    status: str | None = None,
) -> dict[int, list[Any]]:
    """Newest-first rows of many owners in one statement: for each (owner id, before_id), at
    most `limit` rows with a smaller id (a window over the owners' rows, which are few)."""
    if not pages:
        return {}
    conditions = [
        and_(owner == owner_id, model.id < before_id)
        if before_id is not None
        else owner == owner_id
        for owner_id, before_id in pages
    ]
    ranked = select(
        model.id,
        func.row_number().over(partition_by=owner, order_by=model.id.desc()).label("position"),
    ).where(model.organization_id == organization_id, or_(*conditions))
    if status is not None:
        ranked = ranked.where(model.status == status)
    window = ranked.subquery()
    rows = await session.scalars(
        select(model)
        .join(window, window.c.id == model.id)
        .where(window.c.position <= limit)
        .order_by(owner, model.id.desc())
    )
    found: dict[int, list[Any]] = {}
    key = owner.key
    for row in rows:
        found.setdefault(getattr(row, key), []).append(row)
    return found


async def customers_subscriptions_pages(
    session: AsyncSession,
    organization_id: int,
    pages: Sequence[tuple[int, int | None]],
    *,
    limit: int,
    status: str | None,
) -> dict[int, list[Subscription]]:
    """Newest-first subscriptions of many customers: (customer_id, before_id) each."""
    return await _pages(
        session,
        Subscription,
        Subscription.customer_id,
        organization_id,
        pages,
        limit=limit,
        status=status,
    )


async def customers_invoices_pages(
    session: AsyncSession,
    organization_id: int,
    pages: Sequence[tuple[int, int | None]],
    *,
    limit: int,
    status: str | None,
) -> dict[int, list[Invoice]]:
    """Newest-first invoices of many customers: (customer_id, before_id) each."""
    return await _pages(
        session, Invoice, Invoice.customer_id, organization_id, pages, limit=limit, status=status
    )


async def subscriptions_invoices_pages(
    session: AsyncSession,
    organization_id: int,
    pages: Sequence[tuple[int, int | None]],
    *,
    limit: int,
    status: str | None,
) -> dict[int, list[Invoice]]:
    """Newest-first invoices of many subscriptions: (subscription_id, before_id) each."""
    return await _pages(
        session,
        Invoice,
        Invoice.subscription_id,
        organization_id,
        pages,
        limit=limit,
        status=status,
    )


async def subscriptions_events_pages(
    session: AsyncSession,
    organization_id: int,
    pages: Sequence[tuple[int, int | None]],
    *,
    limit: int,
    status: str | None = None,
) -> dict[int, list[SubscriptionEvent]]:
    """Newest-first events of many subscriptions: (subscription_id, before_id) each."""
    return await _pages(
        session,
        SubscriptionEvent,
        SubscriptionEvent.subscription_id,
        organization_id,
        pages,
        limit=limit,
    )


# --- what Stripe runs -----------------------------------------------------------------------


async def subscription_by_provider_id(
    session: AsyncSession, provider: str, provider_subscription_id: str, *, lock: bool = False
) -> Subscription | None:
    """The subscription mirroring the provider's (any organization: the provider's id is
    unique)."""
    query = select(Subscription).where(
        Subscription.provider == provider,
        Subscription.provider_subscription_id == provider_subscription_id,
    )
    return await session.scalar(_locked(query, lock))


async def invoice_by_provider_id(
    session: AsyncSession, provider_invoice_id: str, *, lock: bool = False
) -> Invoice | None:
    query = select(Invoice).where(Invoice.provider_invoice_id == provider_invoice_id)
    return await session.scalar(_locked(query, lock))


async def replace_invoice_lines(
    unit: UnitOfWork, invoice_id: int, lines: Sequence[dict[str, object]]
) -> None:
    """The invoice's lines are `lines` from now on (a draft's, as its provider changed it)."""
    await unit.session.execute(delete(InvoiceLine).where(InvoiceLine.invoice_id == invoice_id))
    for line in lines:
        unit.session.add(InvoiceLine(invoice_id=invoice_id, **line))
    await unit.session.flush()
