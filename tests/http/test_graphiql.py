"""GraphiQL at GET /graphql comes from billgraph alone: the page, its scripts and styles,
under a Content-Security-Policy that allows nothing but this server. The browser test runs
the page in headless Chromium (Debian's, which .ci/run installs) against a real
`billgraph serve`, with every request for another host aborted: the editor renders, a query
typed into it returns data with a real API key set in the header editor, a subscription
typed into it gets a live balance over the socket, the explorer and the dialogs open, and
nothing broke the policy."""

import base64
import hashlib
import json
import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from billgraph.graphql.view import GRAPHIQL_CSP, GRAPHIQL_HTML
from tests.support.browser import CHROMIUM, CHROMIUM_FLAGS, open_page, require_browser
from tests.support.graph import CREATE_ENTRY, entry_input
from tests.support.server import create_organization, live_server

STATIC = Path(__file__).parents[2] / "billgraph" / "http" / "static"
# What the page loads: (attribute, URL relative to /graphql, integrity or None).
REFERENCES = re.findall(
    r'(src|href)="([^"]+)"(?:\s+integrity="([^"]+)")?', GRAPHIQL_HTML, flags=re.MULTILINE
)


def test_the_page_loads_only_billgraphs_own_files_and_each_matches_its_integrity() -> None:
    assert len(REFERENCES) >= 8, REFERENCES
    assert "<script>" not in GRAPHIQL_HTML and "style=" not in GRAPHIQL_HTML  # nothing inline
    for _, url, integrity in REFERENCES:
        assert url.startswith("static/graphiql/"), url  # relative: this server, any prefix
        path = STATIC / url.removeprefix("static/")
        assert path.is_file(), path
        if url.endswith((".js", ".css")) and "/vendor/" in url:
            assert integrity, f"{url} has no integrity"
        if integrity:
            digest = base64.b64encode(hashlib.sha384(path.read_bytes()).digest()).decode()
            assert integrity == f"sha384-{digest}", f"{url} does not match its integrity"
    for vendored in (STATIC / "graphiql" / "vendor").iterdir():
        assert (vendored / "LICENSE").is_file(), f"{vendored.name} has no LICENSE"


async def test_graphiql_page_has_a_self_only_policy_and_its_files_are_served(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get("/graphql", headers={"accept": "text/html"})
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["content-security-policy"] == GRAPHIQL_CSP
    assert "default-src 'self'" in GRAPHIQL_CSP and "unsafe" not in GRAPHIQL_CSP
    assert "https://" not in page.text and "http://" not in page.text
    for _, url, _ in REFERENCES:
        served = await client.get(f"/{url}")
        assert served.status_code == 200, url
        assert served.content == (STATIC / url.removeprefix("static/")).read_bytes(), url
    assert (await client.get("/static/graphiql/nope.js")).status_code == 404
    assert (await client.get("/static/../app.py")).status_code == 404


def _set_editor(page: Any, selector: str, text: str) -> None:
    """Replace a CodeMirror editor's text, as pasting would (no auto-closed brackets)."""
    page.locator(selector).first.click()
    page.keyboard.press("Control+A")
    page.keyboard.press("Delete")
    page.keyboard.insert_text(text)


def _type_query(page: Any, text: str) -> None:
    """Replace the query; GraphiQL has taken it once the page's URL shares it (?q=)."""
    _set_editor(page, ".graphiql-query-editor .CodeMirror", text)
    page.wait_for_function(
        "text => new URLSearchParams(location.search).get('q') === text", arg=text, timeout=10_000
    )


def test_graphiql_runs_in_a_browser_from_this_server_alone(tmp_path: Path) -> None:
    require_browser()
    from playwright.sync_api import sync_playwright

    url = f"sqlite+aiosqlite:///{tmp_path / 'graphiql.db'}"
    api_key = create_organization(url, "GraphiQL Org")["api_key"]
    auth = {"authorization": f"Bearer {api_key}"}
    with live_server(url) as server, sync_playwright() as playwright:
        origin = urlsplit(server.base_url).netloc
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            watched = open_page(browser, server.base_url, viewport={"width": 1400, "height": 900})
            page, foreign, problems = watched.page, watched.foreign, watched.problems
            sockets: list[Any] = []
            page.on("websocket", lambda socket: sockets.append(socket))

            page.goto(f"{server.base_url}/graphql", wait_until="load")
            page.wait_for_selector(".graphiql-query-editor .CodeMirror", timeout=30_000)

            # The key goes where people put it: the header editor.
            page.get_by_role("button", name="Headers").click()
            _set_editor(
                page,
                ".graphiql-editor-tool .CodeMirror:visible",
                json.dumps({"Authorization": f"Bearer {api_key}"}),
            )
            _type_query(page, "{ viewer { name } }")
            page.locator(".graphiql-execute-button").click()
            response = page.locator(".graphiql-response")
            response.get_by_text('"GraphiQL Org"').wait_for(timeout=15_000)

            # A subscription over the socket, authenticated with the same header.
            _type_query(page, "subscription { walletBalanceChanged { balance entry { reason } } }")
            page.locator(".graphiql-execute-button").click()
            deadline = time.monotonic() + 15
            while not sockets and time.monotonic() < deadline:
                page.wait_for_timeout(100)
            assert sockets, "the subscription opened no WebSocket"
            assert urlsplit(sockets[0].url).netloc == origin, sockets[0].url
            page.wait_for_timeout(1000)  # the socket's init and subscribe reach the server
            created = httpx.post(
                f"{server.base_url}/graphql",
                json={
                    "query": 'mutation { createCustomer(input: {email: "ada@example.com"}) '
                    "{ ... on CreateCustomerSuccess { customer { id } } } }"
                },
                headers=auth,
            ).json()
            customer = created["data"]["createCustomer"]["customer"]["id"]
            posted = httpx.post(
                f"{server.base_url}/graphql",
                json={
                    "query": CREATE_ENTRY,
                    "variables": entry_input(customer, 1234, "CREDIT", "graphiql", "USD", "hello"),
                },
                headers=auth,
            ).json()
            assert posted["data"]["createLedgerEntry"]["wallet"]["balance"] == 1234, posted
            response.get_by_text('"hello"').wait_for(timeout=15_000)
            assert "1234" in response.inner_text()

            # The explorer plugin, and a dialog (whose scroll lock is the page's one inline style).
            page.get_by_role("button", name="Show GraphiQL Explorer").click()
            explorer = page.locator(".graphiql-plugin")  # shows the document's subscription
            explorer.get_by_text("walletLowBalance", exact=True).wait_for(timeout=10_000)
            page.get_by_role("button", name="Open settings dialog").click()
            page.get_by_role("dialog").wait_for(timeout=10_000)
            page.keyboard.press("Escape")
            page.get_by_role("dialog").wait_for(state="hidden", timeout=10_000)

            screenshot = tmp_path / "graphiql.png"
            page.screenshot(path=str(screenshot))
            print(f"screenshot: {screenshot}")
            violations = page.evaluate("window.__violations")
        finally:
            browser.close()
    assert not foreign, f"the page asked other hosts: {foreign}"
    assert not violations, f"Content-Security-Policy violations: {violations}"
    assert not problems, "\n".join(problems)
