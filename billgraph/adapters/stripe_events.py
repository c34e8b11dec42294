"""Stripe's webhook events read into provider-neutral ones: the Stripe adapter's, and the
sandbox's, whose events are shaped as Stripe's (each verifies its own signature first).

Read: checkout.session.completed (paid, or unpaid while a delayed payment method settles),
checkout.session.async_payment_succeeded / _failed, checkout.session.expired and
charge.refunded (the charge's cumulative amount_refunded); any other type is IGNORED.
"""

from typing import Any

from billgraph.adapters.base import EventKind, InvalidWebhook, PaymentError, Provider, WebhookEvent

COMPLETED = "checkout.session.completed"
ASYNC_SUCCEEDED = "checkout.session.async_payment_succeeded"
ASYNC_FAILED = "checkout.session.async_payment_failed"
EXPIRED = "checkout.session.expired"
REFUNDED = "charge.refunded"
SESSION_EVENTS = (COMPLETED, ASYNC_SUCCEEDED, ASYNC_FAILED, EXPIRED)

# A delayed payment method (a bank debit) that bounced after checkout: Stripe's session event
# carries no reason, so the error says what happened in provider-neutral terms.
ASYNC_PAYMENT_FAILED = PaymentError(
    "payment_failed",
    "The payment failed after checkout (a delayed payment method was not honoured).",
    "async_payment_failed",
)


def read_event(event: object, provider: Provider) -> WebhookEvent:
    """A verified Stripe-shaped event in provider-neutral terms; raises InvalidWebhook
    (BAD_REQUEST) when it lacks what such an event has."""
    if not isinstance(event, dict):
        raise InvalidWebhook("An event is a JSON object.", "BAD_REQUEST")
    event_id, event_type = event.get("id"), event.get("type")
    if not _short_text(event_id, 255):
        raise InvalidWebhook("The event has no id.", "BAD_REQUEST")
    if not _short_text(event_type, 100):
        raise InvalidWebhook("The event has no type.", "BAD_REQUEST")
    assert isinstance(event_id, str) and isinstance(event_type, str)
    if event_type not in (*SESSION_EVENTS, REFUNDED):
        return WebhookEvent(provider, event_id, event_type, EventKind.IGNORED)
    data = event.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    if not isinstance(obj, dict):
        raise InvalidWebhook("The event has no data.object.", "BAD_REQUEST")
    if event_type == REFUNDED:
        return _refunded(provider, event_id, obj)
    return _session_event(provider, event_id, event_type, obj)


def _session_event(
    provider: Provider, event_id: str, event_type: str, session: dict[str, Any]
) -> WebhookEvent:
    session_id = session.get("id")
    if session.get("object") != "checkout.session" or not _short_text(session_id, 255):
        raise InvalidWebhook("data.object is not a Checkout Session.", "BAD_REQUEST")
    assert isinstance(session_id, str)
    if event_type == EXPIRED:
        return WebhookEvent(
            provider, event_id, event_type, EventKind.EXPIRED, provider_session_id=session_id
        )
    if event_type == ASYNC_FAILED:
        return WebhookEvent(
            provider,
            event_id,
            event_type,
            EventKind.FAILED,
            provider_session_id=session_id,
            error=ASYNC_PAYMENT_FAILED,
        )
    amount, currency = session.get("amount_total"), session.get("currency")
    if not _amount(amount) or not _currency(currency):
        raise InvalidWebhook("data.object needs amount_total and currency.", "BAD_REQUEST")
    assert isinstance(amount, int) and isinstance(currency, str)
    # completed with payment_status unpaid: a delayed payment method, not paid yet (an
    # async_payment_succeeded or _failed follows).
    paid = event_type == ASYNC_SUCCEEDED or session.get("payment_status") == "paid"
    payment = session.get("payment_intent")
    return WebhookEvent(
        provider,
        event_id,
        event_type,
        EventKind.PAID if paid else EventKind.IGNORED,
        provider_session_id=session_id,
        amount=amount,
        currency=currency.upper(),
        provider_payment_id=payment if _short_text(payment, 255) else None,
    )


def _refunded(provider: Provider, event_id: str, charge: dict[str, Any]) -> WebhookEvent:
    payment, refunded = charge.get("payment_intent"), charge.get("amount_refunded")
    currency = charge.get("currency")
    if (
        charge.get("object") != "charge"
        or not _short_text(payment, 255)
        or not _amount(refunded)
        or not _currency(currency)
    ):
        raise InvalidWebhook(
            "data.object needs a charge's payment_intent, amount_refunded and currency.",
            "BAD_REQUEST",
        )
    assert isinstance(payment, str) and isinstance(refunded, int) and isinstance(currency, str)
    return WebhookEvent(
        provider,
        event_id,
        REFUNDED,
        EventKind.REFUNDED,
        currency=currency.upper(),
        provider_payment_id=payment,
        refunded_total=refunded,
    )


def _short_text(value: object, max_length: int) -> bool:
    return isinstance(value, str) and 0 < len(value) <= max_length


def _amount(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _currency(value: object) -> bool:
    return isinstance(value, str) and len(value) == 3 and value.isascii() and value.isalpha()
