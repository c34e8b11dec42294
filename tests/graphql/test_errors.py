"""Unexpected failures are masked: a code and a request id reach the client, details the log."""

from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import text

from billgraph.app import create_app
from billgraph.core.unit import unit_of_work
from billgraph.db.engine import Database, connect
from billgraph.db.migrate import upgrade
from billgraph.organizations import service as organizations
from billgraph.settings import Settings

LEAKS = ("Traceback", "sqlite", "sqlalchemy", "customers_gone", "no such table", "SELECT")


@pytest.fixture
async def broken(tmp_path) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:  # type: ignore[no-untyped-def]
    """A gateway whose database lost its customers table after an API key was made."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'broken.db'}"
    database: Database = connect(url)
    await upgrade(database)
    async with unit_of_work(database) as unit:
        created = await organizations.create(unit, "Broken")
    async with database.engine.begin() as connection:
        await connection.execute(text("ALTER TABLE customers RENAME TO customers_gone"))
    app = create_app(
        Settings(database_url=url, rate_limit_per_second=0, log_level="CRITICAL"), database
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t"
    ) as client:
        yield client, created.api_key.secret
    await database.dispose()


async def test_a_failing_resolver_is_masked(broken: tuple[httpx.AsyncClient, str]) -> None:
    client, key = broken
    response = await client.post(
        "/graphql",
        json={"query": "{ customers(first: 5) { edges { node { id } } } }"},
        headers={"authorization": f"Bearer {key}", "x-request-id": "req-123"},
    )
    body = response.json()
    assert body["errors"][0]["message"] == "Unexpected error."
    assert body["errors"][0]["extensions"] == {
        "code": "INTERNAL_SERVER_ERROR",
        "requestId": "req-123",
    }
    assert response.headers["x-request-id"] == "req-123"
    assert not any(leak in response.text for leak in LEAKS), response.text


async def test_a_failure_before_graphql_runs_is_masked(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # No migrations: authenticating the key fails on a missing table.
    url = f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
    database = connect(url)
    app = create_app(
        Settings(database_url=url, rate_limit_per_second=0, log_level="CRITICAL"), database
    )
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.post(
            "/graphql",
            json={"query": "{ viewer { name } }"},
            headers={"authorization": "Bearer bgk_x"},
        )
    await database.dispose()
    assert response.status_code == 500
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    assert error["extensions"]["requestId"] == response.headers["x-request-id"]
    assert not any(leak in response.text for leak in LEAKS), response.text
