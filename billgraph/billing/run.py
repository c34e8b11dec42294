"""The billing run: `bill` bills everything due, each subscription in its own unit of work.

Due is a subscription whose `next_action_at` has come, by its test clock's time or by the
run's `now`: a reminder 3 days before a renewal or a trial's end, a renewal (the period's
invoice, credit first, then the charge), a trial ending (its first invoice; without a payment
method INCOMPLETE, or CANCELED with BILLGRAPH_TRIAL_END_WITHOUT_PAYMENT_METHOD=cancel), a
cancellation at period end, a dunning retry. Idempotent per subscription and period (one
invoice per period; charges keyed by invoice and attempt), and safe to run twice at once: on
PostgreSQL each run locks the subscription it bills and skips those another holds (FOR UPDATE
SKIP LOCKED); on SQLite the unit's writer lock serializes them.

Also here: `pay_invoice`, `attach_payment_method` and `advance_clock`, which pay or bill
outside the run, through the same steps.
"""

import asyncio
import contextlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from billgraph.billing import (
    charges,
    dunning,
    events,
    invoices,
    periods,
    repository,
    subscriptions,
    test_clocks,
)
from billgraph.billing.charges import ChargeOutcome
from billgraph.billing.clock import subscription_now, system_now
from billgraph.billing.dunning import REMINDER, RENEWING, SubscriptionStatus
from billgraph.billing.events import EventType
from billgraph.billing.subscriptions import end_subscription
from billgraph.checkout.providers import Providers
from billgraph.core import validation
from billgraph.core.errors import ConflictError, NotFoundError, ValidationError
from billgraph.core.unit import UnitOfWork, unit_of_work
from billgraph.db.engine import Database
from billgraph.db.models import Invoice, InvoiceAttempt, Subscription, TestClock
from billgraph.logs import get_logger

log = get_logger("billgraph.billing.run")

# A subscription stepped this often in one run is left for the next (a clock moved years).
MAX_STEPS_PER_RUN = 500


class Step(StrEnum):
    BILLED = "billed"
    PAID_BY_CREDIT = "paid_by_credit"
    FAILED = "failed"
    SUSPENDED = "suspended"
    REMINDED = "reminded"
    CANCELED = "canceled"
    RETRIED = "retried"
    CHARGE = "charge"
    NOTHING = "nothing"


@dataclass
class BillingSummary:
    subscriptions: int = 0
    billed: int = 0  # invoices issued
    paid_by_credit: int = 0
    charged: int = 0
    failed: int = 0
    suspended: int = 0
    canceled: int = 0
    reminders: int = 0
    unknown: int = 0  # charges whose outcome the provider did not give (asked again later)

    def line(self) -> str:
        return (
            f"{self.subscriptions} subscriptions: {self.billed} billed, {self.paid_by_credit} "
            f"paid by credit, {self.charged} charged, {self.failed} failed, {self.suspended} "
            f"suspended, {self.canceled} canceled, {self.reminders} reminders"
            + (f", {self.unknown} charges unanswered" if self.unknown else "")
        )


@dataclass(frozen=True)
class _Done:
    steps: list[Step] = field(default_factory=list)
    attempt_id: int | None = None


async def bill(
    database: Database,
    providers: Providers,
    now: datetime | None = None,
    *,
    test_clock_id: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> BillingSummary:
    """Bill everything due at `now` (default: the system clock; test-clock subscriptions at
    their clock's time), or only the subscriptions of `test_clock_id`. `progress` is called
    with the number of subscriptions seen so far, after each one's first step."""
    policy = dunning.policy(providers.settings)
    run_now = system_now(now)
    summary = BillingSummary()
    steps: Counter[int] = Counter()
    skip: list[int] = []
    while True:
        async with unit_of_work(database) as unit:
            subscription = await repository.lock_due_subscription(
                unit, run_now, skip=skip, test_clock_id=test_clock_id
            )
            if subscription is None:
                break
            at = await subscription_now(unit.session, subscription.test_clock_id, run_now)
            done = await _step(unit, subscription, at, policy)
            await charges.reschedule(unit, subscription)
        steps[subscription.id] += 1
        if steps[subscription.id] == 1:
            summary.subscriptions += 1
            if progress is not None:
                progress(summary.subscriptions)
        if steps[subscription.id] >= MAX_STEPS_PER_RUN:
            skip.append(subscription.id)
        for step in done.steps:
            _count(summary, step)
        if done.attempt_id is not None:
            _count_charge(
                summary, await charges.charge(database, providers, done.attempt_id, policy, run_now)
            )
    return summary


def _count(summary: BillingSummary, step: Step) -> None:
    if step is Step.BILLED:
        summary.billed += 1
    elif step is Step.PAID_BY_CREDIT:
        summary.paid_by_credit += 1
    elif step is Step.FAILED:
        summary.failed += 1
    elif step is Step.SUSPENDED:
        summary.failed += 1
        summary.suspended += 1
    elif step is Step.CANCELED:
        summary.canceled += 1
    elif step is Step.REMINDED:
        summary.reminders += 1


def _count_charge(summary: BillingSummary, outcome: ChargeOutcome) -> None:
    if outcome is ChargeOutcome.CHARGED:
        summary.charged += 1
    elif outcome is ChargeOutcome.FAILED:
        summary.failed += 1
    elif outcome is ChargeOutcome.SUSPENDED:
        summary.failed += 1
        summary.suspended += 1
    elif outcome is ChargeOutcome.UNKNOWN:
        summary.unknown += 1


async def _step(
    unit: UnitOfWork, subscription: Subscription, now: datetime, policy: dunning.Policy
) -> _Done:
    """One thing due on the locked subscription, recorded in the unit: a charge left
    unfinished, a renewal (or a trial's end, or a cancellation at period end), a reminder,
    or a retry of its open invoice."""
    open_rows = await repository.open_invoices(unit.session, subscription.id, lock=True)
    for row in open_rows:
        pending = await repository.pending_attempt(unit.session, row.id)
        if pending is not None:
            return _Done([], pending.id)
    status = SubscriptionStatus(subscription.status)
    due = subscription.next_billing_at
    if status in RENEWING and due is not None and due <= now:
        return await _renew(unit, subscription, now, policy)
    if (
        status in RENEWING
        and due is not None
        and subscription.reminded_for != due
        and due - REMINDER <= now
    ):
        subscription.reminded_for = due
        if status is SubscriptionStatus.TRIALING:
            events.record(
                unit,
                subscription,
                EventType.TRIAL_WILL_END,
                f"The trial ends on {due:%Y-%m-%d}.",
                now,
            )
            return _Done([Step.REMINDED])
        if not subscription.cancel_at_period_end:
            events.record(
                unit,
                subscription,
                EventType.RENEWAL_UPCOMING,
                f"The subscription renews on {due:%Y-%m-%d}.",
                now,
            )
            return _Done([Step.REMINDED])
        return _Done([])
    for row in open_rows:
        if row.next_payment_attempt_at is not None and row.next_payment_attempt_at <= now:
            return await _retry(unit, subscription, row, now, policy)
    return _Done([Step.NOTHING])


async def _renew(
    unit: UnitOfWork, subscription: Subscription, now: datetime, policy: dunning.Policy
) -> _Done:
    status = SubscriptionStatus(subscription.status)
    if subscription.cancel_at_period_end:
        end_subscription(
            unit,
            subscription,
            subscription.current_period_end,
            "Canceled at the end of the period.",
        )
        return _Done([Step.CANCELED])
    trial = status is SubscriptionStatus.TRIALING
    if (
        trial
        and subscription.payment_method_id is None
        and policy.cancel_trial_without_payment_method
    ):
        end_subscription(
            unit,
            subscription,
            subscription.current_period_end,
            "Canceled: the trial ended without a payment method.",
        )
        return _Done([Step.CANCELED])
    assert subscription.next_billing_at is not None
    # The renewal's moment: the period's end, or when a recovered subscription starts anew.
    start = subscription.next_billing_at
    if subscription.pending_plan_id is not None:
        subscription.plan_id = subscription.pending_plan_id
        subscription.pending_plan_id = None
        subscription.billing_anchor = start
    plan = await repository.plan_by_id(
        unit.session, subscription.organization_id, subscription.plan_id
    )
    assert plan is not None
    end = periods.next_boundary(
        subscription.billing_anchor, plan.interval, plan.interval_count, start
    )
    subscription.current_period_start = start
    subscription.current_period_end = end
    subscription.next_billing_at = end
    issued = await invoices.issue(unit, subscription, plan, start, end, now)
    if not issued.created:  # invoiced before: its attempts go on as they are
        return _Done([])
    if issued.attempt is not None:
        return _Done([Step.BILLED], issued.attempt.id)
    invoice = issued.invoice
    steps = [Step.BILLED]
    if invoice.status == invoices.InvoiceStatus.PAID:
        return _Done([*steps, Step.PAID_BY_CREDIT])
    if trial:  # the trial ended with nothing to pay by: the first invoice waits for a method
        subscription.status = SubscriptionStatus.INCOMPLETE.value
        subscription.next_billing_at = None
        return _Done(steps)
    suspended = await invoices.fail(
        unit,
        subscription,
        invoice,
        None,
        invoices.NO_PAYMENT_METHOD,
        "No payment method to charge.",
        now,
        policy,
    )
    return _Done([*steps, Step.SUSPENDED if suspended else Step.FAILED])


async def _retry(
    unit: UnitOfWork,
    subscription: Subscription,
    invoice: Invoice,
    now: datetime,
    policy: dunning.Policy,
) -> _Done:
    attempt = await invoices.start_attempt(unit, subscription, invoice, now)
    if attempt is not None:
        return _Done([Step.RETRIED], attempt.id)
    if invoice.status == invoices.InvoiceStatus.PAID:
        return _Done([Step.PAID_BY_CREDIT])
    suspended = await invoices.fail(
        unit,
        subscription,
        invoice,
        None,
        invoices.NO_PAYMENT_METHOD,
        "No payment method to charge.",
        now,
        policy,
    )
    return _Done([Step.SUSPENDED if suspended else Step.FAILED])


# --- paying and billing outside the run ---------------------------------------------------


@dataclass(frozen=True)
class PaidInvoice:
    invoice: Invoice
    attempt: InvoiceAttempt | None  # None: paid by credit, or before
    replayed: bool


async def pay_invoice(
    database: Database,
    providers: Providers,
    organization_id: int,
    invoice_id: int,
    idempotency_key: str,
    *,
    now: datetime | None = None,
) -> PaidInvoice:
    """A customer-initiated attempt to pay an OPEN invoice: wallet credit first, then the
    payment method. Paid, it makes a PAST_DUE or SUSPENDED subscription ACTIVE. The same key
    returns the same attempt (`replayed`); an invoice already PAID is returned as a replay.
    A decline is no error: see `attempt.outcome`. Raises NotFoundError, ConflictError (VOID or
    UNCOLLECTIBLE), ValidationError (no payment method and not enough credit: nothing is
    written)."""
    key = validation.text(idempotency_key, "idempotencyKey", max_length=255, required=True)
    assert key is not None
    policy = dunning.policy(providers.settings)
    async with unit_of_work(database) as unit:
        invoice = await _locked_invoice(unit, organization_id, invoice_id)
        previous = next(
            (
                a
                for a in await repository.attempts(unit.session, invoice.id)
                if a.idempotency_key == key
            ),
            None,
        )
        replayed = previous is not None or invoice.status == invoices.InvoiceStatus.PAID
        attempt_id = previous.id if previous is not None else None
        if not replayed:
            attempt_id = await _start_payment(unit, organization_id, invoice, key, now)
    if attempt_id is not None:
        await charges.charge(database, providers, attempt_id, policy, now)
    async with database.sessions() as session:
        paid = await repository.invoice_by_id(session, organization_id, invoice_id)
        assert paid is not None
        attempt = None if attempt_id is None else await session.get(InvoiceAttempt, attempt_id)
    return PaidInvoice(paid, attempt, replayed=replayed)


async def _locked_invoice(unit: UnitOfWork, organization_id: int, invoice_id: int) -> Invoice:
    """The invoice, locked after its subscription: the billing run locks a subscription, then
    its invoices, and taking them in the same order cannot deadlock with it."""
    invoice = await repository.invoice_by_id(unit.session, organization_id, invoice_id)
    if invoice is None:
        raise NotFoundError("Invoice not found.")
    if invoice.provider_invoice_id is not None:
        raise ConflictError(
            "Stripe collects this invoice: it is paid or voided at Stripe (its Customer Portal).",
            "invoiceId",
        )
    if invoice.subscription_id is not None:
        await repository.subscription_by_id(
            unit.session, organization_id, invoice.subscription_id, lock=True
        )
    locked = await repository.invoice_by_id(unit.session, organization_id, invoice_id, lock=True)
    assert locked is not None
    return locked


async def void_invoice(
    unit: UnitOfWork, organization_id: int, invoice_id: int, *, now: datetime | None = None
) -> Invoice:
    """An OPEN invoice will not be paid: VOID, no more attempts, and the wallet credit it
    took given back (a credit whose key derives from the invoice). A PAST_DUE subscription
    with nothing else owed is ACTIVE again; a SUSPENDED or INCOMPLETE one stays so (it needs
    a payment method). Voiding twice is fine. Raises NotFoundError, ConflictError (PAID)."""
    invoice = await _locked_invoice(unit, organization_id, invoice_id)
    if invoice.status == invoices.InvoiceStatus.VOID:
        return invoice
    if invoice.status != invoices.InvoiceStatus.OPEN:
        raise ConflictError(f"The invoice is {invoice.status}: it cannot be voided.", "id")
    if await repository.pending_attempt(unit.session, invoice.id) is not None:
        raise ConflictError("A payment of this invoice is in progress.", "id")
    await invoices.return_credit(unit, invoice)
    invoice.status = invoices.InvoiceStatus.VOID.value
    invoice.next_payment_attempt_at = None
    if invoice.subscription_id is not None:
        subscription = await repository.subscription_by_id(
            unit.session, organization_id, invoice.subscription_id
        )
        assert subscription is not None
        at = await subscription_now(unit.session, subscription.test_clock_id, now)
        if subscription.status == SubscriptionStatus.PAST_DUE:
            await invoices.reactivate(unit, subscription, at)
        await charges.reschedule(unit, subscription)
    await unit.session.flush()
    return invoice


async def _start_payment(
    unit: UnitOfWork, organization_id: int, invoice: Invoice, key: str, now: datetime | None
) -> int | None:
    """Credit first, then a PENDING attempt under the client's key; its id (None: credit paid it)."""
    if invoice.status != invoices.InvoiceStatus.OPEN:
        raise ConflictError(f"The invoice is {invoice.status}: it cannot be paid.", "invoiceId")
    assert invoice.subscription_id is not None
    subscription = await repository.subscription_by_id(
        unit.session, organization_id, invoice.subscription_id
    )
    assert subscription is not None
    if await repository.pending_attempt(unit.session, invoice.id) is not None:
        raise ConflictError("A payment of this invoice is in progress.", "invoiceId")
    at = await subscription_now(unit.session, subscription.test_clock_id, now)
    attempt = await invoices.start_attempt(unit, subscription, invoice, at, idempotency_key=key)
    if attempt is None and invoice.status != invoices.InvoiceStatus.PAID:
        raise ValidationError(
            "The invoice has no payment method to charge and the wallet does not cover it.",
            "invoiceId",
        )
    await charges.reschedule(unit, subscription)
    return attempt.id if attempt is not None else None


async def attach_payment_method(
    database: Database,
    providers: Providers,
    organization_id: int,
    subscription_id: int,
    payment_method_id: int,
    *,
    now: datetime | None = None,
) -> Subscription:
    """Make the payment method the subscription's (what a subscription checkout calls once
    it has one) and pay its oldest open invoice with it, credit first. Raises NotFoundError,
    ValidationError (another customer's or provider's method), ConflictError (canceled)."""
    policy = dunning.policy(providers.settings)
    async with unit_of_work(database) as unit:
        attempt_id = await start_with_payment_method(
            unit, organization_id, subscription_id, payment_method_id, now=now
        )
    if attempt_id is not None:
        await charges.charge(database, providers, attempt_id, policy, now)
    async with database.sessions() as session:
        row = await repository.subscription_by_id(session, organization_id, subscription_id)
        assert row is not None
    return row


async def start_with_payment_method(
    unit: UnitOfWork,
    organization_id: int,
    subscription_id: int,
    payment_method_id: int,
    *,
    now: datetime | None = None,
) -> int | None:
    """attach_payment_method's writes, in the caller's unit (a checkout that saved the method
    completes in the same one): the method made the subscription's and its oldest open invoice
    paid by credit first; the PENDING attempt to charge once the unit commits (None: nothing
    to charge, or a charge is in progress already). A crash before that charge leaves the
    attempt to the billing run."""
    subscription = await subscriptions.set_payment_method(
        unit, organization_id, subscription_id, payment_method_id
    )
    at = await subscription_now(unit.session, subscription.test_clock_id, now)
    attempt_id = None
    open_rows = await repository.open_invoices(unit.session, subscription.id, lock=True)
    if open_rows and await repository.pending_attempt(unit.session, open_rows[0].id) is None:
        attempt = await invoices.start_attempt(unit, subscription, open_rows[0], at)
        attempt_id = attempt.id if attempt else None
    await charges.reschedule(unit, subscription)
    return attempt_id


async def bill_every(
    database: Database, providers: Providers, interval_seconds: float, stop: asyncio.Event
) -> None:
    """Bill what is due every `interval_seconds` until `stop` is set: the job `billgraph
    serve` runs (the app's lifespan) with BILLGRAPH_BILLING_INTERVAL_SECONDS > 0. Replicas
    may all run it: concurrent runs share the work. A failed run is logged and the next one
    goes on."""
    while not stop.is_set():
        try:
            summary = await bill(database, providers)
            if summary.subscriptions:
                log.info("billing run", summary=summary.line())
        except Exception:
            log.exception("billing run failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval_seconds)


async def advance_clock(
    database: Database,
    providers: Providers,
    organization_id: int,
    clock_id: int,
    frozen_time: datetime,
) -> tuple[TestClock, BillingSummary]:
    """Move the test clock forward (never back), then bill its customers up to that instant
    before returning. Raises NotFoundError, ValidationError."""
    async with unit_of_work(database) as unit:
        clock = await test_clocks.move(unit, organization_id, clock_id, frozen_time)
    summary = await bill(database, providers, test_clock_id=clock.id)
    return clock, summary
