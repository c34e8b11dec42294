"""Per-request DataLoaders. Each batch opens its own short session, because sibling fields
resolve concurrently and an AsyncSession must not be shared between tasks."""

from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from typing import NamedTuple, TypeVar

from aiodataloader import DataLoader
from sqlalchemy.ext.asyncio import AsyncSession

from billgraph.db import queries
from billgraph.db.engine import Database
from billgraph.db.models import LedgerEntry, Wallet

K = TypeVar("K")
V = TypeVar("V")


class EntryPageKey(NamedTuple):
    wallet_id: int
    before_sequence: int | None
    limit: int
    entry_type: str | None


class Loaders:
    def __init__(self, database: Database, organization_id: int) -> None:
        self._database = database
        self._organization_id = organization_id
        self.customer = self._by_id(queries.customers_by_ids)
        self.wallet = self._by_id(queries.wallets_by_ids)
        self.ledger_entry = self._by_id(queries.ledger_entries_by_ids)
        self.wallets_by_customer: DataLoader[int, list[Wallet]] = DataLoader(
            self._load_wallets_by_customer
        )
        self.ledger_page: DataLoader[EntryPageKey, list[LedgerEntry]] = DataLoader(
            self._load_ledger_pages
        )

    def _by_id(
        self,
        query: Callable[[AsyncSession, int, Sequence[int]], Awaitable[dict[int, V]]],
    ) -> "DataLoader[int, V | None]":
        async def load(ids: list[int]) -> list[V | None]:
            async with self._database.sessions() as session:
                found = await query(session, self._organization_id, ids)
            return [found.get(i) for i in ids]

        return DataLoader(load)

    async def _load_wallets_by_customer(self, customer_ids: list[int]) -> list[list[Wallet]]:
        async with self._database.sessions() as session:
            found = await queries.wallets_by_customer_ids(
                session, self._organization_id, customer_ids
            )
        return [found.get(c, []) for c in customer_ids]

    async def _load_ledger_pages(self, keys: list[EntryPageKey]) -> list[list[LedgerEntry]]:
        # One statement per distinct (page size, filter): normally one for the whole batch.
        groups: dict[tuple[int, str | None], list[EntryPageKey]] = defaultdict(list)
        for key in keys:
            groups[(key.limit, key.entry_type)].append(key)
        pages: dict[EntryPageKey, list[LedgerEntry]] = {}
        async with self._database.sessions() as session:
            for (limit, entry_type), group in groups.items():
                found = await queries.ledger_entries_pages(
                    session,
                    self._organization_id,
                    [(k.wallet_id, k.before_sequence) for k in group],
                    limit=limit,
                    entry_type=entry_type,
                )
                for key in group:
                    pages[key] = found.get(key.wallet_id, [])
        return [pages[k] for k in keys]
