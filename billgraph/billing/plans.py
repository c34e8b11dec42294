"""Plans: what a subscription pays each period. Archiving a plan stops new subscriptions on
it; existing ones go on."""

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from billgraph.billing import repository
from billgraph.billing.periods import PlanInterval
from billgraph.core import validation
from billgraph.core.errors import NotFoundError, ValidationError
from billgraph.core.unit import UnitOfWork
from billgraph.db.models import Plan, utcnow

MAX_INTERVAL_COUNT = {PlanInterval.MONTH: 36, PlanInterval.YEAR: 3}  # Stripe's limits
MAX_TRIAL_DAYS = 730


@dataclass(frozen=True)
class PlanRequest:
    organization_id: int
    name: str
    amount: int
    currency: str
    interval: PlanInterval
    interval_count: int
    trial_days: int


def plan_request(
    organization_id: int,
    *,
    name: str,
    amount: int,
    currency: str,
    interval: PlanInterval | str,
    interval_count: int = 1,
    trial_days: int = 0,
) -> PlanRequest:
    """The checked request; raises ValidationError naming the field at fault."""
    checked_name = validation.text(name, "name", max_length=200, required=True)
    assert checked_name is not None
    try:
        checked_interval = PlanInterval(interval)
    except ValueError:
        raise ValidationError("interval is MONTH or YEAR.", "interval") from None
    limit = MAX_INTERVAL_COUNT[checked_interval]
    if isinstance(interval_count, bool) or not 1 <= interval_count <= limit:
        raise ValidationError(
            f"intervalCount must be between 1 and {limit} for {checked_interval.value}.",
            "intervalCount",
        )
    if isinstance(trial_days, bool) or not 0 <= trial_days <= MAX_TRIAL_DAYS:
        raise ValidationError(f"trialDays must be between 0 and {MAX_TRIAL_DAYS}.", "trialDays")
    return PlanRequest(
        organization_id=organization_id,
        name=checked_name,
        amount=validation.amount(amount),
        currency=validation.currency(currency),
        interval=checked_interval,
        interval_count=interval_count,
        trial_days=trial_days,
    )


async def create(unit: UnitOfWork, request: PlanRequest) -> Plan:
    plan = Plan(
        organization_id=request.organization_id,
        name=request.name,
        amount=request.amount,
        currency=request.currency,
        interval=request.interval.value,
        interval_count=request.interval_count,
        trial_days=request.trial_days,
        active=True,
        created_at=utcnow(),
    )
    unit.session.add(plan)
    await unit.session.flush()
    return plan


async def get(session: AsyncSession, organization_id: int, plan_id: int) -> Plan:
    """Raises NotFoundError for an unknown id, or another organization's."""
    plan = await repository.plan_by_id(session, organization_id, plan_id)
    if plan is None:
        raise NotFoundError("Plan not found.")
    return plan


async def archive(unit: UnitOfWork, organization_id: int, plan_id: int) -> Plan:
    """No new subscription may use the plan; those on it go on. Archiving twice is fine.
    Raises NotFoundError."""
    plan = await get(unit.session, organization_id, plan_id)
    if plan.active:
        plan.active = False
        await unit.session.flush()
    return plan


async def page(
    session: AsyncSession,
    organization_id: int,
    *,
    limit: int,
    after_id: int | None = None,
    active: bool | None = None,
) -> list[Plan]:
    return await repository.plans_page(
        session, organization_id, limit=limit, after_id=after_id, active=active
    )
