"""The dashboard query costs a constant number of SQL statements, whatever the page size:
nested fields go through DataLoaders, never one query per row (no N+1)."""

import json
import os
import re
from pathlib import Path

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


# Dashboard-style operations and the statements each runs, as a snapshot: a change to the
# statements an operation runs (an N+1, a lost batch) shows up here the day it is written.
# BILLGRAPH_UPDATE_SNAPSHOTS=1 rewrites statements.json after a reviewed change.
SNAPSHOT = Path(__file__).with_name("statements.json")
OPERATIONS = {
    "dashboard": DASHBOARD,
    "wallet with its entries": """query($w: ID!) { wallet(id: $w) { id balance
        ledgerEntries(first: 20) { edges { node { id amount idempotencyKey createdAt } } } } }""",
    "customer with wallets and organization": """query($c: ID!) { customer(id: $c) {
        email organization { name } wallets { currency balance } usd: wallet(currency: USD) { id } } }""",
    "entry through node, up to its customer": """query($e: ID!) { node(id: $e) {
        ... on LedgerEntry { amount wallet { balance customer { email wallets { id } } } } } }""",
    "customers filtered by email": """query($email: String!) { customers(first: 5, email: $email) {
        edges { node { id wallets { balance } } } } }""",
    "organization with API keys": "{ viewer { name apiKeys { name scopes } } }",
}
_TABLE = re.compile(r'\b(?:FROM|JOIN|UPDATE|INTO)\s+(?:LATERAL\s+)?"?([a-z_]+)\b')


def shape(statement: str) -> str:
    """What a statement does, independent of bind parameters: its verb and tables."""
    verb = statement.split(None, 1)[0].upper()
    tables = sorted({t for t in _TABLE.findall(statement) if t not in ("moved", "recorded")})
    return f"{verb} {' '.join(tables)}"


async def test_statements_per_operation_match_the_snapshot(
    tenant: Tenant, database: Database
) -> None:
    customers = [await tenant.create_customer() for _ in range(3)]
    for customer in customers:
        await tenant.post(customer["customer"]["id"], 500)
        await tenant.post(customer["customer"]["id"], 20, "DEBIT")
        await tenant.post(customer["customer"]["id"], 700, currency="INR")
    first = customers[0]
    entry = await tenant.post(first["customer"]["id"], 1)
    variables = {
        "first": 3,
        "w": first["wallet"]["id"],
        "c": first["customer"]["id"],
        "e": entry["entry"]["id"],
        "email": first["customer"]["email"],
    }
    await tenant.data("{ viewer { id } }")  # lastUsedAt is written on first use only

    observed: dict[str, list[str]] = {}
    for name, query in OPERATIONS.items():
        with count_statements(database) as statements:
            await tenant.data(query, {k: v for k, v in variables.items() if f"${k}" in query})
        observed[name] = [shape(s) for s in statements]
    with count_statements(database) as statements:
        await tenant.post(first["customer"]["id"], 5, "DEBIT")
    observed["createLedgerEntry"] = [shape(s) for s in statements]

    backend = database.engine.dialect.name
    snapshots = json.loads(SNAPSHOT.read_text()) if SNAPSHOT.exists() else {}
    if os.environ.get("BILLGRAPH_UPDATE_SNAPSHOTS"):
        snapshots[backend] = observed
        SNAPSHOT.write_text(json.dumps(snapshots, indent=2, sort_keys=True) + "\n")
    assert observed == snapshots.get(backend), (
        "the statements per operation changed; review, then rerun with "
        "BILLGRAPH_UPDATE_SNAPSHOTS=1 to record them"
    )
