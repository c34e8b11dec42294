"""Organization: the caller's tenant, with its customers and API keys."""

from datetime import datetime

import strawberry

from billgraph.db import models
from billgraph.graphql.api_keys.types import ApiKey, api_keys_of
from billgraph.graphql.billing.coupons import Coupon, coupon_page
from billgraph.graphql.billing.types import Plan, plan_page
from billgraph.graphql.context import Info
from billgraph.graphql.currencies import Currency
from billgraph.graphql.customers.types import Customer, customer_page
from billgraph.graphql.node import Node, node_loader, to_global_id
from billgraph.graphql.pagination import Connection


@strawberry.type(description="A tenant of billgraph: its customers, wallets and API keys.")
class Organization(Node):
    db_id: strawberry.Private[int]
    name: str
    default_currency: Currency
    created_at: datetime

    @classmethod
    def from_model(cls, row: models.Organization) -> "Organization":
        return cls(
            id=to_global_id("Organization", row.id),
            db_id=row.id,
            name=row.name,
            default_currency=Currency(row.default_currency),
            created_at=row.created_at,
        )

    @strawberry.field(
        description="Customers in creation order; `email` filters case-insensitively."
    )
    async def customers(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        email: str | None = None,
    ) -> Connection[Customer]:
        return await customer_page(info, first=first, after=after, email=email)

    @strawberry.field(
        description="The organization's plans in creation order; `active` filters archived "
        "ones in (false) or out (true)."
    )
    async def plans(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        active: bool | None = None,
    ) -> Connection[Plan]:
        return await plan_page(info, first=first, after=after, active=active)

    @strawberry.field(description="The organization's coupons in creation order.")
    async def coupons(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Connection[Coupon]:
        return await coupon_page(info, first=first, after=after)

    @strawberry.field(description="The organization's API keys, without their secrets.")
    async def api_keys(self, info: Info) -> list[ApiKey]:
        return await api_keys_of(info)


def viewer(info: Info) -> Organization:
    """The organization of the calling API key."""
    principal = info.context.principal
    assert principal is not None  # the Authentication extension refuses anonymous operations
    return Organization.from_model(principal.organization)


@node_loader("Organization")
async def _load(info: Info, db_id: int) -> Organization | None:
    organization = viewer(info)
    return organization if organization.db_id == db_id else None
