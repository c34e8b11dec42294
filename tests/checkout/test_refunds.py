"""Refunds through the graph (refundCheckoutSession) and from the provider's dashboard
(charge.refunded through POST /webhooks/sandbox): the money goes back once, never more than the
session took, and the wallet never goes below zero."""

import asyncio
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from billgraph.adapters import sandbox
from billgraph.db.engine import Database
from billgraph.db.models import Refund
from billgraph.graphql.node import to_global_id
from billgraph.settings import Settings
from tests.conftest import assert_ledger_invariant
from tests.support.checkout import (
    REFUND_SESSION,
    completed_event,
    create_session,
    deliver,
    refund,
    refund_input,
    refunded_event,
    sandbox_secret,
    session_of,
    sign,
)
from tests.support.graph import Tenant, snapshot


@pytest.fixture
async def secret(database: Database, settings: Settings) -> str:
    return await sandbox_secret(database, settings)


async def _balance(tenant: Tenant, customer: str) -> int:
    wallets = await snapshot(tenant, customer)
    return next(balance for currency, balance, _, _ in wallets if currency == "USD")


async def _paid(
    tenant: Tenant, client: httpx.AsyncClient, secret: str, amount: int = 2000
) -> tuple[str, dict[str, Any]]:
    """A customer and a session of `amount` it has paid (its wallet credited)."""
    customer = (await tenant.create_customer())["customer"]["id"]
    session = await create_session(tenant, customer, amount)
    body = completed_event(session["providerSessionId"], amount)
    response = await deliver(client, body, sign(secret, body))
    assert response.json()["outcome"] == "credited", response.text
    return customer, session


async def _refund_rows(database: Database) -> int:
    async with database.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(Refund)) or 0)


async def test_a_refund_gives_back_at_the_provider_and_debits_the_wallet(
    tenant: Tenant, client: httpx.AsyncClient, database: Database, secret: str
) -> None:
    customer, session = await _paid(tenant, client, secret, 2000)
    result = await refund(tenant, session["id"], 1500, reason="Customer asked")
    assert result["__typename"] == "RefundCheckoutSessionSuccess", result
    assert result["replayed"] is False
    made = result["refund"]
    assert (made["amount"], made["walletDebited"], made["shortfall"]) == (1500, 1500, 0)
    assert (made["status"], made["source"], made["reason"]) == (
        "SUCCEEDED",
        "API",
        "Customer asked",
    )
    assert result["wallet"]["balance"] == 500 == await _balance(tenant, customer)
    assert result["checkoutSession"]["refunds"] == [made]
    assert (await session_of(tenant, session["id"]))["refunds"] == [made]
    node = await tenant.data(
        "query($id: ID!) { node(id: $id) { __typename ... on Refund { amount } } }",
        {"id": made["id"]},
    )
    assert node["node"] == {"__typename": "Refund", "amount": 1500}
    await assert_ledger_invariant(database)


async def test_a_replay_returns_the_same_refund_and_debits_once(
    tenant: Tenant, client: httpx.AsyncClient, database: Database, secret: str
) -> None:
    customer, session = await _paid(tenant, client, secret, 2000)
    variables = refund_input(session["id"], 700)
    first = (await tenant.data(REFUND_SESSION, variables))["refundCheckoutSession"]
    again = (await tenant.data(REFUND_SESSION, variables))["refundCheckoutSession"]
    assert again["replayed"] is True and again["refund"] == first["refund"]
    assert await _balance(tenant, customer) == 1300
    variables["input"]["amount"] = 800
    conflict = (await tenant.data(REFUND_SESSION, variables))["refundCheckoutSession"]
    assert conflict["__typename"] == "IdempotencyConflictError", conflict
    assert await _balance(tenant, customer) == 1300
    await assert_ledger_invariant(database)


async def test_refunds_never_give_back_more_than_the_session_took(
    tenant: Tenant, client: httpx.AsyncClient, database: Database, secret: str
) -> None:
    customer, session = await _paid(tenant, client, secret, 2000)
    assert (await refund(tenant, session["id"], 1200))[
        "__typename"
    ] == "RefundCheckoutSessionSuccess"
    over = await refund(tenant, session["id"], 801)
    assert over["__typename"] == "ValidationError" and over["field"] == "amount", over
    assert "800" in over["message"]
    assert (await refund(tenant, session["id"], 800))["refund"]["walletDebited"] == 800
    assert await _balance(tenant, customer) == 0
    assert (await refund(tenant, session["id"], 1))["__typename"] == "ValidationError"
    await assert_ledger_invariant(database)


async def test_concurrent_refunds_share_what_is_refundable(
    tenant: Tenant, client: httpx.AsyncClient, database: Database, secret: str
) -> None:
    customer, session = await _paid(tenant, client, secret, 2000)
    results = await asyncio.gather(*(refund(tenant, session["id"], 500) for _ in range(10)))
    kinds = sorted(r["__typename"] for r in results)
    assert kinds == ["RefundCheckoutSessionSuccess"] * 4 + ["ValidationError"] * 6, kinds
    assert await _balance(tenant, customer) == 0
    assert len((await session_of(tenant, session["id"]))["refunds"]) == 4
    await assert_ledger_invariant(database)


async def test_spent_credit_refuses_the_refund_unless_a_shortfall_is_allowed(
    tenant: Tenant, client: httpx.AsyncClient, database: Database, secret: str
) -> None:
    customer, session = await _paid(tenant, client, secret, 2000)
    spent = await tenant.post(customer, 1500, "DEBIT")
    assert spent["__typename"] == "CreateLedgerEntrySuccess", spent
    before, rows = await snapshot(tenant, customer), await _refund_rows(database)
    refused = await refund(tenant, session["id"], 2000)
    assert refused["__typename"] == "InsufficientBalanceError", refused
    assert (refused["balance"], refused["requested"]) == (500, 2000)
    assert await snapshot(tenant, customer) == before
    assert await _refund_rows(database) == rows  # nothing refunded, nothing recorded
    assert (await session_of(tenant, session["id"]))["refunds"] == []

    allowed = await refund(tenant, session["id"], 2000, allowShortfall=True)
    assert allowed["__typename"] == "RefundCheckoutSessionSuccess", allowed
    made = allowed["refund"]
    assert (made["amount"], made["walletDebited"], made["shortfall"]) == (2000, 500, 1500)
    assert await _balance(tenant, customer) == 0
    await assert_ledger_invariant(database)


async def test_only_a_paid_session_of_the_organization_can_be_refunded(
    tenant: Tenant,
    other_tenant: Tenant,
    client: httpx.AsyncClient,
    database: Database,
    secret: str,
) -> None:
    customer = (await tenant.create_customer())["customer"]["id"]
    open_session = await create_session(tenant, customer, 1000)
    unpaid = await refund(tenant, open_session["id"], 100)
    assert unpaid["__typename"] == "ConflictError", unpaid
    _, paid = await _paid(tenant, client, secret, 1000)
    theirs = await refund(other_tenant, paid["id"], 100)
    assert theirs["__typename"] == "NotFoundError", theirs
    missing = await refund(tenant, to_global_id("CheckoutSession", 2**40), 100)
    assert missing["__typename"] == "NotFoundError", missing
    for amount in (0, -5):
        bad = await refund(tenant, paid["id"], amount)
        assert bad["__typename"] == "ValidationError" and bad["field"] == "amount", bad
    reserved = await refund(tenant, paid["id"], 100, idempotencyKey="billgraph:refund:1")
    assert reserved["__typename"] == "ValidationError", reserved
    assert (await session_of(tenant, paid["id"]))["refunds"] == []
    await assert_ledger_invariant(database)


async def test_a_dashboard_refund_debits_the_newly_refunded_part_once(
    tenant: Tenant, client: httpx.AsyncClient, database: Database, secret: str
) -> None:
    customer, session = await _paid(tenant, client, secret, 2000)
    payment = sandbox.payment_id(session["providerSessionId"])
    body = refunded_event(payment, 2000, 600)
    response = await deliver(client, body, sign(secret, body))
    assert response.json() == {"received": True, "outcome": "refunded"}, response.text
    # The same total in another event (a retry by the provider under a new id): nothing new.
    body = refunded_event(payment, 2000, 600)
    response = await deliver(client, body, sign(secret, body))
    assert response.json()["outcome"] == "already_refunded"
    # A refund through billgraph, then the provider's event reporting it with the first.
    assert (await refund(tenant, session["id"], 400))[
        "__typename"
    ] == "RefundCheckoutSessionSuccess"
    body = refunded_event(payment, 2000, 1000)
    assert (await deliver(client, body, sign(secret, body))).json()["outcome"] == "already_refunded"
    refunds = (await session_of(tenant, session["id"]))["refunds"]
    assert [(r["source"], r["amount"], r["walletDebited"]) for r in refunds] == [
        ("PROVIDER", 600, 600),
        ("API", 400, 400),
    ]
    assert await _balance(tenant, customer) == 1000
    await assert_ledger_invariant(database)


async def test_a_dashboard_refund_of_spent_credit_records_the_shortfall(
    tenant: Tenant, client: httpx.AsyncClient, database: Database, secret: str
) -> None:
    customer, session = await _paid(tenant, client, secret, 2000)
    await tenant.post(customer, 1800, "DEBIT")
    body = refunded_event(sandbox.payment_id(session["providerSessionId"]), 2000, 2000)
    assert (await deliver(client, body, sign(secret, body))).json()["outcome"] == "refunded"
    [made] = (await session_of(tenant, session["id"]))["refunds"]
    assert (made["amount"], made["walletDebited"], made["shortfall"]) == (2000, 200, 1800)
    assert await _balance(tenant, customer) == 0
    await assert_ledger_invariant(database)


async def test_dashboard_refund_events_that_do_not_fit_change_nothing(
    tenant: Tenant, client: httpx.AsyncClient, database: Database, secret: str
) -> None:
    customer, session = await _paid(tenant, client, secret, 2000)
    payment = sandbox.payment_id(session["providerSessionId"])
    before = await snapshot(tenant, customer)
    for body in (
        refunded_event(payment, 2000, 2001),  # more than was paid
        refunded_event(payment, 2000, 500, currency="eur"),
    ):
        response = await deliver(client, body, sign(secret, body))
        assert response.status_code == 422, response.text
        assert response.json()["errors"][0]["extensions"]["code"] == "AMOUNT_MISMATCH"
    unknown = refunded_event("pi_sandbox_unknown", 2000, 500)
    response = await deliver(client, unknown, sign(secret, unknown))
    assert response.json()["outcome"] == "ignored"  # a payment billgraph did not take
    assert await snapshot(tenant, customer) == before
    assert (await session_of(tenant, session["id"]))["refunds"] == []
    await assert_ledger_invariant(database)


async def test_concurrent_dashboard_events_and_refunds_never_overdraw(
    tenant: Tenant, client: httpx.AsyncClient, database: Database, secret: str
) -> None:
    customer, session = await _paid(tenant, client, secret, 3000)
    payment = sandbox.payment_id(session["providerSessionId"])
    bodies = [refunded_event(payment, 3000, 1000) for _ in range(5)]
    results = await asyncio.gather(
        *(deliver(client, b, sign(secret, b)) for b in bodies),
        *(refund(tenant, session["id"], 1000) for _ in range(3)),
        tenant.post(customer, 500, "DEBIT"),
    )
    deliveries = [r for r in results if isinstance(r, httpx.Response)]
    assert all(r.status_code == 200 for r in deliveries), [r.text for r in deliveries]
    refunds = (await session_of(tenant, session["id"]))["refunds"]
    assert sum(r["amount"] for r in refunds) <= 3000
    assert sum(r["amount"] for r in refunds if r["source"] == "PROVIDER") <= 1000
    debited = sum(r["walletDebited"] for r in refunds)
    spent = 500 if results[-1]["__typename"] == "CreateLedgerEntrySuccess" else 0
    assert await _balance(tenant, customer) == 3000 - debited - spent >= 0
    await assert_ledger_invariant(database)
