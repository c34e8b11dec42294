import strawberry

from billgraph.graphql.customers.types import Customer
from billgraph.graphql.wallets.types import Wallet


@strawberry.type
class CreateCustomerSuccess:
    customer: Customer
    wallet: Wallet = strawberry.field(description="The customer's first wallet, balance 0.")


@strawberry.type
class UpdateCustomerSuccess:
    customer: Customer


@strawberry.type
class DeleteCustomerSuccess:
    deleted_customer_id: strawberry.ID
