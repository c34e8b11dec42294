"""What happened to a subscription, recorded in the unit that made it happen (the
customer-facing notifications of the billing routine read them)."""

from datetime import datetime
from enum import StrEnum

from billgraph.core.unit import UnitOfWork
from billgraph.db.models import Subscription, SubscriptionEvent


class EventType(StrEnum):
    CREATED = "created"
    ACTIVATED = "activated"
    TRIAL_WILL_END = "trial_will_end"
    RENEWAL_UPCOMING = "renewal_upcoming"
    PAYMENT_SUCCEEDED = "payment_succeeded"
    PAYMENT_FAILED = "payment_failed"
    PAST_DUE = "past_due"
    SUSPENDED = "suspended"
    PLAN_CHANGED = "plan_changed"
    CANCEL_SCHEDULED = "cancel_scheduled"
    CANCELED = "canceled"
    RESUMED = "resumed"


def record(
    unit: UnitOfWork,
    subscription: Subscription,
    type: EventType,
    message: str,
    at: datetime,
    invoice_id: int | None = None,
) -> None:
    """Add the event to the unit (flushed with its next statement). A status change the
    unit makes is announced live linked to the event recorded for it here (see
    announcements.py)."""
    unit.session.add(
        SubscriptionEvent(
            organization_id=subscription.organization_id,
            subscription_id=subscription.id,
            type=type.value,
            message=message[:500],
            invoice_id=invoice_id,
            created_at=at,
        )
    )
