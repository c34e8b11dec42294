"""Where billing's time comes from: a customer on a test clock lives at the clock's frozen
time; everyone else at the system's (which a caller, a test or `billgraph bill --now`, may
replace by passing `now`)."""

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from billgraph.core.errors import ValidationError
from billgraph.db.models import CustomerTestClock, TestClock, utcnow


def system_now(now: datetime | None = None) -> datetime:
    """`now` if given (it must be timezone-aware), else the system clock, in UTC."""
    if now is None:
        return utcnow()
    if now.tzinfo is None:
        raise ValidationError("A time must carry its timezone.", "now")
    return now.astimezone(UTC)


async def customer_clock(session: AsyncSession, customer_id: int) -> TestClock | None:
    """The test clock the customer lives on, if any."""
    return await session.scalar(
        select(TestClock)
        .join(CustomerTestClock, CustomerTestClock.test_clock_id == TestClock.id)
        .where(CustomerTestClock.customer_id == customer_id)
    )


async def subscription_now(
    session: AsyncSession, test_clock_id: int | None, now: datetime | None = None
) -> datetime:
    """The time of a subscription: its clock's frozen time, or the system's (`now`)."""
    if test_clock_id is None:
        return system_now(now)
    frozen = await session.scalar(
        select(TestClock.frozen_time).where(TestClock.id == test_clock_id)
    )
    assert frozen is not None
    return frozen
