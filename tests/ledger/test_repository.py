"""Loader queries at sizes a single GraphQL request can reach."""

from billgraph.db.engine import Database
from billgraph.graphql.node import from_global_id
from billgraph.ledger import repository
from tests.support.graph import Tenant


async def test_entry_pages_for_more_wallets_than_sqlite_allows_in_one_union(
    tenant: Tenant, database: Database
) -> None:
    created = await tenant.create_customer()
    await tenant.post(created["customer"]["id"], 5)
    await tenant.post(created["customer"]["id"], 7)
    _, wallet_id = from_global_id(created["wallet"]["id"])
    _, organization_id = from_global_id(tenant.organization_id)
    # 1,200 wallets (absent ones simply have no entries), the real one in the middle.
    pages = [(10**9 + i, None) for i in range(1_200)]
    pages.insert(600, (wallet_id, None))
    async with database.plain.connect() as connection:
        found = await repository.entries_pages(
            connection, organization_id, pages, limit=1, entry_type=None
        )
    assert list(found) == [wallet_id]
    assert [e.amount for e in found[wallet_id]] == [7]
