"""Plans, subscriptions, invoices and test clocks by id; newest-first pages of many
customers' subscriptions and invoices, and of many subscriptions' invoices and events, each
one statement per batch; invoices' lines."""

from collections import defaultdict
from collections.abc import Awaitable, Callable
from functools import cached_property
from typing import NamedTuple, TypeVar

from aiodataloader import DataLoader

from billgraph.billing import coupons, repository
from billgraph.db.engine import Database
from billgraph.db.models import (
    Coupon,
    Invoice,
    InvoiceLine,
    Plan,
    PromotionCode,
    Subscription,
    SubscriptionDiscount,
    SubscriptionEvent,
    TestClock,
)
from billgraph.graphql.loaders import by_id, grouped_by

R = TypeVar("R")


class PageKey(NamedTuple):
    owner_id: int  # the customer's or the subscription's
    before_id: int | None
    limit: int
    status: str | None = None


# A repository's newest-first pages of many owners: (owner id, before id) each.
Pages = Callable[..., Awaitable[dict[int, list[R]]]]


def pages_loader(
    database: Database, organization_id: int, query: Pages[R]
) -> "DataLoader[PageKey, list[R]]":
    """A loader of pages: one `query` per distinct (page size, filter) in a batch, each owner
    once in it (aliases asking for two pages of one owner take two)."""

    async def load(keys: list[PageKey]) -> list[list[R]]:
        groups: dict[tuple[int, str | None, int], list[PageKey]] = defaultdict(list)
        for key in keys:
            round_ = 0
            while any(k.owner_id == key.owner_id for k in groups[(key.limit, key.status, round_)]):
                round_ += 1
            groups[(key.limit, key.status, round_)].append(key)
        pages: dict[PageKey, list[R]] = {}
        async with database.sessions() as session:
            for (limit, status, _), group in groups.items():
                found = await query(
                    session,
                    organization_id,
                    [(k.owner_id, k.before_id) for k in group],
                    limit=limit,
                    status=status,
                )
                for key in group:
                    pages[key] = found.get(key.owner_id, [])
        return [pages[k] for k in keys]

    return DataLoader(load)


class BillingLoaders:
    """The billing loaders of one request and organization, each made on first use (most
    operations read no billing at all)."""

    def __init__(self, database: Database, organization_id: int) -> None:
        self.database = database
        self.organization_id = organization_id

    @cached_property
    def plan(self) -> "DataLoader[int, Plan | None]":
        return by_id(self.database, self.organization_id, repository.plans_by_ids)

    @cached_property
    def subscription(self) -> "DataLoader[int, Subscription | None]":
        return by_id(self.database, self.organization_id, repository.subscriptions_by_ids)

    @cached_property
    def invoice(self) -> "DataLoader[int, Invoice | None]":
        return by_id(self.database, self.organization_id, repository.invoices_by_ids)

    @cached_property
    def test_clock(self) -> "DataLoader[int, TestClock | None]":
        return by_id(self.database, self.organization_id, repository.clocks_by_ids)

    @cached_property
    def coupon(self) -> "DataLoader[int, Coupon | None]":
        return by_id(self.database, self.organization_id, coupons.coupons_by_ids)

    @cached_property
    def promotion_code(self) -> "DataLoader[int, PromotionCode | None]":
        return by_id(self.database, self.organization_id, coupons.promotion_codes_by_ids)

    @cached_property
    def subscription_discount(self) -> "DataLoader[int, SubscriptionDiscount | None]":
        """By subscription id."""
        return by_id(self.database, self.organization_id, coupons.discounts_by_subscription_ids)

    @cached_property
    def invoice_lines(self) -> "DataLoader[int, list[InvoiceLine]]":
        return grouped_by(self.database, self.organization_id, repository.lines_by_invoice_ids)

    @cached_property
    def customer_subscriptions(self) -> "DataLoader[PageKey, list[Subscription]]":
        return pages_loader(
            self.database, self.organization_id, repository.customers_subscriptions_pages
        )

    @cached_property
    def customer_invoices(self) -> "DataLoader[PageKey, list[Invoice]]":
        return pages_loader(
            self.database, self.organization_id, repository.customers_invoices_pages
        )

    @cached_property
    def subscription_invoices(self) -> "DataLoader[PageKey, list[Invoice]]":
        return pages_loader(
            self.database, self.organization_id, repository.subscriptions_invoices_pages
        )

    @cached_property
    def subscription_events(self) -> "DataLoader[PageKey, list[SubscriptionEvent]]":
        return pages_loader(
            self.database, self.organization_id, repository.subscriptions_events_pages
        )
