"""Checkout sessions by id, newest-first pages of many customers' sessions in one statement,
sessions' refunds and customers' ids at providers."""

from collections import defaultdict
from typing import NamedTuple

from aiodataloader import DataLoader

from billgraph.checkout import repository
from billgraph.db.engine import Database
from billgraph.db.models import CheckoutSession, ProviderCustomer, Refund, utcnow
from billgraph.graphql.loaders import by_id, grouped_by


class SessionPageKey(NamedTuple):
    customer_id: int
    before_id: int | None
    limit: int
    status: str | None


def checkout_session_loader(
    database: Database, organization_id: int
) -> "DataLoader[int, CheckoutSession | None]":
    return by_id(database, organization_id, repository.sessions_by_ids)


def checkout_session_page_loader(
    database: Database, organization_id: int
) -> "DataLoader[SessionPageKey, list[CheckoutSession]]":
    async def load(keys: list[SessionPageKey]) -> list[list[CheckoutSession]]:
        # One statement per distinct (page size, filter), each customer once in it (aliases
        # asking for two pages of one customer take two): normally one for the whole batch.
        groups: dict[tuple[int, str | None, int], list[SessionPageKey]] = defaultdict(list)
        for key in keys:
            round_ = 0
            while any(
                k.customer_id == key.customer_id for k in groups[(key.limit, key.status, round_)]
            ):
                round_ += 1
            groups[(key.limit, key.status, round_)].append(key)
        pages: dict[SessionPageKey, list[CheckoutSession]] = {}
        now = utcnow()
        async with database.sessions() as session:
            for (limit, status, _), group in groups.items():
                found = await repository.customer_sessions_pages(
                    session,
                    organization_id,
                    [(k.customer_id, k.before_id) for k in group],
                    limit=limit,
                    status=status,
                    now=now,
                )
                for key in group:
                    pages[key] = found.get(key.customer_id, [])
        return [pages[k] for k in keys]

    return DataLoader(load)


def refunds_loader(database: Database, organization_id: int) -> "DataLoader[int, list[Refund]]":
    return grouped_by(database, organization_id, repository.refunds_by_session_ids)


def provider_customers_loader(
    database: Database, organization_id: int
) -> "DataLoader[int, list[ProviderCustomer]]":
    return grouped_by(database, organization_id, repository.provider_customers)


def refund_loader(database: Database, organization_id: int) -> "DataLoader[int, Refund | None]":
    return by_id(database, organization_id, repository.refunds_by_ids)
