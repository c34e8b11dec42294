"""Customers by id, as plain rows."""

from aiodataloader import DataLoader

from billgraph.customers import repository
from billgraph.customers.repository import CustomerRow
from billgraph.db.engine import Database
from billgraph.graphql.loaders import rows_by_id


def customer_loader(
    database: Database, organization_id: int
) -> "DataLoader[int, CustomerRow | None]":
    return rows_by_id(database, organization_id, repository.customer_rows_by_ids)
