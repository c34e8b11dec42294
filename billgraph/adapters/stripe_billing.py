"""Stripe's Subscriptions and Invoices read into plain values, and what billgraph asks of
Stripe's billing: a subscription-mode Checkout Session, a cancellation, a Customer Portal
session. StripeProvider (stripe.py) makes the calls; this module holds their shapes.

Stripe's API version of the SDK puts a subscription's periods on its items, and an invoice's
subscription (with the subscription's metadata, where billgraph's ids ride) in
`parent.subscription_details`; older shapes (top-level `current_period_*`, `subscription`)
are read too.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from billgraph.core.errors import ProviderError

# billgraph's ids in a Stripe object's metadata (the session's, the subscription's, and so
# the subscription's invoices').
ORGANIZATION_KEY = "billgraph_organization_id"
CUSTOMER_KEY = "billgraph_customer_id"
SUBSCRIPTION_KEY = "billgraph_subscription_id"
# On the negative invoice item by which wallet credit pays part of a Stripe invoice: the
# billgraph invoice it belongs to.
WALLET_CREDIT_KEY = "billgraph_wallet_credit"


@dataclass(frozen=True)
class SubscriptionCheckoutRequest:
    """A Checkout Session in subscription mode for one recurring price."""

    provider_customer_id: str
    description: str  # the plan's name
    amount: int
    currency: str
    interval: str  # month | year
    interval_count: int
    trial_days: int  # 0: none
    success_url: str
    cancel_url: str
    expires_at: datetime
    idempotency_key: str
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ProviderSubscription:
    """A Stripe Subscription as fetched (`status` is Stripe's own word)."""

    id: str
    status: str
    customer: str | None
    current_period_start: datetime
    current_period_end: datetime
    billing_cycle_anchor: datetime | None
    trial_end: datetime | None
    cancel_at_period_end: bool
    canceled_at: datetime | None
    metadata: Mapping[str, str]
    latest_invoice: str | None


@dataclass(frozen=True)
class ProviderInvoiceLine:
    description: str
    amount: int
    quantity: int
    period_start: datetime
    period_end: datetime


@dataclass(frozen=True)
class ProviderInvoice:
    """A Stripe Invoice as fetched (`status` is Stripe's: draft, open, paid, void,
    uncollectible); `metadata` is its subscription's, as Stripe copies it there.
    `wallet_credit` is what billgraph's negative items took off it (positive), not in
    `lines`; Stripe's subtotal, total and amount_due are net of it."""

    id: str
    customer: str | None
    subscription_id: str | None
    status: str
    currency: str  # upper case
    subtotal: int
    total: int
    amount_due: int
    amount_paid: int
    attempt_count: int
    next_payment_attempt: datetime | None
    created: datetime
    due_date: datetime | None
    paid_at: datetime | None
    billing_reason: str | None
    lines: tuple[ProviderInvoiceLine, ...]
    metadata: Mapping[str, str]
    wallet_credit: int = 0


def _invalid(what: str) -> ProviderError:
    return ProviderError("invalid_request", f"Stripe answered {what}.", "STRIPE")


def _time(value: object) -> datetime | None:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return datetime.fromtimestamp(value, UTC)
    return None


def _required_time(value: object, what: str) -> datetime:
    moment = _time(value)
    if moment is None:
        raise _invalid(f"a {what} without a time")
    return moment


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _str(value: object) -> str | None:
    if isinstance(value, str) and value:
        return value
    if isinstance(value, dict) and isinstance(value.get("id"), str):  # expanded
        return str(value["id"])
    return None


def _metadata(value: object) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {str(k): str(v) for k, v in value.items() if isinstance(v, str)}


def read_subscription(obj: Mapping[str, Any]) -> ProviderSubscription:
    """A Subscription's JSON (to_dict of the SDK's object) as a ProviderSubscription."""
    if obj.get("object") != "subscription" or not _str(obj.get("id")):
        raise _invalid("something that is not a subscription")
    items = obj.get("items")
    data = items.get("data") if isinstance(items, dict) else None
    first = data[0] if isinstance(data, list) and data and isinstance(data[0], dict) else {}
    start = first.get("current_period_start", obj.get("current_period_start"))
    end = first.get("current_period_end", obj.get("current_period_end"))
    return ProviderSubscription(
        id=str(obj["id"]),
        status=str(obj.get("status") or ""),
        customer=_str(obj.get("customer")),
        current_period_start=_required_time(start, "subscription period"),
        current_period_end=_required_time(end, "subscription period"),
        billing_cycle_anchor=_time(obj.get("billing_cycle_anchor")),
        trial_end=_time(obj.get("trial_end")),
        cancel_at_period_end=bool(obj.get("cancel_at_period_end")),
        canceled_at=_time(obj.get("canceled_at")),
        metadata=_metadata(obj.get("metadata")),
        latest_invoice=_str(obj.get("latest_invoice")),
    )


def invoice_subscription(obj: Mapping[str, Any]) -> tuple[str | None, dict[str, str]]:
    """The subscription an Invoice's JSON bills, and that subscription's metadata."""
    parent = obj.get("parent")
    details = parent.get("subscription_details") if isinstance(parent, dict) else None
    if isinstance(details, dict):
        return _str(details.get("subscription")), _metadata(details.get("metadata"))
    return _str(obj.get("subscription")), {}


def read_invoice(obj: Mapping[str, Any]) -> ProviderInvoice:
    """An Invoice's JSON as a ProviderInvoice."""
    currency = obj.get("currency")
    if obj.get("object") != "invoice" or not _str(obj.get("id")) or not isinstance(currency, str):
        raise _invalid("something that is not an invoice")
    subscription_id, metadata = invoice_subscription(obj)
    created = _required_time(obj.get("created"), "invoice")
    lines, credit = [], 0
    listed = obj.get("lines")
    for line in (listed.get("data") if isinstance(listed, dict) else None) or []:
        if not isinstance(line, dict):
            continue
        if WALLET_CREDIT_KEY in _metadata(line.get("metadata")):
            credit -= _int(line.get("amount"))
            continue
        period = line.get("period")
        if not isinstance(period, dict):
            period = {}
        lines.append(
            ProviderInvoiceLine(
                description=str(line.get("description") or "Subscription")[:500],
                amount=_int(line.get("amount")),
                quantity=max(_int(line.get("quantity")), 1),
                period_start=_time(period.get("start")) or created,
                period_end=_time(period.get("end")) or created,
            )
        )
    transitions = obj.get("status_transitions")
    paid_at = transitions.get("paid_at") if isinstance(transitions, dict) else None
    return ProviderInvoice(
        id=str(obj["id"]),
        customer=_str(obj.get("customer")),
        subscription_id=subscription_id,
        status=str(obj.get("status") or "draft"),
        currency=currency.upper(),
        subtotal=_int(obj.get("subtotal")),
        total=_int(obj.get("total")),
        amount_due=_int(obj.get("amount_due")),
        amount_paid=_int(obj.get("amount_paid")),
        attempt_count=_int(obj.get("attempt_count")),
        next_payment_attempt=_time(obj.get("next_payment_attempt")),
        created=created,
        due_date=_time(obj.get("due_date")),
        paid_at=_time(paid_at),
        billing_reason=_str(obj.get("billing_reason")),
        lines=tuple(lines),
        metadata=metadata,
        wallet_credit=max(credit, 0),
    )
