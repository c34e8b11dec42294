"""The dunning schedule and when the billing run must next look at a subscription.

BILLGRAPH_DUNNING_RETRY_DAYS lists the days between consecutive attempts to pay an invoice:
"3,3" (the default) is the first attempt when due, retries 3 and 6 days later, and the
subscription SUSPENDED when the third fails; "1,3,5,7" makes five attempts.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from billgraph.db.models import Invoice, Subscription
from billgraph.settings import Settings

REMINDER = timedelta(days=3)  # trial_will_end and renewal_upcoming come this long before


class SubscriptionStatus(StrEnum):
    INCOMPLETE = "INCOMPLETE"
    TRIALING = "TRIALING"
    ACTIVE = "ACTIVE"
    PAST_DUE = "PAST_DUE"
    SUSPENDED = "SUSPENDED"
    CANCELED = "CANCELED"


RENEWING = frozenset(
    {SubscriptionStatus.TRIALING, SubscriptionStatus.ACTIVE, SubscriptionStatus.PAST_DUE}
)


@dataclass(frozen=True)
class Policy:
    retry_days: tuple[int, ...]
    cancel_trial_without_payment_method: bool

    def next_attempt(self, failed_attempts: int, now: datetime) -> datetime | None:
        """When to try again after `failed_attempts` failures; None: suspend."""
        if failed_attempts > len(self.retry_days):
            return None
        return now + timedelta(days=self.retry_days[failed_attempts - 1])


def policy(settings: Settings) -> Policy:
    """The billing policy of the settings; ValueError for a malformed retry list."""
    text = settings.dunning_retry_days.strip()
    try:
        days = tuple(int(part) for part in text.split(",") if part.strip()) if text else ()
    except ValueError:
        raise ValueError(
            f"BILLGRAPH_DUNNING_RETRY_DAYS is a comma-separated list of days, not {text!r}"
        ) from None
    if any(day < 1 or day > 60 for day in days):
        raise ValueError("BILLGRAPH_DUNNING_RETRY_DAYS: each entry is 1 to 60 days")
    return Policy(
        retry_days=days,
        cancel_trial_without_payment_method=settings.trial_end_without_payment_method == "cancel",
    )


def reschedule(
    subscription: Subscription,
    open_invoices: Sequence[Invoice],
    *,
    pending_attempt_at: datetime | None,
) -> None:
    """Set when the run must next look at the subscription: its next billing (and the
    reminder 3 days before, until recorded), its open invoice's next attempt, or a payment
    attempt left unfinished (a crash, an unknown outcome)."""
    moments: list[datetime] = []
    status = SubscriptionStatus(subscription.status)
    if status in RENEWING and subscription.next_billing_at is not None:
        moments.append(subscription.next_billing_at)
        reminder_wanted = (
            status is SubscriptionStatus.TRIALING or not subscription.cancel_at_period_end
        )
        if reminder_wanted and subscription.reminded_for != subscription.next_billing_at:
            moments.append(subscription.next_billing_at - REMINDER)
    if status is not SubscriptionStatus.CANCELED:
        moments.extend(
            invoice.next_payment_attempt_at
            for invoice in open_invoices
            if invoice.next_payment_attempt_at is not None
        )
    if pending_attempt_at is not None:
        moments.append(pending_attempt_at)
    subscription.next_action_at = min(moments) if moments else None
