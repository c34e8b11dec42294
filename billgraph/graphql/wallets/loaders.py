"""Wallets by id and by customer."""

from aiodataloader import DataLoader

from billgraph.db.engine import Database
from billgraph.db.models import Wallet
from billgraph.graphql.loaders import by_id, grouped_by
from billgraph.wallets import repository


def wallet_loader(database: Database, organization_id: int) -> "DataLoader[int, Wallet | None]":
    return by_id(database, organization_id, repository.wallets_by_ids)


def wallets_by_customer_loader(
    database: Database, organization_id: int
) -> "DataLoader[int, list[Wallet]]":
    return grouped_by(database, organization_id, repository.wallets_by_customer_ids)
