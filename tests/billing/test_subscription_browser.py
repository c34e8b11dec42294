"""The sandbox subscription checkout in a real headless Chromium against a real `billgraph
serve`, on SQLite and on PostgreSQL: createSubscription, open its checkoutSession's url, type
4242 4242 4242 4242 and save: ACTIVE, the first invoice PAID. Then a trial on a test clock
collects 4000 0000 0000 0341 through createCheckoutSession(mode: SUBSCRIPTION): saved, nothing
charged; the clock advanced past the trial walks dunning (PAST_DUE). Every request for
another host is aborted, and the page breaks no part of its policy."""

from typing import Any

import httpx

from tests.support.browser import CHROMIUM, CHROMIUM_FLAGS, open_page, require_browser
from tests.support.server import create_organization, live_server

SUBSCRIPTION = """id status invoices(first: 5) { edges { node { status amountPaid
  attemptCount nextPaymentAttemptAt } } }"""
CREATE_SUBSCRIPTION = f"""mutation($input: CreateSubscriptionInput!) {{
  createSubscription(input: $input) {{ __typename
    ... on CreateSubscriptionSuccess {{ subscription {{ {SUBSCRIPTION} }}
      checkoutSession {{ id url providerSessionId amount }} }}
    ... on UserError {{ code message }} }} }}"""
CREATE_SESSION = """mutation($input: CreateCheckoutSessionInput!) {
  createCheckoutSession(input: $input) { __typename
    ... on CreateCheckoutSessionSuccess { checkoutSession { id url providerSessionId amount } }
    ... on UserError { code message } } }"""
NODE = f"query($id: ID!) {{ node(id: $id) {{ ... on Subscription {{ {SUBSCRIPTION} }} }} }}"


def _gql(base_url: str, key: str, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    body = httpx.post(
        f"{base_url}/graphql",
        json={"query": query, "variables": variables},
        headers={"authorization": f"Bearer {key}"},
        timeout=30,
    ).json()
    assert "errors" not in body, body
    (result,) = body["data"].values()
    return result  # type: ignore[no-any-return]


def test_the_sandbox_subscription_checkout_in_a_browser(database_url: str) -> None:
    require_browser()
    from playwright.sync_api import sync_playwright

    key = create_organization(database_url, "Browser Subscription Org")["api_key"]
    with live_server(database_url) as server, sync_playwright() as playwright:
        base = server.base_url

        def gql(query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
            return _gql(base, key, query, variables or {})

        def customer(clock: str | None = None) -> str:
            fields = {"email": f"subscriber{clock is not None:d}@example.com"}
            if clock is not None:
                fields["testClockId"] = clock
            made = gql(
                "mutation($input: CreateCustomerInput!) { createCustomer(input: $input) "
                "{ ... on CreateCustomerSuccess { customer { id } } } }",
                {"input": fields},
            )
            return made["customer"]["id"]  # type: ignore[no-any-return]

        def plan(trial_days: int = 0) -> str:
            made = gql(
                "mutation($input: CreatePlanInput!) { createPlan(input: $input) "
                "{ ... on CreatePlanSuccess { plan { id } } } }",
                {
                    "input": {
                        "name": "Team",
                        "amount": 1500,
                        "currency": "USD",
                        "interval": "MONTH",
                        "trialDays": trial_days,
                    }
                },
            )
            return made["plan"]["id"]  # type: ignore[no-any-return]

        def subscribe(who: str, on: str, idempotency_key: str) -> dict[str, Any]:
            result = gql(
                CREATE_SUBSCRIPTION,
                {
                    "input": {
                        "customerId": who,
                        "planId": on,
                        "successUrl": f"{base}/healthz?subscribed={{CHECKOUT_SESSION_ID}}",
                        "cancelUrl": f"{base}/healthz?cancelled=1",
                        "idempotencyKey": idempotency_key,
                    }
                },
            )
            assert result["__typename"] == "CreateSubscriptionSuccess", result
            return result

        def subscription(subscription_id: str) -> dict[str, Any]:
            node = gql(NODE, {"id": subscription_id})
            node["invoices"] = [e["node"] for e in node["invoices"]["edges"]]
            return node

        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            watched = open_page(browser, base)
            page, foreign, problems = watched.page, watched.foreign, watched.problems

            # No credit: the checkout collects the card, which pays the first invoice.
            created = subscribe(customer(), plan(), "browser-sub-1")
            assert created["subscription"]["status"] == "INCOMPLETE"
            session = created["checkoutSession"]
            page.goto(session["url"])
            assert "15.00 USD" in page.inner_text("main")
            page.get_by_label("Card number").fill("4242 4242 4242 4242")
            page.get_by_role("button", name="Save card and pay").focus()
            page.keyboard.press("Enter")
            page.wait_for_url(f"{base}/healthz?subscribed={session['providerSessionId']}")
            after = subscription(created["subscription"]["id"])
            assert after["status"] == "ACTIVE"
            assert [(i["status"], i["amountPaid"]) for i in after["invoices"]] == [("PAID", 1500)]
            assert page.evaluate("window.__violations") == []

            # A trial on a test clock: 0341 is saved (nothing charged yet) ...
            clock = gql(
                "mutation($input: CreateTestClockInput!) { createTestClock(input: $input) "
                "{ ... on CreateTestClockSuccess { testClock { id } } } }",
                {"input": {"frozenTime": "2028-03-01T00:00:00Z"}},
            )["testClock"]["id"]
            trialing = customer(clock)
            trial = subscribe(trialing, plan(trial_days=7), "browser-sub-2")
            assert trial["subscription"]["status"] == "TRIALING"
            assert trial["checkoutSession"] is None
            opened = gql(
                CREATE_SESSION,
                {
                    "input": {
                        "customerId": trialing,
                        "mode": "SUBSCRIPTION",
                        "subscriptionId": trial["subscription"]["id"],
                        "successUrl": f"{base}/healthz?saved={{CHECKOUT_SESSION_ID}}",
                        "cancelUrl": f"{base}/healthz?cancelled=1",
                        "idempotencyKey": "browser-collect-1",
                    }
                },
            )
            assert opened["__typename"] == "CreateCheckoutSessionSuccess", opened
            saving = opened["checkoutSession"]
            assert saving["amount"] == 0
            page.goto(saving["url"])
            assert "nothing is charged now" in page.inner_text("main")
            page.get_by_label("Card number").press_sequentially("4000000000000341")
            page.get_by_role("button", name="Save card").click()
            page.wait_for_url(f"{base}/healthz?saved={saving['providerSessionId']}")
            assert subscription(trial["subscription"]["id"])["status"] == "TRIALING"

            # ... and the clock advanced past the trial walks dunning.
            advanced = gql(
                "mutation($input: AdvanceTestClockInput!) { advanceTestClock(input: $input) "
                "{ __typename ... on AdvanceTestClockSuccess { billingRun { failed } } } }",
                {"input": {"testClockId": clock, "frozenTime": "2028-03-09T00:00:00Z"}},
            )
            assert advanced["billingRun"]["failed"] == 1, advanced
            dunning = subscription(trial["subscription"]["id"])
            assert dunning["status"] == "PAST_DUE"
            [invoice] = dunning["invoices"]
            assert invoice["status"] == "OPEN" and invoice["attemptCount"] == 1
            assert invoice["nextPaymentAttemptAt"] is not None
            assert page.evaluate("window.__violations") == []
        finally:
            browser.close()
        assert foreign == [], foreign
        assert problems == [], problems
