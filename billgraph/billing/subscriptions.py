"""Subscriptions: a customer on a plan, billed each period by billgraph (sandbox, Toss), or
by Stripe and mirrored from its webhooks (provider STRIPE: billing/stripe.py).

- `create` is idempotent per organization and key (a replay returns the same subscription
  and finishes a charge a crash left unfinished). A plan with a trial starts TRIALING with no
  payment method; otherwise the first invoice is issued at once: wallet credit first, the rest
  charged to the payment method. Paid: ACTIVE; not paid: INCOMPLETE until a payment method
  pays it (`attach_payment_method`). A request made `for_checkout` (collect.subscribe, which
  then opens the checkout session collecting that method) needs successUrl and cancelUrl
  exactly then, checked before the unit commits.
- `cancel` (at period end, or now), `resume` (undoes a pending cancel), `change_plan` (from
  the next period) each take a unit of work; a prorated change now is proration.py's.
"""

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property

from sqlalchemy.ext.asyncio import AsyncSession

from billgraph.adapters.base import Provider
from billgraph.billing import charges, coupons, dunning, events, invoices, periods, repository
from billgraph.billing.clock import customer_clock, subscription_now, system_now
from billgraph.billing.dunning import SubscriptionStatus
from billgraph.billing.events import EventType
from billgraph.checkout.providers import Providers
from billgraph.checkout.service import redirect_url
from billgraph.core import validation
from billgraph.core.errors import (
    ConflictError,
    IdempotencyConflictError,
    NotFoundError,
    ProviderError,
    ValidationError,
)
from billgraph.core.unit import UnitOfWork, unit_of_work
from billgraph.customers import repository as customer_repository
from billgraph.db.engine import Database
from billgraph.db.models import Invoice, Plan, Subscription, utcnow
from billgraph.ledger import service as ledger

TOSS_CURRENCY = "KRW"


@dataclass(frozen=True)
class SubscriptionRequest:
    """A checked request to start a subscription (see subscription_request)."""

    organization_id: int
    customer_id: int
    plan_id: int
    provider: Provider
    payment_method_id: int | None
    trial_days: int | None  # None: the plan's
    idempotency_key: str
    promotion_code: str | None = None
    # Where the checkout collecting a payment method sends the customer back (see collect).
    success_url: str | None = None
    cancel_url: str | None = None
    for_checkout: bool = False  # the URLs are required when a payment method is needed
    # Why no checkout can be opened (the provider is not configured here): raised, before
    # anything is written, if one is needed.
    checkout_unavailable: ProviderError | None = field(default=None, compare=False)

    @cached_property
    def fingerprint(self) -> str:
        """What a replay must match: every parameter except the key itself."""
        payload: list[object] = [
            self.customer_id,
            self.plan_id,
            self.provider.value,
            self.payment_method_id,
            self.trial_days,
        ]
        if self.promotion_code is not None:  # so the keys of requests without one still match
            payload.append(self.promotion_code.upper())
        if self.success_url is not None or self.cancel_url is not None:
            payload += [self.success_url, self.cancel_url]  # requests without keep their hash
        return hashlib.sha256(json.dumps(payload).encode()).hexdigest()


@dataclass(frozen=True)
class CreatedSubscription:
    subscription: Subscription
    invoice: Invoice | None  # the first invoice, when one was issued
    replayed: bool


def checkout_key(subscription_id: int) -> str:
    """The idempotency key of the checkout session billgraph opens for a new subscription
    (reserved: no client's), whichever provider collects its payment method."""
    return f"{ledger.RESERVED_KEY_PREFIX}subscription:{subscription_id}:checkout"


def subscription_request(
    organization_id: int,
    *,
    customer_id: int,
    plan_id: int,
    provider: Provider = Provider.SANDBOX,
    payment_method_id: int | None = None,
    trial_days: int | None = None,
    idempotency_key: str,
    promotion_code: str | None = None,
    success_url: str | None = None,
    cancel_url: str | None = None,
    for_checkout: bool = False,
) -> SubscriptionRequest:
    """The checked request; raises ValidationError naming the field at fault."""
    key = validation.text(idempotency_key, "idempotencyKey", max_length=255, required=True)
    assert key is not None
    if key.startswith(ledger.RESERVED_KEY_PREFIX):
        raise ValidationError(
            f"Idempotency keys starting with {ledger.RESERVED_KEY_PREFIX!r} are reserved.",
            "idempotencyKey",
        )
    if provider is Provider.STRIPE and promotion_code is not None:
        raise ValidationError(
            "Promotion codes apply to subscriptions billgraph bills, not to Stripe's.",
            "promotionCode",
        )
    if trial_days is not None and (isinstance(trial_days, bool) or not 0 <= trial_days <= 730):
        raise ValidationError("trialDays must be between 0 and 730.", "trialDays")
    return SubscriptionRequest(
        organization_id=organization_id,
        customer_id=customer_id,
        plan_id=plan_id,
        provider=provider,
        payment_method_id=payment_method_id,
        trial_days=trial_days,
        idempotency_key=key,
        promotion_code=validation.text(promotion_code, "promotionCode", max_length=64),
        success_url=None if success_url is None else redirect_url(success_url, "successUrl"),
        cancel_url=None if cancel_url is None else redirect_url(cancel_url, "cancelUrl"),
        for_checkout=for_checkout,
    )


async def create(
    database: Database,
    providers: Providers,
    request: SubscriptionRequest,
    *,
    now: datetime | None = None,
) -> CreatedSubscription:
    """Start the subscription, exactly once per idempotency key, and charge its first
    invoice if it has one that credit does not cover.

    Raises NotFoundError (the customer, plan or payment method is unknown or another
    organization's), ValidationError (an archived plan, a payment method of another provider
    or customer, a provider other than the sandbox for a test-clock customer, a currency the
    provider does not take, a promotion code that is unknown or cannot be redeemed, or whose
    last redemption went to a racing request), IdempotencyConflictError; in each case nothing
    is written. A
    declined first charge is no error: the subscription is INCOMPLETE.
    """
    policy = dunning.policy(providers.settings)
    async with unit_of_work(database) as unit:
        existing = await repository.subscription_by_key(
            unit.session, request.organization_id, request.idempotency_key
        )
        if existing is not None:
            if existing.request_hash != request.fingerprint:
                raise IdempotencyConflictError(request.idempotency_key)
            replayed, subscription_id, attempt_id = True, existing.id, None
        else:
            subscription, issued, replayed = await _start(unit, request, now)
            subscription_id = subscription.id
            attempt_id = issued.attempt.id if issued and issued.attempt else None
    if replayed:  # a crash may have left the first charge unfinished
        attempt_id = await _pending_attempt_id(database, subscription_id)
    if attempt_id is not None:
        await charges.charge(database, providers, attempt_id, policy, now)
    async with database.sessions() as session:
        subscription = await get(session, request.organization_id, subscription_id)
        first = await repository.invoices_page(
            session, request.organization_id, subscription_id=subscription_id, limit=1
        )
    return CreatedSubscription(subscription, first[0] if first else None, replayed)


async def _pending_attempt_id(database: Database, subscription_id: int) -> int | None:
    async with database.sessions() as session:
        for invoice in await repository.open_invoices(session, subscription_id):
            pending = await repository.pending_attempt(session, invoice.id)
            if pending is not None:
                return pending.id
    return None


async def _start(
    unit: UnitOfWork, request: SubscriptionRequest, now: datetime | None
) -> tuple[Subscription, invoices.Issued | None, bool]:
    """The new subscription, its first invoice (None in a trial), and whether a racing
    request with the same key made it first."""
    session = unit.session
    org = request.organization_id
    customer = await customer_repository.live_customer(session, org, request.customer_id)
    if customer is None:
        raise NotFoundError("Customer not found.")
    plan = await repository.plan_by_id(session, org, request.plan_id)
    if plan is None:
        raise NotFoundError("Plan not found.")
    if not plan.active:
        raise ValidationError("The plan is archived: it takes no new subscriptions.", "planId")
    if request.provider is Provider.TOSS and plan.currency != TOSS_CURRENCY:
        raise ValidationError(f"Toss Payments bills {TOSS_CURRENCY} only.", "provider")
    if request.payment_method_id is not None:
        method = await repository.payment_method_by_id(session, org, request.payment_method_id)
        if method is None:
            raise NotFoundError("Payment method not found.")
        if method.customer_id != customer.id or method.provider != request.provider.value:
            raise ValidationError(
                "The payment method is not the customer's at this provider.", "paymentMethodId"
            )
    clock = await customer_clock(session, customer.id)
    if clock is not None and request.provider is not Provider.SANDBOX:
        raise ValidationError("A test-clock customer can use the sandbox only.", "provider")
    start = clock.frozen_time if clock is not None else system_now(now)
    trial_days = plan.trial_days if request.trial_days is None else request.trial_days
    offer = await _offer(session, request, customer.id, plan, start)
    trial_end = periods.trial_end(start, trial_days) if trial_days > 0 else None
    period_end = trial_end or periods.next_boundary(
        start, plan.interval, plan.interval_count, start
    )
    stamp = utcnow()
    new_id = await repository.insert_subscription(
        unit,
        {
            "organization_id": org,
            "customer_id": customer.id,
            "plan_id": plan.id,
            "status": (
                SubscriptionStatus.TRIALING if trial_end else SubscriptionStatus.INCOMPLETE
            ).value,
            "provider": request.provider.value,
            "payment_method_id": request.payment_method_id,
            "test_clock_id": clock.id if clock is not None else None,
            "current_period_start": start,
            "current_period_end": period_end,
            "billing_anchor": period_end if trial_end else start,
            "trial_end": trial_end,
            "cancel_at_period_end": False,
            "next_billing_at": trial_end or period_end,
            "idempotency_key": request.idempotency_key,
            "request_hash": request.fingerprint,
            "created_at": start,
            "updated_at": stamp,
        },
    )
    if new_id is None:  # a concurrent request with the same key won
        raced = await repository.subscription_by_key(session, org, request.idempotency_key)
        assert raced is not None
        if raced.request_hash != request.fingerprint:
            raise IdempotencyConflictError(request.idempotency_key)
        return raced, None, True
    subscription = await repository.subscription_by_id(session, org, new_id)
    assert subscription is not None
    events.record(unit, subscription, EventType.CREATED, f"Subscribed to {plan.name}.", start)
    if offer is not None:  # counted here, so the first invoice is discounted
        await coupons.redeem(unit, offer, subscription, plan, start)
    issued = None
    if trial_end is None:
        issued = await invoices.issue(unit, subscription, plan, start, period_end, start)
        if request.for_checkout and awaits_payment_method(subscription, issued.invoice):
            _check_checkout_urls(request)  # raised here, the unit writes nothing
            if request.checkout_unavailable is not None:
                raise request.checkout_unavailable
    await charges.reschedule(unit, subscription)
    return subscription, issued, False


async def _offer(
    session: AsyncSession,
    request: SubscriptionRequest,
    customer_id: int,
    plan: Plan,
    at: datetime,
) -> coupons.Offer | None:
    """The request's promotion code, if it may be redeemed at `at` (the subscription's
    start); a ValidationError (field promotionCode) saying why not."""
    if request.promotion_code is None:
        return None
    offer = await coupons.find(session, request.organization_id, request.promotion_code)
    if offer is None:
        raise ValidationError("No such promotion code.", "promotionCode")
    returning = False
    if offer.promotion_code.first_time_only:
        # The customer locked: two first subscriptions at once take a first-time code once.
        await customer_repository.live_customer(
            session, request.organization_id, customer_id, lock=True
        )
        returning = await repository.customer_has_subscriptions(session, customer_id)
    reason = coupons.refusal(offer, plan, at, returning_customer=returning)
    if reason is not None:
        raise ValidationError(reason, "promotionCode")
    return offer


def awaits_payment_method(subscription: Subscription, invoice: Invoice | None) -> bool:
    """The subscription's first invoice is left for a payment method it does not have: what
    a checkout session in mode SUBSCRIPTION collects."""
    return (
        subscription.payment_method_id is None
        and subscription.status == SubscriptionStatus.INCOMPLETE
        and invoice is not None
        and invoice.status == invoices.InvoiceStatus.OPEN
    )


def _check_checkout_urls(request: SubscriptionRequest) -> None:
    for value, name in ((request.success_url, "successUrl"), (request.cancel_url, "cancelUrl")):
        if value is None:
            raise ValidationError(
                f"{name} is required: credit does not pay the first invoice, and a checkout "
                "session collects the payment method.",
                name,
            )


async def get(session: AsyncSession, organization_id: int, subscription_id: int) -> Subscription:
    """Raises NotFoundError for an unknown id, or another organization's."""
    row = await repository.subscription_by_id(session, organization_id, subscription_id)
    if row is None:
        raise NotFoundError("Subscription not found.")
    return row


async def _locked(unit: UnitOfWork, organization_id: int, subscription_id: int) -> Subscription:
    row = await repository.subscription_by_id(
        unit.session, organization_id, subscription_id, lock=True
    )
    if row is None:
        raise NotFoundError("Subscription not found.")
    return row


async def cancel(
    unit: UnitOfWork,
    organization_id: int,
    subscription_id: int,
    *,
    at_period_end: bool = True,
    reason: str | None = None,
    now: datetime | None = None,
) -> Subscription:
    """Cancel at the end of the current period (a trial's end for a trial), or now: then no
    more invoices, and it cannot be resumed. Raises NotFoundError, ConflictError (canceled
    already), ValidationError (the reason)."""
    checked = validation.text(reason, "reason", max_length=500)
    row = await _locked(unit, organization_id, subscription_id)
    if row.status == SubscriptionStatus.CANCELED:
        raise ConflictError("The subscription is canceled already.", "subscriptionId")
    at = await subscription_now(unit.session, row.test_clock_id, now)
    row.cancel_reason = checked
    row.updated_at = utcnow()
    renewing = SubscriptionStatus(row.status) in dunning.RENEWING
    if at_period_end and renewing:
        if not row.cancel_at_period_end:
            row.cancel_at_period_end = True
            events.record(
                unit,
                row,
                EventType.CANCEL_SCHEDULED,
                f"Cancels at the end of the period ({row.current_period_end:%Y-%m-%d}).",
                at,
            )
    else:
        end_subscription(unit, row, at, "Canceled.")
    await charges.reschedule(unit, row)
    return row


def end_subscription(unit: UnitOfWork, row: Subscription, at: datetime, message: str) -> None:
    row.status = SubscriptionStatus.CANCELED.value
    row.canceled_at = at
    row.cancel_at_period_end = False
    row.next_billing_at = None
    row.updated_at = utcnow()
    events.record(unit, row, EventType.CANCELED, message, at)


async def set_payment_method(
    unit: UnitOfWork, organization_id: int, subscription_id: int, payment_method_id: int
) -> Subscription:
    """Make the payment method the subscription's, from its next attempt on (the locked
    subscription is returned; run.attach_payment_method also pays what is open). Raises
    NotFoundError, ValidationError (another customer's or provider's method), ConflictError
    (canceled)."""
    row = await _locked(unit, organization_id, subscription_id)
    if row.status == SubscriptionStatus.CANCELED:
        raise ConflictError("The subscription is canceled.", "subscriptionId")
    method = await repository.payment_method_by_id(unit.session, organization_id, payment_method_id)
    if method is None:
        raise NotFoundError("Payment method not found.")
    if method.customer_id != row.customer_id or method.provider != row.provider:
        raise ValidationError(
            "The payment method is not the customer's at this provider.", "paymentMethodId"
        )
    row.payment_method_id = method.id
    row.updated_at = utcnow()
    await unit.session.flush()
    return row


async def resume(
    unit: UnitOfWork, organization_id: int, subscription_id: int, *, now: datetime | None = None
) -> Subscription:
    """Undo a pending cancel. Raises NotFoundError, ConflictError (canceled now, or no
    cancel pending)."""
    row = await _locked(unit, organization_id, subscription_id)
    if row.status == SubscriptionStatus.CANCELED:
        raise ConflictError("A canceled subscription cannot be resumed.", "id")
    if not row.cancel_at_period_end:
        raise ConflictError("The subscription has no pending cancellation.", "id")
    at = await subscription_now(unit.session, row.test_clock_id, now)
    row.cancel_at_period_end = False
    row.cancel_reason = None
    row.updated_at = utcnow()
    events.record(unit, row, EventType.RESUMED, "The pending cancellation was undone.", at)
    await charges.reschedule(unit, row)
    return row


async def change_plan(
    unit: UnitOfWork,
    organization_id: int,
    subscription_id: int,
    plan_id: int,
    *,
    now: datetime | None = None,
) -> Subscription:
    """Switch to `plan_id` from the next period (its next invoice is the new plan's; to
    switch now, prorated, see proration.change_now). Raises NotFoundError, ValidationError
    (an archived plan; another currency), ConflictError (canceled)."""
    row = await _locked(unit, organization_id, subscription_id)
    if row.status == SubscriptionStatus.CANCELED:
        raise ConflictError("The subscription is canceled.", "subscriptionId")
    if row.provider == Provider.STRIPE:
        raise ValidationError(
            "A Stripe subscription changes plan at Stripe (its Customer Portal).",
            "subscriptionId",
        )
    plan = await repository.plan_by_id(unit.session, organization_id, plan_id)
    if plan is None:
        raise NotFoundError("Plan not found.")
    if not plan.active:
        raise ValidationError("The plan is archived.", "planId")
    current = await repository.plan_by_id(unit.session, organization_id, row.plan_id)
    assert current is not None
    if plan.currency != current.currency:
        raise ValidationError("The new plan must bill in the same currency.", "planId")
    at = await subscription_now(unit.session, row.test_clock_id, now)
    row.pending_plan_id = None if plan.id == row.plan_id else plan.id
    row.updated_at = utcnow()
    events.record(
        unit,
        row,
        EventType.PLAN_CHANGED,
        f"Moves to {plan.name} from {row.current_period_end:%Y-%m-%d}.",
        at,
    )
    await unit.session.flush()
    return row
