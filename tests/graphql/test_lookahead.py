"""Wallets read with the page of entries their selection asks for (graphql.lookahead): the
same answers as when each page is read on its own, in fewer statements on PostgreSQL.

A selection inside a fragment is not read ahead, so the same fields spread from a fragment
are the reference: each answer below is compared with that one."""

from typing import Any

import pytest

from billgraph.db.engine import Database
from billgraph.graphql.node import to_global_id
from tests.support.graph import Tenant
from tests.support.ledger import count_statements

ENTRY = "edges { cursor node { id amount entryType sequence balanceAfter } } pageInfo { hasNextPage endCursor }"
WALLET_DIRECT = f"""query($w: ID!, $first: Int, $after: String, $type: EntryType) {{
  wallet(id: $w) {{ id balance ledgerEntries(first: $first, after: $after, entryType: $type) {{
    {ENTRY} }} }} }}"""
WALLET_FRAGMENT = f"""query($w: ID!, $first: Int, $after: String, $type: EntryType) {{
  wallet(id: $w) {{ ...W }} }}
fragment W on Wallet {{ id balance ledgerEntries(first: $first, after: $after, entryType: $type) {{
  {ENTRY} }} }}"""
CUSTOMERS_DIRECT = f"""query($first: Int, $type: EntryType) {{ customers(first: 10) {{ edges {{ node {{
  id wallets {{ id currency ledgerEntries(first: $first, entryType: $type) {{ {ENTRY} }} }} }} }} }} }}"""
CUSTOMERS_FRAGMENT = f"""query($first: Int, $type: EntryType) {{ customers(first: 10) {{ edges {{ node {{
  id wallets {{ ...W }} }} }} }} }}
fragment W on Wallet {{ id currency ledgerEntries(first: $first, entryType: $type) {{ {ENTRY} }} }}"""


def without_request_ids(body: dict[str, Any]) -> dict[str, Any]:
    for error in body.get("errors", []):
        error.get("extensions", {}).pop("requestId", None)
    return body


async def both(
    tenant: Tenant, database: Database, direct: str, fragment: str, variables: dict[str, Any]
) -> tuple[dict[str, Any], int, int]:
    """The direct query's answer (checked equal to the fragment's) and each one's statements."""
    with count_statements(database) as ahead:
        found = without_request_ids(await tenant.gql(direct, variables))
    with count_statements(database) as alone:
        reference = without_request_ids(await tenant.gql(fragment, variables))
    # The same answer, but for the positions of the errors in the two documents.
    for error in found.get("errors", []) + reference.get("errors", []):
        error.pop("locations", None)
    assert found == reference
    return found, len(ahead), len(alone)


@pytest.fixture
async def history(tenant: Tenant) -> dict[str, Any]:
    """A customer with 6 USD entries (4 credits, 2 debits) and an INR wallet of 1 credit; a
    second customer whose only wallet has no entries."""
    customer = await tenant.create_customer()
    customer_id = customer["customer"]["id"]
    for amount, kind in [(500, "CREDIT"), (20, "DEBIT"), (30, "CREDIT"), (40, "CREDIT")]:
        await tenant.post(customer_id, amount, kind)
    await tenant.post(customer_id, 5, "DEBIT")
    await tenant.post(customer_id, 7, "CREDIT")
    await tenant.post(customer_id, 700, currency="INR")
    empty = await tenant.create_customer()
    await tenant.data("{ viewer { id } }")  # lastUsedAt is written on first use only
    return {"wallet": customer["wallet"]["id"], "empty": empty["wallet"]["id"]}


async def test_a_wallet_read_with_its_page_answers_as_one_read_alone(
    tenant: Tenant, database: Database, history: dict[str, Any]
) -> None:
    wallet = history["wallet"]
    first = await tenant.data(WALLET_DIRECT, {"w": wallet, "first": 2})
    cursor = first["wallet"]["ledgerEntries"]["pageInfo"]["endCursor"]
    cases = [
        {},
        {"first": 2},
        {"first": 2, "after": cursor},
        {"first": 0},
        {"first": 100},
        {"type": "DEBIT"},
        {"type": "CREDIT", "first": 1, "after": cursor},
    ]
    for case in cases:
        found, ahead, alone = await both(
            tenant, database, WALLET_DIRECT, WALLET_FRAGMENT, {"w": wallet, **case}
        )
        assert "errors" not in found, (case, found)
        assert ahead <= alone, case
        if database.engine.dialect.name == "postgresql":
            assert ahead == alone - 1, case  # the wallet and its page in one statement
    # The pages themselves, so that agreeing on nothing cannot pass.
    debits = await tenant.data(WALLET_DIRECT, {"w": wallet, "type": "DEBIT"})
    edges = debits["wallet"]["ledgerEntries"]["edges"]
    assert [e["node"]["amount"] for e in edges] == [5, 20]
    after = await tenant.data(WALLET_DIRECT, {"w": wallet, "first": 2, "after": cursor})
    assert [e["node"]["sequence"] for e in after["wallet"]["ledgerEntries"]["edges"]] == [4, 3]
    assert after["wallet"]["ledgerEntries"]["pageInfo"]["hasNextPage"] is True


async def test_a_wallet_without_entries_in_the_page_is_still_read(
    tenant: Tenant, database: Database, history: dict[str, Any]
) -> None:
    for wallet, variables in [
        (history["empty"], {}),
        (history["wallet"], {"type": "DEBIT", "after": None}),
    ]:
        found, _, _ = await both(
            tenant, database, WALLET_DIRECT, WALLET_FRAGMENT, {"w": wallet, **variables}
        )
        assert found["data"]["wallet"]["id"] == wallet
    empty = await tenant.data(WALLET_DIRECT, {"w": history["empty"]})
    assert empty["wallet"]["ledgerEntries"] == {
        "edges": [],
        "pageInfo": {"hasNextPage": False, "endCursor": None},
    }


async def test_arguments_out_of_range_are_refused_as_before(
    tenant: Tenant, database: Database, history: dict[str, Any]
) -> None:
    for case in [{"first": -1}, {"first": 10_000}, {"after": "not a cursor"}]:
        found, _, _ = await both(
            tenant, database, WALLET_DIRECT, WALLET_FRAGMENT, {"w": history["wallet"], **case}
        )
        assert [e["extensions"]["code"] for e in found["errors"]] == ["BAD_USER_INPUT"], case


async def test_unknown_deleted_and_other_organizations_wallets_are_null(
    tenant: Tenant, other_tenant: Tenant, database: Database, history: dict[str, Any]
) -> None:
    stranger = await other_tenant.create_customer()
    await other_tenant.post(stranger["customer"]["id"], 100)
    gone = await tenant.create_customer()
    await tenant.post(gone["customer"]["id"], 100)
    deleted = await tenant.data(
        "mutation($id: ID!) { deleteCustomer(id: $id) { __typename } }",
        {"id": gone["customer"]["id"]},
    )
    assert deleted["deleteCustomer"]["__typename"] == "DeleteCustomerSuccess"
    wallets = [stranger["wallet"]["id"], gone["wallet"]["id"], to_global_id("Wallet", 2**40)]
    for wallet in wallets:
        found, _, _ = await both(tenant, database, WALLET_DIRECT, WALLET_FRAGMENT, {"w": wallet})
        assert found == {"data": {"wallet": None}, **cost(found)}, found
    assert (await other_tenant.data(WALLET_DIRECT, {"w": wallets[0]}))["wallet"]["balance"] == 100


def cost(body: dict[str, Any]) -> dict[str, Any]:
    return {"extensions": body["extensions"]} if "extensions" in body else {}


async def test_two_pages_of_one_wallet_under_aliases(
    tenant: Tenant, history: dict[str, Any]
) -> None:
    both_pages = await tenant.data(
        """query($w: ID!) { wallet(id: $w) {
            a: ledgerEntries(first: 1) { edges { node { amount } } }
            b: ledgerEntries(first: 3, entryType: CREDIT) { edges { node { amount } } } } }""",
        {"w": history["wallet"]},
    )
    assert [e["node"]["amount"] for e in both_pages["wallet"]["a"]["edges"]] == [7]
    assert [e["node"]["amount"] for e in both_pages["wallet"]["b"]["edges"]] == [7, 40, 30]


async def test_customers_wallets_read_with_their_pages_answer_as_alone(
    tenant: Tenant, database: Database, history: dict[str, Any]
) -> None:
    for case in [{}, {"first": 1}, {"first": 3, "type": "DEBIT"}, {"type": "CREDIT"}]:
        found, ahead, alone = await both(
            tenant, database, CUSTOMERS_DIRECT, CUSTOMERS_FRAGMENT, case
        )
        assert "errors" not in found, (case, found)
        assert ahead <= alone, case
        if database.engine.dialect.name == "postgresql":
            # the customers, their wallets and the wallets' pages: one statement, not three
            assert ahead == alone - 2, case
    page = await tenant.data(CUSTOMERS_DIRECT, {"first": 3, "type": "DEBIT"})
    wallets = [w for e in page["customers"]["edges"] for w in e["node"]["wallets"]]
    pages = {w["id"]: [e["node"]["amount"] for e in w["ledgerEntries"]["edges"]] for w in wallets}
    assert pages[history["wallet"]] == [5, 20]
    assert pages[history["empty"]] == []
    assert sorted(len(p) for p in pages.values()) == [0, 0, 2]  # the INR wallet has no debits


CUSTOMERS_PAGED = f"""query($first: Int, $after: String, $email: String, $entries: Int) {{
  customers(first: $first, after: $after, email: $email) {{
    pageInfo {{ hasNextPage endCursor }} edges {{ cursor node {{ id email
      wallets {{ id currency balance ledgerEntries(first: $entries) {{ {ENTRY} }} }} }} }} }} }}"""
CUSTOMERS_PAGED_FRAGMENT = f"""query($first: Int, $after: String, $email: String, $entries: Int) {{
  customers(first: $first, after: $after, email: $email) {{
    pageInfo {{ hasNextPage endCursor }} edges {{ cursor node {{ id email wallets {{ ...W }} }} }} }} }}
fragment W on Wallet {{ id currency balance ledgerEntries(first: $entries) {{ {ENTRY} }} }}"""


async def test_customers_read_in_one_statement_page_as_alone(
    tenant: Tenant, other_tenant: Tenant, database: Database, history: dict[str, Any]
) -> None:
    """Pages of customers read with their wallets and entries: every page boundary (the extra
    customer that says a next page exists comes without wallets), the email filter, a
    deleted customer and another organization's, as when each is read on its own."""
    stranger = await other_tenant.create_customer()
    await other_tenant.post(stranger["customer"]["id"], 100)
    for n in range(3):
        customer = await tenant.create_customer(email=f"paged-{n}@example.com")
        await tenant.post(customer["customer"]["id"], 10 + n)
    gone = await tenant.create_customer(email="gone@example.com")
    deleted = await tenant.data(
        "mutation($id: ID!) { deleteCustomer(id: $id) { __typename } }",
        {"id": gone["customer"]["id"]},
    )
    assert deleted["deleteCustomer"]["__typename"] == "DeleteCustomerSuccess"
    seen: list[str] = []
    after = None
    while True:  # pages of two, to the end
        found, ahead, alone = await both(
            tenant,
            database,
            CUSTOMERS_PAGED,
            CUSTOMERS_PAGED_FRAGMENT,
            {"first": 2, "after": after, "entries": 2},
        )
        assert "errors" not in found, found
        if database.engine.dialect.name == "postgresql":
            assert ahead == alone - 2
        page = found["data"]["customers"]
        seen += [e["node"]["email"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert len(seen) == 5 and seen[2:] == [f"paged-{n}@example.com" for n in range(3)]
    assert "gone@example.com" not in seen
    for case in [
        {"email": "PAGED-1@example.com"},
        {"email": "nobody@example.com"},
        {"first": 0},
        {"first": 1, "entries": 0},
        {"first": 100, "entries": 3},
    ]:
        found, _, _ = await both(tenant, database, CUSTOMERS_PAGED, CUSTOMERS_PAGED_FRAGMENT, case)
        assert "errors" not in found, (case, found)
    one = await tenant.data(CUSTOMERS_PAGED, {"email": "paged-1@example.com"})
    [edge] = one["customers"]["edges"]
    [wallet] = edge["node"]["wallets"]
    assert [e["node"]["amount"] for e in wallet["ledgerEntries"]["edges"]] == [11]
    theirs = await other_tenant.data(CUSTOMERS_PAGED, {})
    assert [e["node"]["id"] for e in theirs["customers"]["edges"]] == [stranger["customer"]["id"]]


async def test_an_entrys_wallet_is_not_read_again(
    tenant: Tenant, database: Database, history: dict[str, Any]
) -> None:
    """A wallet read with its page is in the by-id loader: an entry's `wallet` finds it."""
    query = """query($w: ID!) { wallet(id: $w) { id ledgerEntries(first: 2) {
        edges { node { amount wallet { id balance } } } } } }"""
    with count_statements(database) as statements:
        found = await tenant.data(query, {"w": history["wallet"]})
    edges = found["wallet"]["ledgerEntries"]["edges"]
    assert [e["node"]["wallet"]["id"] for e in edges] == [history["wallet"]] * 2
    # The key, then the wallet with its page (PostgreSQL) or the wallet, then the page.
    expected = 2 if database.engine.dialect.name == "postgresql" else 3
    assert len(statements) == expected, [" ".join(s.split())[:100] for s in statements]
