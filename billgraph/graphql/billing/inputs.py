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
        default=None,
        description="A promotion code (any case): its coupon discounts the subscription's "
        "invoices. One that cannot be redeemed is a ValidationError (see "
        "validatePromotionCode); the redemption counts when the subscription is created.",
    )
    success_url: str | None = strawberry.field(
        default=None,
        description="Where the checkout collecting the payment method sends the customer once "
        "done (absolute http(s) URL): required when one is needed (no trial, and credit does "
        "not pay the first invoice), checked whenever given.",
    )
    cancel_url: str | None = strawberry.field(
        default=None,
        description="Where that checkout sends the customer on cancelling: required with "
        "successUrl.",
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
        description="False: the new plan from the next period. True: switch now (an ACTIVE "
        "subscription; a trial switches without an invoice) and invoice the rest of the "
        "period at once, paid as any invoice: a credit for the old plan's unused time and a "
        "charge for the new plan's, by the seconds left, each rounded half up. The new plan "
        "must have the same billing period. A negative total is credited to the wallet.",
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
