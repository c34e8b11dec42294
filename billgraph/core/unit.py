"""The unit of work: one transaction, and what it announces once it has committed.

Services write through a unit and never commit; the boundary that owns the request, the
webhook or the job opens the unit, and its end commits. What a service announces (live balance
events, key revocations) is held by the unit and published after the commit, or dropped with a
rollback: a subscriber never hears of a write that did not happen.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncSession

from billgraph.db.engine import Database


class UnitOfWork:
    def __init__(self, database: Database, session: AsyncSession) -> None:
        self.database = database
        # The transaction's session: flushes go into the transaction, never a commit.
        self.session = session
        self._announcements: list[object] = []

    @property
    def is_sqlite(self) -> bool:
        return self.database.is_sqlite

    def after_commit(self, event: object) -> None:
        """Announce `event` once this unit has committed; dropped if it rolls back."""
        self._announcements.append(event)

    def _publish(self) -> None:
        for event in self._announcements:
            self.database.events.publish(event)
        self._announcements.clear()


@asynccontextmanager
async def unit_of_work(database: Database) -> AsyncIterator[UnitOfWork]:
    """A transaction for the block: committed when it ends, rolled back if it raises; then
    what the block announced is published (on rollback, nothing is).

    On SQLite the unit holds the process-wide writer lock (see Database.write_session).
    """
    async with database.write_session() as session:
        unit = UnitOfWork(database, session)
        yield unit
    unit._publish()
