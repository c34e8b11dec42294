"""Headless Chromium for the tests of pages people use: Debian's browser driven by Playwright,
with every request to a host other than the server under test aborted and recorded."""

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

CHROMIUM = os.environ.get("BILLGRAPH_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# Every CSP violation the page sees, whatever reports it; runs before the page's scripts.
WATCH_POLICY = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__violations.push(`${event.violatedDirective} ${event.blockedURI}`);
});
"""


def require_browser() -> None:
    """Fails (never skips) when the browser or Playwright is missing."""
    assert Path(CHROMIUM).exists(), (
        f"no browser at {CHROMIUM}: install Debian's chromium "
        "(`apt-get install -y --no-install-recommends chromium`, as .ci/run does)"
    )
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as error:  # pragma: no cover - a setup failure, said clearly
        raise AssertionError("playwright is not installed: `make install` (dev extras)") from error


@dataclass
class WatchedPage:
    page: Any
    foreign: list[str] = field(default_factory=list)  # requests for other hosts, aborted
    problems: list[str] = field(default_factory=list)  # console errors/warnings, page errors


def open_page(browser: Any, base_url: str, **context_options: Any) -> WatchedPage:
    """A page of a new context that reaches only `base_url`'s host and records CSP
    violations (window.__violations), console errors and warnings, and page errors."""
    origin = urlsplit(base_url).netloc
    context = browser.new_context(**context_options)
    watched = WatchedPage(page=None)

    def only_this_server(route: Any) -> None:
        if urlsplit(route.request.url).netloc == origin:
            route.continue_()
        else:
            watched.foreign.append(route.request.url)
            route.abort()

    context.route("**/*", only_this_server)
    page = context.new_page()
    page.add_init_script(WATCH_POLICY)
    page.on(
        "console",
        lambda m: (
            watched.problems.append(f"console {m.type}: {m.text}")
            if m.type in ("error", "warning")
            else None
        ),
    )
    page.on("pageerror", lambda e: watched.problems.append(f"page error: {e}"))
    watched.page = page
    return watched
