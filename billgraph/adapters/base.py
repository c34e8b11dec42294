"""What billgraph asks of a payment provider, in provider-neutral terms: a customer at the
provider, a checkout session, a refund, and a webhook verified and read into an event. Each
adapter turns its provider's API into these; the checkout domain does the rest (the inbox, the
session, the ledger). Adapters hold no SQL and know nothing of GraphQL.

Every failure of a provider call is a core.errors.ProviderError with a provider-neutral code
(card_declined, insufficient_funds, expired_card, authentication_required,
provider_unavailable, provider_not_configured, invalid_request, unsupported) and the provider's own code in
`decline_code`. provider_unavailable means the outcome is unknown (a timeout, a 5xx after the
retries): the same call with the same idempotency key is safe to make again."""

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Protocol


class Provider(StrEnum):
    SANDBOX = "SANDBOX"
    STRIPE = "STRIPE"
    TOSS = "TOSS"


class EventKind(StrEnum):
    """What an event means for a checkout session."""

    PAID = "PAID"  # the money was taken: credit the wallet (once)
    PAYMENT_FAILED = "PAYMENT_FAILED"  # an attempt failed; the session stays payable
    FAILED = "FAILED"  # the payment failed for good (a delayed payment method bounced)
    EXPIRED = "EXPIRED"  # the provider will not take a payment for it any more
    REFUNDED = "REFUNDED"  # the payment's refunded total is now `refunded_total`
    # A subscription or invoice the provider runs changed (Stripe): billing fetches and mirrors it.
    BILLING = "BILLING"
    IGNORED = "IGNORED"  # nothing billgraph acts on (acknowledged all the same)


@dataclass(frozen=True)
class SessionRequest:
    """A checkout session to open at the provider. `idempotency_key` is derived from the
    client's, so a retried call creates one session at the provider too."""

    reference: str  # our id for the session (the provider hands it back in its events)
    customer_reference: str
    # The customer's id at this provider (ensure_customer's), None for providers without one.
    provider_customer_id: str | None
    description: str  # what the customer buys, shown on the provider's page
    amount: int
    currency: str
    success_url: str
    cancel_url: str
    expires_at: datetime
    idempotency_key: str
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ProviderSession:
    provider_session_id: str
    url: str


@dataclass(frozen=True)
class CustomerRequest:
    """A billgraph customer to make known to the provider, once: `idempotency_key` derives
    from our id, so a retry or a racing request makes one customer there."""

    reference: str  # our customer id, kept in the provider's metadata
    email: str | None
    name: str | None
    idempotency_key: str


@dataclass(frozen=True)
class RefundRequest:
    """Give back `amount` of a payment. `idempotency_key` derives from our refund's id, so
    retrying an unfinished refund refunds once."""

    provider_payment_id: str  # Stripe's payment_intent, Toss's paymentKey, the sandbox's own
    amount: int
    currency: str
    reason: str | None
    idempotency_key: str


@dataclass(frozen=True)
class ProviderRefund:
    provider_refund_id: str
    status: str  # succeeded | pending (the provider finishes it later) | failed


@dataclass(frozen=True)
class ChargeRequest:
    """Charge a saved payment method off-session (an invoice's attempt). `idempotency_key`
    derives from the invoice and the attempt's number, so asking again after a crash or a
    timeout charges once. `payment_token` is what the provider charges (a Toss billing key,
    the sandbox's test card) and `customer_key` the provider's customer it belongs to: both
    are credentials, kept out of repr()."""

    amount: int
    currency: str
    reference: str  # our id for the charge (Toss's orderId: 6-64 of A-Z a-z 0-9 - _)
    description: str
    idempotency_key: str
    payment_token: str = field(repr=False)
    customer_key: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class ChargeResult:
    """A charge the provider made (a refusal raises core.errors.ProviderError instead)."""

    provider_charge_id: str
    amount: int
    currency: str


@dataclass(frozen=True)
class PaymentError:
    code: str
    message: str
    decline_code: str | None = None


@dataclass(frozen=True)
class WebhookEvent:
    """A verified provider event. `amount` and `currency` (upper case) are what the provider
    says it took, checked against the session before anything is credited."""

    provider: Provider
    event_id: str
    event_type: str  # the provider's own name, e.g. checkout.session.completed
    kind: EventKind
    provider_session_id: str | None = None
    amount: int | None = None
    currency: str | None = None
    error: PaymentError | None = None
    # The provider's id of the payment (what a refund names): on PAID and REFUNDED events.
    provider_payment_id: str | None = None
    # REFUNDED: the payment's cumulative refunded amount, as the provider now has it.
    refunded_total: int | None = None
    # BILLING events, and a subscription-mode session's completion: the provider's ids of the
    # subscription and invoice it is about (the event's snapshot may be stale: fetch them).
    provider_subscription_id: str | None = None
    provider_invoice_id: str | None = None


class InvalidWebhook(Exception):
    """The request is not an event from the provider: a missing or forged signature, a stale
    timestamp, a body that does not parse or lacks what an event has. Nothing may be done."""

    def __init__(self, message: str, code: str = "INVALID_WEBHOOK") -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class PaymentProvider(Protocol):
    name: Provider

    async def ensure_customer(self, request: CustomerRequest) -> str | None:
        """The customer's id at the provider (made now, idempotently), or None for a provider
        that keeps no customers."""
        ...

    async def create_checkout_session(self, request: SessionRequest) -> ProviderSession:
        """Open the session; raises core.errors.ProviderError when the provider refuses."""
        ...

    async def expire_checkout_session(self, provider_session_id: str) -> None:
        """Make the provider refuse any payment of the session from now on; raises
        core.errors.ProviderError (invalid_request: the provider has it paid or expired
        already)."""
        ...

    async def refund(self, request: RefundRequest) -> ProviderRefund:
        """Refund part or all of a payment; raises core.errors.ProviderError."""
        ...

    async def charge(self, request: ChargeRequest) -> ChargeResult:
        """Charge a saved payment method; raises core.errors.ProviderError (a decline:
        card_declined, insufficient_funds, ...; provider_unavailable: the outcome is unknown,
        ask again with the same key; unsupported: the provider bills on its own)."""
        ...

    async def parse_webhook(
        self, body: bytes, event: object, headers: Mapping[str, str], now: float
    ) -> WebhookEvent:
        """Verify `body` (the raw bytes, as signed) and read `event` (that body decoded by
        the HTTP layer's bounded decoder); raises InvalidWebhook. A provider whose webhooks
        are unsigned (Toss) verifies by fetching the object from its API."""
        ...
