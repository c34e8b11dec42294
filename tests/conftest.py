"""Fixtures: every API test runs on SQLite and on a real PostgreSQL that the run starts itself.

Each test works inside organizations it creates, so tests share one migrated database per
backend and stay isolated by tenancy, the same rule the API enforces.
"""

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from billgraph.app import create_app
from billgraph.db.engine import Database, connect
from billgraph.db.migrate import upgrade
from billgraph.settings import Settings
from tests.support import postgres
from tests.support.graph import Tenant, new_tenant
from tests.support.ledger import ledger_violations

BACKENDS = ["sqlite", "postgresql"]
# For what only a PostgreSQL deployment does (several processes on one database, its
# LISTEN/NOTIFY broker): the test runs once, on PostgreSQL, and never skips.
postgresql_only = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[postgres.PostgresServer]:
    url = os.environ.get("BILLGRAPH_TEST_POSTGRES_URL")
    if url:  # an existing server the developer points us at
        yield postgres.PostgresServer(Path("/"), Path("/"), 0, False)  # type: ignore[misc]
        return
    # No skip: without PostgreSQL half the suite would silently not run.
    server = postgres.start()
    yield server
    server.stop()


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('sqlite') / 'billgraph.db'}"
    explicit = os.environ.get("BILLGRAPH_TEST_POSTGRES_URL")
    if explicit:
        return explicit
    server: postgres.PostgresServer = request.getfixturevalue("postgres_server")
    return server.url


@pytest.fixture(scope="session")
def settings(database_url: str) -> Settings:
    # Rate limiting has its own test with its own app; elsewhere it would only add noise.
    return Settings(
        database_url=database_url, rate_limit_per_second=0, log_json=True, log_level="WARNING"
    )


@pytest.fixture(scope="session")
async def database(settings: Settings) -> AsyncIterator[Database]:
    database = connect(settings.database_url)
    await upgrade(database)
    yield database
    await database.dispose()


@pytest.fixture(scope="session")
async def client(database: Database, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, database)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://billgraph.test") as client:
        yield client


@pytest.fixture
async def tenant(database: Database, client: httpx.AsyncClient) -> Tenant:
    return await new_tenant(database, client)


@pytest.fixture
async def other_tenant(database: Database, client: httpx.AsyncClient) -> Tenant:
    return await new_tenant(database, client)


async def assert_ledger_invariant(database: Database) -> None:
    """For every wallet: balance == sum(credits) - sum(debits) >= 0, its version is its entry
    count and last sequence, and every entry's balance_after is the running sum."""
    violations = await ledger_violations(database)
    assert violations == [], "ledger invariant broken:\n" + "\n".join(violations)
