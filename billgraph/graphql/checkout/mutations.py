"""createCheckoutSession, expireCheckoutSession and refundCheckoutSession."""

import strawberry

from billgraph.checkout import refunds
from billgraph.checkout import service as checkout
from billgraph.core import errors
from billgraph.graphql.checkout.inputs import (
    CreateCheckoutSessionInput,
    RefundCheckoutSessionInput,
)
from billgraph.graphql.checkout.payloads import (
    CreateCheckoutSessionSuccess,
    ExpireCheckoutSessionSuccess,
    RefundCheckoutSessionSuccess,
)
from billgraph.graphql.checkout.types import CheckoutSession, Refund
from billgraph.graphql.context import Info
from billgraph.graphql.errors import result
from billgraph.graphql.node import input_id
from billgraph.graphql.wallets.types import Wallet


@strawberry.type
class CheckoutMutations:
    @strawberry.mutation(
        description="Open a checkout session to top up a customer's wallet, idempotently: send "
        "the customer to its url; the wallet is credited once the provider confirms payment."
    )
    @result(
        "CreateCheckoutSessionResult",
        CreateCheckoutSessionSuccess,
        errors.ProviderError,
        errors.NotFoundError,
        errors.ValidationError,
        errors.IdempotencyConflictError,
    )
    async def create_checkout_session(
        self, info: Info, input: CreateCheckoutSessionInput
    ) -> CreateCheckoutSessionSuccess:
        context = info.context
        customer_id = input_id(input.customer_id, "Customer", "customerId", "Customer not found.")
        request = checkout.checkout_request(
            context.organization_id,
            customer_id=customer_id,
            provider=input.provider,
            mode=input.mode,
            amount=input.amount,
            currency=input.currency.value,
            success_url=input.success_url,
            cancel_url=input.cancel_url,
            idempotency_key=input.idempotency_key,
        )
        created = await checkout.create(
            context.database,
            context.payment_providers,
            request,
            expires_minutes=context.settings.checkout_expires_minutes,
        )
        return CreateCheckoutSessionSuccess(
            checkout_session=CheckoutSession.from_model(created.session),
            replayed=created.replayed,
        )

    @strawberry.mutation(description="An OPEN checkout session can no longer be paid.")
    @result(
        "ExpireCheckoutSessionResult",
        ExpireCheckoutSessionSuccess,
        errors.NotFoundError,
        errors.ConflictError,
        errors.ValidationError,
        errors.ProviderError,
    )
    async def expire_checkout_session(
        self, info: Info, id: strawberry.ID
    ) -> ExpireCheckoutSessionSuccess:
        context = info.context
        db_id = input_id(id, "CheckoutSession", "id", "Checkout session not found.")
        row = await checkout.expire(
            context.database, context.payment_providers, context.organization_id, db_id
        )
        return ExpireCheckoutSessionSuccess(checkout_session=CheckoutSession.from_model(row))

    @strawberry.mutation(
        description="Give back part or all of a paid checkout session, idempotently: refunded "
        "at the provider first, then debited from the wallet, never below zero."
    )
    @result(
        "RefundCheckoutSessionResult",
        RefundCheckoutSessionSuccess,
        errors.InsufficientBalanceError,
        errors.ProviderError,
        errors.NotFoundError,
        errors.ConflictError,
        errors.ValidationError,
        errors.IdempotencyConflictError,
    )
    async def refund_checkout_session(
        self, info: Info, input: RefundCheckoutSessionInput
    ) -> RefundCheckoutSessionSuccess:
        context = info.context
        session_id = input_id(
            input.checkout_session_id,
            "CheckoutSession",
            "checkoutSessionId",
            "Checkout session not found.",
        )
        order = refunds.refund_order(
            context.organization_id,
            checkout_session_id=session_id,
            amount=input.amount,
            reason=input.reason,
            idempotency_key=input.idempotency_key,
            allow_shortfall=input.allow_shortfall,
        )
        done = await refunds.refund(context.database, context.payment_providers, order)
        return RefundCheckoutSessionSuccess(
            refund=Refund.from_model(done.refund),
            checkout_session=CheckoutSession.from_model(done.session),
            wallet=None if done.wallet is None else Wallet.from_model(done.wallet),
            replayed=done.replayed,
        )
