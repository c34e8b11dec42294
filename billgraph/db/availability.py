"""Whether a failure means the database is unavailable (down, unreachable, overloaded, too
slow) rather than a bug: the one place that decides it, for every layer.

Unavailability is the client's to retry later (the HTTP layer answers 503 with Retry-After,
and logs a warning, not a stack trace); anything else stays an unexpected error.
"""

import sqlite3

import asyncpg
from sqlalchemy import exc as sa

# SQLite's transient failures (primary result codes): a busy or locked database, a file
# that cannot be opened, an I/O error, a full disk. "No such table" and the like are not.
_SQLITE_TRANSIENT = frozenset(
    {
        sqlite3.SQLITE_BUSY,
        sqlite3.SQLITE_LOCKED,
        sqlite3.SQLITE_CANTOPEN,
        sqlite3.SQLITE_IOERR,
        sqlite3.SQLITE_FULL,
    }
)

# PostgreSQL's, as asyncpg raises them: the connection failed or was lost (class 08), the
# server is shutting down or refusing connections, or cancelled the statement at its
# statement_timeout (class 57), or lacks resources, such as connection slots (class 53).
_ASYNCPG_UNAVAILABLE = (
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.InsufficientResourcesError,
)

_FILE_ERRORS = (
    FileNotFoundError,
    FileExistsError,
    IsADirectoryError,
    NotADirectoryError,
    PermissionError,
)


def is_unavailable(error: BaseException) -> bool:
    """Whether `error`, or what caused it, says the database is unavailable."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [error]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if _says_unavailable(current):
            return True
        if isinstance(current, sqlite3.Error):
            continue  # its own code decided; what it chains to does not matter
        pending += [current.__cause__, current.__context__]
        if isinstance(current, sa.DBAPIError):
            pending.append(current.orig)
    return False


def _says_unavailable(error: BaseException) -> bool:
    if isinstance(error, sqlite3.Error):
        code = getattr(error, "sqlite_errorcode", None)
        return code is not None and code & 0xFF in _SQLITE_TRANSIENT
    if isinstance(error, sa.DBAPIError):
        if error.connection_invalidated:
            return True
        if isinstance(error.orig, sqlite3.Error):
            return False  # decided by the SQLite error itself
        return isinstance(error, (sa.OperationalError, sa.InterfaceError))
    if isinstance(error, OSError):  # refused, reset, unreachable, timed out; not a file
        return not isinstance(error, _FILE_ERRORS)
    return isinstance(error, (sa.TimeoutError, *_ASYNCPG_UNAVAILABLE))  # sa: the pool's wait
