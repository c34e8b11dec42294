"""Plans, subscriptions, invoices and test clocks: createPlan, archivePlan,
createSubscription, cancelSubscription, resumeSubscription, changeSubscriptionPlan,
payInvoice, voidInvoice, createTestClock and advanceTestClock."""

import strawberry

from billgraph.billing import collect, plans, proration, repository, run, subscriptions, test_clocks
from billgraph.billing import stripe as stripe_billing
from billgraph.core import errors
from billgraph.core.unit import unit_of_work
from billgraph.graphql.billing.inputs import (
    AdvanceTestClockInput,
    CancelSubscriptionInput,
    ChangeSubscriptionPlanInput,
    CreatePlanInput,
    CreateSubscriptionInput,
    CreateTestClockInput,
    PayInvoiceInput,
)
from billgraph.graphql.billing.payloads import (
    AdvanceTestClockSuccess,
    ArchivePlanSuccess,
    BillingRun,
    CancelSubscriptionSuccess,
    ChangeSubscriptionPlanSuccess,
    CreatePlanSuccess,
    CreateSubscriptionSuccess,
    CreateTestClockSuccess,
    PayInvoiceSuccess,
    ResumeSubscriptionSuccess,
    VoidInvoiceSuccess,
)
from billgraph.graphql.billing.types import Invoice, Plan, Subscription, TestClock
from billgraph.graphql.checkout.types import CheckoutSession, PaymentError
from billgraph.graphql.context import Info
from billgraph.graphql.errors import result
from billgraph.graphql.node import input_id


def _subscription_id(global_id: str, field: str) -> int:
    return input_id(global_id, "Subscription", field, "Subscription not found.")


def _plan_id(global_id: str, field: str) -> int:
    return input_id(global_id, "Plan", field, "Plan not found.")


def _invoice_id(global_id: str, field: str) -> int:
    return input_id(global_id, "Invoice", field, "Invoice not found.")


@strawberry.type
class BillingMutations:
    @strawberry.mutation(description="A plan that subscriptions pay each period.")
    @result("CreatePlanResult", CreatePlanSuccess, errors.ValidationError)
    async def create_plan(self, info: Info, input: CreatePlanInput) -> CreatePlanSuccess:
        context = info.context
        request = plans.plan_request(
            context.organization_id,
            name=input.name,
            amount=input.amount,
            currency=input.currency.value,
            interval=input.interval,
            interval_count=input.interval_count,
            trial_days=input.trial_days,
        )
        async with unit_of_work(context.database) as unit:
            plan = await plans.create(unit, request)
        return CreatePlanSuccess(plan=Plan.from_model(plan))

    @strawberry.mutation(
        description="No new subscriptions on the plan; those on it go on. Archiving twice is fine."
    )
    @result("ArchivePlanResult", ArchivePlanSuccess, errors.NotFoundError, errors.ValidationError)
    async def archive_plan(self, info: Info, id: strawberry.ID) -> ArchivePlanSuccess:
        context = info.context
        plan_id = _plan_id(id, "id")
        async with unit_of_work(context.database) as unit:
            plan = await plans.archive(unit, context.organization_id, plan_id)
        return ArchivePlanSuccess(plan=Plan.from_model(plan))

    @strawberry.mutation(
        description="Put a customer on a plan, idempotently. A plan with a trial starts "
        "TRIALING; otherwise the first invoice is issued at once and wallet credit pays what "
        "it can: paid in full, the subscription is ACTIVE; else INCOMPLETE, and checkoutSession "
        "(mode SUBSCRIPTION, which needs successUrl and cancelUrl) collects the payment method "
        "that pays it."
    )
    @result(
        "CreateSubscriptionResult",
        CreateSubscriptionSuccess,
        errors.NotFoundError,
        errors.ValidationError,
        errors.IdempotencyConflictError,
        errors.ConflictError,
        errors.ProviderError,
        errors.InsufficientBalanceError,
    )
    async def create_subscription(
        self, info: Info, input: CreateSubscriptionInput
    ) -> CreateSubscriptionSuccess:
        context = info.context
        customer_id = input_id(input.customer_id, "Customer", "customerId", "Customer not found.")
        plan_id = _plan_id(input.plan_id, "planId")
        request = subscriptions.subscription_request(
            context.organization_id,
            customer_id=customer_id,
            plan_id=plan_id,
            provider=input.provider,
            trial_days=input.trial_days,
            idempotency_key=input.idempotency_key,
            promotion_code=input.promotion_code,
            success_url=input.success_url,
            cancel_url=input.cancel_url,
            for_checkout=True,
        )
        created = await collect.subscribe(
            context.database,
            context.payment_providers,
            request,
            expires_minutes=context.settings.checkout_expires_minutes,
        )
        session = created.checkout_session
        return CreateSubscriptionSuccess(
            subscription=Subscription.from_model(created.subscription),
            checkout_session=None if session is None else CheckoutSession.from_model(session),
            replayed=created.replayed,
        )

    @strawberry.mutation(
        description="Cancel at the end of the current period (by default), or now: then no "
        "more invoices, and it cannot be resumed."
    )
    @result(
        "CancelSubscriptionResult",
        CancelSubscriptionSuccess,
        errors.NotFoundError,
        errors.ConflictError,
        errors.ValidationError,
        errors.ProviderError,
    )
    async def cancel_subscription(
        self, info: Info, input: CancelSubscriptionInput
    ) -> CancelSubscriptionSuccess:
        context = info.context
        subscription_id = _subscription_id(input.subscription_id, "subscriptionId")
        at_stripe = await stripe_billing.cancel(
            context.database,
            context.payment_providers,
            context.organization_id,
            subscription_id,
            at_period_end=input.at_period_end,
            reason=input.reason,
        )
        if at_stripe is not None:
            return CancelSubscriptionSuccess(subscription=Subscription.from_model(at_stripe))
        async with unit_of_work(context.database) as unit:
            row = await subscriptions.cancel(
                unit,
                context.organization_id,
                subscription_id,
                at_period_end=input.at_period_end,
                reason=input.reason,
            )
        return CancelSubscriptionSuccess(subscription=Subscription.from_model(row))

    @strawberry.mutation(description="Undo a pending cancellation at period end.")
    @result(
        "ResumeSubscriptionResult",
        ResumeSubscriptionSuccess,
        errors.NotFoundError,
        errors.ConflictError,
        errors.ValidationError,
        errors.ProviderError,
    )
    async def resume_subscription(self, info: Info, id: strawberry.ID) -> ResumeSubscriptionSuccess:
        context = info.context
        subscription_id = _subscription_id(id, "id")
        at_stripe = await stripe_billing.resume(
            context.database, context.payment_providers, context.organization_id, subscription_id
        )
        if at_stripe is not None:
            return ResumeSubscriptionSuccess(subscription=Subscription.from_model(at_stripe))
        async with unit_of_work(context.database) as unit:
            row = await subscriptions.resume(unit, context.organization_id, subscription_id)
        return ResumeSubscriptionSuccess(subscription=Subscription.from_model(row))

    @strawberry.mutation(
        description="Move the subscription to another plan of the same currency from its next "
        "period, or now with prorate (see its input)."
    )
    @result(
        "ChangeSubscriptionPlanResult",
        ChangeSubscriptionPlanSuccess,
        errors.NotFoundError,
        errors.ValidationError,
        errors.ConflictError,
        errors.ProviderError,
        errors.InsufficientBalanceError,
        errors.IdempotencyConflictError,
    )
    async def change_subscription_plan(
        self, info: Info, input: ChangeSubscriptionPlanInput
    ) -> ChangeSubscriptionPlanSuccess:
        context = info.context
        subscription_id = _subscription_id(input.subscription_id, "subscriptionId")
        plan_id = _plan_id(input.plan_id, "planId")
        if input.prorate:
            change = await proration.change_now(
                context.database,
                context.payment_providers,
                context.organization_id,
                subscription_id,
                plan_id,
            )
            return ChangeSubscriptionPlanSuccess(
                subscription=Subscription.from_model(change.subscription),
                invoice=None if change.invoice is None else Invoice.from_model(change.invoice),
            )
        async with unit_of_work(context.database) as unit:
            row = await subscriptions.change_plan(
                unit, context.organization_id, subscription_id, plan_id
            )
        return ChangeSubscriptionPlanSuccess(subscription=Subscription.from_model(row))

    @strawberry.mutation(
        description="Try to pay an OPEN invoice now, idempotently: wallet credit first, then "
        "the payment method. Paid, it makes a PAST_DUE or SUSPENDED subscription ACTIVE. A "
        "declined charge is no error: see paymentError."
    )
    @result(
        "PayInvoiceResult",
        PayInvoiceSuccess,
        errors.NotFoundError,
        errors.ConflictError,
        errors.ValidationError,
        errors.ProviderError,
        errors.InsufficientBalanceError,
        errors.IdempotencyConflictError,
    )
    async def pay_invoice(self, info: Info, input: PayInvoiceInput) -> PayInvoiceSuccess:
        context = info.context
        invoice_id = _invoice_id(input.invoice_id, "invoiceId")
        paid = await run.pay_invoice(
            context.database,
            context.payment_providers,
            context.organization_id,
            invoice_id,
            input.idempotency_key,
        )
        attempt = paid.attempt
        error = None
        if attempt is not None and attempt.outcome == "FAILED":
            error = PaymentError(
                code=attempt.failure_code or "card_declined", message=attempt.failure_message or ""
            )
        subscription = None
        if paid.invoice.subscription_id is not None:
            async with context.database.sessions() as session:
                subscription = await repository.subscription_by_id(
                    session, context.organization_id, paid.invoice.subscription_id
                )
        return PayInvoiceSuccess(
            invoice=Invoice.from_model(paid.invoice),
            subscription=None if subscription is None else Subscription.from_model(subscription),
            payment_error=error,
            replayed=paid.replayed,
        )

    @strawberry.mutation(
        description="An OPEN invoice will not be paid: VOID, no more attempts, and the wallet "
        "credit it took given back. Voiding twice is fine."
    )
    @result(
        "VoidInvoiceResult",
        VoidInvoiceSuccess,
        errors.NotFoundError,
        errors.ConflictError,
        errors.ValidationError,
        errors.InsufficientBalanceError,
        errors.IdempotencyConflictError,
    )
    async def void_invoice(self, info: Info, id: strawberry.ID) -> VoidInvoiceSuccess:
        context = info.context
        invoice_id = _invoice_id(id, "id")
        async with unit_of_work(context.database) as unit:
            row = await run.void_invoice(unit, context.organization_id, invoice_id)
        return VoidInvoiceSuccess(invoice=Invoice.from_model(row))

    @strawberry.mutation(
        description="A test clock: customers created on it (createCustomer's testClockId) live "
        "at its time, so advanceTestClock walks their subscriptions through months in seconds."
    )
    @result("CreateTestClockResult", CreateTestClockSuccess, errors.ValidationError)
    async def create_test_clock(
        self, info: Info, input: CreateTestClockInput
    ) -> CreateTestClockSuccess:
        context = info.context
        async with unit_of_work(context.database) as unit:
            clock = await test_clocks.create(
                unit, context.organization_id, frozen_time=input.frozen_time, name=input.name
            )
        return CreateTestClockSuccess(test_clock=TestClock.from_model(clock))

    @strawberry.mutation(
        description="Move a test clock forward (never back, at most two years at a time) and "
        "bill its customers up to that instant before answering."
    )
    @result(
        "AdvanceTestClockResult",
        AdvanceTestClockSuccess,
        errors.NotFoundError,
        errors.ValidationError,
        errors.ConflictError,
        errors.ProviderError,
        errors.InsufficientBalanceError,
        errors.IdempotencyConflictError,
    )
    async def advance_test_clock(
        self, info: Info, input: AdvanceTestClockInput
    ) -> AdvanceTestClockSuccess:
        context = info.context
        clock_id = input_id(
            input.test_clock_id, "TestClock", "testClockId", "Test clock not found."
        )
        clock, summary = await run.advance_clock(
            context.database,
            context.payment_providers,
            context.organization_id,
            clock_id,
            input.frozen_time,
        )
        return AdvanceTestClockSuccess(
            test_clock=TestClock.from_model(clock), billing_run=BillingRun.from_summary(summary)
        )
