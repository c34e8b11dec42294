"""Lengths, ranges and formats are checked by the billing domain, which answers with a typed
ValidationError naming the field."""

from datetime import datetime

import strawberry

from billgraph.graphql.billing.enums import PlanInterval
from billgraph.graphql.checkout.enums import PaymentProvider
from billgraph.graphql.currencies import Currency
from billgraph.graphql.scalars import BigInt


@strawberry.input
class CreatePlanInput:
    name: str
    amount: BigInt = strawberry.field(description="Positive, each period, in the minor unit.")
    currency: Currency
    interval: PlanInterval
    interval_count: int = strawberry.field(
        default=1, description="Periods last this many intervals: 1 to 36 months, 1 to 3 years."
    )
    trial_days: int = strawberry.field(
        default=0, description="Free days before the first invoice (0 to 730)."
    )


@strawberry.input
class CreateSubscriptionInput:
    customer_id: strawberry.ID
    plan_id: strawberry.ID
    idempotency_key: str = strawberry.field(
        description="Unique per organization: a retry with the same key and input returns the "
        "original subscription (replayed: true); with other input it is an "
        "IdempotencyConflictError."
    )
    provider: PaymentProvider = strawberry.field(
        default=PaymentProvider.SANDBOX,
        description="Who charges what credit does not cover: SANDBOX or TOSS (KRW plans); or "
        "STRIPE, which runs the subscription itself (billgraph mirrors it from Stripe's "
        "webhooks; successUrl and cancelUrl required). A test-clock customer uses the sandbox.",
    )
    trial_days: int | None = strawberry.field(
        default=None, description="Overrides the plan's trial (0: none)."
    )
    promotion_code: str | None = strawberry.field(
        default=None, description="Not available yet: a ValidationError when given."
    )
    success_url: str | None = strawberry.field(
        default=None,
        description="Where a checkout collecting the payment method sends the customer once "
        "done (absolute http(s) URL).",
    )
    cancel_url: str | None = strawberry.field(
        default=None, description="Where that checkout sends the customer on cancelling."
    )


@strawberry.input
class CancelSubscriptionInput:
    subscription_id: strawberry.ID
    at_period_end: bool = strawberry.field(
        default=True,
        description="True: at the end of the current period (resumeSubscription undoes it); "
        "false: now, for good.",
    )
    reason: str | None = None


@strawberry.input
class ChangeSubscriptionPlanInput:
    subscription_id: strawberry.ID
    plan_id: strawberry.ID = strawberry.field(description="An active plan in the same currency.")
    prorate: bool = strawberry.field(
        default=False,
        description="False: the new plan from the next period. True (switch now, prorated) "
        "is not available yet: a ValidationError.",
    )


@strawberry.input
class PayInvoiceInput:
    invoice_id: strawberry.ID
    idempotency_key: str = strawberry.field(
        description="The same key returns the same attempt (replayed: true)."
    )


@strawberry.input
class CreateTestClockInput:
    frozen_time: datetime = strawberry.field(description="With its timezone.")
    name: str | None = None


@strawberry.input
class AdvanceTestClockInput:
    test_clock_id: strawberry.ID
    frozen_time: datetime = strawberry.field(
        description="Forward only (the same time is fine), at most two years on, with its timezone."
    )
