"""Lengths and formats are checked by the service, which answers with a typed
ValidationError naming the field."""

import strawberry

from billgraph.graphql.currencies import Currency


@strawberry.input
class CreateCustomerInput:
    email: str
    name: str | None = None
    external_id: str | None = strawberry.field(
        default=None, description="Your own id for the customer; unique in the organization."
    )
    currency: Currency | None = strawberry.field(
        default=None, description="Currency of the first wallet; the organization's by default."
    )
    test_clock_id: strawberry.ID | None = strawberry.field(
        default=None,
        description="Put the customer on this test clock, for good: its subscriptions live at "
        "the clock's time.",
    )


@strawberry.input(description="Fields left out stay as they are; null clears name or externalId.")
class UpdateCustomerInput:
    customer_id: strawberry.ID
    email: str | None = strawberry.UNSET
    name: str | None = strawberry.UNSET
    external_id: str | None = strawberry.UNSET
