"""Ledger entries by id, and newest-first pages of many wallets' entries in one statement,
as plain rows."""

from collections import defaultdict
from typing import NamedTuple

from aiodataloader import DataLoader

from billgraph.db.engine import Database
from billgraph.graphql.loaders import rows_by_id
from billgraph.ledger import repository
from billgraph.ledger.repository import LedgerEntryRow


class Page(NamedTuple):
    """The entries a ledgerEntries field asks of a wallet: at most `limit` below
    `before_sequence` (None: from the newest), of one type or all."""

    before_sequence: int | None
    limit: int
    entry_type: str | None


class EntryPageKey(NamedTuple):
    wallet_id: int
    before_sequence: int | None
    limit: int
    entry_type: str | None


def entry_loader(
    database: Database, organization_id: int
) -> "DataLoader[int, LedgerEntryRow | None]":
    return rows_by_id(database, organization_id, repository.entries_by_ids)


def entry_page_loader(
    database: Database, organization_id: int
) -> "DataLoader[EntryPageKey, list[LedgerEntryRow]]":
    async def load(keys: list[EntryPageKey]) -> list[list[LedgerEntryRow]]:
        # One statement per distinct (page size, filter): normally one for the whole batch.
        groups: dict[tuple[int, str | None], list[EntryPageKey]] = defaultdict(list)
        for key in keys:
            groups[(key.limit, key.entry_type)].append(key)
        pages: dict[EntryPageKey, list[LedgerEntryRow]] = {}
        async with database.plain.connect() as connection:
            for (limit, entry_type), group in groups.items():
                found = await repository.entries_pages(
                    connection,
                    organization_id,
                    [(k.wallet_id, k.before_sequence) for k in group],
                    limit=limit,
                    entry_type=entry_type,
                )
                for key in group:
                    pages[key] = found.get(key.wallet_id, [])
        return [pages[k] for k in keys]

    return DataLoader(load)
