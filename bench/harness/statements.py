"""SQL statements per request of a read (or of bench.ledger's posting), counted on the gateway's app in this process
(httpx.ASGITransport, the benchmark's database): the engine's own statement counter,
billgraph.db.trace, sees what a worker of `billgraph serve` would run. And the Python calls
per request (cProfile's count, the app called directly as ASGI): unlike CPU time, which moves
by half or more between two minutes of these shared machines, the count is the same from run
to run, so it tells a change's effect apart from the machine's."""

import cProfile
import pstats
import random
from dataclasses import dataclass
from typing import Any

import httpx

from bench.harness.reading import Read
from billgraph.app import create_app
from billgraph.db.engine import Database
from billgraph.db.trace import count_statements
from billgraph.settings import Settings

REQUESTS = 5  # counted per read, after as many warm-up requests


@dataclass(frozen=True)
class Statements:
    per_request: float
    last: list[str]  # the statements of the last counted request, in order
    calls: float  # Python function calls per request (cProfile), the ASGI call included


def normalized(statement: str) -> str:
    return " ".join(statement.split())


async def count_reads(
    database: Database, database_url: str, api_key: str, reads: list[Read]
) -> dict[str, Statements]:
    """Read name -> the statements its requests run (the bodies spread over the read's)."""
    settings = Settings(database_url=database_url, rate_limit_per_second=0, log_level="WARNING")
    found: dict[str, Statements] = {}
    app = create_app(settings, database)
    headers = [
        (b"host", b"billgraph.bench"),
        (b"authorization", f"Bearer {api_key}".encode()),
        (b"content-type", b"application/json"),
    ]
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://billgraph.bench",
        headers={"authorization": f"Bearer {api_key}", "content-type": "application/json"},
        timeout=60,
    ) as client:
        for read in reads:
            if read.bodies:
                step = max(1, len(read.bodies) // (2 * REQUESTS))
                spread = read.bodies[::step][: 2 * REQUESTS]
                warm, counted, profiled = spread[:REQUESTS], spread[REQUESTS:], spread[REQUESTS:]
            else:  # each request a body of its own (a posting's fresh key): none sent twice
                rng = random.Random(read.name)
                warm, counted, profiled = ([read.body(rng) for _ in range(REQUESTS)] for _ in "abc")
            # Warm-up: the pool's first connections run the dialect's setup queries, and the
            # key's first use may write lastUsedAt (at most once a minute).
            for body in warm:
                response = await client.post("/graphql", content=body)
                read.check(response.status_code, response.text)
            total, last = 0, []
            for body in counted:
                with count_statements(database) as statements:
                    response = await client.post("/graphql", content=body)
                read.check(response.status_code, response.text)
                total, last = total + len(statements), list(statements)
            profile = cProfile.Profile()
            for body in profiled:
                profile.enable()
                status, text = await _post(app, headers, body)
                profile.disable()
                read.check(status, text)
            calls = pstats.Stats(profile).total_calls / len(profiled)  # type: ignore[attr-defined]
            found[read.name] = Statements(total / len(counted), last, calls)
    return found


async def _post(app: Any, headers: list[tuple[bytes, bytes]], body: bytes) -> tuple[int, str]:
    """POST /graphql on the ASGI app itself: the fewest calls outside the app."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/graphql",
        "raw_path": b"/graphql",
        "query_string": b"",
        "root_path": "",
        "headers": [*headers, (b"content-length", str(len(body)).encode())],
        "client": ("127.0.0.1", 1),
        "server": ("billgraph.bench", 80),
    }
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop() if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    text = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, text.decode()
