"""The SQL statements an engine runs: what the statement-count snapshots and benchmarks read."""

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext

from sqlalchemy import event

from billgraph.db.engine import Database


@contextmanager
def count_statements(database: Database) -> Iterator[list[str]]:
    """Collects the SQL statements the engine and the prebuilt statements (Database.plain) run
    inside the block."""
    statements: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        statements.append(statement)

    def watch(statement: str) -> AbstractContextManager[object]:
        statements.append(statement)
        return nullcontext()

    event.listen(database.engine.sync_engine, "before_cursor_execute", record)
    database.plain.watchers.append(watch)
    try:
        yield statements
    finally:
        database.plain.watchers.remove(watch)
        event.remove(database.engine.sync_engine, "before_cursor_execute", record)
