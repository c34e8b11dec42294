"""createBillingPortalSession: Stripe's Customer Portal for a Stripe customer."""

import strawberry

from billgraph.billing import stripe as stripe_billing
from billgraph.core import errors
from billgraph.graphql.context import Info
from billgraph.graphql.errors import result
from billgraph.graphql.node import input_id


@strawberry.input
class CreateBillingPortalSessionInput:
    customer_id: strawberry.ID
    return_url: str = strawberry.field(
        description="Where the portal's link back leads (absolute http(s) URL)."
    )


@strawberry.type
class CreateBillingPortalSessionSuccess:
    url: str = strawberry.field(
        description="The Stripe Customer Portal session: short-lived, send the customer there now."
    )


@strawberry.type
class BillingPortalMutations:
    @strawberry.mutation(
        description="A Stripe Customer Portal session for a customer with a Stripe customer "
        "(their Stripe subscriptions, payment methods and invoices); ProviderError "
        "`unsupported` for others."
    )
    @result(
        "CreateBillingPortalSessionResult",
        CreateBillingPortalSessionSuccess,
        errors.NotFoundError,
        errors.ValidationError,
        errors.ProviderError,
    )
    async def create_billing_portal_session(
        self, info: Info, input: CreateBillingPortalSessionInput
    ) -> CreateBillingPortalSessionSuccess:
        context = info.context
        customer_id = input_id(input.customer_id, "Customer", "customerId", "Customer not found.")
        url = await stripe_billing.portal_url(
            context.database,
            context.payment_providers,
            context.organization_id,
            customer_id,
            input.return_url,
        )
        return CreateBillingPortalSessionSuccess(url=url)
