import strawberry

from billgraph.billing.run import BillingSummary
from billgraph.graphql.billing.types import Invoice, Plan, Subscription, TestClock
from billgraph.graphql.checkout.types import CheckoutSession, PaymentError


@strawberry.type
class CreatePlanSuccess:
    plan: Plan


@strawberry.type
class ArchivePlanSuccess:
    plan: Plan


@strawberry.type
class CreateSubscriptionSuccess:
    subscription: Subscription
    checkout_session: CheckoutSession | None = strawberry.field(
        description="Where the customer gives a payment method, when one is needed first (no "
        "trial, and wallet credit did not pay the first invoice in full; for STRIPE always, "
        "a Stripe Checkout Session in subscription mode): mode SUBSCRIPTION; the subscription "
        "is INCOMPLETE until it completes. A replay returns the same session."
    )
    replayed: bool = strawberry.field(
        description="True when this key was already used with the same input: nothing new was "
        "created."
    )


@strawberry.type
class CancelSubscriptionSuccess:
    subscription: Subscription


@strawberry.type
class ResumeSubscriptionSuccess:
    subscription: Subscription


@strawberry.type
class ChangeSubscriptionPlanSuccess:
    subscription: Subscription
    invoice: Invoice | None = strawberry.field(
        default=None,
        description="With prorate: the invoice of the rest of the period (a credit for the "
        "old plan's unused time, a charge for the new plan's); null when nothing was prorated.",
    )


@strawberry.type
class PayInvoiceSuccess:
    invoice: Invoice
    subscription: Subscription | None
    payment_error: PaymentError | None = strawberry.field(
        description="Why this attempt's charge to the payment method failed (the invoice "
        "stays OPEN); null when it was paid."
    )
    replayed: bool = strawberry.field(
        description="True when this key was used before, or the invoice was PAID already."
    )


@strawberry.type
class VoidInvoiceSuccess:
    invoice: Invoice


@strawberry.type
class CreateTestClockSuccess:
    test_clock: TestClock


@strawberry.type(description="What a billing run did.")
class BillingRun:
    subscriptions: int = strawberry.field(description="Subscriptions looked at.")
    billed: int = strawberry.field(description="Invoices issued.")
    paid_by_credit: int
    charged: int
    failed: int
    suspended: int
    canceled: int
    reminders: int

    @classmethod
    def from_summary(cls, summary: BillingSummary) -> "BillingRun":
        return cls(
            subscriptions=summary.subscriptions,
            billed=summary.billed,
            paid_by_credit=summary.paid_by_credit,
            charged=summary.charged,
            failed=summary.failed,
            suspended=summary.suspended,
            canceled=summary.canceled,
            reminders=summary.reminders,
        )


@strawberry.type
class AdvanceTestClockSuccess:
    test_clock: TestClock
    billing_run: BillingRun = strawberry.field(
        description="The billing of the clock's customers up to its new time."
    )
