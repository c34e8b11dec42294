"""A Toss subscription checkout through HTTP, against the fake Toss API, on SQLite and
PostgreSQL: createSubscription (provider TOSS) opens billgraph's card registration page under
a customerKey of its own; Toss's billing success redirect issues the billing key server-side,
stores it encrypted, attaches it and charges the first invoice (credit first), once however
often the redirect comes; a declined first charge leaves the subscription INCOMPLETE; a
forged, unknown or replayed callback issues nothing; the fail redirect records its error."""

import itertools
import re
import uuid
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from sqlalchemy import select

from billgraph.adapters.base import Provider
from billgraph.app import create_app
from billgraph.billing import collect, subscriptions
from billgraph.checkout.providers import Providers
from billgraph.core.errors import ProviderError
from billgraph.core.secrets import Vault
from billgraph.db.engine import Database
from billgraph.db.models import PaymentMethod
from billgraph.graphql.node import from_global_id
from billgraph.settings import Settings
from tests.conftest import assert_ledger_invariant
from tests.support.checkout import sessions_of
from tests.support.fake_toss import (  # noqa: F401 - fixtures
    CLIENT_KEY,
    INSUFFICIENT_CARD,
    SECRET_KEY,
    SUCCESS_CARD,
    FakeToss,
    fake_toss,
    fake_toss_server,
)
from tests.support.graph import Tenant, new_tenant

PUBLIC_URL = "http://billgraph.test"
SUCCESS_URL = "https://shop.example/subscribed?session={CHECKOUT_SESSION_ID}"
CANCEL_URL = "https://shop.example/plans"
ENCRYPTION_KEY = Vault.generate_key()
_keys = itertools.count(1)

ERRORS = "... on UserError { code message } ... on ValidationError { field }"
SESSION = """id mode status amount currency url providerSessionId lastPaymentError { code }
  subscription { id status }"""
SUBSCRIPTION = """id status provider invoices(first: 5) { edges { node { id status amountPaid
  walletCreditApplied attemptCount } } }"""
CREATE_SUBSCRIPTION = f"""mutation($input: CreateSubscriptionInput!) {{
  createSubscription(input: $input) {{ __typename
  ... on CreateSubscriptionSuccess {{ replayed checkoutSession {{ {SESSION} }}
    subscription {{ {SUBSCRIPTION} }} }} {ERRORS} }} }}"""
NODE_SUBSCRIPTION = f"""query($id: ID!) {{ node(id: $id) {{ ... on Subscription {{
  {SUBSCRIPTION} }} }} }}"""
NODE_SESSION = f"""query($id: ID!) {{ node(id: $id) {{ ... on CheckoutSession {{ {SESSION} }}
  }} }}"""


@pytest.fixture(scope="session")
async def toss_client(
    database: Database,
    database_url: str,
    fake_toss_server: FakeToss,  # noqa: F811
) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(
        database_url=database_url,
        rate_limit_per_second=0,
        log_json=True,
        log_level="WARNING",
        public_url=PUBLIC_URL,
        toss_secret_key=SECRET_KEY,
        toss_client_key=CLIENT_KEY,
        toss_api_base=fake_toss_server.url,
        provider_timeout_seconds=0.5,
        encryption_key=ENCRYPTION_KEY,
    )
    app = create_app(settings, database)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=PUBLIC_URL
    ) as client:
        yield client


@pytest.fixture
async def shop(database: Database, toss_client: httpx.AsyncClient) -> Tenant:
    return await new_tenant(database, toss_client, currency="KRW")


async def _mutate(shop: Tenant, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    (result,) = (await shop.data(query, variables)).values()
    return result  # type: ignore[no-any-return]


async def _plan(shop: Tenant, amount: int = 9900) -> str:
    result = await _mutate(
        shop,
        """mutation($input: CreatePlanInput!) { createPlan(input: $input) {
          ... on CreatePlanSuccess { plan { id } } } }""",
        {"input": {"name": "Pro", "amount": amount, "currency": "KRW", "interval": "MONTH"}},
    )
    return result["plan"]["id"]  # type: ignore[no-any-return]


async def _subscribe(shop: Tenant, credit: int = 0, **fields: Any) -> dict[str, Any]:
    customer = (await shop.create_customer())["customer"]["id"]
    if credit:
        await shop.post(customer, credit, currency="KRW")
    variables = {
        "customerId": customer,
        "planId": await _plan(shop),
        "provider": "TOSS",
        "successUrl": SUCCESS_URL,
        "cancelUrl": CANCEL_URL,
        "idempotencyKey": f"toss-sub-{next(_keys)}",
        **fields,
    }
    result = await _mutate(shop, CREATE_SUBSCRIPTION, {"input": variables})
    assert result["__typename"] == "CreateSubscriptionSuccess", result
    result["customer"] = customer
    result["input"] = variables
    return result


async def _node(shop: Tenant, node_id: str) -> dict[str, Any]:
    query = NODE_SUBSCRIPTION if from_global_id(node_id)[0] == "Subscription" else NODE_SESSION
    node = (await shop.data(query, {"id": node_id}))["node"]
    if "invoices" in node:
        node["invoices"] = [e["node"] for e in node["invoices"]["edges"]]
    return node  # type: ignore[no-any-return]


def _success(customer_key: str, auth_key: str) -> str:
    query = urlencode({"customerKey": customer_key, "authKey": auth_key})
    return f"/checkout/toss/billing/success?{query}"


def _landing(session: dict[str, Any]) -> str:
    return SUCCESS_URL.replace("{CHECKOUT_SESSION_ID}", session["providerSessionId"])


async def _methods(database: Database, customer: str) -> list[PaymentMethod]:
    async with database.sessions() as session:
        rows = await session.scalars(
            select(PaymentMethod).where(PaymentMethod.customer_id == from_global_id(customer)[1])
        )
        return list(rows)


async def test_a_toss_subscription_from_create_to_an_active_paid_first_invoice(
    shop: Tenant,
    toss_client: httpx.AsyncClient,
    fake_toss: FakeToss,  # noqa: F811
    database: Database,
) -> None:
    created = await _subscribe(shop, credit=900)
    subscription, session = created["subscription"], created["checkoutSession"]
    assert subscription["status"] == "INCOMPLETE"
    assert (session["mode"], session["amount"], session["currency"]) == (
        "SUBSCRIPTION",
        9000,
        "KRW",
    )
    customer_key = session["providerSessionId"]
    assert (
        uuid.UUID(customer_key) and session["url"] == f"{PUBLIC_URL}/checkout/toss/{customer_key}"
    )

    page = await toss_client.get(session["url"])
    assert page.status_code == 200 and "9,000 KRW" in page.text
    assert (
        "script-src 'self' https://js.tosspayments.com;" in page.headers["content-security-policy"]
    )
    assert re.findall(r"<script[^>]*>", page.text) == [
        '<script src="https://js.tosspayments.com/v2/standard" defer>',
        '<script src="/static/toss/billing.js" defer>',
    ]
    for name, value in (
        ("client-key", CLIENT_KEY),
        ("customer-key", customer_key),
        ("success-url", f"{PUBLIC_URL}/checkout/toss/billing/success"),
        ("fail-url", f"{PUBLIC_URL}/checkout/toss/billing/fail?customerKey={customer_key}"),
    ):
        assert f'data-{name}="{value}"' in page.text, name
    assert SECRET_KEY not in page.text
    script = await toss_client.get("/static/toss/billing.js")
    assert script.status_code == 200 and "requestBillingAuth" in script.text

    auth_key = fake_toss.authorize_billing(customer_key, SUCCESS_CARD)
    calls = len(fake_toss.calls("POST", "/v1/billing/"))
    back = await toss_client.get(_success(customer_key, auth_key))
    assert back.status_code == 303 and back.headers["location"] == _landing(session)
    after = await _node(shop, subscription["id"])
    assert after["status"] == "ACTIVE"
    [invoice] = after["invoices"]
    assert (invoice["status"], invoice["walletCreditApplied"], invoice["amountPaid"]) == (
        "PAID",
        900,
        9000,
    )
    charges = fake_toss.calls("POST", "/v1/billing/")[calls:]
    issued = [c for c in charges if c.path == "/v1/billing/authorizations/issue"]
    charged = [c for c in charges if c.path != "/v1/billing/authorizations/issue"]
    assert len(issued) == 1 and len(charged) == 1
    assert charged[0].body["customerKey"] == customer_key and charged[0].body["amount"] == 9000
    [method] = await _methods(database, created["customer"])
    billing_key = charged[0].path.removeprefix("/v1/billing/")
    assert method.kind == "billing_key" and billing_key not in method.secret
    assert Vault(ENCRYPTION_KEY).decrypt(method.secret) == billing_key
    done = await _node(shop, session["id"])
    assert done["status"] == "COMPLETE" and done["lastPaymentError"] is None

    # The success address again (a reload, a replayed redirect): nothing issued or charged.
    again = await toss_client.get(_success(customer_key, auth_key))
    assert again.status_code == 303
    assert len(fake_toss.calls("POST", "/v1/billing/")) == calls + 2
    assert len(await _methods(database, created["customer"])) == 1
    assert "registered" in (await toss_client.get(session["url"])).text
    replay = await _mutate(shop, CREATE_SUBSCRIPTION, {"input": created["input"]})
    assert replay["replayed"] and replay["checkoutSession"]["id"] == session["id"]
    await assert_ledger_invariant(database)


async def test_a_declined_first_charge_keeps_the_card_and_the_subscription_incomplete(
    shop: Tenant,
    toss_client: httpx.AsyncClient,
    fake_toss: FakeToss,  # noqa: F811
    database: Database,
) -> None:
    created = await _subscribe(shop)
    session = created["checkoutSession"]
    customer_key = session["providerSessionId"]
    auth_key = fake_toss.authorize_billing(customer_key, INSUFFICIENT_CARD)
    back = await toss_client.get(_success(customer_key, auth_key))
    assert back.status_code == 402 and "The payment was declined" in back.text
    after = await _node(shop, created["subscription"]["id"])
    assert after["status"] == "INCOMPLETE"
    [invoice] = after["invoices"]
    assert (invoice["status"], invoice["attemptCount"]) == ("OPEN", 1)
    done = await _node(shop, session["id"])
    assert done["status"] == "COMPLETE"
    assert done["lastPaymentError"] == {"code": "insufficient_funds"}
    assert len(await _methods(database, created["customer"])) == 1
    assert (await toss_client.get(_success(customer_key, auth_key))).status_code == 303
    [invoice] = (await _node(shop, created["subscription"]["id"]))["invoices"]
    assert invoice["attemptCount"] == 1  # the replay charged nothing
    await assert_ledger_invariant(database)


async def test_forged_unknown_and_malformed_callbacks_issue_nothing(
    shop: Tenant,
    toss_client: httpx.AsyncClient,
    fake_toss: FakeToss,  # noqa: F811
    database: Database,
) -> None:
    created = await _subscribe(shop)
    session = created["checkoutSession"]
    customer_key = session["providerSessionId"]
    calls = len(fake_toss.calls("POST", "/v1/billing/"))
    for path in (
        _success(str(uuid.uuid4()), fake_toss.authorize_billing(str(uuid.uuid4()))),
        _success("x", "bln_key"),
        _success(customer_key, ""),
        "/checkout/toss/billing/success",
        "/checkout/toss/billing/fail?customerKey=" + str(uuid.uuid4()) + "&code=REJECT_CARD",
    ):
        refused = await toss_client.get(path)
        assert refused.status_code in (400, 404), (path, refused.status_code)
    assert len(fake_toss.calls("POST", "/v1/billing/")) == calls
    # A top-up's orderId is no subscription checkout's customerKey.
    top_up = await _mutate(
        shop,
        """mutation($input: CreateCheckoutSessionInput!) { createCheckoutSession(input: $input) {
          ... on CreateCheckoutSessionSuccess { checkoutSession { providerSessionId } } } }""",
        {
            "input": {
                "customerId": created["customer"],
                "amount": 1000,
                "currency": "KRW",
                "provider": "TOSS",
                "successUrl": SUCCESS_URL,
                "cancelUrl": CANCEL_URL,
                "idempotencyKey": f"topup-{next(_keys)}",
            }
        },
    )
    order_id = top_up["checkoutSession"]["providerSessionId"]
    assert (await toss_client.get(_success(order_id, "bln_x"))).status_code == 404
    # ... nor is a subscription checkout's customerKey a top-up's orderId.
    paid = fake_toss.start_payment(customer_key, 9900)
    top_up_success = "/checkout/toss/success?" + urlencode(
        {"paymentKey": paid, "orderId": customer_key, "amount": 9900}
    )
    assert (await toss_client.get(top_up_success)).status_code == 404
    assert fake_toss.confirms(paid) == 0
    # An authKey Toss did not give for this customerKey: refused by Toss, recorded, no method.
    stolen = fake_toss.authorize_billing(str(uuid.uuid4()))
    forged = await toss_client.get(_success(customer_key, stolen))
    assert forged.status_code == 303 and forged.headers["location"] == CANCEL_URL
    still = await _node(shop, session["id"])
    assert still["status"] == "OPEN" and still["lastPaymentError"] is not None
    assert await _methods(database, created["customer"]) == []
    assert (await _node(shop, created["subscription"]["id"]))["status"] == "INCOMPLETE"
    # The customer's own registration still completes it.
    good = fake_toss.authorize_billing(customer_key)
    assert (await toss_client.get(_success(customer_key, good))).status_code == 303
    assert (await _node(shop, created["subscription"]["id"]))["status"] == "ACTIVE"
    await assert_ledger_invariant(database)


async def test_the_fail_redirect_records_the_error_on_the_session(
    shop: Tenant,
    toss_client: httpx.AsyncClient,
    fake_toss: FakeToss,  # noqa: F811
) -> None:
    created = await _subscribe(shop)
    session = created["checkoutSession"]
    key = session["providerSessionId"]
    canceled = await toss_client.get(
        f"/checkout/toss/billing/fail?customerKey={key}&code=PAY_PROCESS_CANCELED&message=x"
    )
    assert canceled.status_code == 303 and canceled.headers["location"] == CANCEL_URL
    assert (await _node(shop, session["id"]))["lastPaymentError"] is None
    failed = await toss_client.get(
        "/checkout/toss/billing/fail?"
        + urlencode({"customerKey": key, "code": "INVALID_CARD_NUMBER", "message": "Bad card"})
    )
    assert failed.status_code == 303
    after = await _node(shop, session["id"])
    assert after["status"] == "OPEN" and after["lastPaymentError"] == {"code": "card_declined"}
    page = await toss_client.get(session["url"])
    assert "Bad card" in page.text and "Register card" in page.text
    assert (await toss_client.get("/checkout/toss/billing/fail?code=X")).status_code == 400
    assert await sessions_of(shop, created["customer"]) != []


async def test_toss_without_an_encryption_key_refuses_a_checkout_and_writes_nothing(
    shop: Tenant,
    database: Database,
    settings: Settings,
    fake_toss: FakeToss,  # noqa: F811
) -> None:
    """A billing key could not be stored: refused before anything is written when a checkout
    is needed; a subscription credit pays in full needs none and starts."""
    unkeyed = settings.model_copy(
        update={
            "toss_secret_key": SECRET_KEY,
            "toss_client_key": CLIENT_KEY,
            "toss_api_base": fake_toss.url,
            "encryption_key": None,
        }
    )
    providers = Providers(database, unkeyed)
    org = from_global_id(shop.organization_id)[1]
    plan = from_global_id(await _plan(shop, 5000))[1]
    poor = (await shop.create_customer())["customer"]["id"]
    rich = (await shop.create_customer())["customer"]["id"]
    await shop.post(rich, 5000, currency="KRW")

    def request(customer: str) -> subscriptions.SubscriptionRequest:
        return subscriptions.subscription_request(
            org,
            customer_id=from_global_id(customer)[1],
            plan_id=plan,
            provider=Provider.TOSS,
            success_url=SUCCESS_URL,
            cancel_url=CANCEL_URL,
            idempotency_key=f"unkeyed-{next(_keys)}",
        )

    try:
        with pytest.raises(ProviderError) as refused:
            await collect.subscribe(database, providers, request(poor), expires_minutes=60)
        assert refused.value.code == "provider_not_configured"
        data = await shop.data(
            "query($id: ID!) { customer(id: $id) { subscriptions(first: 5) { edges { node { id } } } } }",
            {"id": poor},
        )
        assert data["customer"]["subscriptions"]["edges"] == []
        assert await sessions_of(shop, poor) == []
        started = await collect.subscribe(database, providers, request(rich), expires_minutes=60)
        assert started.subscription.status == "ACTIVE" and started.checkout_session is None
    finally:
        await providers.close()
    await assert_ledger_invariant(database)
