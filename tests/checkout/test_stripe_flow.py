"""Stripe checkout end to end over HTTP: a gateway configured for Stripe against the fake
Stripe server (tests/support/fake_stripe.py) opens sessions there through GraphQL, the fake's
customer pays, and the events the fake emits, signed as Stripe signs them, are delivered to
POST /webhooks/stripe: the wallet is credited once whatever the order, repetition or
concurrency of the deliveries, and what is forged, stale or mismatched writes nothing."""

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import httpx
import pytest

from billgraph.app import create_app
from billgraph.db.engine import Database
from billgraph.graphql.node import from_global_id
from billgraph.settings import Settings
from tests.conftest import assert_ledger_invariant
from tests.support.checkout import (
    CREATE_SESSION,
    EXPIRE_SESSION,
    session_input,
    session_of,
    sessions_of,
)
from tests.support.fake_stripe import FakeStripe, StoredEvent, deliver, running
from tests.support.graph import Tenant, new_tenant, snapshot

SECRET_KEY = "sk_test_flow_" + "f" * 24
WEBHOOK_SECRET = "whsec_flow_" + "e" * 24


@pytest.fixture(scope="module")
def fake_server(database_url: str) -> Iterator[FakeStripe]:
    """One Stripe account per database: billgraph derives its idempotency keys at Stripe from
    its own ids, which each database numbers from 1."""
    with running(SECRET_KEY, WEBHOOK_SECRET) as fake:
        yield fake


@pytest.fixture
def fake(fake_server: FakeStripe) -> Iterator[FakeStripe]:
    yield fake_server
    fake_server.clear_faults()


@pytest.fixture(scope="module")
async def stripe_client(
    database: Database, database_url: str, fake_server: FakeStripe
) -> AsyncIterator[httpx.AsyncClient]:
    """A gateway whose STRIPE provider is the fake (its lifespan is not run: it would dispose
    the shared database)."""
    settings = Settings(
        database_url=database_url,
        rate_limit_per_second=0,
        log_json=True,
        log_level="WARNING",
        stripe_secret_key=SECRET_KEY,
        stripe_webhook_secret=WEBHOOK_SECRET,
        stripe_api_base=fake_server.url,
        provider_timeout_seconds=3,
    )
    transport = httpx.ASGITransport(app=create_app(settings, database))
    async with httpx.AsyncClient(transport=transport, base_url="http://billgraph.test") as client:
        yield client


@pytest.fixture
async def shop(database: Database, stripe_client: httpx.AsyncClient) -> Tenant:
    return await new_tenant(database, stripe_client)


async def open_session(
    shop: Tenant, customer: str, amount: int = 2000, **fields: Any
) -> dict[str, Any]:
    """createCheckoutSession with provider STRIPE; the CheckoutSession."""
    result = await create(shop, session_input(customer, amount, provider="STRIPE", **fields))
    assert result["__typename"] == "CreateCheckoutSessionSuccess", result
    return result["checkoutSession"]  # type: ignore[no-any-return]


async def create(shop: Tenant, variables: dict[str, Any]) -> dict[str, Any]:
    return (await shop.data(CREATE_SESSION, variables))["createCheckoutSession"]  # type: ignore[no-any-return]


async def new_customer(shop: Tenant) -> str:
    return str((await shop.create_customer())["customer"]["id"])


async def paid(fake: FakeStripe, shop: Tenant, amount: int = 2000) -> tuple[str, dict[str, Any]]:
    """A customer, and a Stripe session of theirs the fake's customer paid."""
    customer = await new_customer(shop)
    session = await open_session(shop, customer, amount)
    fake.pay(session["providerSessionId"])
    return customer, session


async def balance(shop: Tenant, customer: str) -> list[tuple[str, int, int, int]]:
    return await snapshot(shop, customer)


async def outcome(client: httpx.AsyncClient, fake: FakeStripe, event: StoredEvent) -> str:
    response = await deliver(client, fake, event)
    assert response.status_code == 200, response.text
    return str(response.json()["outcome"])


async def test_a_paid_stripe_checkout_completes_the_session_and_credits_once(
    shop: Tenant, stripe_client: httpx.AsyncClient, fake: FakeStripe, database: Database
) -> None:
    customer = await new_customer(shop)
    session = await open_session(shop, customer, 2500)
    psid = session["providerSessionId"]
    assert (session["provider"], session["status"]) == ("STRIPE", "OPEN")
    assert psid.startswith("cs_test_") and session["url"] == fake.sessions[psid]["url"]
    assert session["url"].startswith(f"{fake.url}/c/pay/")
    at_stripe = fake.sessions[psid]
    assert (at_stripe["amount_total"], at_stripe["currency"]) == (2500, "usd")
    assert at_stripe["client_reference_id"] == str(from_global_id(customer)[1])
    assert at_stripe["success_url"] == "https://shop.example/paid?session={CHECKOUT_SESSION_ID}"
    assert at_stripe["customer"] in fake.customers
    fake.pay(psid)
    event = fake.event(psid, "checkout.session.completed")
    assert await outcome(stripe_client, fake, event) == "credited"
    done = await session_of(shop, session["id"])
    assert done["status"] == "COMPLETE" and done["completedAt"] is not None
    assert done["ledgerEntry"]["amount"] == 2500 and done["ledgerEntry"]["entryType"] == "CREDIT"
    assert await balance(shop, customer) == [("USD", 2500, 1, 1)]
    await assert_ledger_invariant(database)


@pytest.mark.parametrize(("deliveries", "concurrent"), [(2, False), (10, False), (10, True)])
async def test_a_redelivered_event_credits_once(
    shop: Tenant,
    stripe_client: httpx.AsyncClient,
    fake: FakeStripe,
    database: Database,
    deliveries: int,
    concurrent: bool,
) -> None:
    customer, session = await paid(fake, shop, 1234)
    event = fake.event(session["providerSessionId"], "checkout.session.completed")
    if concurrent:
        responses = await asyncio.gather(
            *(deliver(stripe_client, fake, event) for _ in range(deliveries))
        )
    else:
        responses = [await deliver(stripe_client, fake, event) for _ in range(deliveries)]
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses]
    outcomes = [r.json()["outcome"] for r in responses]
    assert sorted(outcomes) == ["credited"] + ["duplicate"] * (deliveries - 1)
    assert await balance(shop, customer) == [("USD", 1234, 1, 1)]
    await assert_ledger_invariant(database)


@pytest.mark.parametrize("succeeded_first", [True, False])
async def test_a_delayed_payment_credits_once_whichever_event_comes_first(
    shop: Tenant,
    stripe_client: httpx.AsyncClient,
    fake: FakeStripe,
    database: Database,
    succeeded_first: bool,
) -> None:
    customer = await new_customer(shop)
    session = await open_session(shop, customer, 3100)
    psid = session["providerSessionId"]
    fake.pay_delayed(psid)
    fake.settle_delayed(psid, succeed=True)
    completed = fake.event(psid, "checkout.session.completed")  # payment_status unpaid
    succeeded = fake.event(psid, "checkout.session.async_payment_succeeded")
    order = [succeeded, completed] if succeeded_first else [completed, succeeded]
    outcomes = [await outcome(stripe_client, fake, e) for e in order]
    expected = ["credited", "ignored"] if succeeded_first else ["ignored", "credited"]
    assert outcomes == expected
    assert await outcome(stripe_client, fake, succeeded) == "duplicate"
    assert (await session_of(shop, session["id"]))["status"] == "COMPLETE"
    assert await balance(shop, customer) == [("USD", 3100, 1, 1)]
    await assert_ledger_invariant(database)


async def test_a_failed_delayed_payment_fails_the_session_and_credits_nothing(
    shop: Tenant, stripe_client: httpx.AsyncClient, fake: FakeStripe, database: Database
) -> None:
    customer = await new_customer(shop)
    session = await open_session(shop, customer, 4000)
    psid = session["providerSessionId"]
    fake.pay_delayed(psid)
    fake.settle_delayed(psid, succeed=False)
    assert await outcome(stripe_client, fake, fake.event(psid, "checkout.session.completed")) == (
        "ignored"
    )
    failed = fake.event(psid, "checkout.session.async_payment_failed")
    assert await outcome(stripe_client, fake, failed) == "payment_failed"
    node = await session_of(shop, session["id"])
    assert node["status"] == "FAILED" and node["ledgerEntry"] is None
    assert node["lastPaymentError"]["code"] == "payment_failed"
    assert node["lastPaymentError"]["message"]
    assert await balance(shop, customer) == [("USD", 0, 0, 0)]
    await assert_ledger_invariant(database)


async def test_an_expired_session_expires_and_an_expiry_after_payment_changes_nothing(
    shop: Tenant, stripe_client: httpx.AsyncClient, fake: FakeStripe, database: Database
) -> None:
    customer = await new_customer(shop)
    unpaid = await open_session(shop, customer, 500)
    fake.expire(unpaid["providerSessionId"])
    expired = fake.event(unpaid["providerSessionId"], "checkout.session.expired")
    assert await outcome(stripe_client, fake, expired) == "expired"
    assert (await session_of(shop, unpaid["id"]))["status"] == "EXPIRED"

    session = await open_session(shop, customer, 700)
    psid = session["providerSessionId"]
    fake.pay(psid)
    assert await outcome(stripe_client, fake, fake.event(psid, "checkout.session.completed")) == (
        "credited"
    )
    # An expiry arriving after the payment (Stripe delivers in no particular order).
    late_expiry = fake.emit("checkout.session.expired", psid, status="expired")
    assert await outcome(stripe_client, fake, late_expiry) == "ignored"
    assert (await session_of(shop, session["id"]))["status"] == "COMPLETE"
    assert await balance(shop, customer) == [("USD", 700, 1, 1)]
    await assert_ledger_invariant(database)


async def test_forged_stale_and_mismatched_events_are_refused_and_write_nothing(
    shop: Tenant, stripe_client: httpx.AsyncClient, fake: FakeStripe, database: Database
) -> None:
    customer, session = await paid(fake, shop, 1500)
    psid = session["providerSessionId"]
    event = fake.event(psid, "checkout.session.completed")
    now = int(time.time())
    reserialized = json.dumps(event.payload).encode()
    cheaper = fake.emit("checkout.session.completed", psid, amount_total=1)
    in_euros = fake.emit("checkout.session.completed", psid, currency="eur")
    unknown = fake.emit("checkout.session.completed", psid, id="cs_test_not_billgraphs")

    def unsigned() -> Awaitable[httpx.Response]:
        headers = {"content-type": "application/json"}
        return stripe_client.post("/webhooks/stripe", content=event.body, headers=headers)

    cases: list[tuple[str, Callable[[], Awaitable[httpx.Response]], int, str]] = [
        (
            "forged",
            lambda: deliver(stripe_client, fake, event, secret="whsec_guess"),
            400,
            "INVALID_SIGNATURE",
        ),
        (
            "stale",
            lambda: deliver(stripe_client, fake, event, timestamp=now - 400),
            400,
            "STALE_SIGNATURE",
        ),
        (
            "future",
            lambda: deliver(stripe_client, fake, event, timestamp=now + 400),
            400,
            "STALE_SIGNATURE",
        ),
        (
            "re-serialized",
            lambda: deliver(stripe_client, fake, event, body=reserialized),
            400,
            "INVALID_SIGNATURE",
        ),
        ("unsigned", unsigned, 400, "INVALID_SIGNATURE"),
        ("amount", lambda: deliver(stripe_client, fake, cheaper), 422, "AMOUNT_MISMATCH"),
        ("currency", lambda: deliver(stripe_client, fake, in_euros), 422, "AMOUNT_MISMATCH"),
        ("unknown session", lambda: deliver(stripe_client, fake, unknown), 404, "UNKNOWN_SESSION"),
    ]
    for case, send, status, code in cases:
        response = await send()
        assert response.status_code == status, (case, response.text)
        assert response.headers["content-type"] == "application/json", case
        error = response.json()["errors"][0]
        assert error["extensions"]["code"] == code, (case, error)
        assert error["extensions"]["requestId"] == response.headers["x-request-id"], case
        assert WEBHOOK_SECRET not in response.text and SECRET_KEY not in response.text, case
        assert await balance(shop, customer) == [("USD", 0, 0, 0)], case
        assert (await session_of(shop, session["id"]))["status"] == "OPEN", case
    # None was stored: the genuine delivery of the same event is processed now.
    assert await outcome(stripe_client, fake, event) == "credited"
    assert await balance(shop, customer) == [("USD", 1500, 1, 1)]
    await assert_ledger_invariant(database)


async def test_a_replayed_create_makes_one_session_at_stripe(
    shop: Tenant, fake: FakeStripe
) -> None:
    customer = await new_customer(shop)
    variables = session_input(customer, 900, provider="STRIPE")
    mark = fake.mark()
    first = await create(shop, variables)
    again = await create(shop, variables)
    assert (first["replayed"], again["replayed"]) == (False, True)
    assert again["checkoutSession"] == first["checkoutSession"]
    assert len(fake.since(mark, "/v1/checkout/sessions")) == 1


async def test_a_stripe_outage_during_create_stores_no_session_and_a_retry_opens_one(
    shop: Tenant, fake: FakeStripe, database: Database
) -> None:
    customer = await new_customer(shop)
    variables = session_input(customer, 1100, provider="STRIPE")
    fake.fail_next(3, status=500, path="/v1/checkout/sessions")
    mark = fake.mark()
    refused = await create(shop, variables)
    assert refused["__typename"] == "ProviderError", refused
    assert (refused["code"], refused["provider"]) == ("provider_unavailable", "STRIPE")
    assert await sessions_of(shop, customer) == []
    assert [r.status for r in fake.since(mark, "/v1/checkout/sessions")] == [500, 500, 500]
    # The client retries with its key: one session, at Stripe as here.
    retried = await create(shop, variables)
    assert retried["__typename"] == "CreateCheckoutSessionSuccess" and not retried["replayed"]
    assert [s["id"] for s in await sessions_of(shop, customer)] == [
        retried["checkoutSession"]["id"]
    ]
    made = [r for r in fake.since(mark, "/v1/checkout/sessions") if r.status == 200]
    assert len(made) == 1
    await assert_ledger_invariant(database)


async def test_a_wrong_stripe_key_is_provider_not_configured_and_stores_nothing(
    database: Database, database_url: str, fake: FakeStripe
) -> None:
    settings = Settings(
        database_url=database_url,
        rate_limit_per_second=0,
        log_level="WARNING",
        stripe_secret_key="sk_test_revoked_key_000000000000",
        stripe_webhook_secret=WEBHOOK_SECRET,
        stripe_api_base=fake.url,
    )
    transport = httpx.ASGITransport(app=create_app(settings, database))
    async with httpx.AsyncClient(transport=transport, base_url="http://billgraph.test") as client:
        shop = await new_tenant(database, client)
        customer = await new_customer(shop)
        refused = await create(shop, session_input(customer, provider="STRIPE"))
        assert (refused["__typename"], refused["code"]) == (
            "ProviderError",
            "provider_not_configured",
        )
        assert "sk_test_revoked" not in refused["message"]
        assert await sessions_of(shop, customer) == []


async def test_a_customers_sessions_share_one_stripe_customer(
    shop: Tenant, fake: FakeStripe
) -> None:
    customer = await new_customer(shop)
    mark = fake.mark()
    first = await open_session(shop, customer, 1000)
    second = await open_session(shop, customer, 2000)
    customers_made = fake.since(mark, "/v1/customers")
    assert len(customers_made) == 1
    stripe_customer = fake.sessions[first["providerSessionId"]]["customer"]
    assert stripe_customer == fake.sessions[second["providerSessionId"]]["customer"]
    assert fake.customers[stripe_customer]["metadata"] == {
        "billgraph_customer_id": str(from_global_id(customer)[1])
    }
    # Another customer of the shop is another Stripe customer.
    other = await open_session(shop, await new_customer(shop), 1000)
    assert fake.sessions[other["providerSessionId"]]["customer"] != stripe_customer


PROVIDER_CUSTOMERS = """
query($id: ID!) { customer(id: $id) { providerCustomers { provider providerCustomerId } } }
"""


async def test_the_stripe_customer_is_the_customers_provider_customer(
    shop: Tenant, fake: FakeStripe
) -> None:
    customer = await new_customer(shop)
    session = await open_session(shop, customer, 1000)
    data = await shop.data(PROVIDER_CUSTOMERS, {"id": customer})
    assert data["customer"]["providerCustomers"] == [
        {
            "provider": "STRIPE",
            "providerCustomerId": fake.sessions[session["providerSessionId"]]["customer"],
        }
    ]


REFUNDS = """
query($id: ID!) {
  node(id: $id) {
    ... on CheckoutSession { status refunds { amount walletDebited shortfall status source } }
  }
}
"""

REFUND = """
mutation($input: RefundCheckoutSessionInput!) {
  refundCheckoutSession(input: $input) {
    __typename
    ... on RefundCheckoutSessionSuccess {
      replayed refund { amount walletDebited shortfall status source }
    }
    ... on UserError { code message }
  }
}
"""


async def refunds_of(shop: Tenant, session_id: str) -> list[dict[str, Any]]:
    return (await shop.data(REFUNDS, {"id": session_id}))["node"]["refunds"]  # type: ignore[no-any-return]


def refund(amount: int, wallet_debited: int, source: str = "PROVIDER") -> dict[str, Any]:
    return {
        "amount": amount,
        "walletDebited": wallet_debited,
        "shortfall": amount - wallet_debited,
        "status": "SUCCEEDED",
        "source": source,
    }


async def credited(
    client: httpx.AsyncClient, fake: FakeStripe, shop: Tenant, amount: int
) -> tuple[str, dict[str, Any], str]:
    """A customer whose Stripe session of `amount` is paid and credited; its payment intent."""
    customer, session = await paid(fake, shop, amount)
    psid = session["providerSessionId"]
    assert await outcome(client, fake, fake.event(psid, "checkout.session.completed")) == (
        "credited"
    )
    return customer, session, str(fake.sessions[psid]["payment_intent"])


async def test_a_dashboard_refund_debits_the_new_amount_never_below_zero(
    shop: Tenant, stripe_client: httpx.AsyncClient, fake: FakeStripe, database: Database
) -> None:
    customer, session, intent = await credited(stripe_client, fake, shop, 1000)
    fake.refund_from_dashboard(intent, 300)
    [first] = fake.events_for(intent, "charge.refunded")
    assert first.payload["data"]["object"]["amount_refunded"] == 300
    assert await outcome(stripe_client, fake, first) == "refunded"
    assert await outcome(stripe_client, fake, first) == "duplicate"
    assert await balance(shop, customer) == [("USD", 700, 2, 2)]
    assert await refunds_of(shop, session["id"]) == [refund(300, 300)]
    # The customer spends most of what is left; a second dashboard refund of 500 (the
    # charge's refunded total is now 800) takes what the wallet holds and no more.
    spent = await shop.post(customer, 600, "DEBIT")
    assert spent["__typename"] == "CreateLedgerEntrySuccess", spent
    fake.refund_from_dashboard(intent, 500)
    second = fake.events_for(intent, "charge.refunded")[1]
    assert second.payload["data"]["object"]["amount_refunded"] == 800
    assert await outcome(stripe_client, fake, second) == "refunded"
    assert await balance(shop, customer) == [("USD", 0, 4, 4)]
    assert await refunds_of(shop, session["id"]) == [refund(300, 300), refund(500, 100)]
    await assert_ledger_invariant(database)


async def test_dashboard_refund_events_out_of_order_repeated_or_concurrent_refund_once(
    shop: Tenant, stripe_client: httpx.AsyncClient, fake: FakeStripe, database: Database
) -> None:
    customer, session, intent = await credited(stripe_client, fake, shop, 1000)
    fake.refund_from_dashboard(intent, 300)
    fake.refund_from_dashboard(intent, 200)
    earlier, later = fake.events_for(intent, "charge.refunded")
    # The later event (refunded total 500) first, ten times at once: one refund of 500.
    responses = await asyncio.gather(*(deliver(stripe_client, fake, later) for _ in range(10)))
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses]
    assert sorted(r.json()["outcome"] for r in responses) == ["duplicate"] * 9 + ["refunded"]
    # The earlier one (total 300) tells billgraph nothing new.
    assert await outcome(stripe_client, fake, earlier) == "already_refunded"
    assert await balance(shop, customer) == [("USD", 500, 2, 2)]
    assert await refunds_of(shop, session["id"]) == [refund(500, 500)]
    await assert_ledger_invariant(database)


async def test_a_refund_through_billgraph_refunds_at_stripe_and_its_event_changes_nothing(
    shop: Tenant, stripe_client: httpx.AsyncClient, fake: FakeStripe, database: Database
) -> None:
    customer, session, intent = await credited(stripe_client, fake, shop, 1000)
    mark = fake.mark()
    variables = {
        "input": {
            "checkoutSessionId": session["id"],
            "amount": 400,
            "idempotencyKey": f"refund-{time.time_ns()}",
            "reason": "Asked by the customer",
        }
    }
    done = (await shop.data(REFUND, variables))["refundCheckoutSession"]
    assert done["__typename"] == "RefundCheckoutSessionSuccess", done
    assert done["refund"] == refund(400, 400, "API")
    [sent] = fake.since(mark, "/v1/refunds")
    assert sent.params["payment_intent"] == intent and sent.params["amount"] == "400"
    assert sent.params["reason"] == "requested_by_customer"
    # Stripe reports billgraph's own refund back as charge.refunded: nothing more is debited.
    [event] = fake.events_for(intent, "charge.refunded")
    assert await outcome(stripe_client, fake, event) == "already_refunded"
    again = (await shop.data(REFUND, variables))["refundCheckoutSession"]
    assert again["replayed"] is True
    assert len(fake.since(mark, "/v1/refunds")) == 1
    assert await balance(shop, customer) == [("USD", 600, 2, 2)]
    assert await refunds_of(shop, session["id"]) == [refund(400, 400, "API")]
    await assert_ledger_invariant(database)


async def test_a_refund_stripe_did_not_answer_stays_pending_and_the_retry_finishes_it(
    shop: Tenant, stripe_client: httpx.AsyncClient, fake: FakeStripe, database: Database
) -> None:
    customer, session, intent = await credited(stripe_client, fake, shop, 1000)
    variables = {
        "input": {
            "checkoutSessionId": session["id"],
            "amount": 300,
            "idempotencyKey": f"refund-{time.time_ns()}",
        }
    }
    mark = fake.mark()
    # Past the client's timeout on every attempt: the outcome is unknown to billgraph (the
    # stalled requests still run at Stripe, as they would there).
    fake.stall_next(3, seconds=4, path="/v1/refunds")
    failed = (await shop.data(REFUND, variables))["refundCheckoutSession"]
    assert failed == {
        "__typename": "ProviderError",
        "code": "provider_unavailable",
        "message": failed["message"],
    }
    [pending] = await refunds_of(shop, session["id"])
    assert (pending["status"], pending["walletDebited"]) == ("PENDING", 0)
    assert await balance(shop, customer) == [("USD", 1000, 1, 1)]
    # A second refund cannot take what the pending one may have given back.
    over = {"input": {**variables["input"], "amount": 701, "idempotencyKey": "another"}}
    assert (await shop.data(REFUND, over))["refundCheckoutSession"]["code"] == "VALIDATION_ERROR"
    await asyncio.sleep(4)  # the stalled attempts finish at the fake
    done = (await shop.data(REFUND, variables))["refundCheckoutSession"]
    assert done["__typename"] == "RefundCheckoutSessionSuccess", done
    assert done["refund"] == refund(300, 300, "API")
    attempts = fake.since(mark, "/v1/refunds")
    assert len(attempts) >= 2 and len({r.idempotency_key for r in attempts}) == 1
    made = [r for r in fake.refunds.values() if r["payment_intent"] == intent]
    assert len(made) == 1  # one idempotency key: one refund at Stripe, however many attempts
    assert await balance(shop, customer) == [("USD", 700, 2, 2)]
    await assert_ledger_invariant(database)


async def test_a_refund_stripe_refuses_is_failed_and_takes_nothing(
    shop: Tenant, stripe_client: httpx.AsyncClient, fake: FakeStripe, database: Database
) -> None:
    customer, session, _ = await credited(stripe_client, fake, shop, 1000)
    key = f"refund-{time.time_ns()}"
    variables = {
        "input": {"checkoutSessionId": session["id"], "amount": 1000, "idempotencyKey": key}
    }
    fake.fail_next(
        status=400, type_="invalid_request_error", code="charge_disputed", path="/v1/refunds"
    )
    refused = (await shop.data(REFUND, variables))["refundCheckoutSession"]
    assert (refused["__typename"], refused["code"]) == ("ProviderError", "invalid_request")
    assert [r["status"] for r in await refunds_of(shop, session["id"])] == ["FAILED"]
    assert await balance(shop, customer) == [("USD", 1000, 1, 1)]
    # The same key answers the same refusal; a new key may refund the whole amount again.
    again = (await shop.data(REFUND, variables))["refundCheckoutSession"]
    assert (again["__typename"], again["code"]) == ("ProviderError", "invalid_request")
    variables["input"]["idempotencyKey"] = key + "-2"
    done = (await shop.data(REFUND, variables))["refundCheckoutSession"]
    assert done["refund"] == refund(1000, 1000, "API"), done
    assert await balance(shop, customer) == [("USD", 0, 2, 2)]
    await assert_ledger_invariant(database)


async def test_expiring_a_session_expires_it_at_stripe_first(
    shop: Tenant, stripe_client: httpx.AsyncClient, fake: FakeStripe, database: Database
) -> None:
    customer = await new_customer(shop)
    session = await open_session(shop, customer, 1500)
    psid = session["providerSessionId"]
    fake.fail_next(3, status=503, path=f"/v1/checkout/sessions/{psid}/expire")
    down = (await shop.data(EXPIRE_SESSION, {"id": session["id"]}))["expireCheckoutSession"]
    assert (down["__typename"], down["code"]) == ("ProviderError", "provider_unavailable"), down
    assert fake.sessions[psid]["status"] == "open"
    assert (await session_of(shop, session["id"]))["status"] == "OPEN"
    fake.clear_faults()
    done = (await shop.data(EXPIRE_SESSION, {"id": session["id"]}))["expireCheckoutSession"]
    assert done["checkoutSession"]["status"] == "EXPIRED", done
    assert fake.sessions[psid]["status"] == "expired"
    # Stripe's own event about it finds the session expired already.
    event = fake.event(psid, "checkout.session.expired")
    assert await outcome(stripe_client, fake, event) == "ignored"
    assert await balance(shop, customer) == [("USD", 0, 0, 0)]
    await assert_ledger_invariant(database)


async def test_a_session_stripe_has_paid_expires_here_and_its_payment_still_credits(
    shop: Tenant, stripe_client: httpx.AsyncClient, fake: FakeStripe, database: Database
) -> None:
    customer, session = await paid(fake, shop, 900)
    done = (await shop.data(EXPIRE_SESSION, {"id": session["id"]}))["expireCheckoutSession"]
    assert done["checkoutSession"]["status"] == "EXPIRED", done  # Stripe refused: it is paid
    event = fake.event(session["providerSessionId"], "checkout.session.completed")
    assert await outcome(stripe_client, fake, event) == "late_credit"
    assert (await session_of(shop, session["id"]))["status"] == "COMPLETE"
    assert await balance(shop, customer) == [("USD", 900, 1, 1)]
    await assert_ledger_invariant(database)


async def test_stripes_refund_event_settles_a_refund_whose_call_did_not_answer(
    shop: Tenant, stripe_client: httpx.AsyncClient, fake: FakeStripe, database: Database
) -> None:
    """The money went back at Stripe though billgraph never heard the answer, and the client
    may never retry: Stripe's charge.refunded debits the wallet for the PENDING refund."""
    customer, session, intent = await credited(stripe_client, fake, shop, 1000)
    variables = {
        "input": {
            "checkoutSessionId": session["id"],
            "amount": 250,
            "idempotencyKey": f"refund-{time.time_ns()}",
        }
    }
    fake.stall_next(3, seconds=4, path="/v1/refunds")
    failed = (await shop.data(REFUND, variables))["refundCheckoutSession"]
    assert failed["code"] == "provider_unavailable", failed
    await asyncio.sleep(4)  # the stalled attempts finish at the fake
    [event] = fake.events_for(intent, "charge.refunded")
    assert await outcome(stripe_client, fake, event) == "refunded"
    assert await refunds_of(shop, session["id"]) == [refund(250, 250, "API")]
    assert await balance(shop, customer) == [("USD", 750, 2, 2)]
    again = (await shop.data(REFUND, variables))["refundCheckoutSession"]
    assert again["replayed"] is True and again["refund"] == refund(250, 250, "API")
    assert await balance(shop, customer) == [("USD", 750, 2, 2)]
    await assert_ledger_invariant(database)
