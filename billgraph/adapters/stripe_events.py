"""Stripe's webhook events read into provider-neutral ones: the Stripe adapter's, and the
sandbox's, whose events are shaped as Stripe's (each verifies its own signature first).

Read: checkout.session.completed (paid, or unpaid while a delayed payment method settles),
checkout.session.async_payment_succeeded / _failed, checkout.session.expired and
charge.refunded (the charge's cumulative amount_refunded); customer.subscription.* and
invoice.* (but invoice.upcoming, which names no invoice) are BILLING events naming the
subscription and invoice; any other type is IGNORED.
"""

from typing import Any

from billgraph.adapters.base import EventKind, InvalidWebhook, PaymentError, Provider, WebhookEvent

COMPLETED = "checkout.session.completed"
ASYNC_SUCCEEDED = "checkout.session.async_payment_succeeded"
ASYNC_FAILED = "checkout.session.async_payment_failed"
EXPIRED = "checkout.session.expired"
REFUNDED = "charge.refunded"
SESSION_EVENTS = (COMPLETED, ASYNC_SUCCEEDED, ASYNC_FAILED, EXPIRED)
SUBSCRIPTION_PREFIX = "customer.subscription."
INVOICE_PREFIX = "invoice."
UPCOMING = "invoice.upcoming"

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
    billing = _is_billing(event_type)
    if event_type not in (*SESSION_EVENTS, REFUNDED) and not billing:
        return WebhookEvent(provider, event_id, event_type, EventKind.IGNORED)
    data = event.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    if not isinstance(obj, dict):
        raise InvalidWebhook("The event has no data.object.", "BAD_REQUEST")
    if billing:
        return _billing_event(provider, event_id, event_type, obj)
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
    subscription = session.get("subscription") if session.get("mode") == "subscription" else None
    subscription_mode = provider is Provider.STRIPE and session.get("mode") == "subscription"
    if subscription_mode and not _short_text(subscription, 255):
        # Stripe's money paid the subscription's first invoice, not a wallet top-up: what
        # names no subscription is acknowledged and never credited.
        return WebhookEvent(
            provider, event_id, event_type, EventKind.IGNORED, provider_session_id=session_id
        )
    return WebhookEvent(
        provider,
        event_id,
        event_type,
        EventKind.PAID if paid else EventKind.IGNORED,
        provider_session_id=session_id,
        amount=amount,
        currency=currency.upper(),
        provider_payment_id=payment if _short_text(payment, 255) else None,
        provider_subscription_id=subscription if _short_text(subscription, 255) else None,
    )


def _is_billing(event_type: str) -> bool:
    return event_type.startswith(SUBSCRIPTION_PREFIX) or (
        event_type.startswith(INVOICE_PREFIX) and event_type != UPCOMING
    )


def _billing_event(
    provider: Provider, event_id: str, event_type: str, obj: dict[str, Any]
) -> WebhookEvent:
    """A subscription's or an invoice's event: only the ids are read (the snapshot may be
    stale; billing fetches the objects)."""
    object_id = obj.get("id")
    kind = "subscription" if event_type.startswith(SUBSCRIPTION_PREFIX) else "invoice"
    if obj.get("object") != kind or not _short_text(object_id, 255):
        raise InvalidWebhook(f"data.object is not a {kind}.", "BAD_REQUEST")
    assert isinstance(object_id, str)
    if kind == "subscription":
        return WebhookEvent(
            provider, event_id, event_type, EventKind.BILLING, provider_subscription_id=object_id
        )
    parent = obj.get("parent")
    details = parent.get("subscription_details") if isinstance(parent, dict) else None
    subscription = details.get("subscription") if isinstance(details, dict) else None
    if subscription is None:
        subscription = obj.get("subscription")  # API versions before 2025-03-31
    if isinstance(subscription, dict):  # expanded
        subscription = subscription.get("id")
    return WebhookEvent(
        provider,
        event_id,
        event_type,
        EventKind.BILLING,
        provider_subscription_id=subscription if _short_text(subscription, 255) else None,
        provider_invoice_id=object_id,
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
