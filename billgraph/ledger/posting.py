"""Write paths of a posting: the guarded move of the wallet's balance and the entry it records,
never one without the other.

- In a caller's unit of work (`write_in`): the statements join its transaction; the entry is
  announced when the unit commits.
- On its own (`write`): PostgreSQL runs the single statement in autocommit, and postings of one
  wallet that queue up in this process are written together in one transaction (group
  commit); SQLite writes under the process-wide writer lock. These paths are their own unit of
  work: each announces its postings right after its own commit, never before.

Each returns None when the guard matched no row (or the key was taken meanwhile): nothing was
written, and the service finds out why.
"""

import hashlib
import json
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from functools import cached_property

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from billgraph.core.unit import UnitOfWork
from billgraph.db.engine import SQLITE_WRITER, Database
from billgraph.db.models import utcnow
from billgraph.db.plain import INTEGRITY_ERRORS
from billgraph.ledger.statements import MOVE, MOVE_AND_RECORD, POSTING, RECORD
from billgraph.live.events import AnyEntry, AnyWallet, BalanceChanged, EntryState, WalletState


class EntryType(StrEnum):
    CREDIT = "CREDIT"
    DEBIT = "DEBIT"


@dataclass(frozen=True)
class EntryRequest:
    """A checked request to post one entry (see service.entry_request)."""

    organization_id: int
    customer_id: int
    currency: str
    entry_type: EntryType
    amount: int
    reason: str | None
    idempotency_key: str

    @property
    def delta(self) -> int:
        return self.amount if self.entry_type is EntryType.CREDIT else -self.amount

    @property
    def wallet_key(self) -> tuple[int, int, str]:
        return (self.organization_id, self.customer_id, self.currency)

    def params(self) -> dict[str, object]:
        """Bind parameters of the write statements. The time is taken as the statement is
        sent, so within a wallet created_at grows with the sequence, batches included."""
        return {
            "p_customer_id": self.customer_id,
            "p_organization_id": self.organization_id,
            "p_currency": self.currency,
            "p_delta": self.delta,
            "p_entry_type": self.entry_type.value,
            "p_amount": self.amount,
            "p_reason": self.reason,
            "p_idempotency_key": self.idempotency_key,
            "p_request_hash": self.fingerprint,
            "p_now": utcnow(),
        }

    @cached_property
    def fingerprint(self) -> str:
        """What a replay must match: every parameter except the key itself."""
        payload = [self.customer_id, self.currency, self.entry_type.value, self.amount, self.reason]
        return hashlib.sha256(json.dumps(payload).encode()).hexdigest()


@dataclass(frozen=True)
class Posting:
    """The outcome of a posting: the entry, the wallet after it, and whether it was a replay."""

    entry: AnyEntry
    wallet: AnyWallet
    replayed: bool

    @property
    def event(self) -> BalanceChanged:
        return BalanceChanged(wallet=self.wallet, entry=self.entry)


# entry id, wallet, sequence, balance after, time, the wallet's low-balance threshold
_Row = tuple[int, int, int, int, datetime, int | None]


async def write_in(
    unit: UnitOfWork, request: EntryRequest, *, contended: bool = True
) -> Posting | None:
    """Write the entry in the unit's transaction if the guard holds; announced at its commit.

    On PostgreSQL the write runs in a savepoint: a key taken by a racing transaction rolls
    back this write alone, not the caller's transaction. A caller that holds a lock making
    the key its own (`contended=False`) saves the savepoint's two round trips. On SQLite the
    unit holds the writer lock, so no other writer can take the key meanwhile.
    """
    session = unit.session
    if unit.is_sqlite:
        row = await _move_then_record(session, request)
    elif not contended:
        found = (await session.execute(MOVE_AND_RECORD, request.params())).first()
        row = None if found is None else tuple(found)
    else:
        try:
            async with session.begin_nested():
                found = (await session.execute(MOVE_AND_RECORD, request.params())).first()
        except IntegrityError:
            return None
        row = None if found is None else tuple(found)
    if row is None:
        return None
    posting = _posting(request, row)
    unit.after_commit(posting.event)
    return posting


async def write(
    database: Database, request: EntryRequest, *, queued: bool = True
) -> Posting | None:
    """Write the entry in a transaction of its own if the guard holds, announced once committed.

    On PostgreSQL, postings of one wallet that arrive while one of its writes is in flight
    queue in this process and are then written together in one transaction: a hot wallet
    costs one commit per batch, not per posting, and its row sees one writer per process.
    On SQLite, which has one writer per file, every posting takes the process-wide queue.
    `queued=False`: write now, outside the queue (the caller holds the wallet's write lock).
    """
    if database.is_sqlite and queued:
        async with database.write_locks.hold(SQLITE_WRITER):
            return await _write_sqlite(database, request)
    if database.is_sqlite:
        return await _write_sqlite(database, request)
    if queued:
        return await database.write_batches.submit(
            request.wallet_key, request, lambda batch: _write_batch(database, batch)
        )
    return await _write_one(database, request)


async def _write_one(database: Database, request: EntryRequest) -> Posting | None:
    # One statement is its own transaction: no BEGIN/COMMIT round trips.
    try:
        async with database.plain.connect() as connection:
            rows = await connection.rows(POSTING, request.params())
    except INTEGRITY_ERRORS:  # the key was taken by a racing transaction: nothing was written
        return None
    return _announced(database, _posting(request, tuple(rows[0]))) if rows else None


async def _write_batch(
    database: Database, batch: list[EntryRequest]
) -> list[Posting | Exception | None]:
    if len(batch) == 1:
        return [await _write_one(database, batch[0])]
    try:
        async with database.plain.transaction() as connection:
            rows = [next(iter(await connection.rows(POSTING, r.params())), None) for r in batch]
    except Exception:  # noqa: BLE001
        # The batch rolled back as a whole (a key taken by a transaction elsewhere, a deadlock
        # on keys shared with another batch, a timeout): go one by one, so each caller gets
        # its own outcome and one request's failure is not its neighbours'.
        return [await _outcome(_write_one(database, r)) for r in batch]
    return [
        None if row is None else _announced(database, _posting(r, tuple(row)))
        for r, row in zip(batch, rows, strict=True)
    ]


async def _outcome(write: Awaitable[Posting | None]) -> Posting | Exception | None:
    try:
        return await write
    except Exception as exc:  # noqa: BLE001 - this caller's own failure
        return exc


async def _write_sqlite(database: Database, request: EntryRequest) -> Posting | None:
    try:
        async with database.engine.begin() as connection:
            row = await _move_then_record(connection, request)
    except IntegrityError:  # the key was taken by a racing process: rolled back as a whole
        return None
    return None if row is None else _announced(database, _posting(request, row))


async def _move_then_record(
    executor: AsyncConnection | AsyncSession, request: EntryRequest
) -> _Row | None:
    """SQLite's posting: the guarded move, then the entry, in the caller's transaction."""
    params = request.params()
    moved = (await executor.execute(MOVE, params)).first()
    if moved is None:
        return None
    wallet_id, balance, version, threshold = moved
    params.update(p_wallet_id=wallet_id, p_sequence=version, p_balance_after=balance)
    recorded = (await executor.execute(RECORD, params)).one()
    return (*recorded, threshold)


def _announced(database: Database, posting: Posting) -> Posting:
    """A posting whose transaction has committed, announced to live subscribers."""
    database.events.publish(posting.event)
    return posting


def _posting(request: EntryRequest, row: _Row) -> Posting:
    entry_id, wallet_id, sequence, balance_after, created_at, threshold = row
    entry = EntryState(
        id=entry_id,
        organization_id=request.organization_id,
        wallet_id=wallet_id,
        sequence=sequence,
        entry_type=request.entry_type.value,
        amount=request.amount,
        currency=request.currency,
        balance_after=balance_after,
        reason=request.reason,
        idempotency_key=request.idempotency_key,
        created_at=created_at,
    )
    wallet = WalletState(
        id=wallet_id,
        organization_id=request.organization_id,
        customer_id=request.customer_id,
        currency=request.currency,
        balance=balance_after,
        version=sequence,
        low_balance_threshold=threshold,
        updated_at=created_at,
    )
    return Posting(entry=entry, wallet=wallet, replayed=False)
