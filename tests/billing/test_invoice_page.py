"""The hosted invoice page over HTTP, on SQLite and PostgreSQL: an invoice made through the
billing domain shows its organization, number, status, dates, customer, lines and amounts
(formatted for USD and for zero-decimal KRW), under a self-only policy with no-store,
no-referrer and noindex; an unknown or malformed token is a 404 page; nothing on it is an
internal id or about the payment method."""

import re
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from billgraph.core.unit import unit_of_work
from billgraph.db.engine import Database
from billgraph.db.models import Customer, Invoice, Organization
from tests.billing.helpers import Org, at
from tests.support.browser import CHROMIUM, CHROMIUM_FLAGS, open_page, require_browser
from tests.support.graph import CREATE_ENTRY, entry_input
from tests.support.server import create_organization, live_server


def _text(page: httpx.Response) -> str:
    """The page's text, tags dropped and whitespace squeezed."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page.text))


async def _name(org: Org, customer: int, name: str) -> str:
    async with unit_of_work(org.database) as unit:
        await unit.session.execute(
            update(Customer).where(Customer.id == customer).values(name=name)
        )
    async with org.database.sessions() as session:
        organization = await session.get(Organization, org.id)
        assert organization is not None
        return organization.name


async def test_the_page_shows_a_usd_invoice_paid_by_credit_and_card(
    org: Org, client: httpx.AsyncClient
) -> None:
    customer = await org.customer(credit=1234)
    org_name = await _name(org, customer, 'Ada <b>"Lovelace"</b>')
    plan = await org.plan(amount=123456)
    card = await org.card(customer)
    created = await org.subscribe(customer, plan, method=card, now=at(2026, 1, 31, 9))
    [invoice] = await org.invoices(created.subscription.id)
    assert (invoice.status, invoice.wallet_credit_applied, invoice.amount_paid) == (
        "PAID",
        1234,
        122222,
    )

    page = await client.get(f"/invoices/{invoice.hosted_token}")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    text = _text(page)
    assert org_name in text
    assert f"INV-{invoice.number:06d}" in text and "PAID" in text
    assert "Issue date 2026-01-31" in text and "Due date 2026-01-31" in text
    assert "Paid date 2026-01-31" in text
    assert "Ada &lt;b&gt;&quot;Lovelace&quot;&lt;/b&gt;" in page.text and "<b>" not in page.text
    customer_email = re.search(r"billing\d+@example\.com", text)
    assert customer_email is not None
    # The line: description, period, quantity, amount.
    row = re.search(r"<tbody><tr>(.*?)</tr>", page.text)
    assert row is not None
    cells = [re.sub(r"<[^>]+>", "", c) for c in re.findall(r"<td[^>]*>(.*?)</td>", row[1])]
    assert cells[0].startswith("Plan ") and cells[2] == "1" and cells[3] == "1,234.56 USD"
    assert cells[1] == "2026-01-31 to 2026-02-28"
    assert "Subtotal 1,234.56 USD" in text
    assert "Discount 0.00 USD" in text
    assert "Total 1,234.56 USD" in text
    assert "Wallet credit applied -12.34 USD" in text
    assert "Amount due 1,222.22 USD" in text
    assert "Amount paid 1,222.22 USD" in text
    # Nothing beyond what the invoice shows: no ids, no token, nothing about the card.
    assert "<script" not in page.text and "<form" not in page.text
    for secret in (invoice.hosted_token, "4242", "sandbox", "card_", "pm_"):
        assert secret not in page.text.replace(f"/invoices/{invoice.hosted_token}", "")
    # Every figure on the page is one the invoice shows: no id of any row appears.
    rest = re.sub(r"\d{4}-\d{2}-\d{2}", "", text.replace(org_name, ""))
    rest = re.sub(r"-?[\d,]+(\.\d+)? USD", "", rest)
    rest = re.sub(r"INV-\d{6}|billing\d+@example\.com|Plan \d+", "", rest)
    assert re.findall(r"\d+", rest) == ["1"], rest  # the line's quantity
    css = await client.get("/static/invoices/invoice.css")
    assert css.status_code == 200 and "@media print" in css.text


async def test_a_krw_invoice_is_formatted_without_decimals_and_open_without_a_paid_date(
    org: Org, client: httpx.AsyncClient
) -> None:
    customer = await org.customer(credit=2500, currency="KRW")
    plan = await org.plan(amount=9900, currency="KRW")
    created = await org.subscribe(customer, plan, now=at(2026, 3, 1))
    [invoice] = await org.invoices(created.subscription.id)
    assert invoice.status == "OPEN"
    page = await client.get(f"/invoices/{invoice.hosted_token}")
    assert page.status_code == 200
    text = _text(page)
    assert "OPEN" in text and "Paid date" not in text
    assert "Subtotal 9,900 KRW" in text and "Total 9,900 KRW" in text
    assert "Wallet credit applied -2,500 KRW" in text
    assert "Amount due 7,400 KRW" in text and "Amount paid 0 KRW" in text
    assert "9,900 KRW" in re.search(r"<tbody>.*?</tbody>", page.text)[0]  # type: ignore[index]


@pytest.mark.parametrize(
    "token",
    [
        "A" * 43,  # the shape of a token, but nobody's
        "short",
        "not%20a%20token%27%3B--",
        "x" * 65,
        "%00" * 30,
    ],
)
async def test_an_unknown_or_malformed_token_is_a_404_page(
    client: httpx.AsyncClient, token: str
) -> None:
    page = await client.get(f"/invoices/{token}")
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert "Invoice not found" in page.text
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["x-robots-tag"] == "noindex"


async def test_the_page_is_no_store_no_referrer_noindex_under_a_self_only_policy(
    org: Org, client: httpx.AsyncClient, database: Database
) -> None:
    customer = await org.customer(credit=1000)
    plan = await org.plan(amount=1000)
    created = await org.subscribe(customer, plan)
    [invoice] = await org.invoices(created.subscription.id)
    page = await client.get(f"/invoices/{invoice.hosted_token}")
    assert page.status_code == 200
    headers = page.headers
    assert headers["cache-control"] == "no-store"
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["x-robots-tag"] == "noindex"
    assert headers["x-frame-options"] == "DENY"
    assert headers["x-content-type-options"] == "nosniff"
    policy = headers["content-security-policy"]
    assert "default-src 'none'" in policy and "style-src 'self'" in policy
    assert "script-src" not in policy and "unsafe" not in policy
    assert "frame-ancestors 'none'" in policy
    # No API key was sent, and none is needed; a token of another invoice is another page.
    assert "authorization" not in page.request.headers
    async with database.sessions() as session:
        stored = await session.get(Invoice, invoice.id)
        assert stored is not None and stored.hosted_token == invoice.hosted_token
    assert (await client.post(f"/invoices/{invoice.hosted_token}")).status_code == 405


def _gql(base_url: str, key: str, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    body = httpx.post(
        f"{base_url}/graphql",
        json={"query": query, "variables": variables},
        headers={"authorization": f"Bearer {key}"},
        timeout=30,
    ).json()
    assert "errors" not in body, body
    return body["data"]  # type: ignore[no-any-return]


BROWSER_SETUP = """
mutation($email: String!) { createCustomer(input: {email: $email, name: "Grace Hopper"}) {
  ... on CreateCustomerSuccess { customer { id } } } }
"""
BROWSER_PLAN = """
mutation { createPlan(input: {name: "Team", amount: 4900, currency: USD, interval: MONTH}) {
  ... on CreatePlanSuccess { plan { id } } } }
"""
BROWSER_SUBSCRIBE = """
mutation($input: CreateSubscriptionInput!) { createSubscription(input: $input) { __typename
  ... on CreateSubscriptionSuccess { subscription { status
    invoices(first: 1) { edges { node { number total hostedUrl } } } } } } }
"""


def test_the_hosted_invoice_page_in_a_browser_and_in_print(database_url: str) -> None:
    """Open the graph's hostedUrl on a real `billgraph serve` in headless Chromium: the
    number and total are there, nothing breaks the policy, nothing else is fetched; printed,
    the page shows no button, link, field or navigation."""
    require_browser()
    from playwright.sync_api import sync_playwright

    key = create_organization(database_url, "Invoice Page Org")["api_key"]
    with live_server(database_url) as server, sync_playwright() as playwright:
        base = server.base_url
        customer = _gql(base, key, BROWSER_SETUP, {"email": "grace@example.com"})["createCustomer"][
            "customer"
        ]["id"]
        credit = entry_input(customer, 4900, "CREDIT", "invoice-page-topup")
        assert _gql(base, key, CREATE_ENTRY, credit)["createLedgerEntry"]["wallet"]
        plan = _gql(base, key, BROWSER_PLAN, {})["createPlan"]["plan"]["id"]
        subscribe = {"customerId": customer, "planId": plan, "idempotencyKey": "invoice-page"}
        result = _gql(base, key, BROWSER_SUBSCRIBE, {"input": subscribe})["createSubscription"]
        assert result["__typename"] == "CreateSubscriptionSuccess", result
        [edge] = result["subscription"]["invoices"]["edges"]
        invoice = edge["node"]
        assert invoice["hostedUrl"].startswith(f"{base}/invoices/")

        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            watched = open_page(browser, base)
            page = watched.page
            response = page.goto(invoice["hostedUrl"])
            assert response is not None and response.status == 200
            main = page.inner_text("main")
            assert invoice["number"] in main and "49.00 USD" in main
            assert "Grace Hopper" in main and "grace@example.com" in main
            assert page.get_by_role("heading", level=1).inner_text() == (
                f"Invoice {invoice['number']}"
            )
            # The stylesheet applied (its own file, under the self-only policy).
            assert page.eval_on_selector("table.totals", "t => getComputedStyle(t).marginLeft")
            assert page.locator(".hint").is_visible()
            assert page.evaluate("window.__violations") == []

            page.emulate_media(media="print")
            controls = page.locator("button, a, input, select, textarea, nav, [role=button]")
            visible = [
                controls.nth(i).inner_text()
                for i in range(controls.count())
                if controls.nth(i).is_visible()
            ]
            assert visible == [], visible
            assert not page.locator(".hint").is_visible()
            printed = page.inner_text("main")
            assert invoice["number"] in printed and "49.00 USD" in printed
            assert page.pdf(format="A4")[:4] == b"%PDF"
        finally:
            browser.close()
        assert watched.foreign == [], watched.foreign
        assert watched.problems == [], watched.problems
