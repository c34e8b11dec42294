"""Plan, Subscription, Invoice (with its lines), SubscriptionEvent and TestClock, and the
connections of an organization's plans, a customer's subscriptions and invoices, and a
subscription's invoices and events."""

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, cast

import strawberry

from billgraph.billing import invoices, plans
from billgraph.db import models
from billgraph.graphql.billing.coupons import SubscriptionDiscount, subscription_discount
from billgraph.graphql.billing.enums import InvoiceStatus, PlanInterval, SubscriptionStatus
from billgraph.graphql.billing.loaders import PageKey
from billgraph.graphql.checkout.enums import PaymentProvider
from billgraph.graphql.context import Info
from billgraph.graphql.currencies import Currency
from billgraph.graphql.node import Node, load_existing, node_loader, to_global_id
from billgraph.graphql.pagination import Connection, build_connection, decode_cursor, page_size
from billgraph.graphql.scalars import BigInt

if TYPE_CHECKING:
    from billgraph.graphql.customers.types import Customer

PLAN_CURSOR = "plan"
SUBSCRIPTION_CURSOR = "subscription"
INVOICE_CURSOR = "invoice"
EVENT_CURSOR = "subscription-event"


@strawberry.type(description="What a subscription pays each period.")
class Plan(Node):
    db_id: strawberry.Private[int]
    name: str
    amount: BigInt = strawberry.field(description="Each period, in the currency's minor unit.")
    currency: Currency
    interval: PlanInterval
    interval_count: int = strawberry.field(description="Periods last this many intervals.")
    trial_days: int = strawberry.field(description="Free days before the first invoice.")
    active: bool = strawberry.field(
        description="False once archived: no new subscriptions; those on it go on."
    )
    created_at: datetime

    @classmethod
    def from_model(cls, row: models.Plan) -> "Plan":
        return cls(
            id=to_global_id("Plan", row.id),
            db_id=row.id,
            name=row.name,
            amount=BigInt(row.amount),
            currency=Currency(row.currency),
            interval=PlanInterval(row.interval),
            interval_count=row.interval_count,
            trial_days=row.trial_days,
            active=row.active,
            created_at=row.created_at,
        )


@strawberry.type(
    description="A clock frozen at frozenTime that moves forward only when told: its "
    "customers' subscriptions (periods, trials, dunning) live at its time."
)
class TestClock(Node):
    __test__ = False  # not a pytest test class, whatever its name
    db_id: strawberry.Private[int]
    name: str | None
    frozen_time: datetime

    @classmethod
    def from_model(cls, row: models.TestClock) -> "TestClock":
        return cls(
            id=to_global_id("TestClock", row.id),
            db_id=row.id,
            name=row.name,
            frozen_time=row.frozen_time,
        )


@strawberry.type(description="One line of an invoice.")
class InvoiceLine:
    description: str
    amount: BigInt = strawberry.field(
        description="In the invoice's minor unit; negative for a credit (a proration)."
    )
    quantity: int
    period_start: datetime
    period_end: datetime

    @classmethod
    def from_model(cls, row: models.InvoiceLine) -> "InvoiceLine":
        return cls(
            description=row.description,
            amount=BigInt(row.amount),
            quantity=row.quantity,
            period_start=row.period_start,
            period_end=row.period_end,
        )


@strawberry.type(
    description="A period's bill: wallet credit in its currency pays first, the payment "
    "method the rest. Amounts in the currency's minor unit."
)
class Invoice(Node):
    db_id: strawberry.Private[int]
    customer_db_id: strawberry.Private[int]
    subscription_db_id: strawberry.Private[int | None]
    hosted_token: strawberry.Private[str]
    number: str = strawberry.field(
        description="Sequential per organization, without gaps: INV-000001."
    )
    status: InvoiceStatus
    currency: Currency
    subtotal: BigInt = strawberry.field(description="The lines' sum.")
    discount: BigInt
    wallet_credit_applied: BigInt = strawberry.field(
        description="Paid from the wallet; negative when a prorated downgrade's negative total "
        "was credited to it (then amountDue is 0)."
    )
    total: BigInt = strawberry.field(description="subtotal - discount.")
    amount_due: BigInt = strawberry.field(
        description="total - walletCreditApplied: what the payment method owes."
    )
    amount_paid: BigInt = strawberry.field(description="What the payment method has paid.")
    attempt_count: int = strawberry.field(description="Attempts to charge the payment method.")
    next_payment_attempt_at: datetime | None = strawberry.field(
        description="The next retry of the charge (dunning); null when none is scheduled."
    )
    due_at: datetime
    paid_at: datetime | None
    created_at: datetime

    @classmethod
    def from_model(cls, row: models.Invoice) -> "Invoice":
        return cls(
            id=to_global_id("Invoice", row.id),
            db_id=row.id,
            customer_db_id=row.customer_id,
            subscription_db_id=row.subscription_id,
            hosted_token=row.hosted_token,
            number=invoices.invoice_number(row),
            status=InvoiceStatus(row.status),
            currency=Currency(row.currency),
            subtotal=BigInt(row.subtotal),
            discount=BigInt(row.discount),
            wallet_credit_applied=BigInt(row.wallet_credit_applied),
            total=BigInt(row.total),
            amount_due=BigInt(row.amount_due),
            amount_paid=BigInt(row.amount_paid),
            attempt_count=row.attempt_count,
            next_payment_attempt_at=row.next_payment_attempt_at,
            due_at=row.due_at,
            paid_at=row.paid_at,
            created_at=row.created_at,
        )

    @strawberry.field
    async def customer(
        self, info: Info
    ) -> Annotated["Customer", strawberry.lazy("billgraph.graphql.customers.types")]:
        return cast("Customer", await load_existing(info, "Customer", self.customer_db_id))

    @strawberry.field
    async def subscription(self, info: Info) -> "Subscription | None":
        if self.subscription_db_id is None:
            return None
        return cast(
            Subscription, await load_existing(info, "Subscription", self.subscription_db_id)
        )

    @strawberry.field(description="The invoice's lines, in order.")
    async def lines(self, info: Info) -> list[InvoiceLine]:
        rows = await info.context.loaders.billing.invoice_lines.load(self.db_id)
        return [InvoiceLine.from_model(r) for r in rows]

    @strawberry.field(
        description="The invoice's printable page for the customer, served by billgraph: an "
        "unguessable address, no API key needed; it shows what the invoice shows and nothing "
        "more."
    )
    def hosted_url(self, info: Info) -> str:
        base = info.context.settings.public_url.rstrip("/")
        return f"{base}/invoices/{self.hosted_token}"


@strawberry.type(
    description="Something that happened to a subscription: type is one of created, "
    "activated, trial_will_end, renewal_upcoming, payment_succeeded, payment_failed, "
    "past_due, suspended, plan_changed, cancel_scheduled, canceled, resumed."
)
class SubscriptionEvent:
    id: strawberry.ID
    invoice_db_id: strawberry.Private[int | None]
    type: str
    message: str
    created_at: datetime = strawberry.field(
        description="The subscription's time (its test clock's, if it has one)."
    )

    @classmethod
    def from_model(cls, row: models.SubscriptionEvent) -> "SubscriptionEvent":
        return cls(
            id=to_global_id("SubscriptionEvent", row.id),
            invoice_db_id=row.invoice_id,
            type=row.type,
            message=row.message,
            created_at=row.created_at,
        )

    @strawberry.field(description="The invoice the event is about, if any.")
    async def invoice(self, info: Info) -> Invoice | None:
        if self.invoice_db_id is None:
            return None
        return cast(Invoice, await load_existing(info, "Invoice", self.invoice_db_id))


@strawberry.type(description="A customer on a plan, billed each period.")
class Subscription(Node):
    db_id: strawberry.Private[int]
    customer_db_id: strawberry.Private[int]
    plan_db_id: strawberry.Private[int]
    status: SubscriptionStatus
    provider: PaymentProvider
    current_period_start: datetime
    current_period_end: datetime
    trial_end: datetime | None
    cancel_at_period_end: bool
    canceled_at: datetime | None
    next_billing_at: datetime | None = strawberry.field(
        description="When the next invoice is issued (a trial's end for a trial); null when "
        "none is scheduled."
    )
    created_at: datetime

    @classmethod
    def from_model(cls, row: models.Subscription) -> "Subscription":
        return cls(
            id=to_global_id("Subscription", row.id),
            db_id=row.id,
            customer_db_id=row.customer_id,
            plan_db_id=row.plan_id,
            status=SubscriptionStatus(row.status),
            provider=PaymentProvider(row.provider),
            current_period_start=row.current_period_start,
            current_period_end=row.current_period_end,
            trial_end=row.trial_end,
            cancel_at_period_end=row.cancel_at_period_end,
            canceled_at=row.canceled_at,
            next_billing_at=row.next_billing_at,
            created_at=row.created_at,
        )

    @strawberry.field
    async def customer(
        self, info: Info
    ) -> Annotated["Customer", strawberry.lazy("billgraph.graphql.customers.types")]:
        return cast("Customer", await load_existing(info, "Customer", self.customer_db_id))

    @strawberry.field(description="The plan billed now (a change of plan applies next period).")
    async def plan(self, info: Info) -> Plan:
        return cast(Plan, await load_existing(info, "Plan", self.plan_db_id))

    @strawberry.field(description="The coupon it redeemed with a promotion code, if any.")
    async def discount(self, info: Info) -> SubscriptionDiscount | None:
        return await subscription_discount(info, self.db_id)

    @strawberry.field(description="The subscription's invoices, newest first.")
    async def invoices(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Connection[Invoice]:
        limit = page_size(first)
        before_id = decode_cursor(INVOICE_CURSOR, after)
        rows = await info.context.loaders.billing.subscription_invoices.load(
            PageKey(self.db_id, before_id, limit + 1)
        )
        return build_connection(rows, limit, INVOICE_CURSOR, lambda r: r.id, Invoice.from_model)

    @strawberry.field(description="What happened to the subscription, newest first.")
    async def events(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Connection[SubscriptionEvent]:
        limit = page_size(first)
        before_id = decode_cursor(EVENT_CURSOR, after)
        rows = await info.context.loaders.billing.subscription_events.load(
            PageKey(self.db_id, before_id, limit + 1)
        )
        return build_connection(
            rows, limit, EVENT_CURSOR, lambda r: r.id, SubscriptionEvent.from_model
        )


async def plan_page(
    info: Info, *, first: int | None, after: str | None, active: bool | None
) -> Connection[Plan]:
    """The organization's plans in creation order, archived ones too unless `active`."""
    limit = page_size(first)
    after_id = decode_cursor(PLAN_CURSOR, after)
    async with info.context.database.sessions() as session:
        rows = await plans.page(
            session, info.context.organization_id, limit=limit + 1, after_id=after_id, active=active
        )
    return build_connection(rows, limit, PLAN_CURSOR, lambda r: r.id, Plan.from_model)


async def customer_subscription_page(
    info: Info,
    customer_db_id: int,
    *,
    first: int | None,
    after: str | None,
    status: SubscriptionStatus | None,
) -> Connection[Subscription]:
    """The customer's subscriptions, newest first (by keyset)."""
    limit = page_size(first)
    before_id = decode_cursor(SUBSCRIPTION_CURSOR, after)
    rows = await info.context.loaders.billing.customer_subscriptions.load(
        PageKey(customer_db_id, before_id, limit + 1, None if status is None else status.value)
    )
    return build_connection(
        rows, limit, SUBSCRIPTION_CURSOR, lambda r: r.id, Subscription.from_model
    )


async def customer_invoice_page(
    info: Info,
    customer_db_id: int,
    *,
    first: int | None,
    after: str | None,
    status: InvoiceStatus | None,
) -> Connection[Invoice]:
    """The customer's invoices, newest first (by keyset)."""
    limit = page_size(first)
    before_id = decode_cursor(INVOICE_CURSOR, after)
    rows = await info.context.loaders.billing.customer_invoices.load(
        PageKey(customer_db_id, before_id, limit + 1, None if status is None else status.value)
    )
    return build_connection(rows, limit, INVOICE_CURSOR, lambda r: r.id, Invoice.from_model)


@node_loader("Plan")
async def _load_plan(info: Info, db_id: int) -> Plan | None:
    row = await info.context.loaders.billing.plan.load(db_id)
    return Plan.from_model(row) if row is not None else None


@node_loader("Subscription")
async def _load_subscription(info: Info, db_id: int) -> Subscription | None:
    row = await info.context.loaders.billing.subscription.load(db_id)
    return Subscription.from_model(row) if row is not None else None


@node_loader("Invoice")
async def _load_invoice(info: Info, db_id: int) -> Invoice | None:
    row = await info.context.loaders.billing.invoice.load(db_id)
    return Invoice.from_model(row) if row is not None else None


@node_loader("TestClock")
async def _load_test_clock(info: Info, db_id: int) -> TestClock | None:
    row = await info.context.loaders.billing.test_clock.load(db_id)
    return TestClock.from_model(row) if row is not None else None
