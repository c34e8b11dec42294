from typing import cast

import strawberry

from billgraph.graphql.context import Info
from billgraph.graphql.customers.types import Customer, customer_page
from billgraph.graphql.node import find_node
from billgraph.graphql.pagination import Connection


@strawberry.type
class CustomerQueries:
    @strawberry.field
    async def customer(self, info: Info, id: strawberry.ID) -> Customer | None:
        return cast(Customer | None, await find_node(info, id, "Customer"))

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
