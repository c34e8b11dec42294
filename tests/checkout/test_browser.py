"""The sandbox flow in a real headless Chromium against a real `billgraph serve`, on SQLite
and on PostgreSQL: open the session's url, type the card number, press Pay (with the
keyboard), land on successUrl, and see the balance changed through GraphQL; a declined card
shows its error and leaves the session payable; a 3-D Secure card asks for the extra step.
Every request for another host is aborted, and the page breaks no part of its policy."""

from typing import Any

import httpx

from tests.support.browser import CHROMIUM, CHROMIUM_FLAGS, open_page, require_browser
from tests.support.checkout import CREATE_SESSION, SESSION, session_input
from tests.support.server import create_organization, live_server


def _gql(base_url: str, key: str, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    body = httpx.post(
        f"{base_url}/graphql",
        json={"query": query, "variables": variables},
        headers={"authorization": f"Bearer {key}"},
        timeout=30,
    ).json()
    assert "errors" not in body, body
    return body["data"]  # type: ignore[no-any-return]


BALANCE = "query($id: ID!) { customer(id: $id) { wallet(currency: USD) { balance } } }"


def test_the_sandbox_checkout_in_a_browser(database_url: str) -> None:
    require_browser()
    from playwright.sync_api import sync_playwright

    key = create_organization(database_url, "Browser Checkout Org")["api_key"]
    with live_server(database_url) as server, sync_playwright() as playwright:
        base = server.base_url
        customer = _gql(
            base,
            key,
            'mutation { createCustomer(input: {email: "browser@example.com"}) '
            "{ ... on CreateCustomerSuccess { customer { id } } } }",
            {},
        )["createCustomer"]["customer"]["id"]

        def open_session(amount: int) -> dict[str, Any]:
            variables = session_input(
                customer,
                amount,
                successUrl=f"{base}/healthz?paid={{CHECKOUT_SESSION_ID}}",
                cancelUrl=f"{base}/healthz?cancelled=1",
            )
            result = _gql(base, key, CREATE_SESSION, variables)["createCheckoutSession"]
            assert result["__typename"] == "CreateCheckoutSessionSuccess", result
            return result["checkoutSession"]  # type: ignore[no-any-return]

        def balance() -> int:
            return _gql(base, key, BALANCE, {"id": customer})["customer"]["wallet"]["balance"]  # type: ignore[no-any-return]

        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            watched = open_page(browser, base)
            page, foreign, problems = watched.page, watched.foreign, watched.problems

            # The success card: typed, Pay pressed with the keyboard, landed on successUrl.
            paid = open_session(2000)
            page.goto(paid["url"])
            assert "20.00 USD" in page.inner_text("main")
            page.get_by_label("Card number").fill("4242 4242 4242 4242")
            page.get_by_role("button", name="Pay").focus()
            page.keyboard.press("Enter")
            page.wait_for_url(f"{base}/healthz?paid={paid['providerSessionId']}")
            assert balance() == 2000
            assert page.evaluate("window.__violations") == []

            # A declined card: the error on the page, the session still OPEN; another card pays.
            declined = open_session(500)
            page.goto(declined["url"])
            page.get_by_label("Card number").press_sequentially("4000000000009995")
            page.get_by_role("button", name="Pay").click()
            page.get_by_role("alert").get_by_text("insufficient funds").wait_for()
            node = _gql(base, key, SESSION, {"id": declined["id"]})["node"]
            assert node["status"] == "OPEN"
            assert node["lastPaymentError"]["code"] == "insufficient_funds"
            assert balance() == 2000
            page.get_by_label("Card number").fill("4242424242424242")
            page.get_by_role("button", name="Pay").click()
            page.wait_for_url(f"{base}/healthz?paid={declined['providerSessionId']}")
            assert balance() == 2500

            # 3-D Secure: the extra step, failed once, then completed.
            secure = open_session(125)
            page.goto(secure["url"])
            page.get_by_label("Card number").fill("4000 0025 0000 3155")
            page.get_by_role("button", name="Pay").click()
            page.get_by_role("button", name="Fail authentication").click()
            page.get_by_role("alert").get_by_text("authentication failed").wait_for()
            assert balance() == 2500
            page.get_by_label("Card number").fill("4000 0025 0000 3155")
            page.get_by_role("button", name="Pay").click()
            page.get_by_role("button", name="Complete authentication").click()
            page.wait_for_url(f"{base}/healthz?paid={secure['providerSessionId']}")
            assert balance() == 2625
            node = _gql(base, key, SESSION, {"id": secure["id"]})["node"]
            assert node["status"] == "COMPLETE" and node["ledgerEntry"]["amount"] == 125
            assert page.evaluate("window.__violations") == []
        finally:
            browser.close()
        assert foreign == [], foreign
        # A declined card's page is answered 402 (Payment Required), which Chromium notes.
        declines = "the server responded with a status of 402"
        assert [p for p in problems if declines not in p] == [], problems
