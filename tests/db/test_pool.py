"""The pool of asyncpg connections under prebuilt statements: a connection is reused only in
a known state, places are never lost, waiters are served in order and time out, and a closed
pool refuses checkouts."""

import asyncio
import contextlib

import asyncpg
import pytest

from billgraph.db.engine import Database
from billgraph.db.pool import Pool, PoolClosedError
from tests.conftest import postgresql_only


def _dsn(database: Database) -> str:
    url = database.engine.url.set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


async def _backend(connection: asyncpg.Connection) -> int:
    pid: int = await connection.fetchval("SELECT pg_backend_pid()")
    return pid


@postgresql_only
async def test_a_connection_is_reused_after_success_and_after_an_error_the_server_reported(
    database: Database,
) -> None:
    pool = Pool(_dsn(database), 1, {})
    try:
        connection = await pool.acquire(5)
        first = await _backend(connection)
        pool.release(connection, None)
        connection = await pool.acquire(5)
        assert await _backend(connection) == first
        with pytest.raises(asyncpg.DivisionByZeroError) as failed:
            await connection.fetchval("SELECT 1 / 0")
        pool.release(connection, failed.value)
        connection = await pool.acquire(5)
        assert await _backend(connection) == first
        pool.release(connection, None)
    finally:
        await pool.close()


@postgresql_only
async def test_a_connection_in_an_unknown_state_is_closed_and_its_place_reused(
    database: Database,
) -> None:
    """After a cancellation, any error of the caller's own, or a transaction left open, the
    connection is closed; the pool of one opens a new one in its place."""
    pool = Pool(_dsn(database), 1, {})
    try:
        seen = set()
        for error in (asyncio.CancelledError(), RuntimeError("the caller's"), None):
            connection = await pool.acquire(5)
            seen.add(await _backend(connection))
            if error is None:  # a transaction left open
                await connection.execute("BEGIN")
            pool.release(connection, error)
            assert connection.is_closed()
        connection = await pool.acquire(5)
        seen.add(await _backend(connection))
        assert len(seen) == 4
        pool.release(connection, None)
    finally:
        await pool.close()


@postgresql_only
async def test_a_cancelled_statement_frees_its_place(database: Database) -> None:
    pool = Pool(_dsn(database), 1, {})

    async def sleep() -> None:
        connection = await pool.acquire(5)
        error: BaseException | None = None
        try:
            await connection.execute("SELECT pg_sleep(30)")
        except BaseException as raised:
            error = raised
            raise
        finally:
            pool.release(connection, error)

    try:
        sleeping = asyncio.create_task(sleep())
        await asyncio.sleep(0.3)
        sleeping.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sleeping
        connection = await asyncio.wait_for(pool.acquire(5), 10)
        assert await connection.fetchval("SELECT 1") == 1
        pool.release(connection, None)
    finally:
        await pool.close()


@postgresql_only
async def test_waiters_are_served_in_order_and_time_out(database: Database) -> None:
    pool = Pool(_dsn(database), 1, {})
    try:
        held = await pool.acquire(5)
        served: list[str] = []

        async def wait(name: str) -> None:
            connection = await pool.acquire(10)
            served.append(name)
            await asyncio.sleep(0.01)
            pool.release(connection, None)

        waiters = [asyncio.create_task(wait(n)) for n in ("first", "second", "third")]
        await asyncio.sleep(0.1)
        with pytest.raises(TimeoutError):
            await pool.acquire(0.2)  # behind three waiters, on a pool of one
        assert served == []
        pool.release(held, None)
        await asyncio.wait_for(asyncio.gather(*waiters), 10)
        assert served == ["first", "second", "third"]
        connection = await pool.acquire(1)  # the timed-out waiter lost nothing
        pool.release(connection, None)
    finally:
        await pool.close()


@postgresql_only
async def test_a_connection_the_server_closed_while_idle_is_replaced(database: Database) -> None:
    pool = Pool(_dsn(database), 2, {})
    try:
        connection, killer = await pool.acquire(5), await pool.acquire(5)
        victim = await _backend(connection)
        pool.release(connection, None)
        assert await killer.fetchval("SELECT pg_terminate_backend($1)", victim)
        pool.release(killer, None)
        await asyncio.sleep(0.3)  # the terminated connection reads its end
        for _ in range(2):  # both places work: the killed one was replaced
            first, second = await pool.acquire(5), await pool.acquire(5)
            assert victim not in {await _backend(first), await _backend(second)}
            pool.release(first, None)
            pool.release(second, None)
    finally:
        await pool.close()


@postgresql_only
async def test_a_closed_pool_refuses_checkouts_and_its_waiters(database: Database) -> None:
    pool = Pool(_dsn(database), 1, {})
    held = await pool.acquire(5)
    waiting = asyncio.create_task(pool.acquire(10))
    await asyncio.sleep(0.1)
    await pool.close()
    with pytest.raises(PoolClosedError):
        await waiting
    with pytest.raises(PoolClosedError):
        await pool.acquire(5)
    pool.release(held, None)
    assert held.is_closed()


async def test_a_failed_connect_frees_its_place() -> None:
    """Nothing listens on the port: each checkout fails with the connection's own error, and
    none waits for a place the failures took."""
    pool = Pool("postgresql://billgraph@127.0.0.1:9/none", 1, {})
    for _ in range(3):
        with pytest.raises(OSError):
            await asyncio.wait_for(pool.acquire(30), 10)
    await pool.close()
