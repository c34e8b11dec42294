"""bench.ledger, step 2: the dashboard query's SQL statements (in process) and its latency
(over HTTP)."""

import statistics
import time
from dataclasses import dataclass
from typing import Any

import httpx

from bench.harness.processes import Gateway
from bench.harness.progress import progress
from bench.harness.report import Table
from bench.harness.seed import Seeded
from billgraph.app import create_app
from billgraph.db.engine import Database
from billgraph.db.trace import count_statements
from billgraph.settings import Settings

PAGES = (10, 100)  # customers per request

DASHBOARD = """
query Dashboard($first: Int!) { viewer { customers(first: $first) { edges { node { id email
  wallets { id balance ledgerEntries(first: 10) { edges { node { id amount balanceAfter } } } }
} } } } }
"""


@dataclass
class Dashboard:
    runs: int  # timed requests per page size
    statements: dict[int, int]  # page size -> SQL statements of one request
    latencies: dict[int, list[float]]  # page size -> seconds of each timed request

    @property
    def statements_equal(self) -> bool:
        """The point of the batched loaders: as many statements for 100 customers as for 10."""
        return len(set(self.statements.values())) == 1

    def median_ms(self, first: int) -> float:
        return statistics.median(self.latencies[first]) * 1000

    def table(self) -> Table:
        return Table(
            "Dashboard query (`viewer.customers(first: N) { wallets { ledgerEntries(first: 10) } "
            "}`):",
            ["N", "SQL statements (in-process)", "median latency over HTTP"],
            [[str(f), str(self.statements[f]), f"{self.median_ms(f):.1f} ms"] for f in PAGES],
            left=0,
        )


def _request(first: int) -> dict[str, Any]:
    return {"query": DASHBOARD, "variables": {"first": first}}


def _check(response: httpx.Response, first: int) -> None:
    assert response.status_code == 200, response.text[:500]
    body = response.json()
    assert "errors" not in body, body.get("errors")
    edges = body["data"]["viewer"]["customers"]["edges"]
    assert len(edges) == first, f"{len(edges)} customers, expected {first}"
    for edge in edges:
        wallets = edge["node"]["wallets"]
        assert len(wallets) == 1, edge
        entries = wallets[0]["ledgerEntries"]["edges"]
        assert len(entries) == 10, f"{len(entries)} entries on {wallets[0]['id']}, expected 10"


async def _count_statements(database: Database, database_url: str, api_key: str) -> dict[int, int]:
    """Statements per request, on the app in this process (httpx.ASGITransport, same database)."""
    settings = Settings(database_url=database_url, rate_limit_per_second=0, log_level="WARNING")
    counts: dict[int, int] = {}
    seen: dict[int, list[str]] = {}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(settings, database)),
        base_url="http://billgraph.bench",
        headers={"authorization": f"Bearer {api_key}"},
        timeout=60,
    ) as client:
        # Warm up: the first request of a key may write lastUsedAt, the first connections
        # of the pool run the dialect's setup queries. Counted requests follow at once.
        for first in PAGES:
            _check(await client.post("/graphql", json=_request(first)), first)
        for first in PAGES:
            with count_statements(database) as statements:
                _check(await client.post("/graphql", json=_request(first)), first)
            counts[first], seen[first] = len(statements), list(statements)
            progress(
                f"step 2: dashboard first={first}: {len(statements)} SQL statements (in-process)"
            )
    for first, statements in seen.items():
        for statement in statements:
            progress(f"step 2:   first={first}: {' '.join(statement.split())[:110]}")
    return counts


async def dashboard(
    database: Database, database_url: str, seeded: Seeded, gateway: Gateway, runs: int
) -> Dashboard:
    counts = await _count_statements(database, database_url, seeded.api_key)
    latencies: dict[int, list[float]] = {}
    async with httpx.AsyncClient(
        base_url=gateway.base_url,
        headers={"authorization": f"Bearer {seeded.api_key}"},
        timeout=60,
    ) as client:
        for first in PAGES:
            for _ in range(3):  # warm-up, not timed
                _check(await client.post("/graphql", json=_request(first)), first)
            samples = []
            for _ in range(runs):
                t0 = time.perf_counter()
                response = await client.post("/graphql", json=_request(first))
                samples.append(time.perf_counter() - t0)
                _check(response, first)
            latencies[first] = samples
            progress(
                f"step 2: dashboard first={first} over HTTP: median "
                f"{statistics.median(samples) * 1000:.1f} ms ({runs} runs, "
                f"{len(response.content):,} bytes)"
            )
    return Dashboard(runs, counts, latencies)
