"""Prebuilt reads on a plain connection: the hot paths' statements, built once, read as rows.

On PostgreSQL they run on a pool of asyncpg's own connections, as SQL compiled once by
SQLAlchemy's asyncpg dialect (the same text SQLAlchemy would send): a read pays asyncpg's
prepared-statement call and nothing else. Through SQLAlchemy the same read also paid a pool
checkout, a greenlet switch per call, execution-context setup and result processing, more
than the gateway spends on the rest of a request's statements. On SQLite they run on
SQLAlchemy's connection (aiosqlite), as everything else does.

A row is read by position or by column name (`row[0]`, `row.id`), on both databases.
Timestamps come back timezone-aware in UTC from both: asyncpg returns timestamptz as UTC,
and on SQLite the column type (models.UTCDateTime) makes them so.
"""

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractContextManager, asynccontextmanager
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Protocol, cast

import asyncpg
from sqlalchemy import Select
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

# How long a read waits for a pooled connection before the database counts as unavailable
# (SQLAlchemy's pool waits as long).
ACQUIRE_TIMEOUT_SECONDS = 30.0

# Watches each statement a read sends to PostgreSQL (the statement counter, tracing): called
# with the SQL before it runs, it returns what wraps the execution.
Watcher = Callable[[str], AbstractContextManager[object]]


class Row(asyncpg.Record):  # type: ignore[misc]
    """asyncpg's record, with its columns as attributes too (as SQLAlchemy's rows have)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


@dataclass(frozen=True)
class Read:
    """A read statement. `statement` runs on SQLite; `postgresql`, if given, replaces it on
    PostgreSQL (an array parameter with `= ANY` instead of an expanding IN list: one
    prepared statement whatever the number of ids)."""

    statement: Select[Any]
    postgresql: Select[Any] | None = None

    @cached_property
    def compiled(self) -> tuple[str, tuple[tuple[str, Callable[[Any], Any] | None], ...]]:
        """The PostgreSQL SQL and its parameters in order, each with its bind processor."""
        compiled = (self.postgresql if self.postgresql is not None else self.statement).compile(
            dialect=asyncpg_dialect()  # type: ignore[no-untyped-call]
        )
        if compiled.post_compile_params or compiled.literal_execute_params:
            raise ValueError("a Read's PostgreSQL statement cannot expand parameters")
        processors = cast(dict[str, Callable[[Any], Any]], compiled._bind_processors)
        names = compiled.positiontup or []
        return compiled.string, tuple((name, processors.get(name)) for name in names)


class Reader(Protocol):
    """One connection's prebuilt reads."""

    dialect: str  # "postgresql" or "sqlite"

    async def rows(self, read: Read, params: Mapping[str, Any]) -> Sequence[Any]: ...


class _PostgresReader:
    dialect = "postgresql"

    def __init__(self, connection: asyncpg.Connection, watchers: list[Watcher]) -> None:
        self._connection = connection
        self._watchers = watchers

    async def rows(self, read: Read, params: Mapping[str, Any]) -> Sequence[Any]:
        sql, names = read.compiled
        args = [params[n] if p is None else p(params[n]) for n, p in names]
        if not self._watchers:
            rows: Sequence[Any] = await self._connection.fetch(sql, *args, record_class=Row)
            return rows
        watches = [watch(sql) for watch in self._watchers]
        for watch in watches:
            watch.__enter__()
        try:
            found: Sequence[Any] = await self._connection.fetch(sql, *args, record_class=Row)
        except BaseException as error:
            for watch in reversed(watches):
                watch.__exit__(type(error), error, error.__traceback__)
            raise
        for watch in reversed(watches):
            watch.__exit__(None, None, None)
        return found


class _SqlAlchemyReader:
    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection
        self.dialect = connection.dialect.name

    async def rows(self, read: Read, params: Mapping[str, Any]) -> Sequence[Any]:
        return list(await self._connection.execute(read.statement, params))


@dataclass
class Reads:
    """Where prebuilt reads run: `engine` (SQLite), or asyncpg's pool for its PostgreSQL
    database, opened on first use, at most `pool_size` connections, each with the engine's
    server settings (statement_timeout)."""

    engine: AsyncEngine
    pool_size: int = 20
    server_settings: dict[str, str] = field(default_factory=dict)
    watchers: list[Watcher] = field(default_factory=list)
    _pool: asyncpg.Pool | None = field(default=None, init=False, repr=False)

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[Reader]:
        if self.engine.dialect.name != "postgresql":
            async with self.engine.connect() as connection:
                yield _SqlAlchemyReader(connection)
            return
        pool = self._pool or await self._open()
        async with pool.acquire(timeout=ACQUIRE_TIMEOUT_SECONDS) as connection:
            yield _PostgresReader(connection, self.watchers)

    async def _open(self) -> asyncpg.Pool:
        dsn = self.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        pool = await asyncpg.create_pool(
            dsn,
            min_size=0,
            max_size=self.pool_size,
            server_settings=self.server_settings,
        )
        if self._pool is not None:  # another task opened one meanwhile
            await pool.close()
            return self._pool
        self._pool = pool
        return pool

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()
