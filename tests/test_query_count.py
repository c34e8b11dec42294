"""The dashboard query costs a constant number of SQL statements, whatever the page size:
nested fields go through DataLoaders, never one query per row (no N+1)."""

from billgraph.db.engine import Database
from tests.support.graph import Tenant
from tests.support.ledger import count_statements

DASHBOARD = """
query($first: Int!) { viewer { customers(first: $first) { edges { node { id email
  wallets { id balance ledgerEntries(first: 10) { edges { node { id amount balanceAfter wallet { id } } } } }
} } } } }
"""


async def test_dashboard_statement_count_does_not_grow_with_the_page(
    tenant: Tenant, database: Database
) -> None:
    for i in range(12):
        customer = await tenant.create_customer()
        await tenant.post(customer["customer"]["id"], 100 + i)
        await tenant.post(customer["customer"]["id"], 50 + i, currency="INR")
    await tenant.data(DASHBOARD, {"first": 1})  # lastUsedAt is written on first use only

    with count_statements(database) as small:
        page = await tenant.data(DASHBOARD, {"first": 2})
    with count_statements(database) as large:
        full = await tenant.data(DASHBOARD, {"first": 12})

    assert len(page["viewer"]["customers"]["edges"]) == 2
    assert len(full["viewer"]["customers"]["edges"]) == 12
    assert all(len(e["node"]["wallets"]) == 2 for e in full["viewer"]["customers"]["edges"])
    # API key, customers page, wallets, entry pages; entry.wallet is served from the cache
    # primed by nothing but the wallets loader batch, so it may add one batched statement.
    assert len(large) == len(small)
    assert len(large) <= 5, large
