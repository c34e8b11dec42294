"""Races against real gateway processes over real sockets (two workers on PostgreSQL)."""

import asyncio

import httpx

from billgraph.db.engine import Database
from tests.conftest import assert_ledger_invariant
from tests.support.graph import CREATE_ENTRY, entry_input
from tests.support.server import create_organization, live_server

DEBITS = 1_000
FUNDS = 600


async def test_1000_concurrent_debits_never_overdraw(database: Database, database_url: str) -> None:
    organization = create_organization(database_url, "Race Org")
    workers = 1 if database.is_sqlite else 2
    with live_server(database_url, workers=workers) as server:
        headers = {"authorization": f"Bearer {organization['api_key']}"}
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
        async with httpx.AsyncClient(
            base_url=server.base_url, headers=headers, limits=limits, timeout=60
        ) as client:
            created = await client.post(
                "/graphql",
                json={
                    "query": 'mutation { createCustomer(input: {email: "racer@example.com"}) '
                    "{ ... on CreateCustomerSuccess { customer { id } } } }"
                },
            )
            customer_id = created.json()["data"]["createCustomer"]["customer"]["id"]

            async def post(entry_type: str, amount: int, key: str) -> dict[str, object]:
                response = await client.post(
                    "/graphql",
                    json={
                        "query": CREATE_ENTRY,
                        "variables": entry_input(customer_id, amount, entry_type, key),
                    },
                )
                assert response.status_code == 200, response.text
                return response.json()["data"]["createLedgerEntry"]  # type: ignore[no-any-return]

            funded = await post("CREDIT", FUNDS, "fund")
            assert funded["__typename"] == "CreateLedgerEntrySuccess"
            results = await asyncio.gather(*(post("DEBIT", 1, f"debit-{i}") for i in range(DEBITS)))

            kinds = [r["__typename"] for r in results]
            assert kinds.count("CreateLedgerEntrySuccess") == FUNDS
            assert kinds.count("InsufficientBalanceError") == DEBITS - FUNDS
            # Every successful debit saw a distinct balance: no update was lost.
            balances = sorted(r["entry"]["balanceAfter"] for r in results if "entry" in r)  # type: ignore[index,operator]
            assert balances == list(range(FUNDS))
            final = await client.post(
                "/graphql",
                json={
                    "query": "query($id: ID!) { customer(id: $id) { wallet(currency: USD) { balance version } } }",
                    "variables": {"id": customer_id},
                },
            )
            wallet = final.json()["data"]["customer"]["wallet"]
            assert wallet == {"balance": 0, "version": FUNDS + 1}
    await assert_ledger_invariant(database)
