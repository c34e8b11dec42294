"""Mutations of one document run one after another, and each sees what the earlier ones wrote.

A document's loaders cache what they read; a mutation field must not be served what an earlier
field of the same document changed. Each test sends one document whose later field reads what
an earlier field wrote, and checks the read sees the write. An object that is gone by the time
a field reads it is a typed answer (a NotFoundError in a result union, or an error with
`extensions.code` NOT_FOUND), never a masked INTERNAL_SERVER_ERROR.
"""

from typing import Any

import pytest

from billgraph.core.unit import unit_of_work
from billgraph.customers import service as customers
from billgraph.db.engine import Database
from billgraph.graphql import node
from billgraph.graphql.context import Info
from billgraph.graphql.node import from_global_id, to_global_id
from tests.support.graph import Tenant
from tests.support.leaks import assert_no_leak


async def send(tenant: Tenant, query: str, variables: dict[str, Any] | None = None) -> Any:
    """POST a document; the whole answer must succeed, with no error and nothing masked."""
    response = await tenant.client.post(
        "/graphql",
        json={"query": query, "variables": variables or {}},
        headers={"authorization": f"Bearer {tenant.api_key}"},
    )
    assert response.status_code == 200, response.text
    assert_no_leak(response.text)
    body = response.json()
    assert "errors" not in body, body
    assert body["data"] is not None, body
    return body["data"]


async def test_a_wallet_read_after_its_customer_was_deleted_is_not_found(tenant: Tenant) -> None:
    """Finding 9: `c` was served the wallet `a` had loaded, then its customer was not found
    and the whole answer became `data: null` with a masked error, although `b` committed."""
    created = await tenant.create_customer()
    customer_id, wallet_id = created["customer"]["id"], created["wallet"]["id"]
    data = await send(
        tenant,
        f"""mutation {{
          a: updateWallet(input: {{walletId: "{wallet_id}"}}) {{ __typename }}
          b: deleteCustomer(id: "{customer_id}") {{ __typename }}
          c: updateWallet(input: {{walletId: "{wallet_id}"}}) {{
            __typename
            ... on UpdateWalletSuccess {{ wallet {{ customer {{ id }} }} }}
            ... on UserError {{ code message }}
          }}
        }}""",
    )
    assert data["a"] == {"__typename": "UpdateWalletSuccess"}
    assert data["b"] == {"__typename": "DeleteCustomerSuccess"}
    assert data["c"] == {
        "__typename": "NotFoundError",
        "code": "NOT_FOUND",
        "message": "Wallet not found.",
    }
    # b committed: the customer is gone for good.
    after = await send(tenant, "query($id: ID!) { customer(id: $id) { id } }", {"id": customer_id})
    assert after == {"customer": None}


async def test_a_threshold_set_by_an_earlier_field_is_seen(tenant: Tenant) -> None:
    created = await tenant.create_customer()
    wallet_id = created["wallet"]["id"]
    read = f"""updateWallet(input: {{walletId: "{wallet_id}"}}) {{
        ... on UpdateWalletSuccess {{ wallet {{ lowBalanceThreshold }} }} }}"""
    data = await send(
        tenant,
        f"""mutation {{
          before: {read}
          set: updateWallet(input: {{walletId: "{wallet_id}", lowBalanceThreshold: 250}}) {{
            ... on UpdateWalletSuccess {{ wallet {{ lowBalanceThreshold }} }} }}
          after: {read}
        }}""",
    )
    assert data["before"] == {"wallet": {"lowBalanceThreshold": None}}
    assert data["set"] == {"wallet": {"lowBalanceThreshold": 250}}
    assert data["after"] == {"wallet": {"lowBalanceThreshold": 250}}


async def test_a_created_customer_is_found_by_later_fields(tenant: Tenant) -> None:
    """A later field finds, through the node registry (wallet -> customer -> wallets), the
    customer an earlier field created and the wallet another one opened; and an id that
    an earlier field found missing is found once a later field created it."""
    first = await tenant.create_customer()
    _, last_wallet = from_global_id(first["wallet"]["id"])
    next_wallet_id = to_global_id("Wallet", last_wallet + 1)  # the next wallet's id
    data = await send(
        tenant,
        f"""mutation {{
          missing: updateWallet(input: {{walletId: "{next_wallet_id}"}}) {{ __typename }}
          created: createCustomer(input: {{email: "sequence-new@example.com"}}) {{
            ... on CreateCustomerSuccess {{
              customer {{ id wallets {{ currency }} }} wallet {{ id }} }} }}
          found: updateWallet(input: {{walletId: "{next_wallet_id}"}}) {{
            __typename
            ... on UpdateWalletSuccess {{ wallet {{ customer {{ email wallets {{ currency }} }} }} }}
          }}
        }}""",
    )
    assert data["missing"] == {"__typename": "NotFoundError"}
    assert data["created"]["wallet"]["id"] == next_wallet_id
    assert data["created"]["customer"]["wallets"] == [{"currency": "USD"}]
    assert data["found"] == {
        "__typename": "UpdateWalletSuccess",
        "wallet": {
            "customer": {"email": "sequence-new@example.com", "wallets": [{"currency": "USD"}]}
        },
    }
    customer_id = data["created"]["customer"]["id"]

    # A credit in another currency opens a wallet: the next field's customer has both.
    data = await send(
        tenant,
        f"""mutation {{
          before: updateWallet(input: {{walletId: "{next_wallet_id}"}}) {{
            ... on UpdateWalletSuccess {{ wallet {{ customer {{ wallets {{ currency }} }} }} }} }}
          credit: createLedgerEntry(input: {{customerId: "{customer_id}", amount: 700,
              currency: EUR, entryType: CREDIT, idempotencyKey: "sequence-eur"}}) {{
            __typename }}
          after: updateWallet(input: {{walletId: "{next_wallet_id}"}}) {{
            ... on UpdateWalletSuccess {{ wallet {{ customer {{
              wallets {{ currency balance }} eur: wallet(currency: EUR) {{ balance }} }} }} }} }}
        }}""",
    )
    assert data["before"] == {"wallet": {"customer": {"wallets": [{"currency": "USD"}]}}}
    assert data["credit"] == {"__typename": "CreateLedgerEntrySuccess"}
    assert data["after"] == {
        "wallet": {
            "customer": {
                "wallets": [{"currency": "USD", "balance": 0}, {"currency": "EUR", "balance": 700}],
                "eur": {"balance": 700},
            }
        }
    }


async def test_an_updated_customer_is_seen_through_a_later_payload(tenant: Tenant) -> None:
    created = await tenant.create_customer("before@example.com", name="Before")
    customer_id, wallet_id = created["customer"]["id"], created["wallet"]["id"]
    read = f"""updateWallet(input: {{walletId: "{wallet_id}"}}) {{
        ... on UpdateWalletSuccess {{ wallet {{ customer {{ email name externalId }} }} }} }}"""
    data = await send(
        tenant,
        f"""mutation {{
          before: {read}
          update: updateCustomer(input: {{customerId: "{customer_id}", email: "after@example.com",
              name: "After", externalId: "ext-after"}}) {{ __typename }}
          credit: createLedgerEntry(input: {{customerId: "{customer_id}", amount: 5,
              currency: USD, entryType: CREDIT, idempotencyKey: "sequence-update"}}) {{
            ... on CreateLedgerEntrySuccess {{ wallet {{ customer {{ email name }} }} }} }}
          after: {read}
        }}""",
    )
    assert data["before"] == {
        "wallet": {
            "customer": {"email": "before@example.com", "name": "Before", "externalId": None}
        }
    }
    assert data["update"] == {"__typename": "UpdateCustomerSuccess"}
    assert data["credit"] == {
        "wallet": {"customer": {"email": "after@example.com", "name": "After"}}
    }
    assert data["after"] == {
        "wallet": {
            "customer": {"email": "after@example.com", "name": "After", "externalId": "ext-after"}
        }
    }


async def test_a_revoked_key_is_seen_revoked_by_a_later_payload(tenant: Tenant) -> None:
    created = await tenant.create_customer()
    customer_id = created["customer"]["id"]
    extra = await send(
        tenant,
        """mutation { createApiKey(input: {name: "to revoke", scopes: [READ]}) {
            ... on CreateApiKeySuccess { apiKey { id } } } }""",
    )
    key_id = extra["createApiKey"]["apiKey"]["id"]
    keys = "customer { organization { apiKeys { id revokedAt } } }"
    data = await send(
        tenant,
        f"""mutation {{
          before: updateCustomer(input: {{customerId: "{customer_id}"}}) {{
            ... on UpdateCustomerSuccess {{ {keys} }} }}
          revoke: revokeApiKey(id: "{key_id}") {{
            ... on RevokeApiKeySuccess {{ apiKey {{ id revokedAt }} }} }}
          after: updateCustomer(input: {{customerId: "{customer_id}"}}) {{
            ... on UpdateCustomerSuccess {{ {keys} }} }}
        }}""",
    )

    def revoked_at(result: dict[str, Any]) -> Any:
        found = result["customer"]["organization"]["apiKeys"]
        return next(k["revokedAt"] for k in found if k["id"] == key_id)

    assert revoked_at(data["before"]) is None
    assert data["revoke"]["apiKey"]["revokedAt"] is not None
    assert revoked_at(data["after"]) == data["revoke"]["apiKey"]["revokedAt"]


async def test_two_postings_then_the_wallet_are_seen_in_order(tenant: Tenant) -> None:
    created = await tenant.create_customer()
    customer_id, wallet_id = created["customer"]["id"], created["wallet"]["id"]
    wallet = "balance version ledgerEntries(first: 10) { edges { node { amount balanceAfter } } }"
    read = f"""updateWallet(input: {{walletId: "{wallet_id}"}}) {{
        ... on UpdateWalletSuccess {{ wallet {{ {wallet} }} }} }}"""

    def post(key: str, amount: int) -> str:
        return f"""createLedgerEntry(input: {{customerId: "{customer_id}", amount: {amount},
              currency: USD, entryType: CREDIT, idempotencyKey: "{key}"}}) {{
            ... on CreateLedgerEntrySuccess {{ entry {{ balanceAfter sequence }}
              wallet {{ {wallet} }} }} }}"""

    data = await send(
        tenant,
        f"""mutation {{
          before: {read}
          first: {post("sequence-first", 100)}
          second: {post("sequence-second", 50)}
          after: {read}
        }}""",
    )
    assert data["before"] == {
        "wallet": {"balance": 0, "version": 0, "ledgerEntries": {"edges": []}}
    }
    assert data["first"]["entry"] == {"balanceAfter": 100, "sequence": 1}
    assert data["first"]["wallet"]["balance"] == 100
    both = {
        "balance": 150,
        "version": 2,
        "ledgerEntries": {
            "edges": [
                {"node": {"amount": 50, "balanceAfter": 150}},
                {"node": {"amount": 100, "balanceAfter": 100}},
            ]
        },
    }
    assert data["second"] == {"entry": {"balanceAfter": 150, "sequence": 2}, "wallet": both}
    assert data["after"] == {"wallet": both}


async def test_an_edge_to_an_object_deleted_meanwhile_is_not_found(
    tenant: Tenant, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A concurrent request deletes the customer after this one loaded its wallet: the
    wallet's `customer` cannot be resolved. It is null (and so, being non-null, its wallet)
    with an error coded NOT_FOUND saying the customer is gone, not a masked failure."""
    created = await tenant.create_customer()
    customer_id, wallet_id = created["customer"]["id"], created["wallet"]["id"]
    load_customer = node._LOADERS["Customer"]

    async def deleted_meanwhile(info: Info, db_id: int) -> node.Node | None:
        async with unit_of_work(database) as unit:
            await customers.delete(unit, info.context.organization_id, db_id)
        return await load_customer(info, db_id)

    monkeypatch.setitem(node._LOADERS, "Customer", deleted_meanwhile)
    response = await tenant.client.post(
        "/graphql",
        json={
            "query": "query($w: ID!) { wallet(id: $w) { id customer { id } } }",
            "variables": {"w": wallet_id},
        },
        headers={"authorization": f"Bearer {tenant.api_key}"},
    )
    assert response.status_code == 200, response.text
    assert_no_leak(response.text)
    body = response.json()
    assert body["data"] == {"wallet": None}
    [error] = body["errors"]
    assert error["path"] == ["wallet", "customer"]
    assert error["extensions"]["code"] == "NOT_FOUND"
    assert error["extensions"]["requestId"]
    assert error["message"] == f"Customer {customer_id} is gone: it was deleted meanwhile."
