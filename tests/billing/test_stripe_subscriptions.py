"""Subscriptions Stripe runs, end to end over HTTP on SQLite and PostgreSQL: createSubscription
with provider STRIPE opens a subscription-mode Checkout Session at the fake Stripe
(tests/support/fake_stripe_billing.py) through the real SDK; the fake's customer pays, Stripe
bills renewals and retries, and the events it emits, signed, are delivered to POST
/webhooks/stripe, duplicated and reordered: billgraph's subscription, invoices and events
mirror what Stripe has, never moved backwards by a stale event, and no wallet is touched."""

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from billgraph.app import create_app
from billgraph.billing import run
from billgraph.checkout.providers import Providers
from billgraph.core.unit import unit_of_work
from billgraph.db.engine import Database
from billgraph.db.models import Invoice, Subscription
from billgraph.graphql.node import from_global_id
from billgraph.settings import Settings
from tests.conftest import assert_ledger_invariant
from tests.support.fake_stripe import FakeStripe, StoredEvent, deliver, running
from tests.support.fake_stripe_billing import scrambled
from tests.support.graph import Tenant, new_tenant, snapshot

SECRET_KEY = "sk_test_subs_" + "s" * 24
WEBHOOK_SECRET = "whsec_subs_" + "w" * 24
DECLINED = "4000000000000002"
SUCCESS_URL = "https://shop.example/subscribed?session={CHECKOUT_SESSION_ID}"
CANCEL_URL = "https://shop.example/plans"
ERA = datetime(1970, 3, 1, tzinfo=UTC)

ERRORS = "... on UserError { code message } ... on ValidationError { field }"
SUBSCRIPTION = """id status provider currentPeriodStart currentPeriodEnd trialEnd
  cancelAtPeriodEnd canceledAt nextBillingAt"""
INVOICE = """id number status currency subtotal discount total amountDue amountPaid
  walletCreditApplied attemptCount nextPaymentAttemptAt paidAt
  lines { description amount quantity periodStart periodEnd }"""

CREATE_PLAN = f"""mutation($input: CreatePlanInput!) {{ createPlan(input: $input) {{ __typename
  ... on CreatePlanSuccess {{ plan {{ id }} }} {ERRORS} }} }}"""
CREATE_SUBSCRIPTION = f"""mutation($input: CreateSubscriptionInput!) {{
  createSubscription(input: $input) {{ __typename
  ... on CreateSubscriptionSuccess {{ replayed subscription {{ {SUBSCRIPTION} }}
    checkoutSession {{ id provider mode status url providerSessionId amount currency }} }}
  {ERRORS} }} }}"""
DETAIL = f"""query($id: ID!) {{ node(id: $id) {{ ... on Subscription {{ {SUBSCRIPTION}
  invoices(first: 20) {{ edges {{ node {{ {INVOICE} }} }} }}
  events(first: 50) {{ edges {{ node {{ type message invoice {{ id }} }} }} }} }} }} }}"""
SESSION = (
    """query($id: ID!) { node(id: $id) { ... on CheckoutSession { status ledgerEntry { id } } } }"""
)
CANCEL = f"""mutation($input: CancelSubscriptionInput!) {{ cancelSubscription(input: $input) {{
  __typename ... on CancelSubscriptionSuccess {{ subscription {{ {SUBSCRIPTION} }} }}
  {ERRORS} }} }}"""
RESUME = f"""mutation($id: ID!) {{ resumeSubscription(id: $id) {{ __typename
  ... on ResumeSubscriptionSuccess {{ subscription {{ {SUBSCRIPTION} }} }} {ERRORS} }} }}"""
PAY = f"""mutation($input: PayInvoiceInput!) {{ payInvoice(input: $input) {{ __typename
  {ERRORS} }} }}"""
PORTAL = f"""mutation($input: CreateBillingPortalSessionInput!) {{
  createBillingPortalSession(input: $input) {{ __typename
  ... on CreateBillingPortalSessionSuccess {{ url }}
  ... on ProviderError {{ provider }} {ERRORS} }} }}"""


@pytest.fixture(scope="module")
def fake_server(database_url: str) -> Iterator[FakeStripe]:
    """One Stripe account per database (billgraph's keys at Stripe derive from its ids)."""
    with running(SECRET_KEY, WEBHOOK_SECRET) as fake:
        yield fake


@pytest.fixture
def fake(fake_server: FakeStripe) -> Iterator[FakeStripe]:
    yield fake_server
    fake_server.clear_faults()
    fake_server.final_status = "unpaid"


@pytest.fixture(scope="module")
def stripe_settings(database_url: str, fake_server: FakeStripe) -> Settings:
    return Settings(
        database_url=database_url,
        rate_limit_per_second=0,
        log_json=True,
        log_level="WARNING",
        stripe_secret_key=SECRET_KEY,
        stripe_webhook_secret=WEBHOOK_SECRET,
        stripe_api_base=fake_server.url,
        provider_timeout_seconds=3,
    )


@pytest.fixture(scope="module")
async def client(database: Database, stripe_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(stripe_settings, database))
    async with httpx.AsyncClient(transport=transport, base_url="http://billgraph.test") as client:
        yield client


@pytest.fixture
async def shop(database: Database, client: httpx.AsyncClient) -> Tenant:
    return await new_tenant(database, client)


async def plan(shop: Tenant, amount: int = 1200, **fields: Any) -> str:
    fields.setdefault("interval", "MONTH")
    result = (
        await shop.data(
            CREATE_PLAN,
            {"input": {"name": "Pro", "amount": amount, "currency": "USD", **fields}},
        )
    )["createPlan"]
    assert result["__typename"] == "CreatePlanSuccess", result
    return str(result["plan"]["id"])


async def subscribe(shop: Tenant, customer: str, plan_id: str, **fields: Any) -> dict[str, Any]:
    variables = {
        "customerId": customer,
        "planId": plan_id,
        "provider": "STRIPE",
        "successUrl": SUCCESS_URL,
        "cancelUrl": CANCEL_URL,
        "idempotencyKey": f"stripe-sub-{customer}-{plan_id}",
        **fields,
    }
    return (await shop.data(CREATE_SUBSCRIPTION, {"input": variables}))["createSubscription"]  # type: ignore[no-any-return]


async def detail(shop: Tenant, subscription_id: str) -> dict[str, Any]:
    node = (await shop.data(DETAIL, {"id": subscription_id}))["node"]
    node["invoices"] = [edge["node"] for edge in node["invoices"]["edges"]][::-1]  # oldest first
    node["events"] = [edge["node"]["type"] for edge in node["events"]["edges"]][::-1]
    return node  # type: ignore[no-any-return]


async def outcomes(
    client: httpx.AsyncClient, fake: FakeStripe, events: list[StoredEvent]
) -> list[str]:
    answers = []
    for event in events:
        response = await deliver(client, fake, event)
        assert response.status_code == 200, response.text
        answers.append(response.json()["outcome"])
    return answers


async def started(
    shop: Tenant, client: httpx.AsyncClient, fake: FakeStripe, **plan_fields: Any
) -> tuple[str, str, str]:
    """A customer subscribed through a completed Stripe checkout, its events delivered:
    (customer id, subscription id, Stripe's sub_... id)."""
    customer = str((await shop.create_customer())["customer"]["id"])
    created = await subscribe(shop, customer, await plan(shop, **plan_fields))
    assert created["__typename"] == "CreateSubscriptionSuccess", created
    mark = len(fake.events)
    sub = fake.pay(created["checkoutSession"]["providerSessionId"])
    await outcomes(client, fake, fake.events_after(mark))
    return customer, created["subscription"]["id"], sub["id"]


async def test_a_completed_checkout_makes_the_subscription_active_with_its_first_invoice_paid(
    shop: Tenant, client: httpx.AsyncClient, fake: FakeStripe, database: Database
) -> None:
    customer = str((await shop.create_customer())["customer"]["id"])
    plan_id = await plan(shop, 1200)
    created = await subscribe(shop, customer, plan_id)
    assert created["__typename"] == "CreateSubscriptionSuccess", created
    assert created["subscription"]["status"] == "INCOMPLETE"
    assert created["subscription"]["provider"] == "STRIPE"
    opened = created["checkoutSession"]
    assert (opened["provider"], opened["mode"], opened["status"]) == (
        "STRIPE",
        "SUBSCRIPTION",
        "OPEN",
    )
    at_stripe = fake.sessions[opened["providerSessionId"]]
    assert at_stripe["mode"] == "subscription" and opened["url"] == at_stripe["url"]
    assert at_stripe["customer"] in fake.customers
    assert at_stripe["success_url"] == SUCCESS_URL and at_stripe["cancel_url"] == CANCEL_URL
    ids = {
        "billgraph_organization_id": str(from_global_id(shop.organization_id)[1]),
        "billgraph_customer_id": str(from_global_id(customer)[1]),
        "billgraph_subscription_id": str(from_global_id(created["subscription"]["id"])[1]),
    }
    assert at_stripe["metadata"] == ids
    assert fake._pending[opened["providerSessionId"]][2] == ids  # subscription_data.metadata

    again = await subscribe(shop, customer, plan_id)  # the same key: the same session
    assert again["replayed"] is True and again["checkoutSession"]["id"] == opened["id"]

    mark = len(fake.events)
    sub = fake.pay(opened["providerSessionId"])
    delivered = fake.events_after(mark)
    assert [e.type for e in delivered] == [
        "customer.subscription.created",
        "invoice.created",
        "invoice.finalized",
        "invoice.paid",
        "customer.subscription.updated",
        "checkout.session.completed",
    ]
    assert await outcomes(client, fake, delivered) == ["mirrored"] * 6
    node = await detail(shop, created["subscription"]["id"])
    item = sub["items"]["data"][0]
    assert node["status"] == "ACTIVE"
    assert node["currentPeriodStart"] == _iso(item["current_period_start"])
    assert node["currentPeriodEnd"] == node["nextBillingAt"] == _iso(item["current_period_end"])
    [invoice] = node["invoices"]
    assert invoice["status"] == "PAID" and invoice["number"].startswith("INV-")
    assert (invoice["subtotal"], invoice["total"], invoice["amountDue"], invoice["amountPaid"]) == (
        1200,
        1200,
        1200,
        1200,
    )
    assert invoice["walletCreditApplied"] == 0 and invoice["attemptCount"] == 1
    [line] = invoice["lines"]
    assert line["amount"] == 1200 and line["periodStart"] == node["currentPeriodStart"]
    assert node["events"] == ["created", "payment_succeeded", "activated"]
    session = (await shop.data(SESSION, {"id": opened["id"]}))["node"]
    assert session == {"status": "COMPLETE", "ledgerEntry": None}  # no wallet credited
    assert await snapshot(shop, customer) == [("USD", 0, 0, 0)]
    completed = await subscribe(shop, customer, plan_id)
    assert completed["replayed"] is True and completed["checkoutSession"] is None
    await assert_ledger_invariant(database)


def _code(response: httpx.Response) -> str:
    return str(response.json()["errors"][0]["extensions"]["code"])


def _iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


async def test_a_trial_starts_trialing_after_checkout(
    shop: Tenant, client: httpx.AsyncClient, fake: FakeStripe
) -> None:
    customer = str((await shop.create_customer())["customer"]["id"])
    created = await subscribe(shop, customer, await plan(shop, 900, trialDays=14))
    assert created["subscription"]["status"] == "INCOMPLETE"
    psid = created["checkoutSession"]["providerSessionId"]
    assert fake._pending[psid][1] == 14
    mark = len(fake.events)
    sub = fake.pay(psid)
    await outcomes(client, fake, fake.events_after(mark))
    node = await detail(shop, created["subscription"]["id"])
    assert node["status"] == "TRIALING" and node["trialEnd"] == _iso(sub["trial_end"])
    [invoice] = node["invoices"]
    assert (invoice["status"], invoice["total"], invoice["amountDue"]) == ("PAID", 0, 0)
    notices = [fake.trial_will_end(sub["id"]), fake.trial_will_end(sub["id"])]
    assert await outcomes(client, fake, [notices[0], notices[0], notices[1]]) == [
        "mirrored",
        "duplicate",
        "mirrored",
    ]
    assert (await detail(shop, created["subscription"]["id"]))["events"].count(
        "trial_will_end"
    ) == 1  # once per trial, however often Stripe says it
    mark = len(fake.events)
    fake.renew(sub["id"])  # the trial ends: the first paid period
    await outcomes(client, fake, fake.events_after(mark))
    node = await detail(shop, created["subscription"]["id"])
    assert node["status"] == "ACTIVE"
    assert [i["total"] for i in node["invoices"]] == [0, 900]


async def test_a_paid_renewal_adds_the_next_invoice(
    shop: Tenant, client: httpx.AsyncClient, fake: FakeStripe, database: Database
) -> None:
    _, subscription, sub_id = await started(shop, client, fake)
    first = await detail(shop, subscription)
    mark = len(fake.events)
    async with httpx.AsyncClient(base_url=fake.url) as control:  # the fake's test endpoint
        answer = await control.post(
            f"/v1/test_helpers/fake/subscriptions/{sub_id}/renew",
            headers={"authorization": f"Bearer {SECRET_KEY}"},
        )
    assert answer.status_code == 200, answer.text
    renewed = answer.json()
    assert await outcomes(client, fake, fake.events_after(mark)) == ["mirrored"] * 4
    node = await detail(shop, subscription)
    assert node["status"] == "ACTIVE"
    assert node["currentPeriodStart"] == first["currentPeriodEnd"]
    assert node["currentPeriodEnd"] == _iso(renewed["items"]["data"][0]["current_period_end"])
    assert [i["status"] for i in node["invoices"]] == ["PAID", "PAID"]
    numbers = [int(i["number"].removeprefix("INV-")) for i in node["invoices"]]
    assert numbers[1] == numbers[0] + 1
    assert node["invoices"][1]["lines"][0]["periodStart"] == node["currentPeriodStart"]
    assert node["events"].count("payment_succeeded") == 2
    await assert_ledger_invariant(database)


async def test_a_failed_renewal_goes_past_due_then_suspended_then_recovers(
    shop: Tenant, client: httpx.AsyncClient, fake: FakeStripe
) -> None:
    _, subscription, sub_id = await started(shop, client, fake)
    mark = len(fake.events)
    fake.renew(sub_id, card=DECLINED)
    await outcomes(client, fake, fake.events_after(mark))
    node = await detail(shop, subscription)
    assert node["status"] == "PAST_DUE"
    renewal = node["invoices"][1]
    assert (renewal["status"], renewal["attemptCount"], renewal["amountPaid"]) == ("OPEN", 1, 0)
    assert renewal["nextPaymentAttemptAt"] is not None
    assert node["events"][-2:] == ["payment_failed", "past_due"]

    mark = len(fake.events)
    fake.retry(sub_id)
    fake.retry(sub_id)  # the third attempt fails: Stripe marks it unpaid
    await outcomes(client, fake, fake.events_after(mark))
    node = await detail(shop, subscription)
    assert node["status"] == "SUSPENDED" and node["nextBillingAt"] is None
    renewal = node["invoices"][1]
    assert (renewal["status"], renewal["attemptCount"]) == ("OPEN", 3)
    assert renewal["nextPaymentAttemptAt"] is None
    assert node["events"].count("payment_failed") == 3 and node["events"][-1] == "suspended"

    # Stripe collects it, not billgraph: payInvoice refuses, and writes nothing.
    refused = (
        await shop.data(PAY, {"input": {"invoiceId": renewal["id"], "idempotencyKey": "pay-1"}})
    )["payInvoice"]
    assert refused["__typename"] == "ConflictError", refused

    mark = len(fake.events)
    fake.retry(sub_id, card="4242424242424242")  # a new card at Stripe pays it
    await outcomes(client, fake, fake.events_after(mark))
    node = await detail(shop, subscription)
    assert node["status"] == "ACTIVE" and node["invoices"][1]["status"] == "PAID"
    assert node["events"][-2:] == ["payment_succeeded", "activated"]


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_duplicated_and_reordered_events_mirror_the_latest_state_once(
    shop: Tenant, client: httpx.AsyncClient, fake: FakeStripe, database: Database, seed: int
) -> None:
    customer = str((await shop.create_customer())["customer"]["id"])
    created = await subscribe(shop, customer, await plan(shop, 700))
    mark = len(fake.events)
    sub = fake.pay(created["checkoutSession"]["providerSessionId"])
    fake.renew(sub["id"], card=DECLINED)
    fake.retry(sub["id"], card="4242424242424242")
    emitted = fake.events_after(mark)
    answers = await outcomes(client, fake, scrambled(emitted, repeat=2, seed=seed))
    assert answers.count("duplicate") == len(emitted)
    assert answers.count("mirrored") == len(emitted)
    node = await detail(shop, created["subscription"]["id"])
    assert node["status"] == "ACTIVE"
    # Numbered as billgraph first saw them (here in a random order): sorted by period.
    by_period = sorted(node["invoices"], key=lambda i: i["lines"][0]["periodStart"])
    assert [(i["status"], i["attemptCount"]) for i in by_period] == [
        ("PAID", 1),
        ("PAID", 2),
    ]
    assert node["events"].count("payment_succeeded") == 2
    assert node["events"].count("created") == 1
    assert await snapshot(shop, customer) == [("USD", 0, 0, 0)]
    await assert_ledger_invariant(database)


async def test_a_stale_update_delivered_after_a_newer_one_changes_nothing(
    shop: Tenant, client: httpx.AsyncClient, fake: FakeStripe
) -> None:
    _, subscription, sub_id = await started(shop, client, fake)
    mark = len(fake.events)
    fake.renew(sub_id, card=DECLINED)  # updated: past_due
    fake.retry(sub_id, card="4242424242424242")  # updated: active again
    updates = [e for e in fake.events_after(mark) if e.type == "customer.subscription.updated"]
    stale, newer = updates[0], updates[-1]
    assert stale.payload["data"]["object"]["status"] == "past_due"
    assert newer.payload["data"]["object"]["status"] == "active"
    assert await outcomes(client, fake, [newer]) == ["mirrored"]
    before = await detail(shop, subscription)
    assert before["status"] == "ACTIVE"
    assert await outcomes(client, fake, [stale]) == ["mirrored"]
    after = await detail(shop, subscription)
    assert after == before  # still ACTIVE, the same period, no new event


async def test_an_event_about_a_subscription_not_linked_yet_fetches_it(
    shop: Tenant, client: httpx.AsyncClient, fake: FakeStripe
) -> None:
    customer = str((await shop.create_customer())["customer"]["id"])
    created = await subscribe(shop, customer, await plan(shop, 1000))
    psid = created["checkoutSession"]["providerSessionId"]
    mark = len(fake.events)
    sub = fake.pay(psid)
    paid = fake.event(fake.subscriptions[sub["id"]]["latest_invoice"], "invoice.paid")
    # Only the invoice's event arrives (the others are late): billgraph fetches the
    # subscription, finds its own ids in the metadata, and links it.
    assert await outcomes(client, fake, [paid]) == ["mirrored"]
    node = await detail(shop, created["subscription"]["id"])
    assert node["status"] == "ACTIVE" and [i["status"] for i in node["invoices"]] == ["PAID"]
    late = [e for e in fake.events_after(mark) if e.id != paid.id]
    assert await outcomes(client, fake, late) == ["mirrored"] * len(late)
    assert (await detail(shop, created["subscription"]["id"]))["events"] == [
        "created",
        "payment_succeeded",
        "activated",
    ]


async def test_a_subscription_made_outside_billgraph_is_acknowledged_and_ignored(
    shop: Tenant, client: httpx.AsyncClient, fake: FakeStripe, database: Database
) -> None:
    stripe_customer = fake._create_customer({"email": "elsewhere@example.com"})["id"]
    mark = len(fake.events)
    foreign = fake.subscribe_directly(stripe_customer)
    emitted = fake.events_after(mark)
    assert await outcomes(client, fake, emitted) == ["ignored"] * len(emitted)
    known = {i["id"] for i in fake.invoices.values() if i["customer"] == stripe_customer}
    async with database.sessions() as session:
        mirrored = await session.scalar(
            select(func.count()).select_from(Invoice).where(Invoice.provider_invoice_id.in_(known))
        )
        linked = await session.scalar(
            select(func.count())
            .select_from(Subscription)
            .where(Subscription.provider_subscription_id == foreign["id"])
        )
    assert known and mirrored == 0 and linked == 0


async def test_a_forged_signature_is_refused_and_changes_nothing(
    shop: Tenant, client: httpx.AsyncClient, fake: FakeStripe
) -> None:
    customer = str((await shop.create_customer())["customer"]["id"])
    created = await subscribe(shop, customer, await plan(shop))
    mark = len(fake.events)
    fake.pay(created["checkoutSession"]["providerSessionId"])
    for event in fake.events_after(mark):
        forged = await deliver(client, fake, event, secret="whsec_forged")
        assert forged.status_code == 400 and _code(forged) == "INVALID_SIGNATURE"
    assert (await detail(shop, created["subscription"]["id"]))["status"] == "INCOMPLETE"


async def test_cancel_at_period_end_then_resume_then_cancel_now(
    shop: Tenant, client: httpx.AsyncClient, fake: FakeStripe
) -> None:
    _, subscription, sub_id = await started(shop, client, fake)
    scheduled = (await shop.data(CANCEL, {"input": {"subscriptionId": subscription}}))[
        "cancelSubscription"
    ]
    assert scheduled["__typename"] == "CancelSubscriptionSuccess", scheduled
    assert scheduled["subscription"]["cancelAtPeriodEnd"] is True
    assert scheduled["subscription"]["status"] == "ACTIVE"
    assert fake.subscriptions[sub_id]["cancel_at_period_end"] is True

    resumed = (await shop.data(RESUME, {"id": subscription}))["resumeSubscription"]
    assert resumed["__typename"] == "ResumeSubscriptionSuccess", resumed
    assert resumed["subscription"]["cancelAtPeriodEnd"] is False
    assert fake.subscriptions[sub_id]["cancel_at_period_end"] is False

    now = (
        await shop.data(CANCEL, {"input": {"subscriptionId": subscription, "atPeriodEnd": False}})
    )["cancelSubscription"]
    assert now["subscription"]["status"] == "CANCELED"
    assert now["subscription"]["canceledAt"] is not None
    assert fake.subscriptions[sub_id]["status"] == "canceled"
    # Stripe's own events about all that come later, in any order: nothing moves back.
    emitted = fake.events_for(sub_id)
    await outcomes(client, fake, scrambled(emitted, repeat=1, seed=7))
    node = await detail(shop, subscription)
    assert node["status"] == "CANCELED"
    assert node["events"][-3:] == ["cancel_scheduled", "resumed", "canceled"]
    again = (await shop.data(CANCEL, {"input": {"subscriptionId": subscription}}))[
        "cancelSubscription"
    ]
    assert again["__typename"] == "ConflictError"


async def test_a_subscription_set_to_cancel_ends_with_its_period_at_stripe(
    shop: Tenant, client: httpx.AsyncClient, fake: FakeStripe
) -> None:
    _, subscription, sub_id = await started(shop, client, fake)
    await shop.data(CANCEL, {"input": {"subscriptionId": subscription, "reason": "too dear"}})
    mark = len(fake.events)
    fake.renew(sub_id)
    assert [e.type for e in fake.events_after(mark)] == ["customer.subscription.deleted"]
    await outcomes(client, fake, fake.events_after(mark))
    node = await detail(shop, subscription)
    assert node["status"] == "CANCELED" and len(node["invoices"]) == 1


async def test_canceling_before_checkout_completes_expires_the_session(
    shop: Tenant, fake: FakeStripe
) -> None:
    customer = str((await shop.create_customer())["customer"]["id"])
    created = await subscribe(shop, customer, await plan(shop))
    now = (
        await shop.data(
            CANCEL,
            {"input": {"subscriptionId": created["subscription"]["id"], "atPeriodEnd": False}},
        )
    )["cancelSubscription"]
    assert now["subscription"]["status"] == "CANCELED"
    assert fake.sessions[created["checkoutSession"]["providerSessionId"]]["status"] == "expired"


async def test_the_billing_run_never_bills_a_stripe_subscription(
    shop: Tenant,
    client: httpx.AsyncClient,
    fake: FakeStripe,
    database: Database,
    stripe_settings: Settings,
) -> None:
    _, subscription, _ = await started(shop, client, fake)
    db_id = from_global_id(subscription)[1]
    async with unit_of_work(database) as unit:
        row = await unit.session.get(Subscription, db_id)
        assert row is not None and row.next_action_at is None  # never scheduled
        # Even scheduled by mistake (in an era no other test bills), the run leaves it alone.
        row.next_action_at = ERA
    providers = Providers(database, stripe_settings)
    try:
        await run.bill(database, providers, ERA + timedelta(days=1))
    finally:
        await providers.close()
    async with database.sessions() as session:
        row = await session.get(Subscription, db_id)
        assert row is not None and row.next_action_at == ERA  # not even looked at
    assert len((await detail(shop, subscription))["invoices"]) == 1


async def test_stripe_subscriptions_need_their_return_urls_and_no_test_clock(
    shop: Tenant,
) -> None:
    customer = str((await shop.create_customer())["customer"]["id"])
    plan_id = await plan(shop)
    missing = await subscribe(shop, customer, plan_id, successUrl=None)
    assert missing["__typename"] == "ValidationError" and missing["field"] == "successUrl"
    bad = await subscribe(shop, customer, plan_id, cancelUrl="ftp://nowhere")
    assert bad["__typename"] == "ValidationError" and bad["field"] == "cancelUrl"


async def test_the_customer_portal_is_for_stripe_customers(
    shop: Tenant, client: httpx.AsyncClient, fake: FakeStripe
) -> None:
    customer, _, _ = await started(shop, client, fake)
    portal = (
        await shop.data(
            PORTAL, {"input": {"customerId": customer, "returnUrl": "https://shop.example/me"}}
        )
    )["createBillingPortalSession"]
    assert portal["__typename"] == "CreateBillingPortalSessionSuccess", portal
    assert portal["url"].startswith(f"{fake.url}/p/session/")
    [made] = [p for p in fake.portal_sessions.values() if p["url"] == portal["url"]]
    assert made["return_url"] == "https://shop.example/me"

    other = str((await shop.create_customer())["customer"]["id"])
    refused = (
        await shop.data(
            PORTAL, {"input": {"customerId": other, "returnUrl": "https://shop.example/me"}}
        )
    )["createBillingPortalSession"]
    assert refused["__typename"] == "ProviderError" and refused["code"] == "unsupported"
    bad = (await shop.data(PORTAL, {"input": {"customerId": customer, "returnUrl": "nope"}}))[
        "createBillingPortalSession"
    ]
    assert bad["__typename"] == "ValidationError" and bad["field"] == "returnUrl"


@pytest.mark.parametrize(("credit", "applied", "charged"), [(500, 500, 700), (5000, 1200, 0)])
async def test_wallet_credit_pays_a_renewal_first_while_its_invoice_is_a_draft(
    shop: Tenant,
    client: httpx.AsyncClient,
    fake: FakeStripe,
    database: Database,
    credit: int,
    applied: int,
    charged: int,
) -> None:
    customer, subscription, sub_id = await started(shop, client, fake)  # first invoice: card
    await shop.post(customer, credit)
    mark = len(fake.events)
    fake.renew(sub_id, draft=True)
    [created] = fake.events_after(mark)
    assert created.type == "invoice.created"
    assert await outcomes(client, fake, [created, created]) == ["mirrored", "duplicate"]
    draft_id = created.object_id
    at_stripe = fake.invoices[draft_id]
    assert at_stripe["amount_due"] == charged  # Stripe charges only what credit left
    [credit_line] = [
        line for line in at_stripe["lines"]["data"] if "billgraph_wallet_credit" in line["metadata"]
    ]
    assert credit_line["amount"] == -applied
    node = await detail(shop, subscription)
    draft = node["invoices"][1]
    assert (draft["status"], draft["walletCreditApplied"], draft["amountDue"]) == (
        "DRAFT",
        applied,
        charged,
    )
    mark = len(fake.events)
    fake.finalize(draft_id)
    await outcomes(client, fake, scrambled([*fake.events_after(mark), created], seed=credit))
    node = await detail(shop, subscription)
    renewal = node["invoices"][1]
    assert node["status"] == "ACTIVE"
    assert (renewal["status"], renewal["subtotal"], renewal["total"]) == ("PAID", 1200, 1200)
    assert (renewal["walletCreditApplied"], renewal["amountDue"], renewal["amountPaid"]) == (
        applied,
        charged,
        charged,
    )
    assert [line["amount"] for line in renewal["lines"]] == [1200]
    assert await snapshot(shop, customer) == [("USD", credit - applied, 2, 2)]
    await assert_ledger_invariant(database)


async def test_a_draft_finalized_before_its_credit_gives_the_credit_back(
    shop: Tenant, client: httpx.AsyncClient, fake: FakeStripe, database: Database
) -> None:
    customer, subscription, sub_id = await started(shop, client, fake)
    await shop.post(customer, 300)
    mark = len(fake.events)
    fake.renew(sub_id, draft=True)
    [created] = fake.events_after(mark)
    # Stripe refuses the item (the invoice was finalized meanwhile): the debit is undone.
    fake.fail_next(1, status=400, type_="invalid_request_error", path="/v1/invoiceitems")
    assert await outcomes(client, fake, [created]) == ["mirrored"]
    node = await detail(shop, subscription)
    draft = node["invoices"][1]
    assert (draft["walletCreditApplied"], draft["amountDue"]) == (0, 1200)
    assert await snapshot(shop, customer) == [("USD", 300, 3, 3)]
    await assert_ledger_invariant(database)


async def test_one_event_delivered_concurrently_is_mirrored_once(
    shop: Tenant, client: httpx.AsyncClient, fake: FakeStripe
) -> None:
    customer = str((await shop.create_customer())["customer"]["id"])
    created = await subscribe(shop, customer, await plan(shop, 800))
    sub = fake.pay(created["checkoutSession"]["providerSessionId"])
    paid = fake.event(fake.subscriptions[sub["id"]]["latest_invoice"], "invoice.paid")
    responses = await asyncio.gather(*(deliver(client, fake, paid) for _ in range(5)))
    assert sorted(r.json()["outcome"] for r in responses) == ["duplicate"] * 4 + ["mirrored"]
    node = await detail(shop, created["subscription"]["id"])
    assert len(node["invoices"]) == 1 and node["events"].count("payment_succeeded") == 1


ENTRIES = """query($id: ID!) { customer(id: $id) { wallets { balance
  ledgerEntries(first: 10) { edges { node { entryType amount sequence } } } } } }"""


async def entries(shop: Tenant, customer: str) -> list[tuple[str, int]]:
    """The customer's ledger entries, oldest first: (type, amount)."""
    [wallet] = (await shop.data(ENTRIES, {"id": customer}))["customer"]["wallets"]
    rows = sorted((edge["node"] for edge in wallet["ledgerEntries"]["edges"]), key=_sequence)
    return [(row["entryType"], row["amount"]) for row in rows]


def _sequence(row: dict[str, Any]) -> int:
    return int(row["sequence"])


async def test_a_draft_finalized_after_stripe_failed_its_credit_item_gives_the_debit_back(
    shop: Tenant, client: httpx.AsyncClient, fake: FakeStripe, database: Database
) -> None:
    customer, subscription, sub_id = await started(shop, client, fake)
    await shop.post(customer, 300)
    mark = len(fake.events)
    fake.renew(sub_id, draft=True)
    [created] = fake.events_after(mark)
    # The wallet is debited, then Stripe fails on the item (past the SDK's own retries):
    # the delivery answers an error, and Stripe delivers the event again later.
    fake.fail_next(3, status=500, path="/v1/invoiceitems")
    requests = fake.mark()
    failed = await deliver(client, fake, created)
    assert failed.status_code == 503, failed.text
    assert [r.status for r in fake.since(requests, path="/v1/invoiceitems")] == [500] * 3
    assert await snapshot(shop, customer) == [("USD", 0, 2, 2)]  # the debit stays, for now
    # Meanwhile Stripe finalizes the draft without billgraph's credit, and charges it all.
    mark = len(fake.events)
    collected = fake.finalize(created.object_id)
    assert collected["amount_paid"] == 1200 and collected["status"] == "paid"
    again = [created, *fake.events_after(mark)]  # the retried delivery, then the next ones
    assert await outcomes(client, fake, again) == ["mirrored"] * len(again)
    node = await detail(shop, subscription)
    renewal = node["invoices"][1]
    assert (renewal["status"], renewal["total"], renewal["walletCreditApplied"]) == (
        "PAID",
        1200,
        0,
    )
    assert renewal["amountDue"] == renewal["amountPaid"] == collected["amount_paid"]
    assert await entries(shop, customer) == [("CREDIT", 300), ("DEBIT", 300), ("CREDIT", 300)]
    assert await snapshot(shop, customer) == [("USD", 300, 3, 3)]  # as before the debit
    await assert_ledger_invariant(database)


async def test_a_subscription_canceled_before_its_checkout_event_is_canceled_at_stripe(
    shop: Tenant, client: httpx.AsyncClient, fake: FakeStripe, database: Database
) -> None:
    customer = str((await shop.create_customer())["customer"]["id"])
    await shop.post(customer, 5000)  # enough to pay the first invoice, were it debited
    created = await subscribe(shop, customer, await plan(shop, 1200))
    assert created["__typename"] == "CreateSubscriptionSuccess", created
    subscription = created["subscription"]["id"]
    mark = len(fake.events)
    sub = fake.pay(created["checkoutSession"]["providerSessionId"])  # not delivered yet
    now = (
        await shop.data(CANCEL, {"input": {"subscriptionId": subscription, "atPeriodEnd": False}})
    )["cancelSubscription"]
    assert now["__typename"] == "CancelSubscriptionSuccess", now
    assert now["subscription"]["status"] == "CANCELED"
    assert fake.subscriptions[sub["id"]]["status"] == "active"  # Stripe's lives on
    requests = fake.mark()
    await outcomes(client, fake, fake.events_after(mark))
    deletes = [r for r in fake.since(requests) if r.method == "DELETE"]
    assert [(r.path, r.status) for r in deletes] == [(f"/v1/subscriptions/{sub['id']}", 200)]
    assert fake.subscriptions[sub["id"]]["status"] == "canceled"
    node = await detail(shop, subscription)
    assert node["status"] == "CANCELED"
    [invoice] = node["invoices"]
    assert invoice["status"] == "PAID" and invoice["walletCreditApplied"] == 0
    assert await snapshot(shop, customer) == [("USD", 5000, 1, 1)]  # no wallet debited
    await assert_ledger_invariant(database)


CHANGE_PLAN = f"""mutation($input: ChangeSubscriptionPlanInput!) {{
  changeSubscriptionPlan(input: $input) {{ __typename {ERRORS} }} }}"""


@pytest.mark.parametrize("prorate", [False, True])
async def test_a_stripe_subscription_changes_plan_at_stripe_only(
    shop: Tenant, client: httpx.AsyncClient, fake: FakeStripe, database: Database, prorate: bool
) -> None:
    """Stripe bills it: a change made here would never reach Stripe (and a prorated one
    would credit or debit the wallet for a price Stripe goes on charging)."""
    customer, subscription, _ = await started(shop, client, fake)
    before = await entries(shop, customer)
    other = await plan(shop, 600)
    variables = {"subscriptionId": subscription, "planId": other, "prorate": prorate}
    (refused,) = (await shop.data(CHANGE_PLAN, {"input": variables})).values()
    assert (refused["__typename"], refused["field"]) == ("ValidationError", "subscriptionId")
    node = await detail(shop, subscription)
    assert len(node["invoices"]) == 1 and await entries(shop, customer) == before
    await assert_ledger_invariant(database)
