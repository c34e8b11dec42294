import strawberry

from billgraph.graphql.checkout.types import CheckoutSession, Refund
from billgraph.graphql.wallets.types import Wallet


@strawberry.type
class CreateCheckoutSessionSuccess:
    checkout_session: CheckoutSession
    replayed: bool = strawberry.field(
        description="True when this key was already used with the same input: nothing new was "
        "created."
    )


@strawberry.type
class ExpireCheckoutSessionSuccess:
    checkout_session: CheckoutSession


@strawberry.type
class RefundCheckoutSessionSuccess:
    refund: Refund
    checkout_session: CheckoutSession
    wallet: Wallet | None = strawberry.field(description="The wallet debited, as it is now.")
    replayed: bool = strawberry.field(
        description="True when this key had already refunded: nothing new was done."
    )
