"""Wallets by id and by customer."""

from aiodataloader import DataLoader

from billgraph.db.engine import Database
from billgraph.db.models import Wallet
from billgraph.graphql.loaders import by_id
from billgraph.wallets import repository


def wallet_loader(database: Database, organization_id: int) -> "DataLoader[int, Wallet | None]":
    return by_id(database, organization_id, repository.wallets_by_ids)


def wallets_by_customer_loader(
    database: Database, organization_id: int
) -> "DataLoader[int, list[Wallet]]":
    async def load(customer_ids: list[int]) -> list[list[Wallet]]:
        async with database.sessions() as session:
            found = await repository.wallets_by_customer_ids(session, organization_id, customer_ids)
        return [found.get(c, []) for c in customer_ids]

    return DataLoader(load)
