"""The sandbox provider: billgraph's own hosted checkout page, test cards with the usual
meanings, and webhook events signed like Stripe's and delivered to billgraph itself. Needs no
keys and no network.

Events are shaped like Stripe's (read by stripe_events.py) and signed as Stripe signs:
`Billgraph-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">`, accepted within
TOLERANCE_SECONDS of the signing time.
"""

import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Mapping
from urllib.parse import quote

from billgraph.adapters.base import (
    ChargeRequest,
    ChargeResult,
    CustomerRequest,
    InvalidWebhook,
    PaymentError,
    Provider,
    ProviderRefund,
    ProviderSession,
    RefundRequest,
    SessionRequest,
    WebhookEvent,
)
from billgraph.adapters.stripe_events import COMPLETED, REFUNDED, read_event
from billgraph.core.errors import ProviderError

SIGNATURE_HEADER = "billgraph-signature"
TOLERANCE_SECONDS = 300
SESSION_PREFIX = "cs_sandbox_"
PAYMENT_PREFIX = "pi_sandbox_"

# Test cards as at the providers: None pays, a PaymentError declines, "3ds" asks for
# authentication first.
THREE_D_SECURE = "3ds"
TEST_CARDS: dict[str, PaymentError | str | None] = {
    "4242424242424242": None,
    "4000000000000002": PaymentError("card_declined", "Your card was declined.", "generic_decline"),
    "4000000000009995": PaymentError(
        "insufficient_funds", "Your card has insufficient funds.", "insufficient_funds"
    ),
    "4000000000000069": PaymentError("expired_card", "Your card has expired.", "expired_card"),
    "4000002500003155": THREE_D_SECURE,
    # Saved as a payment method, but every charge to it is declined: dunning by hand.
    "4000000000000341": PaymentError("card_declined", "Your card was declined.", "card_declined"),
    # Toss Payments' test cards.
    "4300000000000001": None,
    "4300000000000002": PaymentError(
        "insufficient_funds", "The card's balance is insufficient.", "REJECT_CARD_PAYMENT"
    ),
    "4300000000000003": PaymentError(
        "card_declined", "The card's limit is exceeded.", "EXCEED_MAX_AMOUNT"
    ),
    "4300000000000004": PaymentError(
        "card_declined", "The card is suspended.", "INVALID_STOPPED_CARD"
    ),
}
# Saved as a payment method although a payment with it would not go through at once.
SAVE_ANYWAY = frozenset({"4000000000000341"})
# What charging a saved card off-session does, where it differs from paying on the page.
SAVED_CARD_CHARGES: dict[str, PaymentError] = {
    "4000002500003155": PaymentError(
        "authentication_required",
        "The card requires authentication, which an off-session charge cannot do.",
        "authentication_required",
    ),
}
CHARGE_PREFIX = "ch_sandbox_"
AUTHENTICATION_FAILED = PaymentError(
    "authentication_required",
    "The card's 3-D Secure authentication failed.",
    "payment_intent_authentication_failure",
)
UNKNOWN_CARD = PaymentError(
    "card_declined",
    "This card number is not a sandbox test card (try 4242 4242 4242 4242).",
    "card_not_supported",
)


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The Billgraph-Signature header for `body` signed at `timestamp`."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def card_outcome(card_number: str) -> PaymentError | str | None:
    """What paying with this (normalized) card number does."""
    return TEST_CARDS.get(card_number, UNKNOWN_CARD)


def can_save(card_number: str) -> PaymentError | None:
    """Why this (normalized) card cannot be saved as a payment method; None if it can."""
    if card_number in SAVE_ANYWAY:
        return None
    outcome = card_outcome(card_number)
    return outcome if isinstance(outcome, PaymentError) else None


def charge_outcome(card_number: str) -> PaymentError | None:
    """What charging this saved (normalized) card number off-session does: None pays."""
    if card_number in SAVED_CARD_CHARGES:
        return SAVED_CARD_CHARGES[card_number]
    outcome = card_outcome(card_number)
    return outcome if isinstance(outcome, PaymentError) else None


def payment_id(provider_session_id: str) -> str:
    """The sandbox's id for a session's payment (Stripe's payment_intent)."""
    return PAYMENT_PREFIX + provider_session_id.removeprefix(SESSION_PREFIX)


def completed_event(
    provider_session_id: str,
    *,
    amount: int,
    currency: str,
    client_reference_id: str,
    metadata: Mapping[str, str],
    created: int,
) -> bytes:
    """A `checkout.session.completed` event for a paid session, as Stripe shapes it."""
    event = {
        "id": "evt_" + secrets.token_hex(12),
        "object": "event",
        "type": COMPLETED,
        "created": created,
        "livemode": False,
        "data": {
            "object": {
                "id": provider_session_id,
                "object": "checkout.session",
                "amount_total": amount,
                "currency": currency.lower(),
                "payment_status": "paid",
                "status": "complete",
                "payment_intent": payment_id(provider_session_id),
                "client_reference_id": client_reference_id,
                "metadata": dict(metadata),
            }
        },
    }
    return json.dumps(event, separators=(",", ":")).encode()


def refunded_event(
    provider_payment_id: str, *, amount: int, amount_refunded: int, currency: str, created: int
) -> bytes:
    """A `charge.refunded` event (a refund made outside billgraph), as Stripe shapes it:
    `amount_refunded` is the payment's refunded total so far."""
    event = {
        "id": "evt_" + secrets.token_hex(12),
        "object": "event",
        "type": REFUNDED,
        "created": created,
        "livemode": False,
        "data": {
            "object": {
                "id": "ch_sandbox_" + secrets.token_hex(8),
                "object": "charge",
                "amount": amount,
                "amount_refunded": amount_refunded,
                "currency": currency.lower(),
                "payment_intent": provider_payment_id,
                "refunded": amount_refunded >= amount,
            }
        },
    }
    return json.dumps(event, separators=(",", ":")).encode()


class SandboxProvider:
    name = Provider.SANDBOX

    def __init__(self, public_url: str, webhook_secret: str) -> None:
        self.public_url = public_url.rstrip("/")
        self.webhook_secret = webhook_secret

    async def ensure_customer(self, request: CustomerRequest) -> str | None:
        return None  # the sandbox keeps no customers

    async def expire_checkout_session(self, provider_session_id: str) -> None:
        return None  # the hosted page is billgraph's: it reads the session's status

    async def refund(self, request: RefundRequest) -> ProviderRefund:
        if not request.provider_payment_id.startswith(PAYMENT_PREFIX):
            raise ProviderError(
                "invalid_request", "The sandbox made no such payment.", Provider.SANDBOX.value
            )
        digest = hashlib.sha256(request.idempotency_key.encode()).hexdigest()[:24]
        return ProviderRefund(provider_refund_id="re_sandbox_" + digest, status="succeeded")

    async def close(self) -> None:
        return None

    async def charge(self, request: ChargeRequest) -> ChargeResult:
        """Charge a saved test card. The outcome depends on the card alone and the charge's
        id on the idempotency key, so asking again with the same key is the same charge."""
        error = charge_outcome(request.payment_token)
        if error is not None:
            raise ProviderError(
                error.code, error.message, Provider.SANDBOX.value, error.decline_code
            )
        digest = hashlib.sha256(request.idempotency_key.encode()).hexdigest()[:24]
        return ChargeResult(
            provider_charge_id=CHARGE_PREFIX + digest,
            amount=request.amount,
            currency=request.currency,
        )

    async def create_checkout_session(self, request: SessionRequest) -> ProviderSession:
        session_id = SESSION_PREFIX + secrets.token_urlsafe(18)
        return ProviderSession(
            provider_session_id=session_id,
            url=f"{self.public_url}/sandbox/checkout/{quote(session_id)}",
        )

    def signed_event(self, body: bytes, now: float | None = None) -> dict[str, str]:
        """The headers that deliver `body` as a sandbox event."""
        timestamp = int(time.time() if now is None else now)
        return {SIGNATURE_HEADER: sign(self.webhook_secret, body, timestamp)}

    async def parse_webhook(
        self, body: bytes, event: object, headers: Mapping[str, str], now: float
    ) -> WebhookEvent:
        self._verify(body, headers.get(SIGNATURE_HEADER), now)
        return read_event(event, Provider.SANDBOX)

    def _verify(self, body: bytes, header: str | None, now: float) -> None:
        if not header:
            raise InvalidWebhook("The Billgraph-Signature header is missing.", "INVALID_SIGNATURE")
        timestamp: int | None = None
        signatures: list[str] = []
        for part in header.split(","):
            key, _, value = part.strip().partition("=")
            if key == "t" and value.isdigit() and len(value) <= 12:
                timestamp = int(value)
            elif key == "v1":
                signatures.append(value)
        if timestamp is None or not signatures:
            raise InvalidWebhook(
                "The Billgraph-Signature header is malformed.", "INVALID_SIGNATURE"
            )
        expected = sign(self.webhook_secret, body, timestamp).partition(",v1=")[2]
        if not any(hmac.compare_digest(expected, s) for s in signatures):
            raise InvalidWebhook("The signature does not match the body.", "INVALID_SIGNATURE")
        if abs(now - timestamp) > TOLERANCE_SECONDS:
            raise InvalidWebhook(
                f"The signature is older than {TOLERANCE_SECONDS} s (or from the future).",
                "STALE_SIGNATURE",
            )
