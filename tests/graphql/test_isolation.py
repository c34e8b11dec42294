"""Tenant isolation: another organization's id behaves exactly like an id that does not exist.

Each test has two fresh organizations: `tenant` probes, `other_tenant` owns the objects. The
other tenant's answers are checked through its own key, so a leak in either direction shows.
"""

from dataclasses import dataclass
from typing import Any

import pytest

from billgraph.db.engine import Database
from billgraph.graphql.node import from_global_id, to_global_id
from tests.conftest import assert_ledger_invariant
from tests.support.graph import CREATE_ENTRY, Tenant, entry_input

MISSING = 999_999_999


@dataclass
class Owned:
    """Objects of the other organization, with a credited wallet (so it has an entry)."""

    email: str
    customer_id: str
    wallet_id: str
    entry_id: str
    organization_id: str
    api_key_id: str


async def seed(other: Tenant, email: str = "owned@example.com") -> Owned:
    created = await other.create_customer(email, name="Owned Customer", externalId="ext-owned")
    credit = await other.post(
        created["customer"]["id"], 500, key="owned-credit", reason="Owned top-up"
    )
    assert credit["__typename"] == "CreateLedgerEntrySuccess", credit
    keys = await other.data("{ viewer { apiKeys { id } } }")
    assert len(keys["viewer"]["apiKeys"]) == 1
    return Owned(
        email=email,
        customer_id=created["customer"]["id"],
        wallet_id=created["wallet"]["id"],
        entry_id=credit["entry"]["id"],
        organization_id=other.organization_id,
        api_key_id=keys["viewer"]["apiKeys"][0]["id"],
    )


def missing_like(global_id: str) -> str:
    """A well-formed id of the same type that names nothing."""
    type_name, _ = from_global_id(global_id)
    return to_global_id(type_name, MISSING)


OWNER_VIEW = """
query($c: ID!, $w: ID!) {
  customer(id: $c) { id email name externalId wallets { id balance version
    ledgerEntries(first: 10) { edges { node { id amount reason } } } } }
  wallet(id: $w) { id balance version }
  customers(first: 100) { edges { node { id email } } }
}
"""


async def assert_untouched(other: Tenant, owned: Owned) -> None:
    """The other organization still sees its customer, wallet and entry exactly as seeded."""
    data = await other.data(OWNER_VIEW, {"c": owned.customer_id, "w": owned.wallet_id})
    assert data["customer"] == {
        "id": owned.customer_id,
        "email": owned.email,
        "name": "Owned Customer",
        "externalId": "ext-owned",
        "wallets": [
            {
                "id": owned.wallet_id,
                "balance": 500,
                "version": 1,
                "ledgerEntries": {
                    "edges": [
                        {"node": {"id": owned.entry_id, "amount": 500, "reason": "Owned top-up"}}
                    ]
                },
            }
        ],
    }
    assert data["wallet"] == {"id": owned.wallet_id, "balance": 500, "version": 1}
    assert {"id": owned.customer_id, "email": owned.email} in [
        e["node"] for e in data["customers"]["edges"]
    ]


# --- reads ----------------------------------------------------------------------------------

READS = {
    "customer": "query($id: ID!) { customer(id: $id) { id email wallets { id balance } } }",
    "wallet": "query($id: ID!) { wallet(id: $id) { id balance customer { id email } } }",
    "node": "query($id: ID!) { node(id: $id) { __typename id } }",
    "node-fragments": """query($id: ID!) { node(id: $id) { __typename id
        ... on Customer { email } ... on Wallet { balance } ... on LedgerEntry { amount }
        ... on Organization { name } ... on ApiKey { name prefix } } }""",
}

CASES = [
    ("customer", "customer_id"),
    ("wallet", "wallet_id"),
    ("node", "customer_id"),
    ("node", "wallet_id"),
    ("node", "entry_id"),
    ("node", "organization_id"),
    ("node", "api_key_id"),
    ("node-fragments", "customer_id"),
    ("node-fragments", "wallet_id"),
    ("node-fragments", "entry_id"),
    ("node-fragments", "organization_id"),
    ("node-fragments", "api_key_id"),
]


@pytest.mark.parametrize(("query", "which"), CASES)
async def test_reading_another_organizations_id_is_like_a_missing_id(
    tenant: Tenant, other_tenant: Tenant, database: Database, query: str, which: str
) -> None:
    owned = await seed(other_tenant)
    global_id = getattr(owned, which)
    field = "node" if query.startswith("node") else query

    # The id is real: its owner reads it.
    own = await other_tenant.gql(READS[query], {"id": global_id})
    assert "errors" not in own, own
    assert own["data"][field] is not None
    assert own["data"][field]["id"] == global_id

    foreign = await tenant.gql(READS[query], {"id": global_id})
    missing = await tenant.gql(READS[query], {"id": missing_like(global_id)})
    assert "errors" not in foreign, foreign
    assert foreign["data"] == {field: None}
    assert foreign == missing
    await assert_untouched(other_tenant, owned)
    await assert_ledger_invariant(database)


async def test_a_deep_query_from_another_tenant_reveals_nothing(
    tenant: Tenant, other_tenant: Tenant, database: Database
) -> None:
    owned = await seed(other_tenant)
    body = await tenant.gql(
        """query($c: ID!, $w: ID!, $e: ID!, $o: ID!) {
          customer(id: $c) { id } wallet(id: $w) { id } entry: node(id: $e) { id } org: node(id: $o) { id }
          viewer { id customers(first: 100) { edges { node { id } } } }
        }""",
        {
            "c": owned.customer_id,
            "w": owned.wallet_id,
            "e": owned.entry_id,
            "o": owned.organization_id,
        },
    )
    assert "errors" not in body, body
    assert body["data"] == {
        "customer": None,
        "wallet": None,
        "entry": None,
        "org": None,
        "viewer": {"id": tenant.organization_id, "customers": {"edges": []}},
    }
    await assert_ledger_invariant(database)


# --- lists ----------------------------------------------------------------------------------

LISTS = """
query($email: String) {
  customers(first: 100, email: $email) { edges { node { id email } } pageInfo { hasNextPage } }
  viewer { customers(first: 100, email: $email) { edges { node { id email } } } }
}
"""


async def test_customer_lists_never_include_another_organizations_customers(
    tenant: Tenant, other_tenant: Tenant, database: Database
) -> None:
    owned = await seed(other_tenant, "theirs-1@example.com")
    await other_tenant.create_customer("theirs-2@example.com")
    mine = [
        (await tenant.create_customer(f"mine-{i}@example.com"))["customer"]["id"] for i in range(2)
    ]
    await other_tenant.create_customer("theirs-3@example.com")

    data = await tenant.data(LISTS)
    expected = [
        {"id": mine[0], "email": "mine-0@example.com"},
        {"id": mine[1], "email": "mine-1@example.com"},
    ]
    assert [e["node"] for e in data["customers"]["edges"]] == expected
    assert [e["node"] for e in data["viewer"]["customers"]["edges"]] == expected
    assert data["customers"]["pageInfo"]["hasNextPage"] is False

    # Paging from the first of ours never steps into theirs, even past their ids.
    first = await tenant.data(
        "{ customers(first: 1) { edges { node { id } } pageInfo { endCursor hasNextPage } } }"
    )
    assert first["customers"]["pageInfo"]["hasNextPage"] is True
    rest = await tenant.data(
        "query($after: String) { customers(first: 100, after: $after) { edges { node { id } } pageInfo { hasNextPage } } }",
        {"after": first["customers"]["pageInfo"]["endCursor"]},
    )
    assert [e["node"]["id"] for e in rest["customers"]["edges"]] == [mine[1]]
    assert rest["customers"]["pageInfo"]["hasNextPage"] is False

    for email in (owned.email, owned.email.upper(), "theirs-2@example.com"):
        filtered = await tenant.data(LISTS, {"email": email})
        assert filtered["customers"]["edges"] == []
        assert filtered["viewer"]["customers"]["edges"] == []

    theirs = await other_tenant.data(LISTS)
    assert [e["node"]["email"] for e in theirs["customers"]["edges"]] == [
        "theirs-1@example.com",
        "theirs-2@example.com",
        "theirs-3@example.com",
    ]
    await assert_ledger_invariant(database)


async def test_the_same_email_can_exist_in_both_organizations(
    tenant: Tenant, other_tenant: Tenant
) -> None:
    ours = await tenant.create_customer("shared@example.com")
    theirs = await other_tenant.create_customer("Shared@Example.com")
    assert ours["customer"]["id"] != theirs["customer"]["id"]
    assert theirs["customer"]["email"] == "Shared@Example.com"

    for who, created in ((tenant, ours), (other_tenant, theirs)):
        data = await who.data(LISTS, {"email": "SHARED@example.com"})
        assert [e["node"]["id"] for e in data["customers"]["edges"]] == [created["customer"]["id"]]
        assert [e["node"]["id"] for e in data["viewer"]["customers"]["edges"]] == [
            created["customer"]["id"]
        ]

    # Moving a customer onto an email (or external id) the other organization uses works too.
    moved = await tenant.create_customer("moving@example.com")
    await other_tenant.create_customer("taken-there@example.com", externalId="ext-1")
    updated = await tenant.data(
        """mutation($input: UpdateCustomerInput!) { updateCustomer(input: $input) {
            __typename ... on UpdateCustomerSuccess { customer { id email externalId } } } }""",
        {
            "input": {
                "customerId": moved["customer"]["id"],
                "email": "taken-there@example.com",
                "externalId": "ext-1",
            }
        },
    )
    assert updated["updateCustomer"] == {
        "__typename": "UpdateCustomerSuccess",
        "customer": {
            "id": moved["customer"]["id"],
            "email": "taken-there@example.com",
            "externalId": "ext-1",
        },
    }

    # Within one organization the email stays unique (case-insensitively).
    again = await tenant.gql(
        """mutation { createCustomer(input: {email: "SHARED@example.com"}) { __typename ... on ConflictError { field } } }"""
    )
    assert again["data"]["createCustomer"] == {"__typename": "ConflictError", "field": "email"}


# --- mutations ------------------------------------------------------------------------------

NOT_FOUND_FIELDS = "__typename ... on UserError { code message }"

UPDATE = f"""mutation($input: UpdateCustomerInput!) {{ updateCustomer(input: $input) {{ {NOT_FOUND_FIELDS} }} }}"""
DELETE = f"""mutation($id: ID!) {{ deleteCustomer(id: $id) {{ {NOT_FOUND_FIELDS} }} }}"""
REVOKE = f"""mutation($id: ID!) {{ revokeApiKey(id: $id) {{ {NOT_FOUND_FIELDS} }} }}"""
SUBSCRIBE = f"""mutation($input: CreateSubscriptionInput!) {{ createSubscription(input: $input) {{
  {NOT_FOUND_FIELDS} }} }}"""


def _entry(customer_id: str, entry_type: str, key: str, amount: int = 100) -> dict[str, Any]:
    return entry_input(customer_id, amount, entry_type, key)


MUTATIONS = {
    "credit": lambda cid: (
        CREATE_ENTRY,
        _entry(cid, "CREDIT", "probe-credit"),
        "createLedgerEntry",
    ),
    "debit": lambda cid: (CREATE_ENTRY, _entry(cid, "DEBIT", "probe-debit"), "createLedgerEntry"),
    "credit-new-currency": lambda cid: (
        CREATE_ENTRY,
        {"input": {**_entry(cid, "CREDIT", "probe-eur")["input"], "currency": "EUR"}},
        "createLedgerEntry",
    ),
    # The other tenant's own key and input: must not replay their entry to us.
    "credit-their-key": lambda cid: (
        CREATE_ENTRY,
        {
            "input": {
                **_entry(cid, "CREDIT", "owned-credit", 500)["input"],
                "reason": "Owned top-up",
            }
        },
        "createLedgerEntry",
    ),
    "update": lambda cid: (
        UPDATE,
        {
            "input": {
                "customerId": cid,
                "email": "hijacked@example.com",
                "name": "Hijacked",
                "externalId": None,
            }
        },
        "updateCustomer",
    ),
    "delete": lambda cid: (DELETE, {"id": cid}, "deleteCustomer"),
    "subscribe": lambda cid: (
        SUBSCRIBE,
        {
            "input": {
                "customerId": cid,
                "planId": to_global_id("Plan", 2**40),
                "idempotencyKey": "probe-subscription",
            }
        },
        "createSubscription",
    ),
}


@pytest.mark.parametrize("mutation", list(MUTATIONS))
async def test_mutating_another_organizations_customer_is_not_found(
    tenant: Tenant, other_tenant: Tenant, database: Database, mutation: str
) -> None:
    owned = await seed(other_tenant)
    # Our own customer and funds: a wrong lookup could land on them; it must not either.
    mine = await tenant.create_customer()
    await tenant.post(mine["customer"]["id"], 1000)

    query, foreign_vars, field = MUTATIONS[mutation](owned.customer_id)
    _, missing_vars, _ = MUTATIONS[mutation](missing_like(owned.customer_id))
    foreign = await tenant.gql(query, foreign_vars)
    missing = await tenant.gql(query, missing_vars)
    assert "errors" not in foreign, foreign
    assert foreign["data"][field] == {
        "__typename": "NotFoundError",
        "code": "NOT_FOUND",
        "message": "Customer not found.",
    }
    assert foreign["data"] == missing["data"]

    await assert_untouched(other_tenant, owned)
    mine_after = await tenant.data(
        "query($id: ID!) { customer(id: $id) { wallets { balance version } } }",
        {"id": mine["customer"]["id"]},
    )
    assert mine_after["customer"]["wallets"] == [{"balance": 1000, "version": 1}]
    # Our organization has no entry for the probe key: the key is still free for us.
    if field == "createLedgerEntry":
        key = foreign_vars["input"]["idempotencyKey"]
        ours = await tenant.post(mine["customer"]["id"], 1, key=key)
        assert (ours["__typename"], ours["replayed"]) == ("CreateLedgerEntrySuccess", False)
    await assert_ledger_invariant(database)


async def test_revoking_another_organizations_api_key_is_not_found(
    tenant: Tenant, other_tenant: Tenant, database: Database
) -> None:
    owned = await seed(other_tenant)
    foreign = await tenant.gql(REVOKE, {"id": owned.api_key_id})
    missing = await tenant.gql(REVOKE, {"id": missing_like(owned.api_key_id)})
    assert "errors" not in foreign, foreign
    assert foreign["data"]["revokeApiKey"] == {
        "__typename": "NotFoundError",
        "code": "NOT_FOUND",
        "message": "API key not found.",
    }
    assert foreign["data"] == missing["data"]

    # Their key still works and is not marked revoked.
    keys = await other_tenant.data("{ viewer { apiKeys { id revokedAt } } }")
    assert keys["viewer"]["apiKeys"] == [{"id": owned.api_key_id, "revokedAt": None}]
    # And our own key list never shows theirs.
    ours = await tenant.data("{ viewer { apiKeys { id } } }")
    assert owned.api_key_id not in [k["id"] for k in ours["viewer"]["apiKeys"]]
    assert len(ours["viewer"]["apiKeys"]) == 1
    await assert_ledger_invariant(database)
