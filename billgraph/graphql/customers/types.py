"""Customer, with its wallets and its organization; the customers connection."""

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, cast

import strawberry

from billgraph.core import validation
from billgraph.customers import repository
from billgraph.customers.repository import CustomerRow
from billgraph.db import models
from billgraph.graphql.billing.enums import InvoiceStatus, SubscriptionStatus
from billgraph.graphql.billing.types import (
    Invoice,
    Subscription,
    customer_invoice_page,
    customer_subscription_page,
)
from billgraph.graphql.checkout.enums import CheckoutStatus
from billgraph.graphql.checkout.types import (
    CheckoutSession,
    ProviderCustomer,
    checkout_session_page,
)
from billgraph.graphql.context import Info
from billgraph.graphql.currencies import Currency
from billgraph.graphql.lookahead import child_arguments
from billgraph.graphql.node import Node, load_existing, node_loader, to_global_id
from billgraph.graphql.pagination import Connection, build_connection, decode_cursor, page_size
from billgraph.graphql.wallets.loaders import prime_pages
from billgraph.graphql.wallets.types import Wallet, entries_ahead
from billgraph.ledger import repository as ledger

if TYPE_CHECKING:
    from billgraph.graphql.organizations.types import Organization

CUSTOMER_CURSOR = "customer"


@strawberry.type(description="A customer of the organization, with one wallet per currency.")
class Customer(Node):
    db_id: strawberry.Private[int]
    organization_db_id: strawberry.Private[int]
    email: str
    name: str | None
    external_id: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_model(cls, row: models.Customer | CustomerRow) -> "Customer":
        assert row.email is not None  # deleted customers never reach the graph
        return cls(
            id=to_global_id("Customer", row.id),
            db_id=row.id,
            organization_db_id=row.organization_id,
            email=row.email,
            name=row.name,
            external_id=row.external_id,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )

    @classmethod
    def from_row(cls, row: CustomerRow) -> "Customer":
        """From a row of the loaders' statements (the table's columns in order), unpacked:
        cheaper than reading its attributes."""
        id_, organization_id, email, _, name, external_id, created_at, updated_at, _ = row
        assert email is not None  # deleted customers never reach the graph
        return cls(
            id=to_global_id("Customer", id_),
            db_id=id_,
            organization_db_id=organization_id,
            email=email,
            name=name,
            external_id=external_id,
            created_at=created_at,
            updated_at=updated_at,
        )

    @strawberry.field
    async def organization(
        self, info: Info
    ) -> Annotated["Organization", strawberry.lazy("billgraph.graphql.organizations.types")]:
        return cast(
            "Organization", await load_existing(info, "Organization", self.organization_db_id)
        )

    @strawberry.field(description="The customer's wallets, one per currency, oldest first.")
    async def wallets(self, info: Info) -> list[Wallet]:
        page = entries_ahead(info)  # read with the wallets when their entries are selected
        if page is None:
            rows = await info.context.loaders.wallets_by_customer.load(self.db_id)
        else:
            rows = await info.context.loaders.paged_wallets_by_customer.load((self.db_id, page))
        return [Wallet.from_row(r) for r in rows]

    @strawberry.field(description="The customer's wallet in `currency`, if it has one.")
    async def wallet(self, info: Info, currency: Currency) -> Wallet | None:
        rows = await info.context.loaders.wallets_by_customer.load(self.db_id)
        return next((Wallet.from_row(r) for r in rows if r.currency == currency.value), None)

    @strawberry.field(
        description="The customer's ids at the payment providers it has paid through (made on "
        "its first checkout session there)."
    )
    async def provider_customers(self, info: Info) -> list[ProviderCustomer]:
        rows = await info.context.loaders.provider_customers.load(self.db_id)
        return [ProviderCustomer.from_model(r) for r in rows]

    @strawberry.field(description="The customer's checkout sessions, newest first.")
    async def checkout_sessions(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        status: CheckoutStatus | None = None,
    ) -> Connection[CheckoutSession]:
        return await checkout_session_page(
            info, self.db_id, first=first, after=after, status=status
        )

    @strawberry.field(description="The customer's subscriptions, newest first.")
    async def subscriptions(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        status: SubscriptionStatus | None = None,
    ) -> Connection[Subscription]:
        return await customer_subscription_page(
            info, self.db_id, first=first, after=after, status=status
        )

    @strawberry.field(description="The customer's invoices, newest first.")
    async def invoices(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        status: InvoiceStatus | None = None,
    ) -> Connection[Invoice]:
        return await customer_invoice_page(
            info, self.db_id, first=first, after=after, status=status
        )


async def customer_page(
    info: Info, *, first: int | None, after: str | None, email: str | None
) -> Connection[Customer]:
    """The organization's customers in creation order; `email` filters case-insensitively
    (text no database can store is refused, as BAD_USER_INPUT). When their wallets are
    selected, they are read with the page, with their entries if those are selected too:
    each customer's `wallets` then finds them loaded and completes without waiting."""
    limit = page_size(first)
    after_id = decode_cursor(CUSTOMER_CURSOR, after)
    if email is not None:
        validation.storable(email, "email")
    organization_id = info.context.organization_id
    loaders = info.context.loaders
    wallets = child_arguments(info, "edges", "node", "wallets") is not None
    page = entries_ahead(info, "edges", "node", "wallets") if wallets else None
    async with info.context.database.plain.connect() as connection:
        if page is None:
            rows = await repository.customers_page(
                connection, organization_id, limit=limit + 1, after_id=after_id, email=email
            )
        else:
            listed = await ledger.customers_with_pages(
                connection,
                organization_id,
                limit=limit + 1,
                after_id=after_id,
                email=email,
                before=page.before_sequence,
                entries=page.limit,
                entry_type=page.entry_type,
            )
            rows = [customer for customer, _ in listed]
            for customer, paged in listed[:limit]:
                loaders.paged_wallets_by_customer.prime(
                    (customer[0], page),
                    prime_pages(loaders.wallet, loaders.ledger_page, page, paged),
                )
    for row in rows[:limit]:  # later customer(id) and wallet.customer lookups hit the cache
        loaders.customer.prime(row[0], row)
    if wallets and page is None and rows:
        await loaders.wallets_by_customer.load_many([row[0] for row in rows[:limit]])
    return build_connection(rows, limit, CUSTOMER_CURSOR, lambda r: r[0], Customer.from_row)


@node_loader("Customer")
async def _load(info: Info, db_id: int) -> Customer | None:
    row = await info.context.loaders.customer.load(db_id)
    return Customer.from_row(row) if row is not None else None
