"""Building blocks of the billing tests: an organization, customers with credit, plans, and
the billing domain's services called as the GraphQL layer will call them."""

import itertools
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select

from billgraph.billing import payment_methods as methods
from billgraph.billing import plans, run, subscriptions, test_clocks
from billgraph.checkout.providers import Providers
from billgraph.core.unit import unit_of_work
from billgraph.customers import service as customers
from billgraph.db.engine import Database
from billgraph.db.models import Invoice, InvoiceAttempt, Subscription, SubscriptionEvent, Wallet
from billgraph.ledger import service as ledger
from billgraph.ledger.posting import EntryType
from billgraph.organizations import service as organizations

_counter = itertools.count(1)
GOOD_CARD = "4242 4242 4242 4242"
DECLINING_CARD = "4000 0000 0000 0341"


def at(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


@dataclass
class Org:
    database: Database
    providers: Providers
    id: int

    async def customer(
        self, credit: int = 0, currency: str = "USD", clock: int | None = None
    ) -> int:
        async with unit_of_work(self.database) as unit:
            made = await customers.create(
                unit, self.id, email=f"billing{next(_counter)}@example.com", currency=currency
            )
            if clock is not None:
                await test_clocks.attach_customer(unit, self.id, made.customer.id, clock)
        if credit:
            await ledger.commit_entry(
                self.database,
                ledger.entry_request(
                    self.id,
                    customer_id=made.customer.id,
                    currency=currency,
                    entry_type=EntryType.CREDIT,
                    amount=credit,
                    reason="top-up",
                    idempotency_key=f"topup-{next(_counter)}",
                ),
            )
        return made.customer.id

    async def plan(self, amount: int = 1000, **fields: Any) -> int:
        fields.setdefault("interval", "MONTH")
        async with unit_of_work(self.database) as unit:
            plan = await plans.create(
                unit,
                plans.plan_request(
                    self.id,
                    name=f"Plan {next(_counter)}",
                    amount=amount,
                    currency=fields.pop("currency", "USD"),
                    **fields,
                ),
            )
        return plan.id

    async def clock(self, frozen: datetime) -> int:
        async with unit_of_work(self.database) as unit:
            return (await test_clocks.create(unit, self.id, frozen_time=frozen, name="t")).id

    async def card(self, customer: int, number: str = GOOD_CARD) -> int:
        async with unit_of_work(self.database) as unit:
            return (await methods.save_sandbox_card(unit, self.id, customer, number)).id

    async def subscribe(
        self,
        customer: int,
        plan: int,
        *,
        method: int | None = None,
        key: str | None = None,
        now: datetime | None = None,
        **fields: Any,
    ) -> subscriptions.CreatedSubscription:
        request = subscriptions.subscription_request(
            self.id,
            customer_id=customer,
            plan_id=plan,
            payment_method_id=method,
            idempotency_key=key or f"sub-{next(_counter)}",
            **fields,
        )
        return await subscriptions.create(self.database, self.providers, request, now=now)

    async def advance(self, clock: int, to: datetime) -> run.BillingSummary:
        return (await run.advance_clock(self.database, self.providers, self.id, clock, to))[1]

    async def subscription(self, subscription_id: int) -> Subscription:
        async with self.database.sessions() as session:
            return await subscriptions.get(session, self.id, subscription_id)

    async def invoices(self, subscription_id: int) -> list[Invoice]:
        async with self.database.sessions() as session:
            rows = await session.scalars(
                select(Invoice)
                .where(Invoice.subscription_id == subscription_id)
                .order_by(Invoice.id)
            )
            return list(rows)

    async def attempts(self, invoice_id: int) -> list[InvoiceAttempt]:
        async with self.database.sessions() as session:
            rows = await session.scalars(
                select(InvoiceAttempt)
                .where(InvoiceAttempt.invoice_id == invoice_id)
                .order_by(InvoiceAttempt.number)
            )
            return list(rows)

    async def events(self, subscription_id: int) -> list[str]:
        async with self.database.sessions() as session:
            rows = await session.scalars(
                select(SubscriptionEvent.type)
                .where(SubscriptionEvent.subscription_id == subscription_id)
                .order_by(SubscriptionEvent.id)
            )
            return list(rows)

    async def balance(self, customer: int, currency: str = "USD") -> int:
        async with self.database.sessions() as session:
            value = await session.scalar(
                select(Wallet.balance).where(
                    Wallet.customer_id == customer, Wallet.currency == currency
                )
            )
            return int(value or 0)

    async def invoice_count(self) -> int:
        async with self.database.sessions() as session:
            value = await session.scalar(
                select(func.count()).select_from(Invoice).where(Invoice.organization_id == self.id)
            )
            return int(value or 0)


async def new_org(database: Database, providers: Providers) -> Org:
    async with unit_of_work(database) as unit:
        created = await organizations.create(unit, f"Billing {next(_counter)}", "USD")
    return Org(database, providers, created.organization.id)
