"""Customers by id."""

from aiodataloader import DataLoader

from billgraph.customers import repository
from billgraph.db.engine import Database
from billgraph.db.models import Customer
from billgraph.graphql.loaders import by_id


def customer_loader(database: Database, organization_id: int) -> "DataLoader[int, Customer | None]":
    return by_id(database, organization_id, repository.customers_by_ids)
