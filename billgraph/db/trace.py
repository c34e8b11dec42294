"""The SQL statements an engine runs: what the statement-count snapshots and benchmarks read."""

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import event

from billgraph.db.engine import Database


@contextmanager
def count_statements(database: Database) -> Iterator[list[str]]:
    """Collects the SQL statements the engine runs inside the block."""
    statements: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        statements.append(statement)

    event.listen(database.engine.sync_engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(database.engine.sync_engine, "before_cursor_execute", record)
