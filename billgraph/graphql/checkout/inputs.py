import strawberry

from billgraph.graphql.checkout.enums import CheckoutMode, PaymentProvider
from billgraph.graphql.currencies import Currency
from billgraph.graphql.scalars import BigInt


@strawberry.input
class CreateCheckoutSessionInput:
    customer_id: strawberry.ID
    amount: BigInt = strawberry.field(description="Positive, in the currency's minor unit.")
    currency: Currency
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
    provider: PaymentProvider = PaymentProvider.SANDBOX
    mode: CheckoutMode = CheckoutMode.TOP_UP
