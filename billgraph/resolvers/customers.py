"""Customers: reads through loaders, writes through services/customers.py."""

import strawberry

from billgraph.db import queries
from billgraph.schema.context import Info
from billgraph.schema.errors import UserError, to_user_error
from billgraph.schema.inputs import CreateCustomerInput, UpdateCustomerInput
from billgraph.schema.node import db_id_of, to_global_id
from billgraph.schema.pagination import Connection, build_connection, decode_cursor, page_size
from billgraph.schema.payloads import (
    CreateCustomerSuccess,
    DeleteCustomerSuccess,
    UpdateCustomerSuccess,
)
from billgraph.schema.types import Customer, Organization, Wallet
from billgraph.services import customers as customer_service
from billgraph.services.customers import UNSET
from billgraph.services.errors import BillingError, NotFoundError

CURSOR_KIND = "customer"


def organization(info: Info) -> Organization:
    principal = info.context.principal
    assert principal is not None
    return Organization.from_model(principal.organization)


async def customer(info: Info, customer_id: strawberry.ID) -> Customer | None:
    db_id = db_id_of(customer_id, "Customer")
    if db_id is None:
        return None
    row = await info.context.loaders.customer.load(db_id)
    return Customer.from_model(row) if row is not None else None


async def customer_of_wallet(info: Info, customer_db_id: int) -> Customer:
    row = await info.context.loaders.customer.load(customer_db_id)
    assert row is not None  # a wallet is only in the graph while its customer is
    return Customer.from_model(row)


async def customers(
    info: Info, *, first: int | None, after: str | None, email: str | None
) -> Connection[Customer]:
    limit = page_size(first)
    after_id = decode_cursor(CURSOR_KIND, after)
    async with info.context.database.sessions() as session:
        rows = await queries.customers_page(
            session, info.context.organization_id, limit=limit + 1, after_id=after_id, email=email
        )
    loaders = info.context.loaders
    for row in rows[:limit]:  # later customer(id) and wallet.customer lookups hit the cache
        loaders.customer.prime(row.id, row)
    return build_connection(rows, limit, CURSOR_KIND, lambda r: r.id, Customer.from_model)


async def create_customer(
    info: Info, input: CreateCustomerInput
) -> CreateCustomerSuccess | UserError:
    context = info.context
    principal = context.principal
    assert principal is not None
    currency = input.currency.value if input.currency else principal.organization.default_currency
    try:
        async with context.database.write_session() as session:
            created = await customer_service.create(
                session,
                context.organization_id,
                email=input.email,
                name=input.name,
                external_id=input.external_id,
                currency=currency,
            )
    except BillingError as exc:
        return to_user_error(exc)
    return CreateCustomerSuccess(
        customer=Customer.from_model(created.customer), wallet=Wallet.from_model(created.wallet)
    )


async def update_customer(
    info: Info, input: UpdateCustomerInput
) -> UpdateCustomerSuccess | UserError:
    context = info.context
    try:
        db_id = _customer_db_id(input.customer_id, "customerId")
        async with context.database.write_session() as session:
            updated = await customer_service.update(
                session,
                context.organization_id,
                db_id,
                email=UNSET
                if input.email is strawberry.UNSET or input.email is None
                else input.email,
                name=UNSET if input.name is strawberry.UNSET else input.name,
                external_id=UNSET if input.external_id is strawberry.UNSET else input.external_id,
            )
    except BillingError as exc:
        return to_user_error(exc)
    return UpdateCustomerSuccess(customer=Customer.from_model(updated))


async def delete_customer(
    info: Info, customer_id: strawberry.ID
) -> DeleteCustomerSuccess | UserError:
    context = info.context
    try:
        db_id = _customer_db_id(customer_id, "id")
        async with context.database.write_session() as session:
            await customer_service.delete(session, context.organization_id, db_id)
    except BillingError as exc:
        return to_user_error(exc)
    return DeleteCustomerSuccess(deleted_customer_id=to_global_id("Customer", db_id))


def _customer_db_id(global_id: strawberry.ID, field: str) -> int:
    db_id = db_id_of(global_id, "Customer", field)
    if db_id is None:
        raise NotFoundError("Customer not found.")
    return db_id
