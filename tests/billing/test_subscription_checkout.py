"""The sandbox subscription checkout through the graph and the hosted page, on SQLite and
PostgreSQL: createSubscription opens a SUBSCRIPTION session when the first invoice waits for a
payment method (and only then needs its URLs), the card typed on the page becomes the
subscription's payment method and pays the invoice (credit first), the session completes
once, a card saved but declined leaves the subscription INCOMPLETE, and
createCheckoutSession(mode: SUBSCRIPTION) collects or replaces the method of an existing
subscription; every bad input is a typed error that writes nothing."""

import asyncio
import itertools
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from billgraph.billing import subscriptions
from billgraph.checkout.providers import Providers
from billgraph.db.engine import Database
from billgraph.db.models import PaymentMethod
from billgraph.graphql.node import from_global_id
from billgraph.settings import Settings
from tests.conftest import assert_ledger_invariant
from tests.support.checkout import completed_event as sandbox_completed_event
from tests.support.checkout import deliver, sandbox_secret, sessions_of, sign
from tests.support.graph import Tenant

_keys = itertools.count(1)

SUCCESS_URL = "https://shop.example/subscribed?session={CHECKOUT_SESSION_ID}"
CANCEL_URL = "https://shop.example/plans"
GOOD_CARD = "4242 4242 4242 4242"
DECLINING_CARD = "4000 0000 0000 0341"

ERRORS = "... on UserError { code message } ... on ValidationError { field }"
SESSION = """id mode status amount currency url successUrl cancelUrl providerSessionId
  completedAt lastPaymentError { code message } ledgerEntry { id } subscription { id status }
  customer { id }"""
SUBSCRIPTION = """id status trialEnd nextBillingAt
  invoices(first: 10) { edges { node { id status amountDue amountPaid walletCreditApplied
    attemptCount } } }"""

CREATE_PLAN = f"""mutation($input: CreatePlanInput!) {{ createPlan(input: $input) {{ __typename
  ... on CreatePlanSuccess {{ plan {{ id }} }} {ERRORS} }} }}"""
CREATE_SUBSCRIPTION = f"""mutation($input: CreateSubscriptionInput!) {{
  createSubscription(input: $input) {{ __typename
  ... on CreateSubscriptionSuccess {{ replayed checkoutSession {{ {SESSION} }}
    subscription {{ {SUBSCRIPTION} }} }}
  ... on IdempotencyConflictError {{ idempotencyKey }} {ERRORS} }} }}"""
CREATE_SESSION = f"""mutation($input: CreateCheckoutSessionInput!) {{
  createCheckoutSession(input: $input) {{ __typename
  ... on CreateCheckoutSessionSuccess {{ replayed checkoutSession {{ {SESSION} }} }}
  ... on IdempotencyConflictError {{ idempotencyKey }} {ERRORS} }} }}"""
NODE_SUBSCRIPTION = f"""query($id: ID!) {{ node(id: $id) {{ ... on Subscription {{ {SUBSCRIPTION}
  }} }} }}"""
NODE_SESSION = f"""query($id: ID!) {{ node(id: $id) {{ ... on CheckoutSession {{ {SESSION}
  }} }} }}"""
CANCEL = f"""mutation($input: CancelSubscriptionInput!) {{ cancelSubscription(input: $input) {{
  __typename {ERRORS} }} }}"""
SUBSCRIPTIONS = """query($id: ID!) { customer(id: $id) { subscriptions(first: 10) {
  edges { node { id } } } } }"""


async def _mutate(tenant: Tenant, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    (result,) = (await tenant.data(query, variables)).values()
    return result  # type: ignore[no-any-return]


async def _customer(tenant: Tenant, credit: int = 0) -> str:
    customer: str = (await tenant.create_customer())["customer"]["id"]
    if credit:
        await tenant.post(customer, credit)
    return customer


async def _plan(tenant: Tenant, amount: int = 1000, **fields: Any) -> str:
    variables = {"name": "Pro", "amount": amount, "currency": "USD", "interval": "MONTH"}
    result = await _mutate(tenant, CREATE_PLAN, {"input": {**variables, **fields}})
    assert result["__typename"] == "CreatePlanSuccess", result
    return result["plan"]["id"]  # type: ignore[no-any-return]


async def _subscribe(tenant: Tenant, customer: str, plan: str, **fields: Any) -> dict[str, Any]:
    fields = {
        "idempotencyKey": f"sub-{next(_keys)}",
        "successUrl": SUCCESS_URL,
        "cancelUrl": CANCEL_URL,
        **fields,
    }
    fields = {name: value for name, value in fields.items() if value is not None}
    variables = {"input": {"customerId": customer, "planId": plan, **fields}}
    return await _mutate(tenant, CREATE_SUBSCRIPTION, variables)


async def _collect(
    tenant: Tenant, customer: str, subscription: str | None, **fields: Any
) -> dict[str, Any]:
    fields = {
        "mode": "SUBSCRIPTION",
        "subscriptionId": subscription,
        "successUrl": SUCCESS_URL,
        "cancelUrl": CANCEL_URL,
        "idempotencyKey": f"collect-{next(_keys)}",
        **fields,
    }
    fields = {name: value for name, value in fields.items() if value is not None}
    return await _mutate(tenant, CREATE_SESSION, {"input": {"customerId": customer, **fields}})


async def _subscription(tenant: Tenant, subscription_id: str) -> dict[str, Any]:
    node = (await tenant.data(NODE_SUBSCRIPTION, {"id": subscription_id}))["node"]
    node["invoices"] = [e["node"] for e in node["invoices"]["edges"]]
    return node  # type: ignore[no-any-return]


async def _session(tenant: Tenant, session_id: str) -> dict[str, Any]:
    return (await tenant.data(NODE_SESSION, {"id": session_id}))["node"]  # type: ignore[no-any-return]


async def _balance(tenant: Tenant, customer: str) -> int:
    data = await tenant.data(
        "query($id: ID!) { customer(id: $id) { wallet(currency: USD) { balance } } }",
        {"id": customer},
    )
    return data["customer"]["wallet"]["balance"]  # type: ignore[no-any-return]


async def _subscription_count(tenant: Tenant, customer: str) -> int:
    data = await tenant.data(SUBSCRIPTIONS, {"id": customer})
    return len(data["customer"]["subscriptions"]["edges"])


def _page(session: dict[str, Any]) -> str:
    return f"/sandbox/checkout/{session['providerSessionId']}"


async def _type_card(
    client: httpx.AsyncClient, session: dict[str, Any], card: str, **form: str
) -> httpx.Response:
    return await client.post(_page(session), data={"card_number": card, **form})


def _landing(session: dict[str, Any]) -> str:
    return SUCCESS_URL.replace("{CHECKOUT_SESSION_ID}", session["providerSessionId"])


# --- createSubscription --------------------------------------------------------------------


async def test_a_subscription_credit_does_not_pay_is_collected_by_its_checkout_session(
    tenant: Tenant, client: httpx.AsyncClient, database: Database
) -> None:
    customer = await _customer(tenant)
    plan = await _plan(tenant, 1000)
    key = f"sub-{next(_keys)}"
    created = await _subscribe(tenant, customer, plan, idempotencyKey=key)
    assert created["__typename"] == "CreateSubscriptionSuccess", created
    subscription, session = created["subscription"], created["checkoutSession"]
    assert subscription["status"] == "INCOMPLETE" and not created["replayed"]
    assert session["mode"] == "SUBSCRIPTION" and session["status"] == "OPEN"
    assert (session["amount"], session["currency"]) == (1000, "USD")
    assert session["subscription"] == {"id": subscription["id"], "status": "INCOMPLETE"}
    assert session["customer"] == {"id": customer}
    assert session["url"].endswith(_page(session))

    page = await client.get(_page(session))
    assert page.status_code == 200 and "10.00 USD" in page.text
    assert "Save card and pay" in page.text and "4000 0000 0000 0341" in page.text
    assert "<script" not in page.text

    paid = await _type_card(client, session, GOOD_CARD)
    assert paid.status_code == 303 and paid.headers["location"] == _landing(session)
    after = await _subscription(tenant, subscription["id"])
    assert after["status"] == "ACTIVE"
    [invoice] = after["invoices"]
    assert (invoice["status"], invoice["amountPaid"], invoice["attemptCount"]) == ("PAID", 1000, 1)
    done = await _session(tenant, session["id"])
    assert done["status"] == "COMPLETE" and done["completedAt"] is not None
    assert done["ledgerEntry"] is None and done["lastPaymentError"] is None
    assert await _balance(tenant, customer) == 0  # no wallet credit for a subscription checkout

    # The form posted again, a reload, a replayed createSubscription: nothing changes.
    again = await _type_card(client, session, GOOD_CARD)
    assert again.status_code == 409 and "saved as the subscription" in again.text
    assert "saved as the subscription" in (await client.get(_page(session))).text
    replay = await _subscribe(tenant, customer, plan, idempotencyKey=key)
    assert replay["replayed"] and replay["checkoutSession"]["id"] == session["id"]
    assert replay["checkoutSession"]["status"] == "COMPLETE"
    [invoice] = (await _subscription(tenant, subscription["id"]))["invoices"]
    assert invoice["attemptCount"] == 1
    await assert_ledger_invariant(database)


async def test_credit_pays_first_and_the_session_asks_only_for_the_rest(
    tenant: Tenant, client: httpx.AsyncClient, database: Database
) -> None:
    customer = await _customer(tenant, credit=400)
    plan = await _plan(tenant, 1000)
    created = await _subscribe(tenant, customer, plan)
    session = created["checkoutSession"]
    assert session["amount"] == 600 and await _balance(tenant, customer) == 0
    assert (await _type_card(client, session, GOOD_CARD)).status_code == 303
    [invoice] = (await _subscription(tenant, created["subscription"]["id"]))["invoices"]
    assert (invoice["status"], invoice["walletCreditApplied"], invoice["amountPaid"]) == (
        "PAID",
        400,
        600,
    )
    await assert_ledger_invariant(database)


@pytest.mark.parametrize("top_up", [300, 500])  # as much as credit paid before, and more
async def test_credit_topped_up_before_the_checkout_pays_first_again(
    tenant: Tenant, client: httpx.AsyncClient, database: Database, top_up: int
) -> None:
    """The first invoice took what the wallet had; the customer tops it up before typing the
    card: the new credit pays first (one more debit, never one counted without its entry),
    the card only the rest."""
    customer = await _customer(tenant, credit=300)
    plan = await _plan(tenant, 1000)
    created = await _subscribe(tenant, customer, plan)
    assert created["checkoutSession"]["amount"] == 700
    await tenant.post(customer, top_up)
    assert (await _type_card(client, created["checkoutSession"], GOOD_CARD)).status_code == 303
    [invoice] = (await _subscription(tenant, created["subscription"]["id"]))["invoices"]
    assert (invoice["status"], invoice["walletCreditApplied"], invoice["amountPaid"]) == (
        "PAID",
        300 + top_up,
        700 - top_up,
    )
    assert await _balance(tenant, customer) == 0
    await assert_ledger_invariant(database)


async def test_credit_paying_in_full_or_a_trial_needs_no_session_and_no_urls(
    tenant: Tenant, database: Database
) -> None:
    covered = await _customer(tenant, credit=1000)
    plan = await _plan(tenant, 1000)
    active = await _subscribe(tenant, covered, plan, successUrl=None, cancelUrl=None)
    assert active["subscription"]["status"] == "ACTIVE" and active["checkoutSession"] is None
    assert await _balance(tenant, covered) == 0

    trial_plan = await _plan(tenant, 1000, trialDays=14)
    poor = await _customer(tenant)
    trial = await _subscribe(tenant, poor, trial_plan, successUrl=None, cancelUrl=None)
    assert trial["subscription"]["status"] == "TRIALING" and trial["checkoutSession"] is None
    # URLs given when not needed are checked, and then unused.
    with_urls = await _subscribe(tenant, poor, trial_plan)
    assert with_urls["checkoutSession"] is None
    assert await sessions_of(tenant, poor) == []
    await assert_ledger_invariant(database)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"successUrl": None}, "successUrl"),
        ({"cancelUrl": None}, "cancelUrl"),
        ({"successUrl": None, "cancelUrl": None}, "successUrl"),
        ({"successUrl": "javascript:alert(1)"}, "successUrl"),
        ({"cancelUrl": "/relative"}, "cancelUrl"),
        ({"provider": "STRIPE", "cancelUrl": None}, "cancelUrl"),  # Stripe's checkout returns
    ],
)
async def test_urls_missing_when_a_session_is_needed_write_nothing(
    tenant: Tenant, database: Database, fields: dict[str, Any], field: str
) -> None:
    customer = await _customer(tenant, credit=400)  # credit would pay part: not taken
    plan = await _plan(tenant, 1000)
    key = f"sub-{next(_keys)}"
    refused = await _subscribe(tenant, customer, plan, idempotencyKey=key, **fields)
    assert (refused["__typename"], refused["field"]) == ("ValidationError", field), refused
    assert await _subscription_count(tenant, customer) == 0
    assert await _balance(tenant, customer) == 400
    assert await sessions_of(tenant, customer) == []
    # The key was not used up: the request made right opens the subscription.
    made = await _subscribe(tenant, customer, plan, idempotencyKey=key)
    assert made["__typename"] == "CreateSubscriptionSuccess" and not made["replayed"]
    assert made["checkoutSession"]["amount"] == 600
    await assert_ledger_invariant(database)


async def test_a_subscription_written_without_its_session_gets_it_on_replay(
    tenant: Tenant, database: Database, settings: Settings
) -> None:
    """As if the gateway stopped between the subscription's unit and opening its session (or
    the provider failed then): the same request again opens it, once."""
    customer = await _customer(tenant)
    plan = await _plan(tenant, 1000)
    key = f"sub-{next(_keys)}"
    request = subscriptions.subscription_request(
        from_global_id(tenant.organization_id)[1],
        customer_id=from_global_id(customer)[1],
        plan_id=from_global_id(plan)[1],
        idempotency_key=key,
        success_url=SUCCESS_URL,
        cancel_url=CANCEL_URL,
        for_checkout=True,
    )
    written = await subscriptions.create(database, Providers(database, settings), request)
    assert written.subscription.status == "INCOMPLETE"
    assert await sessions_of(tenant, customer) == []
    replay = await _subscribe(tenant, customer, plan, idempotencyKey=key)
    assert replay["replayed"] and replay["checkoutSession"]["status"] == "OPEN"
    again = await _subscribe(tenant, customer, plan, idempotencyKey=key)
    assert again["checkoutSession"]["id"] == replay["checkoutSession"]["id"]
    assert len(await sessions_of(tenant, customer)) == 1
    await assert_ledger_invariant(database)


async def test_racing_creations_with_one_key_make_one_subscription_and_one_session(
    tenant: Tenant, database: Database
) -> None:
    customer = await _customer(tenant, credit=300)
    plan = await _plan(tenant, 1000)
    key = f"sub-{next(_keys)}"
    results = await asyncio.gather(
        *(_subscribe(tenant, customer, plan, idempotencyKey=key) for _ in range(6))
    )
    assert {r["__typename"] for r in results} == {"CreateSubscriptionSuccess"}, results
    assert len({r["subscription"]["id"] for r in results}) == 1
    assert len({r["checkoutSession"]["id"] for r in results}) == 1
    assert [r["replayed"] for r in results].count(False) == 1
    assert len(await sessions_of(tenant, customer)) == 1
    assert await _subscription_count(tenant, customer) == 1
    assert await _balance(tenant, customer) == 0  # the credit was taken once
    await assert_ledger_invariant(database)


async def test_a_replay_with_other_urls_is_an_idempotency_conflict(tenant: Tenant) -> None:
    customer = await _customer(tenant)
    plan = await _plan(tenant, 1000)
    key = f"sub-{next(_keys)}"
    first = await _subscribe(tenant, customer, plan, idempotencyKey=key)
    assert first["__typename"] == "CreateSubscriptionSuccess"
    other = await _subscribe(
        tenant, customer, plan, idempotencyKey=key, successUrl="https://shop.example/other"
    )
    assert other["__typename"] == "IdempotencyConflictError", other
    assert len(await sessions_of(tenant, customer)) == 1


async def test_a_card_saved_but_declined_completes_the_session_and_leaves_it_incomplete(
    tenant: Tenant, client: httpx.AsyncClient, database: Database
) -> None:
    customer = await _customer(tenant)
    plan = await _plan(tenant, 1000)
    created = await _subscribe(tenant, customer, plan)
    subscription, session = created["subscription"], created["checkoutSession"]
    declined = await _type_card(client, session, DECLINING_CARD)
    assert declined.status_code == 402
    assert "The payment was declined" in declined.text and 'role="alert"' in declined.text
    assert f'href="{_landing(session)}"' in declined.text  # Continue, to the successUrl
    done = await _session(tenant, session["id"])
    assert done["status"] == "COMPLETE"
    assert done["lastPaymentError"]["code"] == "card_declined"
    after = await _subscription(tenant, subscription["id"])
    assert after["status"] == "INCOMPLETE"
    [invoice] = after["invoices"]
    assert (invoice["status"], invoice["attemptCount"]) == ("OPEN", 1)
    # Posted again: the session is complete, nothing is charged twice.
    assert (await _type_card(client, session, GOOD_CARD)).status_code == 409
    [invoice] = (await _subscription(tenant, subscription["id"]))["invoices"]
    assert invoice["attemptCount"] == 1

    # A new SUBSCRIPTION session replaces the method and pays what is owed.
    replaced = await _collect(tenant, customer, subscription["id"], amount=1000, currency="USD")
    assert replaced["__typename"] == "CreateCheckoutSessionSuccess", replaced
    assert replaced["checkoutSession"]["amount"] == 1000
    assert (await _type_card(client, replaced["checkoutSession"], GOOD_CARD)).status_code == 303
    after = await _subscription(tenant, subscription["id"])
    assert after["status"] == "ACTIVE" and after["invoices"][0]["status"] == "PAID"
    await assert_ledger_invariant(database)


async def test_a_card_that_cannot_be_saved_leaves_the_session_open(
    tenant: Tenant, client: httpx.AsyncClient
) -> None:
    customer = await _customer(tenant)
    plan = await _plan(tenant, 1000)
    created = await _subscribe(tenant, customer, plan)
    session = created["checkoutSession"]
    refused = await _type_card(client, session, "4000 0000 0000 0002")
    assert refused.status_code == 402 and "declined" in refused.text
    assert (await _type_card(client, session, "1234 5678 9012 3456")).status_code == 402
    still = await _session(tenant, session["id"])
    assert still["status"] == "OPEN" and still["lastPaymentError"]["code"] == "card_declined"
    assert (await _subscription(tenant, created["subscription"]["id"]))["status"] == "INCOMPLETE"
    # 3-D Secure is asked first, and a failed authentication saves nothing.
    asked = await _type_card(client, session, "4000 0025 0000 3155")
    assert asked.status_code == 200 and "3-D Secure" in asked.text
    failed = await _type_card(client, session, "4000002500003155", authentication="fail")
    assert failed.status_code == 402
    assert (await _session(tenant, session["id"]))["status"] == "OPEN"
    assert (await _type_card(client, session, GOOD_CARD)).status_code == 303
    assert (await _subscription(tenant, created["subscription"]["id"]))["status"] == "ACTIVE"


async def test_a_signed_paid_event_for_a_subscription_session_credits_no_wallet(
    tenant: Tenant,
    client: httpx.AsyncClient,
    database: Database,
    settings: Settings,
) -> None:
    customer = await _customer(tenant)
    plan = await _plan(tenant, 1000)
    session = (await _subscribe(tenant, customer, plan))["checkoutSession"]
    body = sandbox_completed_event(session["providerSessionId"], 1000)
    answer = await deliver(client, body, sign(await sandbox_secret(database, settings), body))
    assert answer.status_code == 200 and answer.json()["outcome"] == "ignored"
    assert await _balance(tenant, customer) == 0
    assert (await _session(tenant, session["id"]))["status"] == "OPEN"
    await assert_ledger_invariant(database)


# --- createCheckoutSession(mode: SUBSCRIPTION) ---------------------------------------------


async def test_a_trial_collects_its_method_and_is_charged_nothing(
    tenant: Tenant, client: httpx.AsyncClient, database: Database
) -> None:
    customer = await _customer(tenant)
    plan = await _plan(tenant, 1000, trialDays=7)
    subscription = (await _subscribe(tenant, customer, plan))["subscription"]
    key = f"collect-{next(_keys)}"
    opened = await _collect(tenant, customer, subscription["id"], idempotencyKey=key)
    assert opened["__typename"] == "CreateCheckoutSessionSuccess", opened
    session = opened["checkoutSession"]
    assert (session["amount"], session["currency"], session["mode"]) == (0, "USD", "SUBSCRIPTION")
    replay = await _collect(tenant, customer, subscription["id"], idempotencyKey=key)
    assert replay["replayed"] and replay["checkoutSession"]["id"] == session["id"]
    page = await client.get(_page(session))
    assert "nothing is charged now" in page.text and "Save card</button>" in page.text
    saved = await _type_card(client, session, DECLINING_CARD)  # saved: nothing is charged
    assert saved.status_code == 303
    after = await _subscription(tenant, subscription["id"])
    assert after["status"] == "TRIALING" and after["invoices"] == []
    assert (await _session(tenant, session["id"]))["lastPaymentError"] is None
    await assert_ledger_invariant(database)


async def test_collecting_for_a_subscription_refuses_bad_input_and_writes_nothing(
    tenant: Tenant, other_tenant: Tenant
) -> None:
    customer = await _customer(tenant)
    plan = await _plan(tenant, 1000)
    subscription = (await _subscribe(tenant, customer, plan))["subscription"]["id"]
    before = len(await sessions_of(tenant, customer))
    other_customer = await _customer(tenant)
    stranger = await _customer(other_tenant)
    stranger_plan = await _plan(other_tenant, 1000)
    strangers = (await _subscribe(other_tenant, stranger, stranger_plan))["subscription"]["id"]
    cases: list[tuple[str, dict[str, Any], str, str | None]] = [
        (customer, {"subscriptionId": None}, "ValidationError", "subscriptionId"),
        (customer, {"subscriptionId": "not-an-id"}, "ValidationError", "subscriptionId"),
        (customer, {"amount": 999}, "ValidationError", "amount"),
        (customer, {"amount": -1}, "ValidationError", "amount"),
        (customer, {"currency": "KRW"}, "ValidationError", "currency"),
        (customer, {"provider": "STRIPE"}, "ValidationError", "provider"),
        (customer, {"provider": "TOSS"}, "ValidationError", "provider"),
        (customer, {"successUrl": "ftp://x"}, "ValidationError", "successUrl"),
        (customer, {"idempotencyKey": "billgraph:x"}, "ValidationError", "idempotencyKey"),
        (customer, {"subscriptionId": strangers}, "NotFoundError", None),
        (other_customer, {}, "NotFoundError", None),
    ]
    for who, fields, typename, field in cases:
        target = fields.pop("subscriptionId", subscription)
        result = await _collect(tenant, who, target, **fields)
        assert result["__typename"] == typename, (fields, result)
        if field is not None:
            assert result["field"] == field, (fields, result)
    assert len(await sessions_of(tenant, customer)) == before
    assert await sessions_of(tenant, other_customer) == []

    key = f"collect-{next(_keys)}"
    first = await _collect(tenant, customer, subscription, idempotencyKey=key, amount=1000)
    assert first["__typename"] == "CreateCheckoutSessionSuccess", first
    conflict = await _collect(tenant, customer, subscription, idempotencyKey=key)
    assert conflict["__typename"] == "IdempotencyConflictError", conflict

    canceled = await _mutate(
        tenant, CANCEL, {"input": {"subscriptionId": subscription, "atPeriodEnd": False}}
    )
    assert canceled["__typename"] == "CancelSubscriptionSuccess", canceled
    refused = await _collect(tenant, customer, subscription)
    assert refused["__typename"] == "ConflictError", refused
    # The session opened before the cancellation cannot save a card for it any more.
    assert len(await sessions_of(tenant, customer)) == before + 1


async def test_a_session_left_open_for_a_canceled_subscription_saves_nothing(
    tenant: Tenant, client: httpx.AsyncClient
) -> None:
    customer = await _customer(tenant)
    plan = await _plan(tenant, 1000)
    created = await _subscribe(tenant, customer, plan)
    subscription, session = created["subscription"]["id"], created["checkoutSession"]
    await _mutate(tenant, CANCEL, {"input": {"subscriptionId": subscription, "atPeriodEnd": False}})
    refused = await _type_card(client, session, GOOD_CARD)
    assert refused.status_code == 409 and "canceled" in refused.text
    assert (await _session(tenant, session["id"]))["status"] == "OPEN"
    assert (await _subscription(tenant, subscription))["status"] == "CANCELED"


async def test_a_suspended_subscription_is_recovered_through_a_checkout(
    tenant: Tenant, client: httpx.AsyncClient, database: Database
) -> None:
    clock = await _mutate(
        tenant,
        """mutation($input: CreateTestClockInput!) { createTestClock(input: $input) {
          ... on CreateTestClockSuccess { testClock { id } } } }""",
        {"input": {"frozenTime": "2028-01-10T00:00:00Z"}},
    )
    customer = (await tenant.create_customer(testClockId=clock["testClock"]["id"]))["customer"][
        "id"
    ]
    plan = await _plan(tenant, 1000)
    created = await _subscribe(tenant, customer, plan)
    subscription = created["subscription"]["id"]
    assert (await _type_card(client, created["checkoutSession"], GOOD_CARD)).status_code == 303
    # A second session replaces the card with one that declines; the renewal walks dunning.
    replacing = await _collect(tenant, customer, subscription)
    assert replacing["checkoutSession"]["amount"] == 0  # nothing open
    assert (
        await _type_card(client, replacing["checkoutSession"], DECLINING_CARD)
    ).status_code == 303
    advance = """mutation($input: AdvanceTestClockInput!) { advanceTestClock(input: $input) {
      __typename } }"""
    clock_id = clock["testClock"]["id"]
    for frozen in ("2028-02-10T01:00:00Z", "2028-02-13T02:00:00Z", "2028-02-16T03:00:00Z"):
        await _mutate(tenant, advance, {"input": {"testClockId": clock_id, "frozenTime": frozen}})
    suspended = await _subscription(tenant, subscription)
    assert suspended["status"] == "SUSPENDED"
    owed = suspended["invoices"][0]
    assert owed["status"] == "OPEN" and owed["attemptCount"] == 3
    recovering = await _collect(tenant, customer, subscription, amount=1000)
    assert recovering["__typename"] == "CreateCheckoutSessionSuccess", recovering
    paid = await _type_card(client, recovering["checkoutSession"], GOOD_CARD)
    assert paid.status_code == 303
    after = await _subscription(tenant, subscription)
    assert after["status"] == "ACTIVE" and after["invoices"][0]["status"] == "PAID"
    assert from_global_id(recovering["checkoutSession"]["subscription"]["id"])[0] == "Subscription"
    await assert_ledger_invariant(database)


async def test_racing_form_posts_save_one_card_and_charge_once(
    tenant: Tenant, client: httpx.AsyncClient, database: Database
) -> None:
    customer = await _customer(tenant)
    plan = await _plan(tenant, 1000)
    created = await _subscribe(tenant, customer, plan)
    session = created["checkoutSession"]
    answers = await asyncio.gather(*(_type_card(client, session, GOOD_CARD) for _ in range(4)))
    assert sorted(a.status_code for a in answers) == [303, 409, 409, 409]
    [invoice] = (await _subscription(tenant, created["subscription"]["id"]))["invoices"]
    assert (invoice["status"], invoice["attemptCount"]) == ("PAID", 1)
    async with database.sessions() as db:
        methods = await db.scalars(
            select(PaymentMethod).where(PaymentMethod.customer_id == from_global_id(customer)[1])
        )
        assert len(list(methods)) == 1
    await assert_ledger_invariant(database)
