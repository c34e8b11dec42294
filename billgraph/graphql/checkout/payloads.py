import strawberry

from billgraph.graphql.checkout.types import CheckoutSession


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
