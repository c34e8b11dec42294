import strawberry

from billgraph.graphql.checkout.enums import CheckoutMode, PaymentProvider
from billgraph.graphql.currencies import Currency
from billgraph.graphql.scalars import BigInt


@strawberry.input
class CreateCheckoutSessionInput:
    customer_id: strawberry.ID
    amount: BigInt | None = strawberry.field(
        default=None,
        description="TOP_UP (required): positive, in the currency's minor unit. SUBSCRIPTION: "
        "what the subscription's oldest open invoice still owes (0 if none); leave it out, or "
        "send that amount.",
    )
    currency: Currency | None = strawberry.field(
        default=None,
        description="TOP_UP: required. SUBSCRIPTION: the plan's; leave it out, or send that one.",
    )
    success_url: str = strawberry.field(
        description="Where the customer lands once paid (absolute http(s) URL; "
        "{CHECKOUT_SESSION_ID} is replaced by the provider's session id)."
    )
    cancel_url: str = strawberry.field(description="Where the customer goes on cancelling.")
    idempotency_key: str = strawberry.field(
        description="Unique per organization: a retry with the same key and input returns the "
        "original session (replayed: true) and creates nothing at the provider; with other "
        "input it is an IdempotencyConflictError."
    )
    provider: PaymentProvider = strawberry.field(
        default=PaymentProvider.SANDBOX,
        description="SUBSCRIPTION: the subscription's provider (SANDBOX or TOSS).",
    )
    mode: CheckoutMode = CheckoutMode.TOP_UP
    subscription_id: strawberry.ID | None = strawberry.field(
        default=None,
        description="SUBSCRIPTION (required): the customer's subscription whose payment method "
        "the session collects (not a CANCELED one). TOP_UP: leave it out.",
    )


@strawberry.input
class RefundCheckoutSessionInput:
    checkout_session_id: strawberry.ID
    amount: BigInt = strawberry.field(
        description="Positive, in the session's minor unit; all refunds of a session together "
        "give back at most what it took."
    )
    idempotency_key: str = strawberry.field(
        description="Unique per organization: a retry with the same key and input returns the "
        "same refund (and finishes one whose provider call did not answer)."
    )
    reason: str | None = None
    allow_shortfall: bool = strawberry.field(
        default=False,
        description="Refund even if the customer spent part of the credit: the wallet is "
        "debited what it holds and the rest is the refund's shortfall. False: such a refund is "
        "an InsufficientBalanceError and nothing is refunded.",
    )
