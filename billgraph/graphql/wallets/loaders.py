"""Wallets by id and by customer, as plain rows."""

from aiodataloader import DataLoader

from billgraph.db.engine import Database
from billgraph.graphql.loaders import rows_by_id, rows_grouped_by
from billgraph.wallets import repository
from billgraph.wallets.repository import WalletRow


def wallet_loader(database: Database, organization_id: int) -> "DataLoader[int, WalletRow | None]":
    return rows_by_id(database, organization_id, repository.wallet_rows_by_ids)


def wallets_by_customer_loader(
    database: Database, organization_id: int
) -> "DataLoader[int, list[WalletRow]]":
    return rows_grouped_by(database, organization_id, repository.wallet_rows_by_customer_ids)
