"""A Toss Payments top-up through HTTP, against the fake Toss API: createCheckoutSession
(provider TOSS, KRW) opens billgraph's page with Toss's widget; the widget's success redirect
is verified (an amount that is not the session's is refused before Toss is asked), confirmed
at Toss and credited once, however it races with a reload or a webhook; a refused confirm, a
Toss outage, a timeout and the fail redirect credit nothing; USD is not Toss's."""

import asyncio
import json
import re
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from starlette.applications import Starlette

from billgraph.app import create_app
from billgraph.checkout import repository
from billgraph.checkout.providers import Providers
from billgraph.db.engine import Database
from billgraph.graphql.node import from_global_id
from billgraph.settings import Settings
from tests.conftest import assert_ledger_invariant
from tests.support.checkout import (
    CREATE_SESSION,
    EXPIRE_SESSION,
    refund,
    session_input,
    session_of,
)
from tests.support.checkout import sessions_of as sessions_of_customer
from tests.support.fake_toss import (  # noqa: F401 - fixtures
    CLIENT_KEY,
    INSUFFICIENT_CARD,
    SECRET_KEY,
    FakeToss,
    fake_toss,
    fake_toss_server,
)
from tests.support.graph import Tenant, new_tenant, snapshot

PUBLIC_URL = "http://billgraph.test"
SUCCESS_URL = "https://shop.example/paid?session={CHECKOUT_SESSION_ID}"
CANCEL_URL = "https://shop.example/cart"


def _providers(app: Starlette) -> Providers:
    """The app's providers (the Toss routes hold them), to close the adapter's client."""
    for route in app.routes:
        owner = getattr(getattr(route, "endpoint", None), "__self__", None)
        if isinstance(getattr(owner, "providers", None), Providers):
            return owner.providers  # type: ignore[union-attr, no-any-return]
    raise AssertionError("no route holds the providers")


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
    )
    app = create_app(settings, database)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL) as client:
        yield client
    await _providers(app).close()


@pytest.fixture
async def shop(database: Database, toss_client: httpx.AsyncClient) -> Tenant:
    """An organization whose customers get a KRW wallet."""
    return await new_tenant(database, toss_client, currency="KRW")


async def _customer(shop: Tenant) -> str:
    return (await shop.create_customer())["customer"]["id"]  # type: ignore[no-any-return]


async def _session(shop: Tenant, customer: str, amount: int, **fields: Any) -> dict[str, Any]:
    fields = {
        "provider": "TOSS",
        "currency": "KRW",
        "successUrl": SUCCESS_URL,
        "cancelUrl": CANCEL_URL,
        **fields,
    }
    variables = session_input(customer, amount, **fields)
    result = (await shop.data(CREATE_SESSION, variables))["createCheckoutSession"]
    assert result["__typename"] == "CreateCheckoutSessionSuccess", result
    return result["checkoutSession"]  # type: ignore[no-any-return]


async def _balance(shop: Tenant, customer: str) -> tuple[int, int]:
    """(balance, ledger entries) of the customer's KRW wallet."""
    [(currency, balance, _, entries)] = await snapshot(shop, customer)
    assert currency == "KRW"
    return balance, entries


def _success(payment_key: str, order_id: str, amount: object) -> str:
    query = urlencode({"paymentKey": payment_key, "orderId": order_id, "amount": amount})
    return f"/checkout/toss/success?{query}"


def _paid_location(session: dict[str, Any]) -> str:
    return SUCCESS_URL.replace("{CHECKOUT_SESSION_ID}", session["providerSessionId"])


async def _deliver(client: httpx.AsyncClient, body: bytes) -> httpx.Response:
    return await client.post(
        "/webhooks/toss", content=body, headers={"content-type": "application/json"}
    )


async def test_the_page_loads_tosss_widget_with_the_session_under_a_toss_only_policy(
    shop: Tenant, toss_client: httpx.AsyncClient, database: Database
) -> None:
    customer = await _customer(shop)
    session = await _session(
        shop, customer, 123456, cancelUrl='https://shop.example/cart?q="><script>x()</script>'
    )
    order_id = session["providerSessionId"]
    assert re.fullmatch(r"[A-Za-z0-9_-]{6,64}", order_id)
    assert session["url"] == f"{PUBLIC_URL}/checkout/toss/{order_id}"
    page = await toss_client.get(session["url"])
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy
    assert "script-src 'self' https://js.tosspayments.com;" in policy
    assert "frame-src https://*.tosspayments.com;" in policy
    assert "unsafe" not in policy and "frame-ancestors 'none'" in policy
    assert page.headers["referrer-policy"] == "no-referrer"
    assert "123,456 KRW" in page.text
    scripts = re.findall(r"<script[^>]*>", page.text)
    assert scripts == [
        '<script src="https://js.tosspayments.com/v2/standard" defer>',
        '<script src="/static/toss/checkout.js" defer>',
    ]
    assert re.findall(r"<script[^>]*>(.*?)</script>", page.text, re.S) == ["", ""]  # no inline
    customer_key = await _customer_key(database, customer)
    for name, value in (
        ("client-key", CLIENT_KEY),
        ("customer-key", customer_key),
        ("order-id", order_id),
        ("order-name", "Wallet top-up (KRW)"),
        ("amount", "123456"),
        ("currency", "KRW"),
        ("success-url", f"{PUBLIC_URL}/checkout/toss/success"),
        ("fail-url", f"{PUBLIC_URL}/checkout/toss/fail"),
    ):
        assert f'data-{name}="{value}"' in page.text, name
    assert SECRET_KEY not in page.text
    assert "&lt;script&gt;" in page.text and "<script>x()" not in page.text
    script = await toss_client.get("/static/toss/checkout.js")
    assert script.status_code == 200 and "requestPayment" in script.text
    assert "dataset" in script.text and "successUrl: data.successUrl" in script.text
    assert (await toss_client.get("/static/toss/checkout.css")).status_code == 200


async def _customer_key(database: Database, customer: str) -> str:
    async with database.sessions() as session:
        key = await repository.provider_customer_id(session, from_global_id(customer)[1], "TOSS")
    assert key is not None
    return key


async def test_unknown_expired_and_paid_sessions_have_pages_that_say_so(
    shop: Tenant,
    toss_client: httpx.AsyncClient,
    fake_toss: FakeToss,  # noqa: F811
) -> None:
    for path in ("/checkout/toss/bgnosuchorder", "/checkout/toss/x", "/checkout/toss/a%20b%3C"):
        missing = await toss_client.get(path)
        assert missing.status_code == 404 and "No checkout session" in missing.text, path
    customer = await _customer(shop)
    expired = await _session(shop, customer, 1000)
    await shop.data(EXPIRE_SESSION, {"id": expired["id"]})
    page = await toss_client.get(expired["url"])
    assert "expired: it can no longer be paid" in page.text and "toss-checkout" not in page.text
    assert "script-src" not in page.headers["content-security-policy"]
    key = fake_toss.start_payment(expired["providerSessionId"], 1000)
    late = await toss_client.get(_success(key, expired["providerSessionId"], 1000))
    assert late.status_code == 409 and fake_toss.confirms(key) == 0  # never charged
    paid = await _session(shop, customer, 2000)
    key = fake_toss.start_payment(paid["providerSessionId"], 2000)
    assert (
        await toss_client.get(_success(key, paid["providerSessionId"], 2000))
    ).status_code == 303
    page = await toss_client.get(paid["url"])
    assert "This checkout session is paid." in page.text and "toss-checkout" not in page.text


async def test_the_success_redirect_confirms_credits_once_and_goes_to_the_success_url(
    shop: Tenant,
    toss_client: httpx.AsyncClient,
    database: Database,
    fake_toss: FakeToss,  # noqa: F811
) -> None:
    customer = await _customer(shop)
    session = await _session(shop, customer, 15000)
    order_id = session["providerSessionId"]
    key = fake_toss.start_payment(order_id, 15000)  # the customer paid in the widget
    landed = await toss_client.get(_success(key, order_id, 15000))
    assert landed.status_code == 303, landed.text
    assert landed.headers["location"] == _paid_location(session)
    assert landed.headers["referrer-policy"] == "no-referrer"
    assert fake_toss.payments[key]["status"] == "DONE" and fake_toss.confirms(key) == 1
    assert await _balance(shop, customer) == (15000, 1)
    done = await session_of(shop, session["id"])
    assert done["status"] == "COMPLETE" and done["ledgerEntry"]["amount"] == 15000
    # The customer reloads: redirected again, neither confirmed nor credited again.
    again = await toss_client.get(_success(key, order_id, 15000))
    assert again.status_code == 303 and again.headers["location"] == _paid_location(session)
    assert fake_toss.confirms(key) == 1
    assert await _balance(shop, customer) == (15000, 1)
    # Toss's webhook for it comes later: the same state, nothing more.
    late = await _deliver(toss_client, fake_toss.webhook(key))
    assert late.status_code == 200 and late.json()["outcome"] == "duplicate"
    assert await _balance(shop, customer) == (15000, 1)
    await assert_ledger_invariant(database)


@pytest.mark.parametrize(
    "amount",
    ["1", "150000", "15000.0", "-15000", "", "abc", "\uff11\uff15\uff10\uff10\uff10", "9" * 40],
)
async def test_a_tampered_amount_is_refused_before_toss_is_asked(
    shop: Tenant,
    toss_client: httpx.AsyncClient,
    database: Database,
    fake_toss: FakeToss,  # noqa: F811
    amount: str,
) -> None:
    customer = await _customer(shop)
    session = await _session(shop, customer, 15000)
    order_id = session["providerSessionId"]
    key = fake_toss.start_payment(order_id, 15000)
    refused = await toss_client.get(_success(key, order_id, amount))
    assert refused.status_code == 400 and "could not be verified" in refused.text
    assert fake_toss.confirms(key) == 0 and fake_toss.payments[key]["status"] == "IN_PROGRESS"
    assert await _balance(shop, customer) == (0, 0)
    assert (await session_of(shop, session["id"]))["status"] == "OPEN"
    # The true amount then pays.
    assert (await toss_client.get(_success(key, order_id, 15000))).status_code == 303
    assert await _balance(shop, customer) == (15000, 1)
    await assert_ledger_invariant(database)


async def test_malformed_redirects_are_4xx_pages_not_errors(
    shop: Tenant,
    toss_client: httpx.AsyncClient,
    fake_toss: FakeToss,  # noqa: F811
) -> None:
    customer = await _customer(shop)
    session = await _session(shop, customer, 3000)
    order_id = session["providerSessionId"]
    key = fake_toss.start_payment(order_id, 3000)
    for query in (
        "",
        f"orderId={order_id}&amount=3000",
        f"paymentKey={key}&amount=3000",
        f"paymentKey={'k' * 201}&orderId={order_id}&amount=3000",
        f"paymentKey=%ff%fe&orderId={order_id}&amount=3000",
        f"paymentKey={key}&orderId=short&amount=3000",
        f"paymentKey={key}&orderId=%00{order_id}&amount=3000",
    ):
        answer = await toss_client.get(f"/checkout/toss/success?{query}")
        assert answer.status_code == 400, (query, answer.text)
        assert answer.headers["content-type"].startswith("text/html")
    unknown = await toss_client.get(_success(key, "bgunknownorder", 3000))
    assert unknown.status_code == 404
    for query in ("", "code=X", f"orderId={order_id}", f"code=bad%20code&orderId={order_id}"):
        answer = await toss_client.get(f"/checkout/toss/fail?{query}")
        assert answer.status_code == 400, query
    assert fake_toss.confirms(key) == 0
    assert (await session_of(shop, session["id"]))["lastPaymentError"] is None


async def test_a_redirect_and_webhooks_racing_credit_once(
    shop: Tenant,
    toss_client: httpx.AsyncClient,
    database: Database,
    fake_toss: FakeToss,  # noqa: F811
) -> None:
    customer = await _customer(shop)
    session = await _session(shop, customer, 48000)
    order_id = session["providerSessionId"]
    key = fake_toss.start_payment(order_id, 48000)
    redirects = [toss_client.get(_success(key, order_id, 48000)) for _ in range(3)]
    deliveries = [_deliver(toss_client, fake_toss.webhook(key, status="DONE")) for _ in range(3)]
    answers = await asyncio.gather(*redirects, *deliveries)
    assert [a.status_code for a in answers] == [303] * 3 + [200] * 3, [a.text for a in answers]
    assert all(a.headers["location"] == _paid_location(session) for a in answers[:3])
    # Once more, now that Toss says DONE: still one credit.
    assert (await _deliver(toss_client, fake_toss.webhook(key))).status_code == 200
    assert await _balance(shop, customer) == (48000, 1)
    assert (await session_of(shop, session["id"]))["status"] == "COMPLETE"
    await assert_ledger_invariant(database)


async def test_a_declined_confirm_records_the_error_and_goes_to_the_cancel_url(
    shop: Tenant,
    toss_client: httpx.AsyncClient,
    database: Database,
    fake_toss: FakeToss,  # noqa: F811
) -> None:
    customer = await _customer(shop)
    session = await _session(shop, customer, 9000)
    order_id = session["providerSessionId"]
    key = fake_toss.start_payment(order_id, 9000, card=INSUFFICIENT_CARD)
    declined = await toss_client.get(_success(key, order_id, 9000))
    assert declined.status_code == 303 and declined.headers["location"] == CANCEL_URL
    after = await session_of(shop, session["id"])
    assert after["status"] == "OPEN"  # another card may pay it
    assert after["lastPaymentError"]["code"] == "insufficient_funds"
    assert fake_toss.payments[key]["status"] == "ABORTED"
    page = await toss_client.get(session["url"])
    assert "balance is insufficient" in page.text and 'role="alert"' in page.text
    # A webhook claiming DONE for it: Toss says ABORTED, nothing is credited.
    forged = await _deliver(toss_client, fake_toss.webhook(key, status="DONE", failure=None))
    assert forged.status_code == 200 and forged.json()["outcome"] == "payment_failed"
    assert await _balance(shop, customer) == (0, 0)
    # Another attempt pays the session.
    retry = fake_toss.start_payment(order_id, 9000)
    assert (await toss_client.get(_success(retry, order_id, 9000))).status_code == 303
    assert await _balance(shop, customer) == (9000, 1)
    await assert_ledger_invariant(database)


async def test_a_toss_5xx_on_confirm_is_retried(
    shop: Tenant,
    toss_client: httpx.AsyncClient,
    database: Database,
    fake_toss: FakeToss,  # noqa: F811
) -> None:
    customer = await _customer(shop)
    session = await _session(shop, customer, 7700)
    order_id = session["providerSessionId"]
    key = fake_toss.start_payment(order_id, 7700)
    fake_toss.fail_next(2, path="/v1/payments/confirm")
    landed = await toss_client.get(_success(key, order_id, 7700))
    assert landed.status_code == 303 and landed.headers["location"] == _paid_location(session)
    assert fake_toss.confirms(key) == 3
    assert await _balance(shop, customer) == (7700, 1)
    await assert_ledger_invariant(database)


async def test_a_toss_outage_or_timeout_credits_nothing_and_a_reload_recovers_once(
    shop: Tenant,
    toss_client: httpx.AsyncClient,
    database: Database,
    fake_toss: FakeToss,  # noqa: F811
) -> None:
    customer = await _customer(shop)
    session = await _session(shop, customer, 5500)
    order_id = session["providerSessionId"]
    key = fake_toss.start_payment(order_id, 5500)
    fake_toss.fail_next(3, path="/v1/payments/confirm")
    down = await toss_client.get(_success(key, order_id, 5500))
    assert down.status_code == 503 and "Try again" in down.text
    assert down.headers["retry-after"]
    fake_toss.stall_next(3, seconds=1.0, path="/v1/payments/confirm")  # past the 0.5 s timeout
    slow = await toss_client.get(_success(key, order_id, 5500))
    assert slow.status_code == 503
    assert await _balance(shop, customer) == (0, 0)
    after = await session_of(shop, session["id"])
    assert after["status"] == "OPEN" and after["lastPaymentError"] is None
    # Toss confirmed it meanwhile; the customer reloads and the one confirmation is credited.
    again = await toss_client.get(_success(key, order_id, 5500))
    assert again.status_code == 303
    assert await _balance(shop, customer) == (5500, 1)
    await assert_ledger_invariant(database)


async def test_the_fail_redirect_records_the_failure_and_goes_to_the_cancel_url(
    shop: Tenant,
    toss_client: httpx.AsyncClient,
    fake_toss: FakeToss,  # noqa: F811
) -> None:
    customer = await _customer(shop)
    session = await _session(shop, customer, 2500)
    order_id = session["providerSessionId"]
    query = urlencode(
        {"code": "REJECT_CARD_COMPANY", "message": "The card company refused.", "orderId": order_id}
    )
    failed = await toss_client.get(f"/checkout/toss/fail?{query}")
    assert failed.status_code == 303 and failed.headers["location"] == CANCEL_URL
    after = await session_of(shop, session["id"])
    assert after["status"] == "OPEN"
    assert after["lastPaymentError"] == {
        "code": "card_declined",
        "message": "The card company refused.",
    }
    # The customer closing Toss's window is no failure: nothing recorded over it.
    canceled = await toss_client.get(
        "/checkout/toss/fail?"
        + urlencode({"code": "PAY_PROCESS_CANCELED", "message": "Canceled", "orderId": order_id})
    )
    assert canceled.status_code == 303 and canceled.headers["location"] == CANCEL_URL
    assert (await session_of(shop, session["id"]))["lastPaymentError"]["code"] == "card_declined"
    unknown = await toss_client.get(
        "/checkout/toss/fail?" + urlencode({"code": "X", "orderId": "bgnosuchorder"})
    )
    assert unknown.status_code == 404
    assert await _balance(shop, customer) == (0, 0)
    assert not fake_toss.calls(path=f"/v1/payments/{order_id}")


async def test_webhooks_are_verified_at_toss(
    shop: Tenant,
    toss_client: httpx.AsyncClient,
    database: Database,
    fake_toss: FakeToss,  # noqa: F811
) -> None:
    customer = await _customer(shop)
    session = await _session(shop, customer, 6000)
    order_id = session["providerSessionId"]
    key = fake_toss.start_payment(order_id, 6000)
    # Not confirmed yet: a body claiming DONE is only a hint, Toss says IN_PROGRESS.
    early = await _deliver(toss_client, fake_toss.webhook(key, status="DONE"))
    assert early.status_code == 200 and early.json()["outcome"] == "ignored"
    assert await _balance(shop, customer) == (0, 0)
    unknown = await _deliver(
        toss_client,
        b'{"eventType": "PAYMENT_STATUS_CHANGED", "data": {"paymentKey": "tgen_nobody"}}',
    )
    assert unknown.status_code == 400
    assert unknown.json()["errors"][0]["extensions"]["code"] == "UNKNOWN_PAYMENT"
    fake_toss.fail_next(3, path=f"/v1/payments/{key}")
    down = await _deliver(toss_client, fake_toss.webhook(key))
    assert down.status_code == 503  # Toss retries the delivery
    assert (await _deliver(toss_client, b"[]")).status_code == 400
    await assert_ledger_invariant(database)


async def test_a_usd_session_with_toss_is_refused_and_nothing_is_stored(
    shop: Tenant,
    fake_toss: FakeToss,  # noqa: F811
) -> None:
    customer = await _customer(shop)
    before = len(fake_toss.calls())
    variables = session_input(customer, 2000, provider="TOSS", currency="USD")
    result = (await shop.data(CREATE_SESSION, variables))["createCheckoutSession"]
    assert result["__typename"] == "ProviderError", result
    assert (result["code"], result["provider"]) == ("invalid_request", "TOSS")
    assert "KRW" in result["message"]
    assert await sessions_of_customer(shop, customer) == []
    assert len(fake_toss.calls()) == before


# --- in a browser -----------------------------------------------------------------------------

# Toss's SDK as billgraph's page uses it, standing in for https://js.tosspayments.com/v2/standard:
# it records what the page gave it, and "pays" by asking Toss (the fake, through the test's
# route for *.tosspayments.com) for a paymentKey, then goes to successUrl as Toss does.
STUB_SDK = """
window.TossPayments = function (clientKey) {
  const seen = (window.__toss = { clientKey: clientKey });
  return {
    widgets: function (options) {
      seen.customerKey = options.customerKey;
      return {
        setAmount: async function (amount) { seen.amount = amount; },
        renderPaymentMethods: async function (o) {
          document.querySelector(o.selector).textContent = "Card";
        },
        renderAgreement: async function (o) { seen.agreement = o.selector; },
        requestPayment: async function (request) {
          seen.request = request;
          const paid = await fetch("https://api.tosspayments.com/play-widget", {
            method: "POST",
            body: JSON.stringify({ orderId: request.orderId, amount: seen.amount.value }),
          }).then((r) => r.json());
          const query = new URLSearchParams(
            paid.paymentKey
              ? { paymentKey: paid.paymentKey, orderId: request.orderId, amount: seen.amount.value }
              : { code: paid.code, message: paid.message, orderId: request.orderId }
          );
          window.location.href = (paid.paymentKey ? request.successUrl : request.failUrl) + "?" + query;
        },
      };
    },
  };
};
"""

BALANCE = "query($id: ID!) { customer(id: $id) { wallet(currency: KRW) { balance } } }"


def test_the_toss_checkout_in_a_browser(
    database_url: str,
    fake_toss: FakeToss,  # noqa: F811
) -> None:
    """billgraph serve with Toss configured, its page in headless Chromium: the widget gets the
    session from the page's data, Pay (from the keyboard) pays, the redirect is confirmed and
    credited; a card the customer's bank declines comes back to the cancelUrl with the error
    on the page. The page breaks no part of its policy and reaches only itself and Toss."""
    from tests.support.browser import CHROMIUM, CHROMIUM_FLAGS, open_page, require_browser
    from tests.support.server import cli, live_server

    require_browser()
    from playwright.sync_api import sync_playwright

    made = cli(
        *("create-organization", "--name", "Toss Browser Org", "--currency", "KRW", "--json"),
        *("--database-url", database_url),
    )
    assert made.returncode == 0, made.stderr
    key = json.loads(made.stdout)["api_key"]
    card = {"number": "4300000000000001"}
    env = {
        "BILLGRAPH_TOSS_SECRET_KEY": SECRET_KEY,
        "BILLGRAPH_TOSS_CLIENT_KEY": CLIENT_KEY,
        "BILLGRAPH_TOSS_API_BASE": fake_toss.url,
    }
    with live_server(database_url, env=env) as server, sync_playwright() as playwright:
        base = server.base_url

        def gql(query: str, variables: dict[str, Any]) -> dict[str, Any]:
            body = httpx.post(
                f"{base}/graphql",
                json={"query": query, "variables": variables},
                headers={"authorization": f"Bearer {key}"},
                timeout=30,
            ).json()
            assert "errors" not in body, body
            return body["data"]  # type: ignore[no-any-return]

        customer = gql(
            'mutation { createCustomer(input: {email: "toss@example.com"}) '
            "{ ... on CreateCustomerSuccess { customer { id } } } }",
            {},
        )["createCustomer"]["customer"]["id"]

        def open_session(amount: int) -> dict[str, Any]:
            variables = session_input(
                customer,
                amount,
                provider="TOSS",
                currency="KRW",
                successUrl=f"{base}/healthz?paid={{CHECKOUT_SESSION_ID}}",
                cancelUrl=f"{base}/healthz?cancelled=1",
            )
            result = gql(CREATE_SESSION, variables)["createCheckoutSession"]
            assert result["__typename"] == "CreateCheckoutSessionSuccess", result
            return result["checkoutSession"]  # type: ignore[no-any-return]

        def toss_origin(route: Any) -> None:
            request = route.request
            if request.url == "https://js.tosspayments.com/v2/standard":
                route.fulfill(body=STUB_SDK, content_type="text/javascript")
                return
            order = json.loads(request.post_data)
            payment_key = fake_toss.start_payment(order["orderId"], order["amount"], card["number"])
            route.fulfill(
                json={"paymentKey": payment_key},
                headers={"access-control-allow-origin": "*"},
            )

        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            watched = open_page(browser, base)
            page = watched.page
            page.route("https://*.tosspayments.com/**", toss_origin)

            paid = open_session(25000)
            page.goto(paid["url"])
            assert "25,000 KRW" in page.inner_text("main")
            pay = page.get_by_role("button", name="Pay")
            pay.focus()
            page.wait_for_function("!document.getElementById('pay').disabled")
            page.keyboard.press("Enter")
            page.wait_for_url(f"{base}/healthz?paid={paid['providerSessionId']}")
            balance = gql(BALANCE, {"id": customer})["customer"]["wallet"]["balance"]
            assert balance == 25000
            assert page.evaluate("window.__violations") == []

            card["number"] = INSUFFICIENT_CARD
            declined = open_session(3000)
            page.goto(declined["url"])
            page.wait_for_function("!document.getElementById('pay').disabled")
            seen = page.evaluate("window.__toss")
            assert seen["clientKey"] == CLIENT_KEY and seen["customerKey"]
            assert seen["amount"] == {"currency": "KRW", "value": 3000}
            page.get_by_role("button", name="Pay").click()
            page.wait_for_url(f"{base}/healthz?cancelled=1")
            page.goto(declined["url"])  # back on the page: the error, and it is still payable
            page.get_by_role("alert").get_by_text("balance is insufficient").wait_for()
            assert gql(BALANCE, {"id": customer})["customer"]["wallet"]["balance"] == 25000
            assert page.evaluate("window.__violations") == []
        finally:
            browser.close()
    assert watched.foreign == [], watched.foreign
    assert watched.problems == [], watched.problems


async def test_a_cancel_in_tosss_dashboard_debits_the_refunded_part_once(
    shop: Tenant,
    toss_client: httpx.AsyncClient,
    database: Database,
    fake_toss: FakeToss,  # noqa: F811
) -> None:
    customer = await _customer(shop)
    session = await _session(shop, customer, 15000)
    order_id = session["providerSessionId"]
    key = fake_toss.start_payment(order_id, 15000)
    assert (await toss_client.get(_success(key, order_id, 15000))).status_code == 303
    fake_toss.dashboard_cancel(key, 4000)
    outcomes = []
    for _ in range(2):  # Toss delivers it twice
        answer = await _deliver(toss_client, fake_toss.webhook(key))
        assert answer.status_code == 200, answer.text
        outcomes.append(answer.json()["outcome"])
    assert outcomes == ["refunded", "duplicate"]
    assert await _balance(shop, customer) == (11000, 2)
    fake_toss.dashboard_cancel(key)  # the rest
    assert (await _deliver(toss_client, fake_toss.webhook(key))).json()["outcome"] == "refunded"
    assert await _balance(shop, customer) == (0, 3)
    await assert_ledger_invariant(database)


async def test_a_refund_through_billgraph_cancels_at_toss_and_its_webhook_changes_nothing(
    shop: Tenant,
    toss_client: httpx.AsyncClient,
    database: Database,
    fake_toss: FakeToss,  # noqa: F811
) -> None:
    customer = await _customer(shop)
    session = await _session(shop, customer, 12000)
    order_id = session["providerSessionId"]
    key = fake_toss.start_payment(order_id, 12000)
    assert (await toss_client.get(_success(key, order_id, 12000))).status_code == 303
    result = await refund(shop, session["id"], 5000, reason="Unused credit")
    assert result["__typename"] == "RefundCheckoutSessionSuccess", result
    made = result["refund"]
    assert (made["amount"], made["walletDebited"], made["status"]) == (5000, 5000, "SUCCEEDED")
    # Toss has it canceled in part; its status webhook reports what billgraph did already.
    answer = await _deliver(toss_client, fake_toss.webhook(key))
    assert answer.json()["outcome"] == "already_refunded", answer.text
    assert await _balance(shop, customer) == (7000, 2)
    await assert_ledger_invariant(database)
