"""SQL statements per request of a read, counted on the gateway's app in this process
(httpx.ASGITransport, the benchmark's database): the engine's own statement counter,
billgraph.db.trace, sees what a worker of `billgraph serve` would run."""

from dataclasses import dataclass

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


def normalized(statement: str) -> str:
    return " ".join(statement.split())


async def count_reads(
    database: Database, database_url: str, api_key: str, reads: list[Read]
) -> dict[str, Statements]:
    """Read name -> the statements its requests run (the bodies spread over the read's)."""
    settings = Settings(database_url=database_url, rate_limit_per_second=0, log_level="WARNING")
    found: dict[str, Statements] = {}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(settings, database)),
        base_url="http://billgraph.bench",
        headers={"authorization": f"Bearer {api_key}", "content-type": "application/json"},
        timeout=60,
    ) as client:
        for read in reads:
            step = max(1, len(read.bodies) // (2 * REQUESTS))
            bodies = read.bodies[::step][: 2 * REQUESTS]
            # Warm-up: the pool's first connections run the dialect's setup queries, and the
            # key's first use may write lastUsedAt (at most once a minute).
            for body in bodies[:REQUESTS]:
                response = await client.post("/graphql", content=body)
                read.check(response.status_code, response.text)
            total, last = 0, []
            for body in bodies[REQUESTS:]:
                with count_statements(database) as statements:
                    response = await client.post("/graphql", content=body)
                read.check(response.status_code, response.text)
                total, last = total + len(statements), list(statements)
            found[read.name] = Statements(total / len(bodies[REQUESTS:]), last)
    return found
