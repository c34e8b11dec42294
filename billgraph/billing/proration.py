"""Prorated changes of plan: switch now, and invoice what is left of the period.

`change_now` moves an ACTIVE subscription to another plan at once and issues one invoice for
the rest of the current period, as Stripe prorates: a credit line for the old plan's unused
time (negative) and a charge line for the new plan's, each what the plan costs this period
(its amount less the subscription's discount for the period, if it has one) times the whole
seconds left in the period over the period's seconds, rounded half up to the minor unit, each
line on its own (so the lines are what a customer can check, and the invoice is their sum).
Pricing both at what the period really costs keeps a discounted subscription from being
credited list price for time it paid less for (a 100%-off coupon then prorates to nothing);
a period whose invoice was voided, never paid, is credited nothing.
The period, its anchor and the next renewal stay as they are; the renewal bills the new plan.

The invoice is paid like any: wallet credit first, then the payment method, dunning when that
fails. A downgrade's negative total goes back to the wallet (invoices.issue_proration). The
switch, the invoice and the wallet entry are one unit of work, and the charge is the billing
run's PENDING attempt, so a crash then a rerun of the change finds the plan switched and
issues nothing more; an unfinished charge is finished by the next billing run.

A trial has nothing to prorate: the plan is switched now, without an invoice. Other statuses
(INCOMPLETE, PAST_DUE, SUSPENDED: something is owed already; CANCELED) are refused. The new
plan must have the same currency and billing period (interval and count) as the current one.
Stripe subscriptions change plan at Stripe (its Customer Portal), never here.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from billgraph.adapters.base import Provider
from billgraph.billing import charges, coupons, dunning, events, invoices, repository
from billgraph.billing.clock import subscription_now
from billgraph.billing.dunning import SubscriptionStatus
from billgraph.billing.events import EventType
from billgraph.checkout.providers import Providers
from billgraph.core.errors import ConflictError, NotFoundError, ValidationError
from billgraph.core.unit import UnitOfWork, unit_of_work
from billgraph.db.engine import Database
from billgraph.db.models import Invoice, Plan, Subscription, utcnow

SECOND = timedelta(seconds=1)


async def _period_cost(unit: UnitOfWork, row: Subscription, plan: Plan) -> int:
    """What `plan` costs for the subscription's current period: its amount less the
    subscription's discount for that period."""
    discount = await coupons.invoice_discount(
        unit.session, row.id, plan.currency, plan.amount, row.current_period_start
    )
    return plan.amount - discount


@dataclass(frozen=True)
class PlanChange:
    subscription: Subscription
    invoice: Invoice | None  # the proration invoice; None when nothing was prorated


def prorated(amount: int, remaining: int, length: int) -> int:
    """`amount` * `remaining` / `length`, rounded half up (integers only)."""
    return (2 * amount * remaining + length) // (2 * length)


async def change_now(
    database: Database,
    providers: Providers,
    organization_id: int,
    subscription_id: int,
    plan_id: int,
    *,
    now: datetime | None = None,
) -> PlanChange:
    """Switch to `plan_id` now, prorated (see the module). Changing to the plan it is on does
    nothing (a rerun of a change that went through). A declined charge is no error: the
    invoice stays OPEN and the subscription PAST_DUE, as a renewal's would.

    Raises NotFoundError, ValidationError (an archived plan, another currency or billing
    period), ConflictError (a status that cannot be prorated; the renewal is due; an invoice
    of the subscription starts at this very instant already); nothing is written then."""
    policy = dunning.policy(providers.settings)
    async with unit_of_work(database) as unit:
        invoice, attempt_id = await _switch(
            unit, organization_id, subscription_id, plan_id, now, policy
        )
    if attempt_id is not None:
        await charges.charge(database, providers, attempt_id, policy, now)
    async with database.sessions() as session:
        row = await repository.subscription_by_id(session, organization_id, subscription_id)
        assert row is not None
        if invoice is not None:
            invoice = await repository.invoice_by_id(session, organization_id, invoice.id)
    return PlanChange(row, invoice)


async def _switch(
    unit: UnitOfWork,
    organization_id: int,
    subscription_id: int,
    plan_id: int,
    now: datetime | None,
    policy: dunning.Policy,
) -> tuple[Invoice | None, int | None]:
    """The switch in the unit: the proration invoice and the attempt to charge, if any."""
    session = unit.session
    row = await repository.subscription_by_id(session, organization_id, subscription_id, lock=True)
    if row is None:
        raise NotFoundError("Subscription not found.")
    status = SubscriptionStatus(row.status)
    if status is SubscriptionStatus.CANCELED:
        raise ConflictError("The subscription is canceled.", "subscriptionId")
    if row.provider == Provider.STRIPE:  # Stripe bills it: a change here would not reach Stripe
        raise ValidationError(
            "A Stripe subscription changes plan at Stripe (its Customer Portal).",
            "subscriptionId",
        )
    plan = await repository.plan_by_id(session, organization_id, plan_id)
    if plan is None:
        raise NotFoundError("Plan not found.")
    if not plan.active:
        raise ValidationError("The plan is archived.", "planId")
    current = await repository.plan_by_id(session, organization_id, row.plan_id)
    assert current is not None
    if plan.currency != current.currency:
        raise ValidationError("The new plan must bill in the same currency.", "planId")
    at = await subscription_now(session, row.test_clock_id, now)
    if plan.id == row.plan_id:  # nothing to prorate; a pending change is dropped
        row.pending_plan_id = None
        row.updated_at = utcnow()
        await session.flush()
        return None, None
    if status is SubscriptionStatus.TRIALING:
        _switch_plan(unit, row, plan, at, f"Switched to {plan.name} during the trial.", None)
        await session.flush()
        return None, None
    if status is not SubscriptionStatus.ACTIVE:
        raise ConflictError(
            f"A {status.value} subscription cannot change plans with proration: something is "
            "owed already. Change it from the next period, or pay its open invoice first.",
            "subscriptionId",
        )
    if (plan.interval, plan.interval_count) != (current.interval, current.interval_count):
        raise ValidationError(
            "A prorated change keeps the billing period: the new plan must bill every "
            f"{current.interval_count} {current.interval} as the current one.",
            "planId",
        )
    start, end = row.current_period_start, row.current_period_end
    if not start <= at < end:
        raise ConflictError(
            "The period's renewal is due: bill it first, then change the plan.", "subscriptionId"
        )
    if await repository.invoice_for_period(session, row.id, at) is not None:
        raise ConflictError(
            "An invoice of this subscription starts at this very instant already (a renewal "
            "or another prorated change): change the plan a moment later.",
            "subscriptionId",
        )
    remaining, length = (end - at) // SECOND, (end - start) // SECOND
    # Unused time is credited only if the period was paid (its invoice voided: nothing was).
    period_invoice = await repository.invoice_for_period(session, row.id, start)
    paid = period_invoice is None or period_invoice.status == invoices.InvoiceStatus.PAID
    invoice = await invoices.issue_proration(
        unit,
        row,
        old=current,
        new=plan,
        credit=prorated(await _period_cost(unit, row, current), remaining, length) if paid else 0,
        charge=prorated(await _period_cost(unit, row, plan), remaining, length),
        at=at,
    )
    number = invoices.invoice_number(invoice)
    _switch_plan(unit, row, plan, at, f"Switched to {plan.name} now, prorated: {number}.", invoice)
    attempt = None
    if invoice.status == invoices.InvoiceStatus.OPEN:
        attempt = await invoices.start_attempt(unit, row, invoice, at)
        if attempt is None and invoice.status == invoices.InvoiceStatus.OPEN:
            await invoices.fail(
                unit,
                row,
                invoice,
                None,
                invoices.NO_PAYMENT_METHOD,
                "No payment method to charge.",
                at,
                policy,
            )
    await charges.reschedule(unit, row)
    return invoice, None if attempt is None else attempt.id


def _switch_plan(
    unit: UnitOfWork,
    row: Subscription,
    plan: Plan,
    at: datetime,
    message: str,
    invoice: Invoice | None,
) -> None:
    row.plan_id = plan.id
    row.pending_plan_id = None
    row.updated_at = utcnow()
    events.record(
        unit, row, EventType.PLAN_CHANGED, message, at, None if invoice is None else invoice.id
    )
