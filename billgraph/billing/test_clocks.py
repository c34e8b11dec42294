"""Test clocks, as Stripe and Kill Bill have them: a customer on a clock lives at its frozen
time, and advancing the clock bills its customers up to the new instant, so a person or a test
walks a subscription through months in seconds."""

from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from billgraph.billing import periods, repository
from billgraph.core import validation
from billgraph.core.errors import ConflictError, NotFoundError, ValidationError
from billgraph.core.unit import UnitOfWork
from billgraph.customers import repository as customer_repository
from billgraph.db.models import TestClock, utcnow

# A clock's time stays where billing's periods can be counted from it (years 1 and 9999,
# which a client may send, would overflow a date).
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(3000, 1, 1, tzinfo=UTC)
# How far one advance may move a clock: advancing bills every period in between before it
# answers, and decades of monthly renewals would hold a request (and SQLite's writer) for
# minutes. Two years is two yearly renewals, 24 monthly ones.
MAX_ADVANCE_MONTHS = 24


def _aware(value: datetime, field: str) -> datetime:
    if value.tzinfo is None:
        raise ValidationError(f"{field} must carry its timezone.", field)
    if not EARLIEST <= value < LATEST:
        raise ValidationError(f"{field} must be from 1970 and before 3000.", field)
    return value.astimezone(UTC)


async def create(
    unit: UnitOfWork, organization_id: int, *, frozen_time: datetime, name: str | None = None
) -> TestClock:
    """A clock frozen at `frozen_time`. Raises ValidationError (a naive time, a bad name)."""
    now = utcnow()
    clock = TestClock(
        organization_id=organization_id,
        name=validation.text(name, "name", max_length=200),
        frozen_time=_aware(frozen_time, "frozenTime"),
        created_at=now,
        updated_at=now,
    )
    unit.session.add(clock)
    await unit.session.flush()
    return clock


async def get(session: AsyncSession, organization_id: int, clock_id: int) -> TestClock:
    clock = await repository.clock_by_id(session, organization_id, clock_id)
    if clock is None:
        raise NotFoundError("Test clock not found.")
    return clock


async def move(
    unit: UnitOfWork, organization_id: int, clock_id: int, frozen_time: datetime
) -> TestClock:
    """Move the clock to `frozen_time`, forward only (the same time is fine); the clock row is
    locked until the unit ends. billing.run.advance_clock also bills its customers.
    Raises NotFoundError, ValidationError (backwards, more than two years on, or a naive
    time)."""
    target = _aware(frozen_time, "frozenTime")
    clock = await repository.clock_by_id(unit.session, organization_id, clock_id, lock=True)
    if clock is None:
        raise NotFoundError("Test clock not found.")
    if target < clock.frozen_time:
        raise ValidationError("A test clock moves forward only.", "frozenTime")
    if target > periods.add_months(clock.frozen_time, MAX_ADVANCE_MONTHS):
        raise ValidationError(
            f"A test clock moves at most {MAX_ADVANCE_MONTHS // 12} years at a time.", "frozenTime"
        )
    clock.frozen_time = target
    clock.updated_at = utcnow()
    await unit.session.flush()
    return clock


async def attach_customer(
    unit: UnitOfWork, organization_id: int, customer_id: int, clock_id: int
) -> TestClock:
    """Put a customer on a clock, for good (createCustomer's testClockId). Raises
    NotFoundError (the customer or the clock), ConflictError (the customer lives on a clock
    already, or has subscriptions started on the system's time)."""
    customer = await customer_repository.live_customer(unit.session, organization_id, customer_id)
    if customer is None:
        raise NotFoundError("Customer not found.")
    clock = await get(unit.session, organization_id, clock_id)
    if await repository.customer_has_subscriptions(unit.session, customer_id):
        raise ConflictError("The customer has subscriptions already.", "testClockId")
    if not await repository.attach_clock(unit, organization_id, customer_id, clock_id):
        raise ConflictError("The customer lives on a test clock already.", "testClockId")
    return clock
