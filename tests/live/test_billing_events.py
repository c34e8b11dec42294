"""subscriptionStatusChanged and invoiceUpdated over real WebSockets against real gateway
processes, on both protocols.

On PostgreSQL sockets subscribe through gateway A while writes go through gateway B (or a
separate `billgraph bill` process), so events cross processes over LISTEN/NOTIFY; on SQLite
one process with the in-process broker plays both roles.
"""

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from billgraph.billing import payment_methods as methods
from billgraph.billing import subscriptions
from billgraph.checkout.providers import Providers
from billgraph.core.unit import unit_of_work
from billgraph.db.engine import Database
from billgraph.settings import Settings
from tests.billing.helpers import DECLINING_CARD, GOOD_CARD, Org
from tests.billing.test_graph import (
    PAY_INVOICE,
    advance,
    create_clock,
    create_plan,
    db_id,
    funded_customer,
    moment,
    mutate,
    organization_db_id,
    subscribed,
)
from tests.conftest import assert_ledger_invariant, postgresql_only
from tests.support.graph import Tenant, new_tenant
from tests.support.server import LiveServer, cli, live_server
from tests.support.ws import PROTOCOLS, TRANSPORT_WS, GraphQLSocket, authenticated

GATEWAY_ENV = {"BILLGRAPH_WEBSOCKET_KEEP_ALIVE_SECONDS": "0.5"}

STATUS_CHANGED = """
subscription($customerId: ID) {
  subscriptionStatusChanged(customerId: $customerId) {
    previousStatus status
    subscription { id status customer { id } }
    event { id type message invoice { id } }
  }
}
"""
INVOICE_UPDATED = """
subscription($customerId: ID) {
  invoiceUpdated(customerId: $customerId) {
    invoice { id number status amountDue amountPaid walletCreditApplied attemptCount
      nextPaymentAttemptAt customer { id } subscription { id } }
  }
}
"""


@pytest.fixture(scope="module")
def gateways(database_url: str) -> Iterator[tuple[LiveServer, LiveServer]]:
    with live_server(database_url, env=GATEWAY_ENV) as a:
        if database_url.startswith("sqlite"):  # one process per SQLite file
            yield a, a
            return
        with live_server(database_url, env=GATEWAY_ENV) as b:
            yield a, b


@pytest.fixture
def url_a(gateways: tuple[LiveServer, LiveServer]) -> str:
    return gateways[0].base_url


@pytest.fixture
async def http_b(gateways: tuple[LiveServer, LiveServer]) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=gateways[1].base_url, timeout=60) as client:
        yield client


@pytest.fixture
async def writer(database: Database, http_b: httpx.AsyncClient) -> Tenant:
    """A tenant whose HTTP calls go to gateway B."""
    return await new_tenant(database, http_b)


async def _subscribed(
    url: str,
    tenant: Tenant,
    query: str,
    variables: dict[str, Any] | None = None,
    protocol: str = TRANSPORT_WS,
) -> GraphQLSocket:
    socket = await authenticated(url, tenant.api_key, protocol)
    await socket.subscribe(query, variables or {})
    await asyncio.sleep(0.3)  # the subscription is registered before the first write
    return socket


async def _next(socket: GraphQLSocket) -> dict[str, Any]:
    payload = await socket.next_payload(timeout=20)
    assert "errors" not in payload, payload
    (value,) = payload["data"].values()
    return value  # type: ignore[no-any-return]


async def _until(
    socket: GraphQLSocket, done: Callable[[dict[str, Any]], bool], most: int = 20
) -> list[dict[str, Any]]:
    """Events up to the first for which `done` holds (an invoice is read when its event
    arrives, so several updates in quick succession may show the same, latest state)."""
    seen: list[dict[str, Any]] = []
    while len(seen) < most:
        seen.append(await _next(socket))
        if done(seen[-1]):
            return seen
    raise AssertionError(f"no event matched among {seen}")


def _transition(event: dict[str, Any]) -> tuple[str | None, str, str | None]:
    recorded = event["event"]
    return event["previousStatus"], event["status"], recorded["type"] if recorded else None


async def _save_card(database: Database, tenant: Tenant, customer: str, number: str) -> int:
    """The subscription checkout that collects a card is not built here: the domain saves it
    (no status or invoice changes, so nothing a subscriber should hear)."""
    async with unit_of_work(database) as unit:
        card = await methods.save_sandbox_card(
            unit, organization_db_id(tenant), db_id(customer), number
        )
    return card.id


async def _use_card(database: Database, tenant: Tenant, subscription: str, card: int) -> None:
    async with unit_of_work(database) as unit:
        await subscriptions.set_payment_method(
            unit, organization_db_id(tenant), db_id(subscription), card
        )


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_a_subscription_created_incomplete_then_paid_becomes_active(
    writer: Tenant, url_a: str, database: Database, protocol: str
) -> None:
    customer = await funded_customer(writer, 0)
    statuses = await _subscribed(url_a, writer, STATUS_CHANGED, {"customerId": customer}, protocol)
    invoices = await _subscribed(url_a, writer, INVOICE_UPDATED, {"customerId": customer}, protocol)
    plan = await create_plan(writer, 1000)
    subscription = await subscribed(writer, customer, plan["id"])
    assert subscription["status"] == "INCOMPLETE"

    created = await _next(statuses)
    assert _transition(created) == (None, "INCOMPLETE", "created")
    assert created["subscription"] == {
        "id": subscription["id"],
        "status": "INCOMPLETE",
        "customer": {"id": customer},
    }
    issued = (await _next(invoices))["invoice"]
    assert (issued["status"], issued["amountDue"], issued["amountPaid"]) == ("OPEN", 1000, 0)
    assert issued["subscription"] == {"id": subscription["id"]}
    assert issued["customer"] == {"id": customer}

    await writer.post(customer, 1000)
    paid = await mutate(
        writer, PAY_INVOICE, {"input": {"invoiceId": issued["id"], "idempotencyKey": "pay-1"}}
    )
    assert paid["__typename"] == "PayInvoiceSuccess", paid

    activated = await _next(statuses)
    assert _transition(activated) == ("INCOMPLETE", "ACTIVE", "activated")
    assert activated["subscription"]["status"] == "ACTIVE"
    updated = (await _next(invoices))["invoice"]
    assert updated["id"] == issued["id"]
    assert (updated["status"], updated["walletCreditApplied"], updated["amountDue"]) == (
        "PAID",
        1000,
        0,
    )
    await statuses.close()
    await invoices.close()
    await assert_ledger_invariant(database)


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_dunning_to_suspension_then_pay_invoice_recovery(
    writer: Tenant, url_a: str, database: Database, protocol: str
) -> None:
    clock = await create_clock(writer, "2025-03-10T09:00:00Z")
    customer = await funded_customer(writer, 1000, testClockId=clock["id"])
    plan = await create_plan(writer, 1000)
    subscription = await subscribed(writer, customer, plan["id"])
    assert subscription["status"] == "ACTIVE"
    await _use_card(
        database,
        writer,
        subscription["id"],
        await _save_card(database, writer, customer, DECLINING_CARD),
    )
    statuses = await _subscribed(url_a, writer, STATUS_CHANGED, {"customerId": customer}, protocol)
    invoices = await _subscribed(url_a, writer, INVOICE_UPDATED, {"customerId": customer}, protocol)

    # Each attempt: the renewal invoice shows it (attemptCount), then its outcome.
    retries = {1: "2025-04-13T09:00:00Z", 2: "2025-04-16T09:00:00Z", 3: None}
    renewal: dict[str, Any] = {}
    for attempt, frozen in enumerate(
        ["2025-04-10T09:00:00Z", "2025-04-13T09:00:00Z", "2025-04-16T09:00:00Z"], start=1
    ):
        advanced = await advance(writer, clock["id"], frozen)
        assert advanced["__typename"] == "AdvanceTestClockSuccess", advanced
        outcome = (attempt, retries[attempt] and moment(retries[attempt]))

        def shows_outcome(event: dict[str, Any], outcome: tuple[Any, Any] = outcome) -> bool:
            invoice = event["invoice"]
            next_at = invoice["nextPaymentAttemptAt"]
            return (invoice["attemptCount"], next_at and moment(next_at)) == outcome

        updates = [e["invoice"] for e in await _until(invoices, shows_outcome)]
        renewal = updates[-1]
        assert {u["id"] for u in updates} == {renewal["id"]}
        counts = [u["attemptCount"] for u in updates]
        assert counts == sorted(counts) and counts[0] >= attempt - 1
        assert (renewal["status"], renewal["amountPaid"], renewal["amountDue"]) == (
            "OPEN",
            0,
            1000,
        )

    past_due, suspended = await _next(statuses), await _next(statuses)
    assert _transition(past_due) == ("ACTIVE", "PAST_DUE", "past_due")
    assert _transition(suspended) == ("PAST_DUE", "SUSPENDED", "suspended")
    assert past_due["event"]["invoice"] == suspended["event"]["invoice"] == {"id": renewal["id"]}
    assert suspended["subscription"]["status"] == "SUSPENDED"

    # Recovery: a working card, and the customer pays the open invoice.
    await _use_card(
        database,
        writer,
        subscription["id"],
        await _save_card(database, writer, customer, GOOD_CARD),
    )
    paid = await mutate(
        writer, PAY_INVOICE, {"input": {"invoiceId": renewal["id"], "idempotencyKey": "recover"}}
    )
    assert paid["__typename"] == "PayInvoiceSuccess" and paid["paymentError"] is None, paid
    recovered = await _next(statuses)
    assert _transition(recovered) == ("SUSPENDED", "ACTIVE", "activated")
    assert recovered["subscription"]["status"] == "ACTIVE"
    updates = await _until(invoices, lambda e: e["invoice"]["status"] == "PAID")
    assert updates[-1]["invoice"]["amountPaid"] == 1000
    assert updates[-1]["invoice"]["attemptCount"] == 4
    await statuses.close()
    await invoices.close()
    await assert_ledger_invariant(database)


async def test_a_customer_filter_and_the_organization_confine_what_a_socket_hears(
    database: Database, writer: Tenant, http_b: httpx.AsyncClient, url_a: str
) -> None:
    other = await new_tenant(database, http_b)
    theirs = await funded_customer(other, 5000)
    mine, neighbour = await funded_customer(writer, 5000), await funded_customer(writer, 5000)
    one_customer = await _subscribed(url_a, writer, STATUS_CHANGED, {"customerId": mine})
    organization = await _subscribed(url_a, writer, INVOICE_UPDATED)
    other_organization = await _subscribed(url_a, other, STATUS_CHANGED)

    plan, their_plan = await create_plan(writer, 700), await create_plan(other, 700)
    await subscribed(other, theirs, their_plan["id"])
    await subscribed(writer, neighbour, plan["id"])
    own = await subscribed(writer, mine, plan["id"])

    # Paid by credit at once: created INCOMPLETE, then ACTIVE, in one unit.
    created, activated = await _next(one_customer), await _next(one_customer)
    assert created["subscription"]["id"] == activated["subscription"]["id"] == own["id"]
    assert _transition(created) == (None, "INCOMPLETE", "created")
    assert _transition(activated) == ("INCOMPLETE", "ACTIVE", "activated")
    # The organization-wide socket hears both of its customers' invoices, not the other's.
    heard = [(await _next(organization))["invoice"] for _ in range(2)]
    assert [i["customer"]["id"] for i in heard] == [neighbour, mine]
    assert all(i["status"] == "PAID" for i in heard)
    # The other organization's socket: its own subscription, first and only.
    first = await _next(other_organization)
    assert first["subscription"]["customer"] == {"id": theirs}

    # Another organization's customer is not found, as walletBalanceChanged says it.
    for query in (STATUS_CHANGED, INVOICE_UPDATED):
        socket = await authenticated(url_a, writer.api_key)
        await socket.subscribe(query, {"customerId": theirs})
        message = await socket.receive()
        await socket.close()
        assert message["type"] == "error", message
        (error,) = message["payload"]
        assert (error["message"], error["extensions"]["code"]) == (
            "Customer not found.",
            "NOT_FOUND",
        )
    for socket in (one_customer, organization, other_organization):
        await socket.close()


ERA = datetime(1965, 1, 1, tzinfo=UTC)


@postgresql_only
async def test_a_billgraph_bill_process_reaches_the_gateways_subscribers(
    database: Database, database_url: str, settings: Settings, writer: Tenant, url_a: str
) -> None:
    providers = Providers(database, settings)
    try:
        org = Org(database, providers, organization_db_id(writer))
        customer = await org.customer(credit=1000)
        plan = await org.plan(amount=1000)
        # An era no other test bills in (tests/billing/test_run.py goes back from 1995, the
        # Stripe tests use 1970, the billing benchmark's check 1950): the run bills this
        # test's subscription only.
        created = await org.subscribe(customer, plan, now=ERA)
    finally:
        await providers.close()
    assert created.subscription.status == "ACTIVE"
    statuses = await _subscribed(url_a, writer, STATUS_CHANGED)
    invoices = await _subscribed(url_a, writer, INVOICE_UPDATED, {}, "graphql-ws")

    # The renewal: no credit left and no payment method, so it goes to dunning.
    now = (ERA + timedelta(days=32)).isoformat()
    done = await asyncio.to_thread(cli, "bill", "--now", now, "--database-url", database_url)
    assert done.returncode == 0, done.stderr

    renewal = (await _next(invoices))["invoice"]
    assert created.invoice is not None and db_id(renewal["id"]) != created.invoice.id
    assert (renewal["status"], renewal["attemptCount"], renewal["amountDue"]) == ("OPEN", 1, 1000)
    assert renewal["nextPaymentAttemptAt"] is not None
    past_due = await _next(statuses)
    assert _transition(past_due) == ("ACTIVE", "PAST_DUE", "past_due")
    assert past_due["event"]["invoice"] == {"id": renewal["id"]}
    assert db_id(past_due["subscription"]["id"]) == created.subscription.id
    await statuses.close()
    await invoices.close()
    await assert_ledger_invariant(database)
    # Its retries stay due in 1965: no later test's billing run (at any later time) bills it.
    async with database.engine.begin() as connection:
        await connection.execute(
            text("UPDATE subscriptions SET next_action_at = NULL WHERE id = :id"),
            {"id": created.subscription.id},
        )
