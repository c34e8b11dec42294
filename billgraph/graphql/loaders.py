"""DataLoader building blocks. Loaders are per request (per event on a socket) and each batch
opens its own short session or connection, because sibling fields resolve concurrently and
neither an AsyncSession nor a connection may be shared between tasks."""

from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from aiodataloader import DataLoader
from sqlalchemy.ext.asyncio import AsyncSession

from billgraph.db.engine import Database
from billgraph.db.plain import PlainConnection

V = TypeVar("V")

# A repository's batched read by ids, confined to an organization.
ByIds = Callable[[AsyncSession, int, Sequence[int]], Awaitable[dict[int, V]]]
# The same on a plain connection: the hot reads, prebuilt statements read as rows.
RowsByIds = Callable[[PlainConnection, int, Sequence[int]], Awaitable[dict[int, V]]]


def by_id(database: Database, organization_id: int, query: ByIds[V]) -> "DataLoader[int, V | None]":
    """A loader of rows by id through one `query` per batch; None for ids it did not find."""

    async def load(ids: list[int]) -> list[V | None]:
        async with database.sessions() as session:
            found = await query(session, organization_id, ids)
        return [found.get(i) for i in ids]

    return DataLoader(load)


def rows_by_id(
    database: Database, organization_id: int, query: RowsByIds[V]
) -> "DataLoader[int, V | None]":
    """`by_id` on a plain connection (Database.plain): no session to set up."""

    async def load(ids: list[int]) -> list[V | None]:
        async with database.plain.connect() as connection:
            found = await query(connection, organization_id, ids)
        return [found.get(i) for i in ids]

    return DataLoader(load)


# A repository's batched read of the rows belonging to each of many ids (a customer's wallets).
GroupedByIds = Callable[[AsyncSession, int, Sequence[int]], Awaitable[dict[int, list[V]]]]
RowsGroupedByIds = Callable[[PlainConnection, int, Sequence[int]], Awaitable[dict[int, list[V]]]]


def grouped_by(
    database: Database, organization_id: int, query: GroupedByIds[V]
) -> "DataLoader[int, list[V]]":
    """A loader of each id's rows through one `query` per batch; [] for ids without any."""

    async def load(ids: list[int]) -> list[list[V]]:
        async with database.sessions() as session:
            found = await query(session, organization_id, ids)
        return [found.get(i, []) for i in ids]

    return DataLoader(load)


def rows_grouped_by(
    database: Database, organization_id: int, query: RowsGroupedByIds[V]
) -> "DataLoader[int, list[V]]":
    """`grouped_by` on a plain connection."""

    async def load(ids: list[int]) -> list[list[V]]:
        async with database.plain.connect() as connection:
            found = await query(connection, organization_id, ids)
        return [found.get(i, []) for i in ids]

    return DataLoader(load)
