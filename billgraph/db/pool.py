"""The pool of asyncpg connections that prebuilt statements run on (db/plain.py).

asyncpg's own Pool pays, per checkout, a task (the release is shielded from cancellation),
two timers (the reset's timeout, the idle connection's lifetime) and a proxy object around
the connection: 60-80 us of CPU per checkout on these machines, about what a one-row
statement costs. Every read and every posting checks out a connection, so here a checkout
is a list pop and a release a list append; nothing in either waits.

What the pool decides on its own:
- A connection goes back to the pool only if the block that used it ended cleanly or with an
  error PostgreSQL reported (the server said what went wrong, and the connection is idle in
  no transaction). After anything else (a cancellation, a timeout, a lost connection, an
  error of the caller's own) its state is not known: it is closed, and its place goes to
  the next waiter.
- Nothing is reset on the way back (asyncpg's default reset, RESET ALL, UNLISTEN *, CLOSE ALL
  and the unlock of advisory locks, was a round trip per statement and doubled PostgreSQL's
  CPU per read): only prebuilt statements run here, autocommitted or in a managed
  transaction, and none leaves a setting, a LISTEN, an advisory lock or a cursor behind.
- Waiters are served first come, first served; a connection that is given back goes to the
  oldest one directly, so a new checkout cannot overtake it.
- Idle connections stay open until the pool closes (asyncpg's closes them after 5 idle
  minutes): at most `size` per process, what a busy moment opened anyway. One that the
  server closed meanwhile is found closed at checkout and replaced.
"""

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg


class PoolClosedError(asyncpg.InterfaceError):  # type: ignore[misc]
    """A checkout from a pool that was closed (the process is shutting down)."""


class Pool:
    def __init__(self, dsn: str, size: int, server_settings: dict[str, str]) -> None:
        self._dsn = dsn
        self._size = size
        self._server_settings = server_settings
        self._idle: list[asyncpg.Connection] = []
        # A waiter's future gets a connection, or None: a place is free, open one in it.
        self._waiters: deque[asyncio.Future[asyncpg.Connection | None]] = deque()
        self._open = 0  # connections open or being opened, idle or checked out
        self._closed = False

    async def acquire(self, timeout: float) -> asyncpg.Connection:
        """A connection: an idle one, else a new one while there is room, else the next one
        given back (TimeoutError after `timeout` seconds)."""
        if self._closed:
            raise PoolClosedError("the connection pool is closed")
        while self._idle:
            connection = self._idle.pop()
            if not connection.is_closed():
                return connection
            self._open -= 1  # the server closed it while it was idle
        if self._open < self._size:
            self._open += 1
            return await self._connect()
        return await self._wait(timeout)

    @asynccontextmanager
    async def connection(self, timeout: float) -> AsyncIterator[asyncpg.Connection]:
        """A connection for the block, given back with the block's error (see `release`)."""
        connection = await self.acquire(timeout)
        error: BaseException | None = None
        try:
            yield connection
        except BaseException as raised:
            error = raised
            raise
        finally:
            self.release(connection, error)

    def release(self, connection: asyncpg.Connection, error: BaseException | None) -> None:
        """Give back a connection after a block that raised `error` (None: ended cleanly)."""
        reusable = (
            not self._closed
            and (error is None or isinstance(error, asyncpg.PostgresError))
            and not connection.is_closed()
            and not connection.is_in_transaction()
        )
        if not reusable:
            connection.terminate()
            self._free_place()
            return
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(connection)
                return
        self._idle.append(connection)

    async def close(self) -> None:
        """Close the idle connections; those checked out are closed when given back."""
        self._closed = True
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(PoolClosedError("the connection pool is closed"))
        idle, self._idle = self._idle, []
        self._open -= len(idle)
        for connection in idle:
            try:
                await connection.close(timeout=5)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
                connection.terminate()

    async def _connect(self) -> asyncpg.Connection:
        """A new connection in a place already counted in `_open`; on failure the place goes
        to the next waiter (who tries again) or is freed."""
        try:
            connection: asyncpg.Connection = await asyncpg.connect(
                self._dsn, server_settings=self._server_settings
            )
        except BaseException:
            self._free_place()
            raise
        if self._closed:
            connection.terminate()
            self._free_place()
            raise PoolClosedError("the connection pool is closed")
        return connection

    def _free_place(self) -> None:
        """A counted place is no longer used: the oldest waiter opens a connection in it."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._open -= 1

    async def _wait(self, timeout: float) -> asyncpg.Connection:
        waiter: asyncio.Future[asyncpg.Connection | None] = (
            asyncio.get_running_loop().create_future()
        )
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(timeout):
                given = await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                # Given a connection or a place just as the wait ended: passed on.
                handed = waiter.result()
                if handed is None:
                    self._free_place()
                else:
                    self.release(handed, None)
            else:
                waiter.cancel()  # skipped by whoever gives back next
            raise
        if given is None:
            return await self._connect()
        return given
