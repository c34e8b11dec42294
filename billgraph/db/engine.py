"""Engine and session factory for SQLite (aiosqlite) and PostgreSQL (asyncpg)."""

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from billgraph.db.locks import GroupCommit, KeyedLocks
from billgraph.db.plain import Plain
from billgraph.logs import get_logger

log = get_logger(__name__)

SUPPORTED_DRIVERS = ("sqlite+aiosqlite", "postgresql+asyncpg")
SQLITE_WRITER = "sqlite-writer"


class EventSink:
    """Where writers announce committed changes (billgraph.events). Until a broker is
    attached nobody listens, and announcing costs nothing."""

    def __init__(self) -> None:
        self._target: Callable[[Any], None] | None = None

    def attach(self, target: Callable[[Any], None] | None) -> None:
        self._target = target

    def publish(self, event: object) -> None:
        """Announce a change that is committed; never blocks, never raises (the change is
        made: a failure to announce it must not turn into the writer's error)."""
        if self._target is not None:
            try:
                self._target(event)
            except Exception:
                log.exception("announcing a committed change failed")


@dataclass(frozen=True)
class Database:
    engine: AsyncEngine
    # Autocommit: a read, or a write that is one statement, needs no BEGIN/COMMIT round trips.
    autocommit: AsyncEngine
    # Read-only units of work (loaders, lookups), on the autocommit engine.
    sessions: async_sessionmaker[AsyncSession]
    # Units of work that write several statements atomically (see write_session).
    transactions: async_sessionmaker[AsyncSession]
    # The hot paths' prebuilt statements on plain connections, read as rows (on PostgreSQL
    # on asyncpg's own pool); by default on what the read-only sessions run on.
    plain: Plain = None  # type: ignore[assignment]
    # Writers queue here before they touch the database: per wallet on PostgreSQL (see
    # services/ledger.py), and on SQLite, which has one writer per file, all on SQLITE_WRITER.
    write_locks: KeyedLocks = field(default_factory=KeyedLocks)
    # Postings of one wallet that queue up are written together (see services/ledger.py).
    write_batches: GroupCommit = field(default_factory=GroupCommit)
    # Committed changes are announced here, for live subscriptions.
    events: EventSink = field(default_factory=EventSink)

    def __post_init__(self) -> None:
        if self.plain is None:
            bind = self.sessions.kw["bind"]
            assert isinstance(bind, AsyncEngine)
            object.__setattr__(self, "plain", Plain(bind))

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @asynccontextmanager
    async def write_session(self) -> AsyncIterator[AsyncSession]:
        """A session in a transaction for a unit of work that writes; commits when it ends.

        On SQLite the unit runs under the process-wide writer lock: a transaction that reads
        and then writes would otherwise fail with "database is locked" when another writer is
        active, instead of waiting.
        """
        if self.is_sqlite:
            async with self.write_locks.hold(SQLITE_WRITER), self.transactions.begin() as session:
                yield session
        else:
            async with self.transactions.begin() as session:
                yield session

    async def dispose(self) -> None:
        await self.plain.close()
        await self.engine.dispose()


def _set_sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers run during a write; busy_timeout makes a second process wait for the
    # write lock instead of failing at once; foreign keys are off by default in SQLite.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def connect(url: str, *, pool_size: int = 20, statement_timeout_ms: int = 5000) -> Database:
    """Create the engine for a database URL; raises ValueError for an unsupported driver."""
    parsed = make_url(url)
    if parsed.drivername not in SUPPORTED_DRIVERS:
        raise ValueError(
            f"unsupported database URL scheme {parsed.drivername!r}; "
            f"use one of {', '.join(SUPPORTED_DRIVERS)}"
        )
    server_settings = {
        "statement_timeout": str(statement_timeout_ms),
        "application_name": "billgraph",
    }
    if parsed.drivername.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": 10})
        event.listen(engine.sync_engine, "connect", _set_sqlite_pragmas)
    else:
        engine = create_async_engine(
            url,
            pool_size=pool_size,
            max_overflow=0,
            pool_pre_ping=False,
            connect_args={"server_settings": server_settings},
        )
    autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
    return Database(
        engine=engine,
        autocommit=autocommit,
        sessions=async_sessionmaker(autocommit, expire_on_commit=False),
        transactions=async_sessionmaker(engine, expire_on_commit=False),
        plain=Plain(autocommit, pool_size=pool_size, server_settings=server_settings),
    )
