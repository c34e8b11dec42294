"""Checkout sessions by id."""

from aiodataloader import DataLoader

from billgraph.checkout import repository
from billgraph.db.engine import Database
from billgraph.db.models import CheckoutSession
from billgraph.graphql.loaders import by_id


def checkout_session_loader(
    database: Database, organization_id: int
) -> "DataLoader[int, CheckoutSession | None]":
    return by_id(database, organization_id, repository.sessions_by_ids)
