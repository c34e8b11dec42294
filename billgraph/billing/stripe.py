"""Subscriptions Stripe runs (provider STRIPE): started through a Stripe Checkout Session in
subscription mode, then billed by Stripe and mirrored from its webhooks (stripe_mirror.py).

- `create` (subscriptions.create dispatches here) is idempotent per organization and key:
  the subscription is written INCOMPLETE first, then the Checkout Session is opened at
  Stripe with a key derived from the subscription (its metadata and its subscription's carry
  billgraph's organization, customer and subscription ids) and stored as the subscription's
  checkout session. If Stripe fails in between, the same request again (same key) opens it:
  Stripe replays the session for the same key. INCOMPLETE until the checkout completes, a
  trial included (Stripe collects the card in checkout even then).
- `cancel` and `resume` ask Stripe (DELETE now; cancel_at_period_end otherwise) and mirror
  its answer; `portal_url` opens the Stripe Customer Portal for a Stripe customer.
"""

import hashlib
from datetime import datetime, timedelta

from billgraph.adapters.base import Provider
from billgraph.adapters.stripe_billing import (
    CUSTOMER_KEY,
    ORGANIZATION_KEY,
    SUBSCRIPTION_KEY,
    SubscriptionCheckoutRequest,
)
from billgraph.billing import events, periods, repository
from billgraph.billing.clock import customer_clock, system_now
from billgraph.billing.dunning import RENEWING, SubscriptionStatus
from billgraph.billing.events import EventType
from billgraph.billing.stripe_mirror import apply_subscription
from billgraph.billing.subscriptions import SubscriptionRequest, checkout_key
from billgraph.checkout import repository as checkout_repository
from billgraph.checkout import service as checkout
from billgraph.checkout.providers import Providers
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
from billgraph.db.models import CheckoutSession, Subscription, utcnow

STRIPE = Provider.STRIPE.value


def _fingerprint(request: SubscriptionRequest, success_url: str, cancel_url: str) -> str:
    """What a replay must match: the request's parameters and where checkout returns to."""
    payload = f"{request.fingerprint}|{success_url}|{cancel_url}"
    return hashlib.sha256(payload.encode()).hexdigest()


async def create(
    database: Database,
    providers: Providers,
    request: SubscriptionRequest,
    *,
    success_url: str | None,
    cancel_url: str | None,
    now: datetime | None = None,
) -> tuple[Subscription, CheckoutSession | None, bool]:
    """The INCOMPLETE subscription, its Stripe checkout session (None once the checkout has
    completed), and whether this was a replay.

    Raises ValidationError (successUrl or cancelUrl missing or malformed, an archived plan, a
    payment method given, a test-clock customer: Stripe subscriptions take none), NotFoundError,
    IdempotencyConflictError (nothing written), ProviderError (Stripe is not configured:
    nothing written; Stripe refused or failed: the subscription stays INCOMPLETE without a
    session, and the same request again finishes it)."""
    if success_url is None:
        raise ValidationError("A Stripe subscription needs successUrl.", "successUrl")
    if cancel_url is None:
        raise ValidationError("A Stripe subscription needs cancelUrl.", "cancelUrl")
    success = checkout.redirect_url(success_url, "successUrl")
    cancel = checkout.redirect_url(cancel_url, "cancelUrl")
    if request.payment_method_id is not None:
        raise ValidationError(
            "Stripe collects the payment method in its checkout.", "paymentMethodId"
        )
    adapter = providers.stripe()  # not configured: refused before anything is written
    fingerprint = _fingerprint(request, success, cancel)
    async with unit_of_work(database) as unit:
        row, replayed = await _subscription(unit, request, fingerprint, now)
    async with database.sessions() as session:
        opened = await checkout_repository.session_by_key(
            session, request.organization_id, checkout_key(row.id)
        )
        customer = await customer_repository.live_customer(
            session, request.organization_id, request.customer_id
        )
        plan = await repository.plan_by_id(session, request.organization_id, request.plan_id)
        known = await checkout_repository.provider_customer_id(session, request.customer_id, STRIPE)
    waiting = row.status == SubscriptionStatus.INCOMPLETE and row.provider_subscription_id is None
    if opened is not None or not waiting or customer is None or plan is None:
        return row, opened if waiting else None, replayed
    prefix = await providers.key_prefix()
    provider_customer = known or await checkout._make_provider_customer(
        database, adapter, customer, prefix
    )
    assert provider_customer is not None  # Stripe always makes one
    expires_at = utcnow() + timedelta(minutes=providers.settings.checkout_expires_minutes)
    trial_days = plan.trial_days if request.trial_days is None else request.trial_days
    made = await adapter.create_subscription_checkout(
        SubscriptionCheckoutRequest(
            provider_customer_id=provider_customer,
            description=plan.name,
            amount=plan.amount,
            currency=plan.currency,
            interval=plan.interval.lower(),
            interval_count=plan.interval_count,
            trial_days=trial_days,
            success_url=success,
            cancel_url=cancel,
            expires_at=expires_at,
            idempotency_key=f"{prefix}subscription-checkout-{row.id}",
            metadata={
                ORGANIZATION_KEY: str(request.organization_id),
                CUSTOMER_KEY: str(request.customer_id),
                SUBSCRIPTION_KEY: str(row.id),
            },
        )
    )
    async with unit_of_work(database) as unit:
        stamp = utcnow()
        await checkout_repository.insert_session(
            unit,
            {
                "organization_id": request.organization_id,
                "customer_id": request.customer_id,
                "provider": STRIPE,
                "mode": checkout.CheckoutMode.SUBSCRIPTION.value,
                "status": checkout.CheckoutStatus.OPEN.value,
                "amount": plan.amount,
                "currency": plan.currency,
                "success_url": success,
                "cancel_url": cancel,
                "url": made.url,
                "provider_session_id": made.provider_session_id,
                "idempotency_key": checkout_key(row.id),
                "subscription_id": row.id,
                "request_hash": fingerprint,
                "expires_at": expires_at,
                "created_at": stamp,
                "updated_at": stamp,
            },
        )
        # Inserted, or a racing request with the same key inserted the same session.
        opened = await checkout_repository.session_by_key(
            unit.session, request.organization_id, checkout_key(row.id)
        )
    return row, opened, replayed


async def _subscription(
    unit: UnitOfWork, request: SubscriptionRequest, fingerprint: str, now: datetime | None
) -> tuple[Subscription, bool]:
    """The subscription of this key: the existing one (a replay), or a new INCOMPLETE one."""
    session, org = unit.session, request.organization_id
    existing = await repository.subscription_by_key(session, org, request.idempotency_key)
    if existing is not None:
        if existing.request_hash != fingerprint:
            raise IdempotencyConflictError(request.idempotency_key)
        return existing, True
    customer = await customer_repository.live_customer(session, org, request.customer_id)
    if customer is None:
        raise NotFoundError("Customer not found.")
    plan = await repository.plan_by_id(session, org, request.plan_id)
    if plan is None:
        raise NotFoundError("Plan not found.")
    if not plan.active:
        raise ValidationError("The plan is archived: it takes no new subscriptions.", "planId")
    if await customer_clock(session, customer.id) is not None:
        raise ValidationError("A test-clock customer can use the sandbox only.", "provider")
    start = system_now(now)
    trial_days = plan.trial_days if request.trial_days is None else request.trial_days
    # Estimates until Stripe's subscription exists: the mirror writes Stripe's own.
    trial_end = periods.trial_end(start, trial_days) if trial_days > 0 else None
    end = trial_end or periods.next_boundary(start, plan.interval, plan.interval_count, start)
    new_id = await repository.insert_subscription(
        unit,
        {
            "organization_id": org,
            "customer_id": customer.id,
            "plan_id": plan.id,
            "status": SubscriptionStatus.INCOMPLETE.value,
            "provider": STRIPE,
            "current_period_start": start,
            "current_period_end": end,
            "billing_anchor": start,
            "trial_end": trial_end,
            "cancel_at_period_end": False,
            "idempotency_key": request.idempotency_key,
            "request_hash": fingerprint,
            "created_at": start,
            "updated_at": utcnow(),
        },
    )
    if new_id is None:  # a concurrent request with the same key won
        raced = await repository.subscription_by_key(session, org, request.idempotency_key)
        assert raced is not None
        if raced.request_hash != fingerprint:
            raise IdempotencyConflictError(request.idempotency_key)
        return raced, True
    row = await repository.subscription_by_id(session, org, new_id)
    assert row is not None
    events.record(unit, row, EventType.CREATED, f"Subscribed to {plan.name} through Stripe.", start)
    return row, False


async def _stripe_subscription(
    database: Database, organization_id: int, subscription_id: int
) -> Subscription | None:
    async with database.sessions() as session:
        row = await repository.subscription_by_id(session, organization_id, subscription_id)
    if row is None:
        raise NotFoundError("Subscription not found.")
    return row if row.provider == STRIPE else None


async def cancel(
    database: Database,
    providers: Providers,
    organization_id: int,
    subscription_id: int,
    *,
    at_period_end: bool,
    reason: str | None,
) -> Subscription | None:
    """Cancel a Stripe subscription at Stripe, then mirror Stripe's answer; None when the
    subscription is not Stripe's (subscriptions.cancel does it). At period end while it
    renews (cancel_at_period_end), else now (DELETE). Before its checkout completed there is
    nothing at Stripe but the session, which is expired there. Raises NotFoundError,
    ConflictError (canceled already), ValidationError (the reason), ProviderError (Stripe
    failed: nothing changed here)."""
    checked = validation.text(reason, "reason", max_length=500)
    row = await _stripe_subscription(database, organization_id, subscription_id)
    if row is None:
        return None
    if row.status == SubscriptionStatus.CANCELED:
        raise ConflictError("The subscription is canceled already.", "subscriptionId")
    adapter = providers.stripe()
    fetched_at = utcnow()
    if row.provider_subscription_id is None:
        await _expire_checkout(database, providers, row)
        async with unit_of_work(database) as unit:
            row = await _locked(unit, row)
            if row.provider_subscription_id is None:
                row.cancel_reason = checked
                row.status = SubscriptionStatus.CANCELED.value
                row.canceled_at = row.updated_at = fetched_at
                row.next_billing_at = None
                events.record(unit, row, EventType.CANCELED, "Canceled.", fetched_at)
                return row
        # Its checkout completed meanwhile: the subscription is at Stripe, canceled there.
    assert row.provider_subscription_id is not None
    if at_period_end and SubscriptionStatus(row.status) in RENEWING:
        found = await adapter.set_cancel_at_period_end(row.provider_subscription_id, True)
    else:
        found = await adapter.cancel_subscription(row.provider_subscription_id)
    async with unit_of_work(database) as unit:
        locked = await _locked(unit, row)
        locked.cancel_reason = checked
        await apply_subscription(unit, locked, found, fetched_at)
        await unit.session.flush()
    return locked


async def resume(
    database: Database, providers: Providers, organization_id: int, subscription_id: int
) -> Subscription | None:
    """Undo a pending cancellation at Stripe, then mirror its answer; None when the
    subscription is not Stripe's. Raises NotFoundError, ConflictError (canceled, or no
    cancellation pending), ProviderError."""
    row = await _stripe_subscription(database, organization_id, subscription_id)
    if row is None:
        return None
    if row.status == SubscriptionStatus.CANCELED:
        raise ConflictError("A canceled subscription cannot be resumed.", "id")
    if not row.cancel_at_period_end or row.provider_subscription_id is None:
        raise ConflictError("The subscription has no pending cancellation.", "id")
    fetched_at = utcnow()
    found = await providers.stripe().set_cancel_at_period_end(row.provider_subscription_id, False)
    async with unit_of_work(database) as unit:
        locked = await _locked(unit, row)
        locked.cancel_reason = None
        await apply_subscription(unit, locked, found, fetched_at)
        await unit.session.flush()
    return locked


async def _locked(unit: UnitOfWork, row: Subscription) -> Subscription:
    locked = await repository.subscription_by_id(
        unit.session, row.organization_id, row.id, lock=True
    )
    assert locked is not None
    return locked


async def _expire_checkout(database: Database, providers: Providers, row: Subscription) -> None:
    """The subscription's open checkout can no longer be paid (Stripe first)."""
    async with database.sessions() as session:
        opened = await checkout_repository.session_by_key(
            session, row.organization_id, checkout_key(row.id)
        )
    if opened is not None and opened.status == checkout.CheckoutStatus.OPEN:
        await checkout.expire(database, providers, row.organization_id, opened.id)


async def portal_url(
    database: Database,
    providers: Providers,
    organization_id: int,
    customer_id: int,
    return_url: str,
) -> str:
    """A Stripe Customer Portal session's URL for the customer (its subscriptions, payment
    methods and invoices at Stripe). Raises ValidationError (returnUrl), NotFoundError,
    ProviderError (unsupported: the customer has no Stripe customer; or Stripe failed)."""
    back = checkout.redirect_url(return_url, "returnUrl")
    async with database.sessions() as session:
        customer = await customer_repository.live_customer(session, organization_id, customer_id)
        if customer is None:
            raise NotFoundError("Customer not found.")
        known = await checkout_repository.provider_customer_id(session, customer_id, STRIPE)
    if known is None:
        raise ProviderError(
            "unsupported",
            "The Customer Portal is Stripe's: this customer has no Stripe customer.",
            STRIPE,
        )
    return await providers.stripe().create_portal_session(known, back)
