"""Wallets by id and by customer, as plain rows; and the same with a page of each one's
entries read in the same statement."""

from collections import defaultdict

from aiodataloader import DataLoader

from billgraph.db.engine import Database
from billgraph.graphql.ledger.loaders import EntryPageKey, Page
from billgraph.graphql.loaders import rows_by_id, rows_grouped_by
from billgraph.ledger import repository as ledger
from billgraph.ledger.repository import LedgerEntryRow
from billgraph.wallets import repository
from billgraph.wallets.repository import WalletRow

# A wallet id (or a customer id), and the page of entries to read with its wallets.
PagedKey = tuple[int, Page]


def wallet_loader(database: Database, organization_id: int) -> "DataLoader[int, WalletRow | None]":
    return rows_by_id(database, organization_id, repository.wallet_rows_by_ids)


def wallets_by_customer_loader(
    database: Database, organization_id: int
) -> "DataLoader[int, list[WalletRow]]":
    return rows_grouped_by(database, organization_id, repository.wallet_rows_by_customer_ids)


def paged_wallets_loader(
    database: Database,
    organization_id: int,
    pages: "DataLoader[EntryPageKey, list[LedgerEntryRow]]",
    *,
    by_customer: bool,
) -> "DataLoader[PagedKey, list[WalletRow]]":
    """The wallets of a wallet id (none or one) or of a customer id, oldest first, each read
    with its page of entries, which `pages` is primed with: the wallet's ledgerEntries field
    then finds its page there. The rows are read by position (ledger.wallets_with_pages)."""

    async def load(keys: list[PagedKey]) -> list[list[WalletRow]]:
        # One statement per distinct page: normally one for the whole batch.
        groups: dict[Page, list[int]] = defaultdict(list)
        for db_id, page in keys:
            groups[page].append(db_id)
        found: dict[PagedKey, list[WalletRow]] = defaultdict(list)
        async with database.plain.connect() as connection:
            for page, ids in groups.items():
                for wallet, entries in await ledger.wallets_with_pages(
                    connection,
                    organization_id,
                    ids,
                    by_customer=by_customer,
                    before=page.before_sequence,
                    limit=page.limit,
                    entry_type=page.entry_type,
                ):
                    pages.prime(EntryPageKey(wallet[0], *page), entries)
                    found[(wallet[2] if by_customer else wallet[0], page)].append(wallet)
        return [found.get(key, []) for key in keys]

    return DataLoader(load)
