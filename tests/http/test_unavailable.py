"""When the database is unavailable (down, unreachable, too slow) the answer is HTTP 503 with
Retry-After and the code SERVICE_UNAVAILABLE, on every path: authenticating the key, inside a
resolver, reading or writing. It is logged as a warning, not a stack trace; once the database
is back the same requests succeed, and a write retried with its idempotency key is written
once."""

import asyncio
import errno
import sqlite3
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy import exc as sa
from sqlalchemy import text

from billgraph.app import create_app
from billgraph.core.unit import unit_of_work
from billgraph.db.availability import is_unavailable
from billgraph.db.engine import Database, connect
from billgraph.db.migrate import upgrade
from billgraph.graphql.node import from_global_id
from billgraph.http.auth import authenticate
from billgraph.organizations import service as organizations
from billgraph.settings import Settings
from tests.conftest import assert_ledger_invariant
from tests.support import postgres
from tests.support.graph import CREATE_ENTRY, entry_input
from tests.support.leaks import assert_no_leak
from tests.support.server import LiveServer, create_organization, live_server

# --- what counts as unavailable ------------------------------------------------------------


def _sqlite_error(message: str, code: int) -> sqlite3.OperationalError:
    error = sqlite3.OperationalError(message)
    error.sqlite_errorcode = code  # type: ignore[attr-defined]
    return error


def _wrapped(orig: BaseException, kind: type[sa.DBAPIError] = sa.OperationalError) -> Exception:
    return kind("SELECT 1", {}, orig)  # type: ignore[arg-type]


def _caused(error: BaseException, cause: BaseException) -> BaseException:
    error.__cause__ = cause
    return error


@pytest.mark.parametrize(
    "error",
    [
        ConnectionRefusedError(errno.ECONNREFUSED, "Connect call failed"),
        ConnectionResetError(),
        OSError("Multiple exceptions: [Errno 111] Connect call failed"),
        TimeoutError(),
        sa.TimeoutError("QueuePool limit of size 20 overflow 0 reached"),
        asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed"),
        asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
        asyncpg.exceptions.AdminShutdownError("terminating connection"),
        asyncpg.exceptions.QueryCanceledError("canceling statement due to statement timeout"),
        asyncpg.exceptions.TooManyConnectionsError("too many clients"),
        _wrapped(Exception("connection is closed"), sa.InterfaceError),
        sa.DBAPIError("SELECT 1", {}, Exception("gone"), connection_invalidated=True),
        _caused(
            sa.DBAPIError("SELECT 1", {}, Exception("x")),
            asyncpg.exceptions.QueryCanceledError("canceling statement"),
        ),
        _wrapped(_caused(Exception("adapted"), asyncpg.exceptions.ConnectionFailureError("x"))),
        _wrapped(_sqlite_error("database is locked", sqlite3.SQLITE_BUSY)),
        _wrapped(_sqlite_error("unable to open database file", sqlite3.SQLITE_CANTOPEN)),
        _wrapped(_sqlite_error("disk I/O error", sqlite3.SQLITE_IOERR | (3 << 8))),  # extended
        _caused(RuntimeError("while rolling back"), ConnectionResetError()),
    ],
    ids=lambda e: type(e).__name__,
)
def test_outages_are_unavailable(error: BaseException) -> None:
    assert is_unavailable(error)


@pytest.mark.parametrize(
    "error",
    [
        ValueError("a bug"),
        KeyError("x"),
        FileNotFoundError("missing.html"),
        PermissionError("denied"),
        _wrapped(_sqlite_error("no such table: customers", sqlite3.SQLITE_ERROR)),
        _wrapped(_sqlite_error("Error binding parameter 1", 0), sa.InterfaceError),
        _wrapped(Exception("duplicate key"), sa.IntegrityError),
        asyncpg.exceptions.UndefinedTableError('relation "customers" does not exist'),
        asyncpg.exceptions.UniqueViolationError("duplicate key"),
        _caused(RuntimeError("bug"), ValueError("cause")),
    ],
    ids=lambda e: type(e).__name__,
)
def test_bugs_are_not(error: BaseException) -> None:
    assert not is_unavailable(error)


# --- in process: a database that cannot be opened -----------------------------------------


def assert_unavailable(response: httpx.Response) -> dict[str, Any]:
    """503, Retry-After, every error SERVICE_UNAVAILABLE with the request id, no internals."""
    assert response.status_code == 503, (response.status_code, response.text[:2000])
    assert int(response.headers["retry-after"]) >= 1, response.headers
    assert response.headers["content-type"].split(";")[0].endswith("json"), response.headers
    assert_no_leak(response.text)
    body: dict[str, Any] = response.json()
    assert body["errors"], body
    for error in body["errors"]:
        assert error["extensions"]["code"] == "SERVICE_UNAVAILABLE", body
        assert error["extensions"]["requestId"] == response.headers["x-request-id"], body
        assert error["message"], body
    return body


@dataclass
class Outage:
    client: httpx.AsyncClient
    key: str
    good: Database


@pytest.fixture
async def outage(tmp_path: Path) -> AsyncIterator[Outage]:
    """A gateway that can read its API keys but not its data: the file the data is in cannot
    be opened (the key was used a moment ago, so authenticating writes nothing)."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'keys.db'}"
    good = connect(url)
    await upgrade(good)
    async with unit_of_work(good) as unit:
        created = await organizations.create(unit, "Outage")
    assert await authenticate(good, created.api_key.secret) is not None  # lastUsedAt set
    gone = connect(f"sqlite+aiosqlite:///{tmp_path / 'no-such-dir' / 'data.db'}")
    database = Database(
        engine=gone.engine,
        autocommit=good.autocommit,
        sessions=gone.sessions,
        transactions=gone.transactions,
    )
    settings = Settings(database_url=url, rate_limit_per_second=0, log_level="CRITICAL")
    app = create_app(settings, database)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://billgraph.test"
    ) as client:
        yield Outage(client, created.api_key.secret, good)
    await gone.dispose()
    await good.dispose()


CUSTOMERS = "{ customers(first: 5) { edges { node { id email } } } }"
CREATE_CUSTOMER = 'mutation { createCustomer(input: {email: "outage@example.com"}) { __typename } }'


@pytest.mark.parametrize(
    ("method", "request_kwargs"),
    [
        ("POST", {"json": {"query": CUSTOMERS}}),
        ("GET", {"params": {"query": CUSTOMERS}}),
        ("POST", {"json": {"query": CREATE_CUSTOMER}}),
        (
            "POST",
            {
                "json": {
                    "query": CREATE_ENTRY,
                    "variables": entry_input("Q3VzdG9tZXI6MQ", 100, "CREDIT", "outage"),
                }
            },
        ),
        (
            "POST",
            {
                "json": {"query": CREATE_CUSTOMER},
                "headers": {"accept": "application/graphql-response+json"},
            },
        ),
    ],
    ids=["read", "read-over-get", "write", "ledger-write", "graphql-response-json"],
)
async def test_a_resolver_that_cannot_reach_the_database_answers_503(
    outage: Outage, method: str, request_kwargs: dict[str, Any]
) -> None:
    headers = {"authorization": f"Bearer {outage.key}", **request_kwargs.pop("headers", {})}
    response = await outage.client.request(method, "/graphql", headers=headers, **request_kwargs)
    assert_unavailable(response)


async def test_what_needs_no_database_still_answers(outage: Outage) -> None:
    response = await outage.client.post(
        "/graphql",
        json={"query": "{ viewer { name } }"},
        headers={"authorization": f"Bearer {outage.key}"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["data"]["viewer"]["name"] == "Outage"


async def test_authenticating_against_an_unreachable_database_answers_503(
    tmp_path: Path,
) -> None:
    """Outside GraphQL execution (the key is looked up before it runs): the same 503."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'no-such-dir' / 'billgraph.db'}"
    database = connect(url)
    app = create_app(
        Settings(database_url=url, rate_limit_per_second=0, log_level="CRITICAL"), database
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://billgraph.test"
    ) as client:
        for method, kwargs in [
            ("POST", {"json": {"query": "{ viewer { name } }"}}),
            ("POST", {"json": {"query": CREATE_CUSTOMER}}),
            ("GET", {"params": {"query": "{ viewer { name } }"}}),
        ]:
            response = await client.request(
                method, "/graphql", headers={"authorization": "Bearer bgk_x"}, **kwargs
            )
            assert_unavailable(response)
        health = await client.get("/healthz")
    await database.dispose()
    assert health.status_code == 503


# --- a real PostgreSQL, stopped under load and started again --------------------------------


@dataclass
class Load:
    """Credits posted by concurrent writers, each with its own idempotency key."""

    client: httpx.AsyncClient
    customer_id: str
    statuses: Counter[int] = field(default_factory=Counter)
    unanswered: dict[str, int] = field(default_factory=dict)  # key: amount, not a 200
    written: dict[str, int] = field(default_factory=dict)  # key: amount, answered 200
    outage_started: bool = False
    during_outage: Counter[int] = field(default_factory=Counter)

    async def post(self, key: str, amount: int) -> httpx.Response:
        response = await self.client.post(
            "/graphql",
            json={
                "query": CREATE_ENTRY,
                "variables": entry_input(self.customer_id, amount, "CREDIT", key),
            },
        )
        self.statuses[response.status_code] += 1
        if self.outage_started:
            self.during_outage[response.status_code] += 1
        if response.status_code == 200:
            result = response.json()["data"]["createLedgerEntry"]
            assert result["__typename"] == "CreateLedgerEntrySuccess", result
            self.written[key] = amount
            self.unanswered.pop(key, None)
        else:
            assert_unavailable(response)
            self.unanswered[key] = amount
        return response

    async def writer(self, name: str, stop: asyncio.Event) -> None:
        n = 0
        while not stop.is_set():
            n += 1
            await self.post(f"{name}-{n}", n % 7 + 1)


def _stop(server: postgres.PostgresServer) -> None:
    server.run("pg_ctl", "-D", str(server.root / "data"), "-m", "immediate", "stop")


def _start_again(server: postgres.PostgresServer) -> None:
    # `restart` starts it with the options of its last start (postmaster.opts).
    server.run(
        "pg_ctl",
        "-D",
        str(server.root / "data"),
        "-l",
        str(server.root / "server.log"),
        "-w",
        "-t",
        "60",
        "restart",
        check=False,
    )


async def _until_answered(client: httpx.AsyncClient, payload: dict[str, Any]) -> httpx.Response:
    """The request, retried as a client told Retry-After would, until it is not a 503."""
    deadline = asyncio.get_running_loop().time() + 60
    while True:
        response = await client.post("/graphql", json=payload)
        if response.status_code != 503:
            return response
        assert_unavailable(response)
        assert asyncio.get_running_loop().time() < deadline, "the gateway did not recover"
        await asyncio.sleep(int(response.headers["retry-after"]) / 10)


WALLET = "query($id: ID!) { customer(id: $id) { wallet(currency: USD) { balance version } } }"


async def _wallet(client: httpx.AsyncClient, customer_id: str) -> dict[str, Any]:
    response = await _until_answered(client, {"query": WALLET, "variables": {"id": customer_id}})
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    return body["data"]["customer"]["wallet"]  # type: ignore[no-any-return]


async def _keys_written(database: Database, customer_id: int) -> Counter[str]:
    async with database.engine.connect() as connection:
        rows = await connection.execute(
            text(
                "SELECT e.idempotency_key FROM ledger_entries e "
                "JOIN wallets w ON w.id = e.wallet_id WHERE w.customer_id = :c"
            ),
            {"c": customer_id},
        )
        return Counter(row[0] for row in rows)


def _log_says_warning_not_traceback(gateway: LiveServer) -> None:
    log = gateway.log()
    assert "database unavailable" in log, log[-3000:]
    assert '"path": "/graphql"' in log, log[-3000:]  # authenticating the key
    assert '"path": ["customer"' in log, log[-3000:]  # inside a resolver
    for failure in ("Exception in ASGI application", "unexpected error", "unhandled error"):
        assert failure not in log, log[-5000:]


async def test_postgres_stopped_under_load_is_a_503_then_each_write_lands_once() -> None:
    # Durable: an immediate stop is a crash, and a 200 must survive it (fsync and synchronous
    # commits on, unlike the suite's shared server).
    server = postgres.start(durable=True)
    try:
        organization = create_organization(server.url, "Outage")
        env = {"BILLGRAPH_STATEMENT_TIMEOUT_MS": "1000"}
        with live_server(server.url, env=env) as gateway:
            async with httpx.AsyncClient(
                base_url=gateway.base_url,
                headers={"authorization": f"Bearer {organization['api_key']}"},
                timeout=60,
            ) as client:
                await _outage_and_recovery(server, gateway, client)
                await _statement_timeout(server, gateway, client)
            _log_says_warning_not_traceback(gateway)
    finally:
        server.stop()


async def _create_customer(client: httpx.AsyncClient, email: str) -> str:
    created = await client.post(
        "/graphql",
        json={
            "query": f'mutation {{ createCustomer(input: {{email: "{email}"}}) '
            "{ ... on CreateCustomerSuccess { customer { id } } } }"
        },
    )
    assert created.status_code == 200, created.text
    return created.json()["data"]["createCustomer"]["customer"]["id"]  # type: ignore[no-any-return]


async def _outage_and_recovery(
    server: postgres.PostgresServer, gateway: LiveServer, client: httpx.AsyncClient
) -> None:
    customer_id = await _create_customer(client, "load@example.com")
    load = Load(client, customer_id)
    stop = asyncio.Event()
    writers = [asyncio.create_task(load.writer(f"w{i}", stop)) for i in range(8)]

    async def until(condition: Any) -> None:
        deadline = asyncio.get_running_loop().time() + 60
        while not condition():
            assert not any(w.done() for w in writers), "a writer failed"
            assert asyncio.get_running_loop().time() < deadline, load.statuses
            await asyncio.sleep(0.02)

    try:
        await until(lambda: len(load.written) >= 40)  # writers in full flight
        load.outage_started = True
        await asyncio.to_thread(_stop, server)
        await until(lambda: load.during_outage[503] >= 40)  # each answered 503 a few times
    finally:
        stop.set()
        await asyncio.gather(*writers)
    assert set(load.statuses) <= {200, 503}, load.statuses

    # Reads, writes and a request of a key never seen: all 503 while it is down.
    assert_unavailable(
        await client.post("/graphql", json={"query": WALLET, "variables": {"id": customer_id}})
    )
    assert_unavailable(await load.post("during-outage", 5))
    assert_unavailable(
        await client.post(
            "/graphql",
            json={"query": "{ viewer { name } }"},
            headers={"authorization": "Bearer bgk_unknown"},
        )
    )
    health = await client.get("/healthz")
    assert health.status_code == 503

    await asyncio.to_thread(_start_again, server)

    # Back: the same requests succeed; every write not answered 200 is retried with its key.
    await _wallet(client, customer_id)
    retried = dict(load.unanswered)
    assert "during-outage" in retried
    for key, amount in retried.items():
        payload = {
            "query": CREATE_ENTRY,
            "variables": entry_input(customer_id, amount, "CREDIT", key),
        }
        response = await _until_answered(client, payload)
        assert response.status_code == 200, response.text
        result = response.json()["data"]["createLedgerEntry"]
        assert result["__typename"] == "CreateLedgerEntrySuccess", result
        load.written[key] = amount
    # A retry of a write that was answered is a replay, not a second entry.
    key, amount = next(iter(load.written.items()))
    payload = {"query": CREATE_ENTRY, "variables": entry_input(customer_id, amount, "CREDIT", key)}
    replay = (await _until_answered(client, payload)).json()["data"]["createLedgerEntry"]
    assert replay["replayed"] is True, replay

    database = connect(server.url)
    try:
        written = await _keys_written(database, from_global_id(customer_id)[1])
        assert written == Counter(load.written.keys()), "a key written twice, or not at all"
        wallet = await _wallet(client, customer_id)
        assert wallet["balance"] == sum(load.written.values())
        assert wallet["version"] == len(load.written)
        await assert_ledger_invariant(database)
    finally:
        await database.dispose()


async def _statement_timeout(
    server: postgres.PostgresServer, gateway: LiveServer, client: httpx.AsyncClient
) -> None:
    """A statement cancelled at the statement timeout (a lock held elsewhere), inside a
    resolver, reading and writing: 503; once the lock is gone the retried write lands once."""
    customer_id = await _create_customer(client, "timeout@example.com")
    before = await _wallet(client, customer_id)
    holder = await asyncpg.connect(server.url.replace("postgresql+asyncpg", "postgresql"))
    try:
        transaction = holder.transaction()
        await transaction.start()
        await holder.execute("LOCK TABLE wallets IN ACCESS EXCLUSIVE MODE")
        read = await client.post(
            "/graphql", json={"query": WALLET, "variables": {"id": customer_id}}
        )
        body = assert_unavailable(read)
        assert body["errors"][0]["path"][0] == "customer", body  # raised inside the resolver
        payload = {
            "query": CREATE_ENTRY,
            "variables": entry_input(customer_id, 9, "CREDIT", "slow"),
        }
        assert_unavailable(await client.post("/graphql", json=payload))
        await transaction.rollback()
    finally:
        await holder.close()
    assert await _wallet(client, customer_id) == before  # the write did not happen
    result = (await _until_answered(client, payload)).json()["data"]["createLedgerEntry"]
    assert result["__typename"] == "CreateLedgerEntrySuccess", result
    assert result["replayed"] is False, result
    replay = (await _until_answered(client, payload)).json()["data"]["createLedgerEntry"]
    assert replay["replayed"] is True, replay
    after = await _wallet(client, customer_id)
    assert (after["balance"], after["version"]) == (9, 1)
