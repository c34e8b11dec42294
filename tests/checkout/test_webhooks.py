"""The webhook pipeline through POST /webhooks/sandbox: a paid event credits the wallet once
and completes the session, however many times and in whatever order it arrives; what is
forged, stale, malformed, unknown or mismatched is a 4xx with a JSON error and writes nothing
(the same event id, delivered correctly afterwards, is then processed: it was never stored)."""

import asyncio
import json
import time
from typing import Any

import httpx
import pytest

from billgraph.db.engine import Database
from billgraph.settings import Settings
from tests.conftest import assert_ledger_invariant
from tests.support.checkout import (
    CREATE_SESSION,
    EXPIRE_SESSION,
    SESSION,
    completed_event,
    create_session,
    deliver,
    sandbox_secret,
    session_input,
    session_of,
    sign,
)
from tests.support.graph import Tenant, snapshot
from tests.support.ledger import count_statements
from tests.support.server import create_organization, live_server


@pytest.fixture
async def secret(database: Database, settings: Settings) -> str:
    return await sandbox_secret(database, settings)


async def _balance(tenant: Tenant, customer: str) -> int:
    wallets = await snapshot(tenant, customer)
    return next(balance for currency, balance, _, _ in wallets if currency == "USD")


async def test_a_paid_event_credits_the_wallet_and_completes_the_session(
    tenant: Tenant, client: httpx.AsyncClient, database: Database, secret: str
) -> None:
    customer = (await tenant.create_customer())["customer"]["id"]
    session = await create_session(tenant, customer, 2500)
    body = completed_event(session["providerSessionId"], 2500)
    response = await deliver(client, body, sign(secret, body))
    assert response.status_code == 200, response.text
    assert response.json() == {"received": True, "outcome": "credited"}
    assert await _balance(tenant, customer) == 2500
    done = await session_of(tenant, session["id"])
    assert done["status"] == "COMPLETE" and done["completedAt"] is not None
    assert done["ledgerEntry"]["amount"] == 2500 and done["ledgerEntry"]["entryType"] == "CREDIT"
    await assert_ledger_invariant(database)


async def test_a_duplicate_is_acknowledged_and_does_nothing(
    tenant: Tenant, client: httpx.AsyncClient, database: Database, secret: str
) -> None:
    customer = (await tenant.create_customer())["customer"]["id"]
    session = await create_session(tenant, customer, 800)
    body = completed_event(session["providerSessionId"], 800)
    outcomes = []
    for _ in range(2):
        response = await deliver(client, body, sign(secret, body))
        assert response.status_code == 200
        outcomes.append(response.json()["outcome"])
    assert outcomes == ["credited", "duplicate"]
    assert await snapshot(tenant, customer) == [("USD", 800, 1, 1)]
    await assert_ledger_invariant(database)


async def test_ten_concurrent_deliveries_credit_once(
    tenant: Tenant, client: httpx.AsyncClient, database: Database, secret: str
) -> None:
    customer = (await tenant.create_customer())["customer"]["id"]
    session = await create_session(tenant, customer, 999)
    body = completed_event(session["providerSessionId"], 999)
    responses = await asyncio.gather(
        *(deliver(client, body, sign(secret, body)) for _ in range(10))
    )
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses]
    outcomes = sorted(r.json()["outcome"] for r in responses)
    assert outcomes == ["credited"] + ["duplicate"] * 9
    assert await snapshot(tenant, customer) == [("USD", 999, 1, 1)]
    await assert_ledger_invariant(database)


async def test_different_events_confirming_one_payment_credit_once(
    tenant: Tenant, client: httpx.AsyncClient, database: Database, secret: str
) -> None:
    customer = (await tenant.create_customer())["customer"]["id"]
    session = await create_session(tenant, customer, 450)
    bodies = [completed_event(session["providerSessionId"], 450) for _ in range(6)]
    responses = await asyncio.gather(*(deliver(client, b, sign(secret, b)) for b in bodies))
    outcomes = sorted(r.json()["outcome"] for r in responses)
    assert outcomes == ["already_complete"] * 5 + ["credited"], outcomes
    assert await snapshot(tenant, customer) == [("USD", 450, 1, 1)]
    await assert_ledger_invariant(database)


async def test_a_payment_confirmed_after_expiry_still_credits(
    tenant: Tenant,
    client: httpx.AsyncClient,
    database: Database,
    secret: str,
) -> None:
    customer = (await tenant.create_customer())["customer"]["id"]
    session = await create_session(tenant, customer, 3000)
    expired = await tenant.data(EXPIRE_SESSION, {"id": session["id"]})
    assert expired["expireCheckoutSession"]["checkoutSession"]["status"] == "EXPIRED"
    body = completed_event(session["providerSessionId"], 3000)
    response = await deliver(client, body, sign(secret, body))
    assert response.json()["outcome"] == "late_credit"
    assert await _balance(tenant, customer) == 3000
    assert (await session_of(tenant, session["id"]))["status"] == "COMPLETE"
    # Expiring a complete session is refused; an expiry event afterwards changes nothing.
    refused = await tenant.data(EXPIRE_SESSION, {"id": session["id"]})
    assert refused["expireCheckoutSession"]["__typename"] == "ConflictError"
    await assert_ledger_invariant(database)


async def test_unknown_event_types_and_unpaid_sessions_are_acknowledged_and_ignored(
    tenant: Tenant, client: httpx.AsyncClient, secret: str
) -> None:
    customer = (await tenant.create_customer())["customer"]["id"]
    session = await create_session(tenant, customer, 100)
    other = json.dumps({"id": f"evt_other_{time.time_ns()}", "type": "customer.created"}).encode()
    unpaid = completed_event(session["providerSessionId"], 100, payment_status="unpaid")
    for body in (other, unpaid):
        response = await deliver(client, body, sign(secret, body))
        assert response.json() == {"received": True, "outcome": "ignored"}
    assert (await session_of(tenant, session["id"]))["status"] == "OPEN"
    assert await _balance(tenant, customer) == 0


def _refusals(
    secret: str, psid: str, event_id: str
) -> list[tuple[str, bytes, str | None, int, str]]:
    """(case, body, signature, status, code): each refused, nothing written."""
    good = completed_event(psid, 1200, event_id=event_id)
    now = int(time.time())
    return [
        ("no signature", good, None, 400, "INVALID_SIGNATURE"),
        ("forged", good, sign("whsec_not_the_secret", good), 400, "INVALID_SIGNATURE"),
        ("garbled header", good, "t=abc,v1=", 400, "INVALID_SIGNATURE"),
        ("stale", good, sign(secret, good, now - 310), 400, "STALE_SIGNATURE"),
        ("from the future", good, sign(secret, good, now + 400), 400, "STALE_SIGNATURE"),
        (
            "signed, then altered",
            good.replace(b"1200", b"9999"),
            sign(secret, good),
            400,
            "INVALID_SIGNATURE",
        ),
        ("not JSON", b"{not json", sign(secret, b"{not json"), 400, "BAD_REQUEST"),
        ("not UTF-8", b'{"id": "\xff"}', sign(secret, b'{"id": "\xff"}'), 400, "BAD_REQUEST"),
        (
            "1000 deep",
            b"[" * 1000 + b"]" * 1000,
            sign(secret, b"[" * 1000 + b"]" * 1000),
            400,
            "BAD_REQUEST",
        ),
        ("an array", b"[]", sign(secret, b"[]"), 400, "BAD_REQUEST"),
        (
            "no id",
            b'{"type": "checkout.session.completed"}',
            sign(secret, b'{"type": "checkout.session.completed"}'),
            400,
            "BAD_REQUEST",
        ),
        (
            "no data",
            (
                no_data := json.dumps(
                    {"id": event_id, "type": "checkout.session.completed"}
                ).encode()
            ),
            sign(secret, no_data),
            400,
            "BAD_REQUEST",
        ),
        (
            "unknown session",
            (unknown := completed_event("cs_sandbox_nope", 1200, event_id=event_id)),
            sign(secret, unknown),
            404,
            "UNKNOWN_SESSION",
        ),
        (
            "amount",
            (cheap := completed_event(psid, 1, event_id=event_id)),
            sign(secret, cheap),
            422,
            "AMOUNT_MISMATCH",
        ),
        (
            "currency",
            (eur := completed_event(psid, 1200, "eur", event_id=event_id)),
            sign(secret, eur),
            422,
            "AMOUNT_MISMATCH",
        ),
        (
            "big integer",
            (big := completed_event(psid, 10**40, event_id=event_id)),
            sign(secret, big),
            422,
            "AMOUNT_MISMATCH",
        ),
    ]


async def test_forged_stale_malformed_unknown_and_mismatched_events_write_nothing(
    tenant: Tenant, client: httpx.AsyncClient, database: Database, secret: str
) -> None:
    customer = (await tenant.create_customer())["customer"]["id"]
    session = await create_session(tenant, customer, 1200)
    event_id = f"evt_refused_{time.time_ns()}"
    for case, body, signature, status, code in _refusals(
        secret, session["providerSessionId"], event_id
    ):
        response = await deliver(client, body, signature)
        assert response.status_code == status, (case, response.text)
        assert response.headers["content-type"] == "application/json", case
        error = response.json()["errors"][0]
        assert error["extensions"]["code"] == code, (case, error)
        assert error["extensions"]["requestId"] == response.headers["x-request-id"], case
        assert secret not in response.text and "Traceback" not in response.text, case
        assert await _balance(tenant, customer) == 0, case
        assert (await session_of(tenant, session["id"]))["status"] == "OPEN", case
    # None of them was stored: the same event id, delivered as sent, is processed now.
    body = completed_event(session["providerSessionId"], 1200, event_id=event_id)
    response = await deliver(client, body, sign(secret, body))
    assert response.json()["outcome"] == "credited"
    assert await snapshot(tenant, customer) == [("USD", 1200, 1, 1)]
    await assert_ledger_invariant(database)


async def test_a_latin1_declared_body_is_refused(client: httpx.AsyncClient, secret: str) -> None:
    body = b'{"id": "evt_x", "type": "x"}'
    response = await deliver(
        client, body, sign(secret, body), **{"content-type": "application/json; charset=latin-1"}
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"


def test_a_real_server_verifies_with_the_configured_secret_and_logs_a_late_payment(
    database_url: str,
) -> None:
    """Against `billgraph serve` with BILLGRAPH_SANDBOX_WEBHOOK_SECRET set: events signed with
    that secret are taken, others refused; a payment after expiry is logged as late."""
    secret = f"whsec_configured_{time.time_ns()}"
    key = create_organization(database_url, "Late Payment Org")["api_key"]
    with live_server(database_url, env={"BILLGRAPH_SANDBOX_WEBHOOK_SECRET": secret}) as server:
        with httpx.Client(base_url=server.base_url, timeout=30) as http:

            def gql(query: str, variables: dict[str, Any]) -> dict[str, Any]:
                body = http.post(
                    "/graphql",
                    json={"query": query, "variables": variables},
                    headers={"authorization": f"Bearer {key}"},
                ).json()
                assert "errors" not in body, body
                return body["data"]  # type: ignore[no-any-return]

            customer = gql(
                'mutation { createCustomer(input: {email: "late@example.com"}) '
                "{ ... on CreateCustomerSuccess { customer { id } } } }",
                {},
            )["createCustomer"]["customer"]["id"]
            session = gql(CREATE_SESSION, session_input(customer, 4200))["createCheckoutSession"]
            psid = session["checkoutSession"]["providerSessionId"]
            assert session["checkoutSession"]["url"].startswith(server.base_url)
            gql(EXPIRE_SESSION, {"id": session["checkoutSession"]["id"]})
            body = completed_event(psid, 4200)
            headers = {"content-type": "application/json"}
            generated = http.post(
                "/webhooks/sandbox",
                content=body,
                headers={**headers, "billgraph-signature": sign("whsec_other", body)},
            )
            assert generated.status_code == 400
            taken = http.post(
                "/webhooks/sandbox",
                content=body,
                headers={**headers, "billgraph-signature": sign(secret, body)},
            )
            assert taken.json() == {"received": True, "outcome": "late_credit"}, taken.text
            node = gql(SESSION, {"id": session["checkoutSession"]["id"]})["node"]
            assert node["status"] == "COMPLETE" and node["ledgerEntry"]["amount"] == 4200
        time.sleep(0.5)
        log = server.log()
    assert "paid after it expired" in log and "late" in log
    assert secret not in log


async def test_a_paid_event_costs_four_statements_and_a_duplicate_two(
    tenant: Tenant, client: httpx.AsyncClient, database: Database, secret: str
) -> None:
    """The webhook path stays one transaction of few round trips: lock the session, post the
    credit, complete the session, record the event (SQLite's posting is two statements: it
    has no data-modifying CTE). A duplicate locks the session and finds the event recorded."""
    customer = (await tenant.create_customer())["customer"]["id"]
    session = await create_session(tenant, customer, 1000)
    body = completed_event(session["providerSessionId"], 1000)
    with count_statements(database) as paid:
        assert (await deliver(client, body, sign(secret, body))).json()["outcome"] == "credited"
    with count_statements(database) as duplicate:
        assert (await deliver(client, body, sign(secret, body))).json()["outcome"] == "duplicate"
    verbs = [s.split()[0].upper() for s in paid if not s.upper().startswith(("BEGIN", "COMMIT"))]
    posting = ["UPDATE", "INSERT"] if database.is_sqlite else ["WITH"]
    assert verbs == ["SELECT", *posting, "UPDATE", "INSERT"], paid
    assert len([s for s in duplicate if not s.upper().startswith(("BEGIN", "ROLLBACK"))]) == 2
    await assert_ledger_invariant(database)
