"""createCheckoutSession, expireCheckoutSession and refundCheckoutSession."""

import strawberry

from billgraph.billing import collect
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
        description="Open a checkout session, idempotently, and send the customer to its url. "
        "TOP_UP: the wallet is credited once the provider confirms payment. SUBSCRIPTION: the "
        "card (or Toss billing key) given there becomes the subscription's payment method and "
        "pays its open invoice, wallet credit first."
    )
    @result(
        "CreateCheckoutSessionResult",
        CreateCheckoutSessionSuccess,
        errors.ProviderError,
        errors.NotFoundError,
        errors.ValidationError,
        errors.IdempotencyConflictError,
        errors.ConflictError,
    )
    async def create_checkout_session(
        self, info: Info, input: CreateCheckoutSessionInput
    ) -> CreateCheckoutSessionSuccess:
        context = info.context
        customer_id = input_id(input.customer_id, "Customer", "customerId", "Customer not found.")
        if input.mode is checkout.CheckoutMode.SUBSCRIPTION:
            return await _subscription_checkout(info, input, customer_id)
        if input.subscription_id is not None:
            raise errors.ValidationError(
                "subscriptionId is for mode SUBSCRIPTION only.", "subscriptionId"
            )
        if input.amount is None:
            raise errors.ValidationError("amount is required for a TOP_UP.", "amount")
        if input.currency is None:
            raise errors.ValidationError("currency is required for a TOP_UP.", "currency")
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

    @strawberry.mutation(description="An OPEN checkout session can no longer be paid (or used).")
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


async def _subscription_checkout(
    info: Info, input: CreateCheckoutSessionInput, customer_id: int
) -> CreateCheckoutSessionSuccess:
    context = info.context
    subscription_id = (
        None
        if input.subscription_id is None
        else input_id(
            input.subscription_id, "Subscription", "subscriptionId", "Subscription not found."
        )
    )
    request = collect.collect_request(
        context.organization_id,
        customer_id=customer_id,
        subscription_id=subscription_id,
        provider=input.provider,
        amount=None if input.amount is None else int(input.amount),
        currency=None if input.currency is None else input.currency.value,
        success_url=input.success_url,
        cancel_url=input.cancel_url,
        idempotency_key=input.idempotency_key,
    )
    created = await collect.open_session(
        context.database,
        context.payment_providers,
        request,
        expires_minutes=context.settings.checkout_expires_minutes,
    )
    return CreateCheckoutSessionSuccess(
        checkout_session=CheckoutSession.from_model(created.session), replayed=created.replayed
    )
