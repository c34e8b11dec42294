"""Test helpers that speak to the API over HTTP, as a client would."""

import itertools
from dataclasses import dataclass
from typing import Any

import httpx

from billgraph.core.unit import unit_of_work
from billgraph.db.engine import Database
from billgraph.graphql.node import to_global_id
from billgraph.organizations import service as organizations

_counter = itertools.count(1)


@dataclass
class Tenant:
    """An organization of our own, with its read+write key: tests stay isolated by tenancy."""

    organization_id: str
    api_key: str
    client: httpx.AsyncClient

    async def gql(
        self, query: str, variables: dict[str, Any] | None = None, *, key: str | None = None
    ) -> dict[str, Any]:
        """POST a GraphQL operation with this tenant's key (or `key`); the decoded body."""
        response = await self.client.post(
            "/graphql",
            json={"query": query, "variables": variables or {}},
            headers={"authorization": f"Bearer {key or self.api_key}"},
        )
        assert response.headers["content-type"].startswith("application/json"), response.text
        return response.json()  # type: ignore[no-any-return]

    async def data(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """Like gql, but the operation must succeed without errors."""
        body = await self.gql(query, variables)
        assert "errors" not in body, body
        return body["data"]  # type: ignore[no-any-return]

    async def create_customer(self, email: str | None = None, **fields: Any) -> dict[str, Any]:
        body = await self.data(
            """mutation($input: CreateCustomerInput!) { createCustomer(input: $input) {
                __typename ... on CreateCustomerSuccess { customer { id email } wallet { id currency balance } }
                ... on UserError { code message } } }""",
            {"input": {"email": email or f"customer{next(_counter)}@example.com", **fields}},
        )
        result = body["createCustomer"]
        assert result["__typename"] == "CreateCustomerSuccess", result
        return result  # type: ignore[no-any-return]

    async def post(
        self,
        customer_id: str,
        amount: int,
        entry_type: str = "CREDIT",
        currency: str = "USD",
        key: str | None = None,
        reason: str | None = None,
    ) -> dict[str, Any]:
        """createLedgerEntry; returns the result union member as a dict."""
        key = key or f"key-{next(_counter)}"
        body = await self.data(
            CREATE_ENTRY, entry_input(customer_id, amount, entry_type, key, currency, reason)
        )
        return body["createLedgerEntry"]  # type: ignore[no-any-return]


WALLETS = """
query($id: ID!) {
  customer(id: $id) {
    wallets { currency balance version ledgerEntries(first: 100) { edges { node { id } } } }
  }
}
"""


async def snapshot(tenant: Tenant, customer_id: str) -> list[tuple[str, int, int, int]]:
    """The customer's wallets: (currency, balance, version, number of ledger entries); equal
    before and after a refused request when nothing was written."""
    data = await tenant.data(WALLETS, {"id": customer_id})
    return [
        (w["currency"], w["balance"], w["version"], len(w["ledgerEntries"]["edges"]))
        for w in data["customer"]["wallets"]
    ]


async def customer_count(tenant: Tenant) -> int:
    data = await tenant.data("{ customers(first: 100) { edges { node { id } } } }")
    return len(data["customers"]["edges"])


CREATE_ENTRY = """
mutation($input: CreateLedgerEntryInput!) {
  createLedgerEntry(input: $input) {
    __typename
    ... on CreateLedgerEntrySuccess {
      replayed
      entry { id entryType amount currency balanceAfter sequence reason idempotencyKey createdAt }
      wallet { id currency balance version }
    }
    ... on InsufficientBalanceError { code message balance requested currency }
    ... on IdempotencyConflictError { code message idempotencyKey }
    ... on ValidationError { code message field }
    ... on NotFoundError { code message }
  }
}
"""


def entry_input(
    customer_id: str,
    amount: int,
    entry_type: str,
    key: str,
    currency: str = "USD",
    reason: str | None = None,
) -> dict[str, Any]:
    """The variables of CREATE_ENTRY."""
    return {
        "input": {
            "customerId": customer_id,
            "amount": amount,
            "currency": currency,
            "entryType": entry_type,
            "idempotencyKey": key,
            "reason": reason,
        }
    }


async def new_tenant(
    database: Database, client: httpx.AsyncClient, currency: str = "USD"
) -> Tenant:
    async with unit_of_work(database) as unit:
        created = await organizations.create(unit, f"Org {next(_counter)}", currency)
    return Tenant(
        organization_id=to_global_id("Organization", created.organization.id),
        api_key=created.api_key.secret,
        client=client,
    )
