import strawberry

from billgraph.graphql.context import Info
from billgraph.graphql.customers.types import Customer, customer_page
from billgraph.graphql.node import db_id_of
from billgraph.graphql.pagination import Connection


@strawberry.type
class CustomerQueries:
    @strawberry.field
    async def customer(self, info: Info, id: strawberry.ID) -> Customer | None:
        db_id = db_id_of(id, "Customer")
        if db_id is None:
            return None
        row = await info.context.loaders.customer.load(db_id)
        return Customer.from_model(row) if row is not None else None

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
