"""Checkout sessions: a customer pays at a provider, and the wallet is credited once the
provider confirms it (webhooks.py).

- `create` is idempotent per organization and idempotency key, with createLedgerEntry's
  rules: the same key and input return the original session (`replayed`) and ask nothing of
  the provider; other input is an IdempotencyConflictError. It is a unit of work of its own
  (as ledger.commit_entry is): the provider is called between the read and the write, outside
  any transaction, and a failed provider call writes nothing.
- `expire`: an OPEN session can no longer be paid, at the provider and here (a payment the
  provider confirms later still credits: the money was taken).
"""

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from functools import cached_property
from urllib.parse import urlsplit

from sqlalchemy.ext.asyncio import AsyncSession

from billgraph.adapters.base import (
    CustomerRequest,
    PaymentError,
    PaymentProvider,
    Provider,
    SessionRequest,
)
from billgraph.checkout import repository
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
from billgraph.db.models import CheckoutSession, Customer, utcnow
from billgraph.ledger.service import RESERVED_KEY_PREFIX

MAX_URL_LENGTH = 2000


class CheckoutMode(StrEnum):
    TOP_UP = "TOP_UP"
    SUBSCRIPTION = "SUBSCRIPTION"


class CheckoutStatus(StrEnum):
    OPEN = "OPEN"
    COMPLETE = "COMPLETE"
    EXPIRED = "EXPIRED"
    FAILED = "FAILED"


@dataclass(frozen=True)
class CheckoutRequest:
    """A checked request to open a checkout session (see checkout_request)."""

    organization_id: int
    customer_id: int
    provider: Provider
    mode: CheckoutMode
    amount: int
    currency: str
    success_url: str
    cancel_url: str
    idempotency_key: str

    @cached_property
    def fingerprint(self) -> str:
        """What a replay must match: every parameter except the key itself."""
        payload = [
            self.customer_id,
            self.provider.value,
            self.mode.value,
            self.amount,
            self.currency,
            self.success_url,
            self.cancel_url,
        ]
        return hashlib.sha256(json.dumps(payload).encode()).hexdigest()


@dataclass(frozen=True)
class CreatedSession:
    session: CheckoutSession
    replayed: bool


def redirect_url(value: str, field: str) -> str:
    """An absolute http(s) URL with a host: where the provider sends the customer back."""
    url = validation.text(value, field, max_length=MAX_URL_LENGTH, required=True)
    assert url is not None
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not one
    except ValueError:
        raise ValidationError(f"{field} is not a valid URL.", field) from None
    if parts.scheme not in ("http", "https") or not parts.hostname or " " in url:
        raise ValidationError(f"{field} must be an absolute http or https URL.", field)
    return url


def checkout_request(
    organization_id: int,
    *,
    customer_id: int,
    provider: Provider,
    mode: CheckoutMode,
    amount: int,
    currency: str,
    success_url: str,
    cancel_url: str,
    idempotency_key: str,
) -> CheckoutRequest:
    """The checked request; raises ValidationError naming the field at fault."""
    key = validation.text(idempotency_key, "idempotencyKey", max_length=255, required=True)
    assert key is not None
    if key.startswith(RESERVED_KEY_PREFIX):  # billgraph keys the sessions it opens itself
        raise ValidationError(
            f"Idempotency keys starting with {RESERVED_KEY_PREFIX!r} are reserved.",
            "idempotencyKey",
        )
    if mode is CheckoutMode.SUBSCRIPTION:
        # billing.collect opens those (createCheckoutSession dispatches on the mode).
        raise ValidationError("A SUBSCRIPTION checkout names its subscriptionId.", "mode")
    return CheckoutRequest(
        organization_id=organization_id,
        customer_id=customer_id,
        provider=provider,
        mode=mode,
        amount=validation.amount(amount),
        currency=validation.currency(currency),
        success_url=redirect_url(success_url, "successUrl"),
        cancel_url=redirect_url(cancel_url, "cancelUrl"),
        idempotency_key=key,
    )


async def create(
    database: Database, providers: Providers, request: CheckoutRequest, *, expires_minutes: int
) -> CreatedSession:
    """Open a checkout session at the provider, exactly once per idempotency key.

    Raises NotFoundError (unknown customer, or another organization's),
    IdempotencyConflictError, ProviderError (the provider refused, failed or is not
    configured); in each case nothing is written.
    """
    async with database.sessions() as session:
        customer = await customer_repository.live_customer(
            session, request.organization_id, request.customer_id
        )
        if customer is None:
            raise NotFoundError("Customer not found.")
        existing = await repository.session_by_key(
            session, request.organization_id, request.idempotency_key
        )
        known_id = await repository.provider_customer_id(
            session, request.customer_id, request.provider.value
        )
    if existing is not None:
        return _replay(existing, request)
    adapter = await providers.get(request.provider)
    prefix = await providers.key_prefix()
    provider_customer_id = known_id or await _make_provider_customer(
        database, adapter, customer, prefix
    )
    now = utcnow()
    expires_at = now + timedelta(minutes=expires_minutes)
    opened = await adapter.create_checkout_session(
        SessionRequest(
            reference=f"{request.organization_id}:{request.idempotency_key}",
            customer_reference=str(request.customer_id),
            provider_customer_id=provider_customer_id,
            description=f"Wallet top-up ({request.currency})",
            amount=request.amount,
            currency=request.currency,
            success_url=request.success_url,
            cancel_url=request.cancel_url,
            expires_at=expires_at,
            idempotency_key=f"{prefix}checkout-"
            + hashlib.sha256(
                f"{request.organization_id}:{request.idempotency_key}".encode()
            ).hexdigest(),
            metadata={
                "billgraph_organization_id": str(request.organization_id),
                "billgraph_customer_id": str(request.customer_id),
            },
        )
    )
    async with unit_of_work(database) as unit:
        new_id = await repository.insert_session(
            unit,
            {
                "organization_id": request.organization_id,
                "customer_id": request.customer_id,
                "provider": request.provider.value,
                "mode": request.mode.value,
                "status": CheckoutStatus.OPEN.value,
                "amount": request.amount,
                "currency": request.currency,
                "success_url": request.success_url,
                "cancel_url": request.cancel_url,
                "url": opened.url,
                "provider_session_id": opened.provider_session_id,
                "idempotency_key": request.idempotency_key,
                "request_hash": request.fingerprint,
                "expires_at": expires_at,
                "created_at": now,
                "updated_at": now,
            },
        )
        if new_id is None:  # a concurrent request with the same key won
            raced = await repository.session_by_key(
                unit.session, request.organization_id, request.idempotency_key
            )
            assert raced is not None
            return _replay(raced, request)
        row = await repository.session_by_id(unit.session, request.organization_id, new_id)
        assert row is not None
    return CreatedSession(session=row, replayed=False)


async def _make_provider_customer(
    database: Database, adapter: PaymentProvider, customer: Customer, prefix: str
) -> str | None:
    """The customer's id at the provider, made there once: the provider's idempotency key
    derives from our id, and of two racing requests the first to store its id wins."""
    made = await adapter.ensure_customer(
        CustomerRequest(
            reference=str(customer.id),
            email=customer.email,
            name=customer.name,
            idempotency_key=f"{prefix}customer-{customer.id}",
        )
    )
    if made is None:
        return None
    async with unit_of_work(database) as unit:
        await repository.insert_provider_customer(
            unit,
            organization_id=customer.organization_id,
            customer_id=customer.id,
            provider=adapter.name.value,
            provider_id=made,
        )
        stored = await repository.provider_customer_id(
            unit.session, customer.id, adapter.name.value
        )
    return stored or made


def _replay(existing: CheckoutSession, request: CheckoutRequest) -> CreatedSession:
    if existing.request_hash != request.fingerprint:
        raise IdempotencyConflictError(request.idempotency_key)
    return CreatedSession(session=existing, replayed=True)


def effective_status(row: CheckoutSession, now: datetime | None = None) -> CheckoutStatus:
    """The session's status, an OPEN one past its expiry being EXPIRED."""
    status = CheckoutStatus(row.status)
    if status is CheckoutStatus.OPEN and row.expires_at <= (now or utcnow()):
        return CheckoutStatus.EXPIRED
    return status


async def get(session: AsyncSession, organization_id: int, session_id: int) -> CheckoutSession:
    row = await repository.session_by_id(session, organization_id, session_id)
    if row is None:
        raise NotFoundError("Checkout session not found.")
    return row


async def expire(
    database: Database, providers: Providers, organization_id: int, session_id: int
) -> CheckoutSession:
    """An OPEN session can no longer be paid: expired at the provider first (Stripe), then
    here; an expired one stays so. Raises NotFoundError, ConflictError (the session is
    complete or failed), ProviderError (the provider could not be reached: nothing changed).

    A provider that has the session paid already answers invalid_request: it is expired here
    all the same, and the payment's event credits it late (the money was taken)."""
    async with database.sessions() as session:
        row = await _expirable(session, organization_id, session_id)
    if row.status == CheckoutStatus.OPEN:
        adapter = await providers.get(Provider(row.provider))
        try:
            await adapter.expire_checkout_session(row.provider_session_id)
        except ProviderError as exc:
            if exc.code != "invalid_request":
                raise
    async with unit_of_work(database) as unit:
        row = await _expirable(unit.session, organization_id, session_id, lock=True)
        if row.status == CheckoutStatus.OPEN:
            now = utcnow()
            row.status = CheckoutStatus.EXPIRED.value
            row.expires_at = min(row.expires_at, now)
            row.updated_at = now
            await unit.session.flush()
    return row


async def _expirable(
    session: AsyncSession, organization_id: int, session_id: int, *, lock: bool = False
) -> CheckoutSession:
    row = await repository.session_by_id(session, organization_id, session_id, lock=lock)
    if row is None:
        raise NotFoundError("Checkout session not found.")
    if row.status in (CheckoutStatus.COMPLETE, CheckoutStatus.FAILED):
        raise ConflictError(f"The checkout session is {row.status}: it cannot expire.", "id")
    return row


async def record_payment_error(
    unit: UnitOfWork, provider: Provider, provider_session_id: str, error: PaymentError
) -> CheckoutSession | None:
    """A declined attempt: the session stays OPEN (another card may pay it) and carries the
    error. None if the provider's id names no session."""
    row = await repository.session_by_provider_id(
        unit.session, provider.value, provider_session_id, lock=True
    )
    if row is None:
        return None
    if row.status == CheckoutStatus.OPEN:
        row.last_payment_error_code = error.code
        row.last_payment_error_message = error.message[:500]
        row.updated_at = utcnow()
        await unit.session.flush()
    return row
