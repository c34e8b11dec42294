"""Collecting a subscription's payment method: checkout sessions in mode SUBSCRIPTION.

- `subscribe` (createSubscription): the subscription starts (subscriptions.create); when its
  first invoice waits for a payment method (no trial, no method given, credit did not pay it
  in full) a checkout session collects one, keyed by the subscription, so a replay returns the
  same session. If opening it fails after the subscription was written, the subscription stays
  INCOMPLETE and the same request again (same idempotency key) opens it.
- `collect_request` / `open_session` (createCheckoutSession with mode SUBSCRIPTION): a session
  that collects, or replaces, the payment method of an existing subscription that is not
  CANCELED. Its amount is what the oldest open invoice still owes (0 if none) and its currency
  the plan's: `amount` and `currency` may be left out; given, they must be those.
- `complete_with_card` (the sandbox page) and `complete_with_billing_key` (Toss's billing
  authorization): the method is saved, made the subscription's and its open invoice paid
  (credit first, then the method), and the session COMPLETE, all in one unit; the charge runs
  after it commits. The session completes once: a replay finds it COMPLETE and does nothing.
  A declined first charge does not undo the session (the method is saved): the decline is on
  the invoice's attempt and on the session's last payment error, and the subscription stays
  INCOMPLETE (a trial is charged nothing). A SUBSCRIPTION session never credits a wallet.

The provider is chosen in one place, `_open_at_provider` (with `check_provider`, which
refuses before anything is written what it cannot open: Stripe, for now). A Toss session's
provider id is a customerKey of its own (a random UUID), so the billing redirect, which
carries only customerKey and authKey, names exactly one session; the billing key is stored
with it.
"""

import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import cached_property

from billgraph.adapters.base import PaymentError, Provider, ProviderSession, SessionRequest
from billgraph.billing import charges, dunning, payment_methods, repository, run, subscriptions
from billgraph.billing import stripe as stripe_billing
from billgraph.billing.dunning import SubscriptionStatus
from billgraph.billing.subscriptions import SubscriptionRequest, awaits_payment_method
from billgraph.checkout import repository as checkout_repository
from billgraph.checkout.providers import Providers
from billgraph.checkout.service import (
    CheckoutMode,
    CheckoutStatus,
    CreatedSession,
    effective_status,
    record_payment_error,
    redirect_url,
)
from billgraph.core import validation
from billgraph.core.errors import (
    ConflictError,
    IdempotencyConflictError,
    NotFoundError,
    ProviderError,
    ValidationError,
)
from billgraph.core.secrets import Vault, VaultError
from billgraph.core.unit import UnitOfWork, unit_of_work
from billgraph.customers import repository as customer_repository
from billgraph.db.engine import Database
from billgraph.db.models import CheckoutSession, Invoice, InvoiceAttempt, Subscription, utcnow
from billgraph.ledger import service as ledger


@dataclass(frozen=True)
class Subscribed:
    subscription: Subscription
    invoice: Invoice | None
    checkout_session: CheckoutSession | None
    replayed: bool


@dataclass(frozen=True)
class CollectRequest:
    """A checked createCheckoutSession in mode SUBSCRIPTION (see collect_request)."""

    organization_id: int
    customer_id: int
    subscription_id: int
    provider: Provider
    amount: int | None  # None: what the subscription owes
    currency: str | None  # None: the plan's
    success_url: str
    cancel_url: str
    idempotency_key: str

    @cached_property
    def fingerprint(self) -> str:
        payload = [
            self.customer_id,
            self.provider.value,
            CheckoutMode.SUBSCRIPTION.value,
            self.subscription_id,
            self.amount,
            self.currency,
            self.success_url,
            self.cancel_url,
        ]
        return hashlib.sha256(json.dumps(payload).encode()).hexdigest()


@dataclass(frozen=True)
class Collected:
    """A completed subscription checkout: `declined` is the first charge's decline, if the
    method was charged and refused; `replayed` when the session was complete already."""

    session: CheckoutSession
    subscription: Subscription
    declined: PaymentError | None
    replayed: bool


# --- createSubscription -------------------------------------------------------------------


async def subscribe(
    database: Database,
    providers: Providers,
    request: SubscriptionRequest,
    *,
    expires_minutes: int,
    now: datetime | None = None,
) -> Subscribed:
    """Start the subscription (subscriptions.create, idempotent) and, when it waits for a
    payment method, the checkout session that collects it (once per subscription). Raises
    what subscriptions.create raises, ValidationError (successUrl or cancelUrl missing when a
    session is needed: nothing written), ProviderError (the provider is not configured:
    nothing written; or opening the session failed: the subscription is written, a replay
    opens the session)."""
    if request.provider is Provider.STRIPE:  # Stripe runs the cycle; billgraph mirrors it
        started, at_stripe, again = await stripe_billing.create(
            database,
            providers,
            request,
            success_url=request.success_url,
            cancel_url=request.cancel_url,
            now=now,
        )
        return Subscribed(started, None, at_stripe, again)
    unavailable = None
    if request.payment_method_id is None:
        check_provider(request.provider)
        try:
            await _check_configured(providers, request.provider)
        except ProviderError as exc:  # raised only if a checkout turns out to be needed
            unavailable = exc
    request = replace(request, for_checkout=True, checkout_unavailable=unavailable)
    created = await subscriptions.create(database, providers, request, now=now)
    subscription = created.subscription
    key = subscriptions.checkout_key(subscription.id)
    async with database.sessions() as session:
        row = await checkout_repository.session_by_key(session, request.organization_id, key)
    if row is not None and row.subscription_id != subscription.id:
        row = None  # not this subscription's (keys with billgraph's prefix are refused)
    if (
        row is None
        and awaits_payment_method(subscription, created.invoice)
        and request.success_url is not None
        and request.cancel_url is not None
    ):
        assert created.invoice is not None
        opened = await _open(
            database,
            providers,
            subscription,
            amount=_owed(created.invoice),
            currency=created.invoice.currency,
            success_url=request.success_url,
            cancel_url=request.cancel_url,
            idempotency_key=key,
            request_hash=request.fingerprint,
            expires_minutes=expires_minutes,
        )
        row = opened.session
    return Subscribed(subscription, created.invoice, row, created.replayed)


async def _check_configured(providers: Providers, provider: Provider) -> None:
    """Before anything is written: the provider exists here, and Toss's billing key could be
    stored (it is encrypted)."""
    await providers.get(provider)
    if provider is Provider.TOSS:
        try:
            Vault(providers.settings.encryption_key)
        except VaultError as exc:
            raise ProviderError("provider_not_configured", exc.message, provider.value) from None


def _owed(invoice: Invoice) -> int:
    return invoice.amount_due - invoice.amount_paid


# --- createCheckoutSession(mode: SUBSCRIPTION) --------------------------------------------


def collect_request(
    organization_id: int,
    *,
    customer_id: int,
    subscription_id: int | None,
    provider: Provider,
    amount: int | None,
    currency: str | None,
    success_url: str,
    cancel_url: str,
    idempotency_key: str,
) -> CollectRequest:
    """The checked request; raises ValidationError naming the field at fault."""
    key = validation.text(idempotency_key, "idempotencyKey", max_length=255, required=True)
    assert key is not None
    if key.startswith(ledger.RESERVED_KEY_PREFIX):
        raise ValidationError(
            f"Idempotency keys starting with {ledger.RESERVED_KEY_PREFIX!r} are reserved.",
            "idempotencyKey",
        )
    if subscription_id is None:
        raise ValidationError("A SUBSCRIPTION checkout names its subscriptionId.", "subscriptionId")
    check_provider(provider)
    if amount is not None and (
        isinstance(amount, bool)
        or not isinstance(amount, int)
        or not 0 <= amount <= validation.MAX_AMOUNT
    ):
        raise ValidationError("Amount must be an integer in minor units, 0 or more.", "amount")
    return CollectRequest(
        organization_id=organization_id,
        customer_id=customer_id,
        subscription_id=subscription_id,
        provider=provider,
        amount=amount,
        currency=None if currency is None else validation.currency(currency),
        success_url=redirect_url(success_url, "successUrl"),
        cancel_url=redirect_url(cancel_url, "cancelUrl"),
        idempotency_key=key,
    )


async def open_session(
    database: Database, providers: Providers, request: CollectRequest, *, expires_minutes: int
) -> CreatedSession:
    """A session collecting the subscription's payment method, exactly once per key (a
    replay returns it, `replayed`). Raises NotFoundError (the customer, or a subscription that
    is not this customer's in this organization), ConflictError (CANCELED), ValidationError
    (another provider than the subscription's; an amount or currency that is not what it
    owes), IdempotencyConflictError, ProviderError; in each case nothing is written."""
    org = request.organization_id
    async with database.sessions() as session:
        existing = await checkout_repository.session_by_key(session, org, request.idempotency_key)
        if existing is not None:
            return _replay(existing, request.fingerprint, request.idempotency_key)
        customer = await customer_repository.live_customer(session, org, request.customer_id)
        subscription = await repository.subscription_by_id(session, org, request.subscription_id)
        if customer is None:
            raise NotFoundError("Customer not found.")
        if subscription is None or subscription.customer_id != customer.id:
            raise NotFoundError("Subscription not found.")
        if subscription.status == SubscriptionStatus.CANCELED:
            raise ConflictError("The subscription is canceled.", "subscriptionId")
        if subscription.provider != request.provider.value:
            raise ValidationError(
                f"The subscription is billed through {subscription.provider}.", "provider"
            )
        plan = await repository.plan_by_id(session, org, subscription.plan_id)
        assert plan is not None
        open_rows = await repository.open_invoices(session, subscription.id)
    owed = _owed(open_rows[0]) if open_rows else 0
    if request.currency is not None and request.currency != plan.currency:
        raise ValidationError(f"The subscription bills in {plan.currency}.", "currency")
    if request.amount is not None and request.amount != owed:
        raise ValidationError(
            f"The subscription owes {owed} (its oldest open invoice): leave amount out, or "
            "send that.",
            "amount",
        )
    await _check_configured(providers, request.provider)
    return await _open(
        database,
        providers,
        subscription,
        amount=owed,
        currency=plan.currency,
        success_url=request.success_url,
        cancel_url=request.cancel_url,
        idempotency_key=request.idempotency_key,
        request_hash=request.fingerprint,
        expires_minutes=expires_minutes,
    )


# --- opening a session --------------------------------------------------------------------


async def _open(
    database: Database,
    providers: Providers,
    subscription: Subscription,
    *,
    amount: int,
    currency: str,
    success_url: str,
    cancel_url: str,
    idempotency_key: str,
    request_hash: str,
    expires_minutes: int,
) -> CreatedSession:
    """Open the session at the provider, then store it; of two racing requests with one key
    the first stored wins and the other's provider session is left unused."""
    org = subscription.organization_id
    async with database.sessions() as session:
        plan = await repository.plan_by_id(session, org, subscription.plan_id)
    assert plan is not None
    prefix = await providers.key_prefix()
    now = utcnow()
    expires_at = now + timedelta(minutes=expires_minutes)
    opened = await _open_at_provider(
        providers,
        Provider(subscription.provider),
        SessionRequest(
            reference=f"{org}:{idempotency_key}",
            customer_reference=str(subscription.customer_id),
            provider_customer_id=None,
            description=f"Subscription to {plan.name}",
            amount=amount,
            currency=currency,
            success_url=success_url,
            cancel_url=cancel_url,
            expires_at=expires_at,
            idempotency_key=f"{prefix}checkout-"
            + hashlib.sha256(f"{org}:{idempotency_key}".encode()).hexdigest(),
            metadata={
                "billgraph_organization_id": str(org),
                "billgraph_customer_id": str(subscription.customer_id),
                "billgraph_subscription_id": str(subscription.id),
            },
        ),
    )
    async with unit_of_work(database) as unit:
        new_id = await checkout_repository.insert_session(
            unit,
            {
                "organization_id": org,
                "customer_id": subscription.customer_id,
                "subscription_id": subscription.id,
                "provider": subscription.provider,
                "mode": CheckoutMode.SUBSCRIPTION.value,
                "status": CheckoutStatus.OPEN.value,
                "amount": amount,
                "currency": currency,
                "success_url": success_url,
                "cancel_url": cancel_url,
                "url": opened.url,
                "provider_session_id": opened.provider_session_id,
                "idempotency_key": idempotency_key,
                "request_hash": request_hash,
                "expires_at": expires_at,
                "created_at": now,
                "updated_at": now,
            },
        )
        if new_id is None:  # a concurrent request with the same key won
            raced = await checkout_repository.session_by_key(unit.session, org, idempotency_key)
            assert raced is not None
            return _replay(raced, request_hash, idempotency_key)
        row = await checkout_repository.session_by_id(unit.session, org, new_id)
        assert row is not None
    return CreatedSession(session=row, replayed=False)


def check_provider(provider: Provider) -> None:
    """Refused before anything is written: a provider `_open_at_provider` has no branch for.
    Stripe runs its subscriptions: createSubscription opens their checkout (billing/stripe.py)
    and the customer replaces the card in Stripe's Customer Portal."""
    if provider is Provider.STRIPE:
        raise ValidationError(
            "A Stripe subscription's payment method is changed in Stripe's Customer Portal "
            "(createBillingPortalSession).",
            "provider",
        )


async def _open_at_provider(
    providers: Providers, provider: Provider, request: SessionRequest
) -> ProviderSession:
    """Where each provider collects a payment method: the sandbox's page, a Toss billing
    authorization (requestBillingAuth on billgraph's page)."""
    if provider is Provider.SANDBOX:
        return await (await providers.sandbox()).create_checkout_session(request)
    if provider is Provider.TOSS:
        return await providers.toss().open_billing_authorization(request)
    check_provider(provider)
    raise AssertionError(provider)


def _replay(existing: CheckoutSession, request_hash: str, key: str) -> CreatedSession:
    if existing.request_hash != request_hash or existing.mode != CheckoutMode.SUBSCRIPTION:
        raise IdempotencyConflictError(key)
    return CreatedSession(session=existing, replayed=True)


# --- completing a session -----------------------------------------------------------------


async def subscription_session(
    database: Database, provider: Provider, provider_session_id: str
) -> CheckoutSession | None:
    """The SUBSCRIPTION session the provider's id names (any organization's: the page's and
    the redirect's address is the secret), or None."""
    async with database.sessions() as session:
        row = await checkout_repository.session_by_provider_id(
            session, provider.value, provider_session_id
        )
    if row is None or row.mode != CheckoutMode.SUBSCRIPTION or row.subscription_id is None:
        return None
    return row


async def complete_with_card(
    database: Database, providers: Providers, provider_session_id: str, card_number: str
) -> Collected:
    """The sandbox page: save the test card as the subscription's payment method and pay
    its open invoice with it. Raises NotFoundError (no such SUBSCRIPTION session),
    ValidationError (a card that cannot be saved: the session stays OPEN with the error),
    ConflictError (the session expired or failed, or the subscription was canceled)."""

    async def save(unit: UnitOfWork, row: CheckoutSession) -> int:
        method = await payment_methods.save_sandbox_card(
            unit, row.organization_id, row.customer_id, card_number
        )
        return method.id

    return await _complete(database, providers, Provider.SANDBOX, provider_session_id, save)


async def complete_with_billing_key(
    database: Database, providers: Providers, customer_key: str, auth_key: str
) -> Collected:
    """Toss's billing success redirect: issue the billing key for the authKey (Toss's
    Idempotency-Key derives from it, so a racing duplicate gets the same key), store it
    encrypted, make it the subscription's and pay its open invoice. A session complete
    already issues nothing. Raises NotFoundError (the customerKey names no SUBSCRIPTION
    session), ConflictError (expired, failed, canceled), ProviderError (Toss refused the
    authKey: recorded on the session, which stays OPEN; or Toss is not configured)."""
    row = await subscription_session(database, Provider.TOSS, customer_key)
    if row is None:
        raise NotFoundError("No subscription checkout has this customerKey.")
    if row.status == CheckoutStatus.COMPLETE:
        return await _collected(database, row, replayed=True)
    _check_open(row)
    try:
        vault = Vault(providers.settings.encryption_key)
    except VaultError as exc:
        raise ProviderError("provider_not_configured", exc.message, Provider.TOSS.value) from None
    try:
        issued = await providers.toss().issue_billing_key(auth_key, customer_key)
    except ProviderError as exc:
        if exc.code not in ("provider_unavailable", "provider_not_configured"):
            error = PaymentError(exc.code, exc.message, exc.decline_code)
            async with unit_of_work(database) as unit:
                await record_payment_error(unit, Provider.TOSS, customer_key, error)
        raise
    if issued.customer_key != customer_key:
        raise ProviderError(
            "invalid_request", "The billing key is not this customerKey's.", Provider.TOSS.value
        )

    async def save(unit: UnitOfWork, row: CheckoutSession) -> int:
        method = await payment_methods.save_billing_key(
            unit, vault, row.organization_id, row.customer_id, issued
        )
        return method.id

    return await _complete(database, providers, Provider.TOSS, customer_key, save)


def _check_open(row: CheckoutSession) -> None:
    state = effective_status(row)
    if state is not CheckoutStatus.OPEN:
        raise ConflictError(f"The checkout session is {state.value}.", "id")


async def _complete(
    database: Database,
    providers: Providers,
    provider: Provider,
    provider_session_id: str,
    save: Callable[[UnitOfWork, CheckoutSession], Awaitable[int]],
) -> Collected:
    """Save the method (`save`, in the unit), attach it and complete the session in one unit,
    then charge what the attachment left to the method."""
    async with unit_of_work(database) as unit:
        row = await checkout_repository.session_by_provider_id(
            unit.session, provider.value, provider_session_id, lock=True
        )
        if row is None or row.mode != CheckoutMode.SUBSCRIPTION or row.subscription_id is None:
            raise NotFoundError("Checkout session not found.")
        if row.status == CheckoutStatus.COMPLETE:  # a replay, or a racing request won
            return await _collected(database, row, replayed=True, unit=unit)
        _check_open(row)
        method_id = await save(unit, row)
        attempt_id = await run.start_with_payment_method(
            unit, row.organization_id, row.subscription_id, method_id
        )
        now = utcnow()
        row.status = CheckoutStatus.COMPLETE.value
        row.payment_method_id = method_id
        row.completed_at = now
        row.updated_at = now
        row.last_payment_error_code = None
        row.last_payment_error_message = None
        org, session_id = row.organization_id, row.id
    if attempt_id is not None:
        await charges.charge(database, providers, attempt_id, dunning.policy(providers.settings))
        async with unit_of_work(database) as unit:
            attempt = await unit.session.get_one(InvoiceAttempt, attempt_id)
            locked = await checkout_repository.session_by_id(
                unit.session, org, session_id, lock=True
            )
            assert locked is not None
            if attempt.failure_code is not None:  # the decline, shown with the session
                locked.last_payment_error_code = attempt.failure_code
                locked.last_payment_error_message = attempt.failure_message
                locked.updated_at = utcnow()
    async with database.sessions() as session:
        done = await checkout_repository.session_by_id(session, org, session_id)
    assert done is not None
    return await _collected(database, done, replayed=False)


async def _collected(
    database: Database,
    row: CheckoutSession,
    *,
    replayed: bool,
    unit: UnitOfWork | None = None,
) -> Collected:
    assert row.subscription_id is not None
    if unit is not None:
        subscription = await subscriptions.get(
            unit.session, row.organization_id, row.subscription_id
        )
    else:
        async with database.sessions() as session:
            subscription = await subscriptions.get(
                session, row.organization_id, row.subscription_id
            )
    declined = (
        None
        if row.last_payment_error_code is None
        else PaymentError(row.last_payment_error_code, row.last_payment_error_message or "")
    )
    return Collected(row, subscription, declined, replayed)
