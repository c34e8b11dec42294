"""node(id): any object by global id, confined to the caller's organization."""

import strawberry

from billgraph.currencies import CURRENCIES
from billgraph.schema.context import Info
from billgraph.schema.enums import Currency
from billgraph.schema.errors import graphql_error
from billgraph.schema.node import Node, from_global_id
from billgraph.schema.types import ApiKey, CurrencyInfo, Customer, LedgerEntry, Organization, Wallet
from billgraph.services import api_keys
from billgraph.services.errors import ValidationError


async def node(info: Info, global_id: strawberry.ID) -> Node | None:
    try:
        type_name, db_id = from_global_id(global_id)
    except ValidationError as exc:
        raise graphql_error(exc.message, "BAD_USER_INPUT") from None
    context = info.context
    loaders = context.loaders
    match type_name:
        case "Organization":
            principal = context.principal
            assert principal is not None
            return (
                Organization.from_model(principal.organization)
                if db_id == principal.organization.id
                else None
            )
        case "Customer":
            customer = await loaders.customer.load(db_id)
            return Customer.from_model(customer) if customer else None
        case "Wallet":
            wallet = await loaders.wallet.load(db_id)
            return Wallet.from_model(wallet) if wallet else None
        case "LedgerEntry":
            entry = await loaders.ledger_entry.load(db_id)
            return LedgerEntry.from_model(entry) if entry else None
        case "ApiKey":
            async with context.database.sessions() as session:
                keys = await api_keys.list_for(session, context.organization_id)
            return next((ApiKey.from_model(k) for k in keys if k.id == db_id), None)
    return None


def currencies() -> list[CurrencyInfo]:
    return [
        CurrencyInfo(code=Currency[c.code], exponent=c.exponent, symbol=c.symbol, name=c.name)
        for c in CURRENCIES.values()
    ]
