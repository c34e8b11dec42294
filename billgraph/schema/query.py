"""The root Query type."""

import strawberry

from billgraph.resolvers import customers, nodes, wallets
from billgraph.schema.context import Info
from billgraph.schema.node import Node
from billgraph.schema.pagination import Connection
from billgraph.schema.types import CurrencyInfo, Customer, Organization, Wallet


@strawberry.type
class Query:
    @strawberry.field(description="Any object of your organization by its global id.")
    async def node(self, info: Info, id: strawberry.ID) -> Node | None:
        return await nodes.node(info, id)

    @strawberry.field(description="The organization of the calling API key.")
    def viewer(self, info: Info) -> Organization:
        return customers.organization(info)

    @strawberry.field
    async def customer(self, info: Info, id: strawberry.ID) -> Customer | None:
        return await customers.customer(info, id)

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
        return await customers.customers(info, first=first, after=after, email=email)

    @strawberry.field
    async def wallet(self, info: Info, id: strawberry.ID) -> Wallet | None:
        return await wallets.wallet(info, id)

    @strawberry.field(description="Every currency billgraph knows, with its minor-unit exponent.")
    def currencies(self) -> list[CurrencyInfo]:
        return nodes.currencies()
