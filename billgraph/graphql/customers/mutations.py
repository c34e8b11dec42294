import strawberry

from billgraph.billing import test_clocks
from billgraph.core import errors
from billgraph.core.unit import unit_of_work
from billgraph.customers import service as customers
from billgraph.customers.service import UNSET
from billgraph.graphql.context import Info
from billgraph.graphql.customers.inputs import CreateCustomerInput, UpdateCustomerInput
from billgraph.graphql.customers.payloads import (
    CreateCustomerSuccess,
    DeleteCustomerSuccess,
    UpdateCustomerSuccess,
)
from billgraph.graphql.customers.types import Customer
from billgraph.graphql.errors import result
from billgraph.graphql.node import input_id, to_global_id
from billgraph.graphql.wallets.types import Wallet


@strawberry.type
class CustomerMutations:
    @strawberry.mutation(description="Create a customer with a zero-balance wallet.")
    @result(
        "CreateCustomerResult",
        CreateCustomerSuccess,
        errors.ValidationError,
        errors.ConflictError,
        errors.NotFoundError,
    )
    async def create_customer(
        self, info: Info, input: CreateCustomerInput
    ) -> CreateCustomerSuccess:
        context = info.context
        principal = context.principal
        assert principal is not None
        currency = (
            input.currency.value if input.currency else principal.organization.default_currency
        )
        clock_id = (
            None
            if input.test_clock_id is None
            else input_id(input.test_clock_id, "TestClock", "testClockId", "Test clock not found.")
        )
        async with unit_of_work(context.database) as unit:
            created = await customers.create(
                unit,
                context.organization_id,
                email=input.email,
                name=input.name,
                external_id=input.external_id,
                currency=currency,
            )
            if clock_id is not None:
                await test_clocks.attach_customer(
                    unit, context.organization_id, created.customer.id, clock_id
                )
        return CreateCustomerSuccess(
            customer=Customer.from_model(created.customer), wallet=Wallet.from_model(created.wallet)
        )

    @strawberry.mutation
    @result(
        "UpdateCustomerResult",
        UpdateCustomerSuccess,
        errors.ValidationError,
        errors.ConflictError,
        errors.NotFoundError,
    )
    async def update_customer(
        self, info: Info, input: UpdateCustomerInput
    ) -> UpdateCustomerSuccess:
        context = info.context
        db_id = input_id(input.customer_id, "Customer", "customerId", "Customer not found.")
        async with unit_of_work(context.database) as unit:
            updated = await customers.update(
                unit,
                context.organization_id,
                db_id,
                email=UNSET
                if input.email is strawberry.UNSET or input.email is None
                else input.email,
                name=UNSET if input.name is strawberry.UNSET else input.name,
                external_id=UNSET if input.external_id is strawberry.UNSET else input.external_id,
            )
        return UpdateCustomerSuccess(customer=Customer.from_model(updated))

    @strawberry.mutation(
        description="Soft-delete: personal data is erased, the ledger stays, the email is free again."
    )
    @result(
        "DeleteCustomerResult", DeleteCustomerSuccess, errors.NotFoundError, errors.ValidationError
    )
    async def delete_customer(self, info: Info, id: strawberry.ID) -> DeleteCustomerSuccess:
        context = info.context
        db_id = input_id(id, "Customer", "id", "Customer not found.")
        async with unit_of_work(context.database) as unit:
            await customers.delete(unit, context.organization_id, db_id)
        return DeleteCustomerSuccess(deleted_customer_id=to_global_id("Customer", db_id))
