"""The unit of work: one transaction, and what it announces once it has committed.

Services write through a unit and never commit; the boundary that owns the request, the
webhook or the job opens the unit, and its end commits. What a service announces (live balance
events, key revocations, the billing changes billing/announcements.py sees in its flushes) is
held by the unit and published after the commit, or dropped with a rollback: a subscriber
never hears of a write that did not happen.
"""

from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from billgraph.db.engine import Database
from billgraph.logs import get_logger

log = get_logger(__name__)

# Where a unit's session names its unit (for flush hooks, see `of_session`).
_UNIT = "billgraph.unit"


class UnitOfWork:
    def __init__(self, database: Database, session: AsyncSession) -> None:
        self.database = database
        # The transaction's session: flushes go into the transaction, never a commit.
        self.session = session
        self._announcements: list[object] = []
        self._announcers: list[Callable[[], Iterable[object]]] = []
        session.info[_UNIT] = self

    @staticmethod
    def of_session(session: Session) -> "UnitOfWork | None":
        """The unit whose transaction `session` (an ORM event's sync session) is, if any."""
        unit = session.info.get(_UNIT)
        return unit if isinstance(unit, UnitOfWork) else None

    @property
    def is_sqlite(self) -> bool:
        return self.database.is_sqlite

    def after_commit(self, event: object) -> None:
        """Announce `event` once this unit has committed; dropped if it rolls back."""
        self._announcements.append(event)

    def after_commit_from(self, announcer: Callable[[], Iterable[object]]) -> None:
        """Announce what `announcer()` returns once this unit has committed: for what is
        known only when the last statement has run (what flush hooks collected; the commit
        itself flushes). Called after the plain announcements; dropped if the unit rolls
        back."""
        self._announcers.append(announcer)

    def _publish(self) -> None:
        for event in self._announcements:
            self.database.events.publish(event)
        self._announcements.clear()
        for announcer in self._announcers:
            try:
                events = list(announcer())
            except Exception:  # committed: failing to announce must not fail the writer
                log.exception("building a unit's announcements failed")
                continue
            for event in events:
                self.database.events.publish(event)
        self._announcers.clear()


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
