"""Wallets by id and by customer, as plain rows; and the same with a page of each one's
entries read in the same statement."""

from collections import defaultdict

from aiodataloader import DataLoader

from billgraph.db.engine import Database
from billgraph.graphql.ledger.loaders import EntryPageKey, Page
from billgraph.graphql.loaders import rows_by_id, rows_grouped_by
from billgraph.ledger import repository as ledger
from billgraph.ledger.repository import LedgerEntryRow, PagedWallets
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


def prime_pages(
    wallets: "DataLoader[int, WalletRow | None]",
    pages: "DataLoader[EntryPageKey, list[LedgerEntryRow]]",
    page: Page,
    paged: PagedWallets,
) -> list[WalletRow]:
    """Wallets read with their pages of entries: the wallets put in the by-id loader and the
    pages in the page loader, where the wallets' fields (an entry's wallet, ledgerEntries)
    then find them; the wallets, in order."""
    for wallet, entries in paged:
        wallets.prime(wallet[0], wallet)
        pages.prime(EntryPageKey(wallet[0], *page), entries)
    return [wallet for wallet, _ in paged]


def paged_wallets_loader(
    database: Database,
    organization_id: int,
    wallets: "DataLoader[int, WalletRow | None]",
    pages: "DataLoader[EntryPageKey, list[LedgerEntryRow]]",
    *,
    by_customer: bool,
) -> "DataLoader[PagedKey, list[WalletRow]]":
    """The wallets of a wallet id (none or one) or of a customer id, oldest first, each read
    with its page of entries (ledger.wallets_with_pages), then primed (prime_pages)."""

    async def load(keys: list[PagedKey]) -> list[list[WalletRow]]:
        # One statement per distinct page: normally one for the whole batch.
        groups: dict[Page, list[int]] = defaultdict(list)
        for db_id, page in keys:
            groups[page].append(db_id)
        found: dict[PagedKey, list[WalletRow]] = defaultdict(list)
        async with database.plain.connect() as connection:
            for page, ids in groups.items():
                paged = await ledger.wallets_with_pages(
                    connection,
                    organization_id,
                    ids,
                    by_customer=by_customer,
                    before=page.before_sequence,
                    limit=page.limit,
                    entry_type=page.entry_type,
                )
                for wallet in prime_pages(wallets, pages, page, paged):
                    found[(wallet[2] if by_customer else wallet[0], page)].append(wallet)
        return [found.get(key, []) for key in keys]

    return DataLoader(load)
