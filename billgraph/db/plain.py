"""Prebuilt statements on a plain connection: the hot paths' reads, and the posting (one
statement, its own transaction), built once and read as rows.

On PostgreSQL they run on a pool of asyncpg connections (db/pool.py), as SQL compiled once by
SQLAlchemy's asyncpg dialect (the same text SQLAlchemy would send): a statement pays
asyncpg's prepared-statement call and little else. Through SQLAlchemy the same statement
also paid a pool checkout, a greenlet switch per call, execution-context setup and result
processing. On SQLite they run on SQLAlchemy's connection (aiosqlite), as everything else.

A row is read by position or by column name (`row[0]`, `row.id`), on both databases.
Timestamps come back timezone-aware in UTC from both: asyncpg returns timestamptz as UTC,
and on SQLite the column type (models.UTCDateTime) makes them so.
"""

from collections import namedtuple
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import (
    AbstractAsyncContextManager,
    AbstractContextManager,
    ExitStack,
    asynccontextmanager,
)
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Protocol, cast

import asyncpg
from sqlalchemy import Select, Table
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.compiler import SQLCompiler

from billgraph.db.pool import Pool

# How long a statement waits for a pooled connection before the database counts as unavailable
# (SQLAlchemy's pool waits as long).
ACQUIRE_TIMEOUT_SECONDS = 30.0

REQUIRED = object()  # a parameter the caller must give
# What a statement that broke a constraint (a unique key taken) raises, on either database.
INTEGRITY_ERRORS = (IntegrityError, asyncpg.exceptions.IntegrityConstraintViolationError)

# Watches each statement sent to PostgreSQL here (the statement counter, tracing): called
# with the SQL before it runs, it returns what wraps the execution.
Watcher = Callable[[str], AbstractContextManager[object]]


class Row(asyncpg.Record):  # type: ignore[misc]
    """asyncpg's record, with its columns as attributes too (as SQLAlchemy's rows have)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def named_rows(table: Table) -> Callable[[Sequence[Any]], Any]:
    """What makes a row of `table`'s columns, read by position or by name as the loaders'
    rows are, from a slice of a wider row (a statement that reads several tables at once)."""
    row: Any = namedtuple(f"{table.name}_row", table.c.keys())  # type: ignore[misc]
    return cast(Callable[[Sequence[Any]], Any], row._make)


@dataclass(frozen=True)
class Prebuilt:
    """A statement, compiled once for PostgreSQL. An expanding IN list (`bindparam(...,
    expanding=True)`) is rendered with one parameter per value, as SQLAlchemy does, once per
    number of values: `id IN ($2, $3)` keeps the primary key's index in PostgreSQL's generic
    plan, where `id = ANY($2)` got a scan of the organization's rows."""

    statement: Select[Any]

    @cached_property
    def compiled(self) -> SQLCompiler:
        compiled = self.statement.compile(dialect=asyncpg_dialect())  # type: ignore[no-untyped-call]
        assert isinstance(compiled, SQLCompiler)
        return compiled

    @cached_property
    def _fixed(self) -> "_Rendered":
        """Without expanding parameters: the compiled SQL and its parameters in order."""
        compiled = self.compiled
        processors = cast(dict[str, Callable[[Any], Any]], compiled._bind_processors)
        sources = [_bound(compiled, n, processors) for n in compiled.positiontup or []]
        return _Rendered(compiled.string, tuple(sources))

    @cached_property
    def _expansions(self) -> dict[tuple[int, ...], "_Rendered | None"]:
        """The SQL per number of values in each expanding list, built on first use; None
        for a shape it cannot be built for (values rendered into the SQL)."""
        return {}

    def sql(self, params: Mapping[str, Any]) -> tuple[str, list[Any]]:
        """The PostgreSQL SQL for `params` (by name) and its positional arguments,
        bind-processed."""
        compiled = self.compiled
        if not compiled.post_compile_params:
            return self._fixed.sql(params)
        shape = tuple(len(params.get(b.key, ())) for b in compiled.post_compile_params)
        expansions = self._expansions
        if shape not in expansions:
            expansions[shape] = _Rendered.expanded(compiled, params)
        expansion = expansions[shape]
        return expansion.sql(params) if expansion else _expanded(compiled, params)


def _expanded(compiled: SQLCompiler, params: Mapping[str, Any]) -> tuple[str, list[Any]]:
    """SQLAlchemy's own rendering of the expanding lists, with its arguments."""
    state = compiled.construct_expanded_state(dict(params))
    processors = cast(dict[str, Callable[[Any], Any]], state.processors)
    names = state.positiontup or []
    return state.statement, [
        processors[n](v) if n in processors else v
        for n, v in zip(names, state.positional_parameters, strict=True)
    ]


# Where a positional argument comes from: a parameter's name, the index of the value in it
# when it is an expanding list (else None), the value the statement itself carries (a
# literal such as a bound 0) or REQUIRED, and its bind processor.
_Source = tuple[str, int | None, Any, Callable[[Any], Any] | None]


def _bound(
    compiled: SQLCompiler, name: str, processors: Mapping[str, Callable[[Any], Any]]
) -> _Source:
    bind = compiled.binds[name]
    value = REQUIRED if bind.required or bind.callable else bind.value
    return (name, None, value, processors.get(name))


@dataclass(frozen=True)
class _Rendered:
    """SQL as SQLAlchemy renders it, and where each of its positional arguments comes from."""

    text: str
    sources: tuple[_Source, ...]

    @classmethod
    def expanded(cls, compiled: SQLCompiler, params: Mapping[str, Any]) -> "_Rendered | None":
        """The SQL for expanding lists of the lengths in `params` (SQLAlchemy names a list's
        values `<list>_<n>`, n from 1); None where it cannot be reused for other values."""
        if compiled.literal_execute_params:
            return None  # values in the SQL text itself: rendered per call
        lists = {b.key for b in compiled.post_compile_params}
        if not lists <= params.keys():
            return None  # a list the statement carries: rendered per call
        state = compiled.construct_expanded_state(dict(params))
        processors = cast(dict[str, Callable[[Any], Any]], state.processors)
        sources: list[_Source] = []
        for name in state.positiontup or []:
            if name in compiled.binds and name not in lists:
                sources.append(_bound(compiled, name, processors))
                continue
            source, _, index = name.rpartition("_")
            if source not in lists or not index.isdigit():
                return None
            sources.append((source, int(index) - 1, REQUIRED, processors.get(name)))
        rendered = cls(state.statement, tuple(sources))
        # Built from these parameters, it must give back exactly what SQLAlchemy gave.
        return rendered if rendered.sql(params) == _expanded(compiled, params) else None

    def sql(self, params: Mapping[str, Any]) -> tuple[str, list[Any]]:
        arguments = []
        for name, index, value, process in self.sources:
            if index is not None:
                value = params[name][index]
            elif value is REQUIRED or name in params:
                value = params[name]
            arguments.append(value if process is None else process(value))
        return self.text, arguments


class PlainConnection(Protocol):
    """One plain connection, for prebuilt statements (autocommit: each is its own
    transaction)."""

    dialect: str  # "postgresql" or "sqlite"

    async def rows(self, statement: Prebuilt, params: Mapping[str, Any]) -> Sequence[Any]: ...


class _PostgresConnection:
    dialect = "postgresql"

    def __init__(self, connection: asyncpg.Connection, watchers: list[Watcher]) -> None:
        self._connection = connection
        self._watchers = watchers

    async def rows(self, statement: Prebuilt, params: Mapping[str, Any]) -> Sequence[Any]:
        sql, args = statement.sql(params)
        with ExitStack() as watched:
            for watch in self._watchers:
                watched.enter_context(watch(sql))
            rows: Sequence[Any] = await self._connection.fetch(sql, *args, record_class=Row)
        return rows


class _SqlAlchemyConnection:
    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection
        self.dialect = connection.dialect.name

    async def rows(self, statement: Prebuilt, params: Mapping[str, Any]) -> Sequence[Any]:
        return list(await self._connection.execute(statement.statement, params))


@dataclass
class Plain:
    """Where prebuilt statements run: `engine` (SQLite), or a pool of asyncpg connections to
    its PostgreSQL database (db/pool.py), at most `pool_size`, opened as they are needed,
    each with the engine's server settings (statement_timeout)."""

    engine: AsyncEngine
    pool_size: int = 20
    server_settings: dict[str, str] = field(default_factory=dict)
    watchers: list[Watcher] = field(default_factory=list)
    _pool: Pool | None = field(default=None, init=False, repr=False)
    _busy: int = field(default=0, init=False, repr=False)  # connections checked out here

    def connect(self) -> AbstractAsyncContextManager[PlainConnection]:
        if self.engine.dialect.name != "postgresql":
            return self._sqlalchemy()
        return _Checkout(self)

    @asynccontextmanager
    async def _sqlalchemy(self) -> AsyncIterator[PlainConnection]:
        async with self.engine.connect() as connection:
            yield _SqlAlchemyConnection(connection)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[PlainConnection]:
        """A plain connection in a transaction, PostgreSQL only: committed when the block
        ends, rolled back if it raises. (SQLite's writes run in units of work, under its
        writer lock.)"""
        if self.engine.dialect.name != "postgresql":
            raise RuntimeError("plain transactions are PostgreSQL's")
        async with self._current().connection(ACQUIRE_TIMEOUT_SECONDS) as connection:
            self._busy += 1
            try:
                async with connection.transaction():
                    yield _PostgresConnection(connection, self.watchers)
            finally:
                self._busy -= 1

    def _current(self) -> Pool:
        """The pool checkouts take from, opened on first use (again after `close`)."""
        if self._pool is None:
            dsn = self.engine.url.set(drivername="postgresql")
            self._pool = Pool(
                dsn.render_as_string(hide_password=False), self.pool_size, self.server_settings
            )
        return self._pool

    async def _acquire(self) -> tuple[Pool, asyncpg.Connection]:
        """A connection and the pool it goes back to: the pool in use at checkout, even if
        `close` has replaced it since (a closed pool closes what it gets back)."""
        pool = self._current()
        connection = await pool.acquire(ACQUIRE_TIMEOUT_SECONDS)
        self._busy += 1
        return pool, connection

    def _release(
        self, pool: Pool, connection: asyncpg.Connection, error: BaseException | None
    ) -> None:
        self._busy -= 1
        pool.release(connection, error)

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()


class _Checkout:
    """A connection of the pool for the block (`async with plain.connect()`): a class, not a
    generator, as it runs for every read."""

    __slots__ = ("_checked_out", "_plain")

    def __init__(self, plain: Plain) -> None:
        self._plain = plain
        self._checked_out: tuple[Pool, asyncpg.Connection] | None = None

    async def __aenter__(self) -> PlainConnection:
        self._checked_out = await self._plain._acquire()
        return _PostgresConnection(self._checked_out[1], self._plain.watchers)

    async def __aexit__(self, _type: object, error: BaseException | None, _tb: object) -> None:
        assert self._checked_out is not None
        self._plain._release(*self._checked_out, error)
