"""What billgraph asks of a payment provider, in provider-neutral terms: create a checkout
session, and verify and parse a webhook into an event. Each adapter turns its provider's API
into these; the checkout domain does the rest (the inbox, the session, the ledger)."""

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
    EXPIRED = "EXPIRED"  # the provider will not take a payment for it any more
    IGNORED = "IGNORED"  # nothing billgraph acts on (acknowledged all the same)


@dataclass(frozen=True)
class SessionRequest:
    """A checkout session to open at the provider. `idempotency_key` is derived from the
    client's, so a retried call creates one session at the provider too."""

    reference: str  # our id for the session (the provider hands it back in its events)
    customer_reference: str
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


class InvalidWebhook(Exception):
    """The request is not an event from the provider: a missing or forged signature, a stale
    timestamp, a body that does not parse or lacks what an event has. Nothing may be done."""

    def __init__(self, message: str, code: str = "INVALID_WEBHOOK") -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class PaymentProvider(Protocol):
    name: Provider

    async def create_checkout_session(self, request: SessionRequest) -> ProviderSession:
        """Open the session; raises core.errors.ProviderError when the provider refuses."""
        ...

    def parse_webhook(
        self, body: bytes, event: object, headers: Mapping[str, str], now: float
    ) -> WebhookEvent:
        """Verify `body` (the raw bytes, as signed) and read `event` (that body decoded by
        the HTTP layer's bounded decoder); raises InvalidWebhook."""
        ...
