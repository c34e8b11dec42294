"""Ledger posting: credits and debits on a wallet, idempotent and never overdrawn.

The ledger is append-only: an entry is never updated or deleted (database triggers refuse
it), and each entry records the wallet's balance after it. For every wallet at every moment
`balance == sum(credits) - sum(debits) >= 0`.

The write path is one guarded UPDATE of the wallet row (`balance + delta >= 0`) and the INSERT
of the entry, in one transaction: on PostgreSQL a single statement (a data-modifying CTE), on
SQLite two statements under SQLite's database-wide write lock. The ORM stays off this path.
"""

import hashlib
import json
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from functools import cached_property

from sqlalchemy import (
    BigInteger,
    BindParameter,
    Table,
    and_,
    bindparam,
    exists,
    insert,
    select,
    true,
    update,
)
from sqlalchemy.exc import IntegrityError

from billgraph.db.engine import SQLITE_WRITER, Database
from billgraph.db.models import Customer, LedgerEntry, Wallet, utcnow
from billgraph.events import BalanceChanged
from billgraph.services import validation
from billgraph.services.errors import (
    IdempotencyConflictError,
    InsufficientBalanceError,
    NotFoundError,
    ValidationError,
)
from billgraph.services.wallets import open_wallet

MAX_BALANCE = validation.MAX_AMOUNT

wallets = Wallet.__table__
entries = LedgerEntry.__table__


class EntryType(str, Enum):
    CREDIT = "CREDIT"
    DEBIT = "DEBIT"


@dataclass(frozen=True)
class Posting:
    """The outcome of a posting: the entry, the wallet after it, and whether it was a replay."""

    entry: LedgerEntry
    wallet: Wallet
    replayed: bool


@dataclass(frozen=True)
class _Request:
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


async def post_entry(
    database: Database,
    organization_id: int,
    *,
    customer_id: int,
    currency: str,
    entry_type: EntryType,
    amount: int,
    reason: str | None,
    idempotency_key: str,
) -> Posting:
    """Credit or debit the customer's wallet in `currency`, exactly once per idempotency key.

    Guarantees: the balance check and the write are atomic, so racing postings never lose an
    update nor overdraw; the same key with the same parameters returns the original entry with
    `replayed=True` and writes nothing; a credit opens a missing wallet. Commits its own
    transaction. Raises ValidationError, NotFoundError (unknown customer, or another
    organization's), InsufficientBalanceError, IdempotencyConflictError; in each case nothing
    is written.
    """
    key = validation.text(idempotency_key, "idempotencyKey", max_length=255, required=True)
    assert key is not None
    request = _Request(
        organization_id=organization_id,
        customer_id=customer_id,
        currency=validation.currency(currency),
        entry_type=entry_type,
        amount=validation.amount(amount),
        reason=validation.text(reason, "reason", max_length=500),
        idempotency_key=key,
    )
    posting = await _post(database, request)
    if posting is not None:
        return posting
    # The guard matched no row: a replay, a wallet to open, or a refusal to explain.
    lock_key = SQLITE_WRITER if database.is_sqlite else (customer_id, request.currency)
    async with database.write_locks.hold(lock_key):
        posting = await _find_replay(database, request)
        if posting is None and request.entry_type is EntryType.CREDIT:
            if await _open_missing_wallet(database, request):
                posting = await _post(database, request, queued=False) or await _find_replay(
                    database, request
                )
        if posting is not None:
            return posting
        raise await _explain_refusal(database, request)


async def _post(database: Database, request: _Request, *, queued: bool = True) -> Posting | None:
    """Write the entry if the guard holds; None if it did not or the key is taken.

    On PostgreSQL, postings of one wallet that arrive while one of its writes is in flight
    queue in this process and are then written together in one transaction: a hot wallet
    costs one commit per batch, not per posting, and its row sees one writer per process.
    On SQLite, which has one writer per file, every posting takes the process-wide queue.
    `queued=False`: write now, outside the queue (the caller holds the wallet's write lock).
    Each posting is announced once its transaction has committed, never before.
    """
    if database.is_sqlite and queued:
        async with database.write_locks.hold(SQLITE_WRITER):
            return await _write_sqlite(database, request)
    if database.is_sqlite:
        return await _write_sqlite(database, request)
    if queued:
        wallet = (request.organization_id, request.customer_id, request.currency)
        return await database.write_batches.submit(
            wallet, request, lambda batch: _write_batch(database, batch)
        )
    return await _write_one(database, request)


# entry id, wallet, sequence, balance after, time, the wallet's low-balance threshold
_Row = tuple[int, int, int, int, datetime, int | None]


async def _write_one(database: Database, request: _Request) -> Posting | None:
    # One statement is its own transaction: no BEGIN/COMMIT round trips.
    try:
        async with database.autocommit.connect() as connection:
            row = (await connection.execute(_MOVE_AND_RECORD, request.params())).first()
    except IntegrityError:  # the key was taken by a racing transaction: nothing was written
        return None
    return None if row is None else _committed(database, request, tuple(row))


async def _write_batch(
    database: Database, batch: list[_Request]
) -> list[Posting | None | Exception]:
    if len(batch) == 1:
        return [await _write_one(database, batch[0])]
    try:
        async with database.engine.begin() as connection:
            rows = [(await connection.execute(_MOVE_AND_RECORD, r.params())).first() for r in batch]
    except Exception:  # noqa: BLE001
        # The batch rolled back as a whole (a key taken by a transaction elsewhere, a deadlock
        # on keys shared with another batch, a timeout): go one by one, so each caller gets
        # its own outcome and one request's failure is not its neighbours'.
        return [await _outcome(_write_one(database, r)) for r in batch]
    return [
        None if row is None else _committed(database, r, tuple(row))
        for r, row in zip(batch, rows, strict=True)
    ]


async def _outcome(write: Awaitable[Posting | None]) -> Posting | None | Exception:
    try:
        return await write
    except Exception as exc:  # noqa: BLE001 - this caller's own failure
        return exc


async def _write_sqlite(database: Database, request: _Request) -> Posting | None:
    params = request.params()
    try:
        async with database.engine.begin() as connection:
            moved = (await connection.execute(_MOVE, params)).first()
            if moved is None:
                return None
            wallet_id, balance, version, threshold = moved
            params.update(p_wallet_id=wallet_id, p_sequence=version, p_balance_after=balance)
            row = (await connection.execute(_RECORD, params)).first()
    except IntegrityError:  # the key was taken by a racing process: rolled back as a whole
        return None
    return None if row is None else _committed(database, request, (*row, threshold))


def _committed(database: Database, request: _Request, row: _Row) -> Posting:
    """The posting of a committed row, announced to live subscribers."""
    entry_id, wallet_id, sequence, balance_after, created_at, threshold = row
    entry = LedgerEntry(
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
        request_hash=request.fingerprint,
        created_at=created_at,
    )
    wallet = Wallet(
        id=wallet_id,
        organization_id=request.organization_id,
        customer_id=request.customer_id,
        currency=request.currency,
        balance=balance_after,
        version=sequence,
        low_balance_threshold=threshold,
        updated_at=created_at,
    )
    database.events.publish(BalanceChanged(wallet=wallet, entry=entry))
    return Posting(entry=entry, wallet=wallet, replayed=False)


# The write statements are built once; each posting only binds its parameters (building and
# hashing SQLAlchemy constructs per request cost more than the database round trip).
def _p(name: str, column: str, table: Table = entries) -> BindParameter[object]:
    return bindparam(f"p_{name}", type_=table.c[column].type)


_delta = bindparam("p_delta", type_=BigInteger())
_MOVE = (
    update(wallets)
    .where(
        wallets.c.customer_id == _p("customer_id", "customer_id", wallets),
        wallets.c.currency == _p("currency", "currency", wallets),
        wallets.c.organization_id == _p("organization_id", "organization_id", wallets),
        wallets.c.balance + _delta >= 0,
        wallets.c.balance + _delta <= MAX_BALANCE,
        exists().where(
            Customer.id == _p("customer_id", "customer_id", wallets),
            Customer.deleted_at.is_(None),
        ),
        # A used key moves nothing; the caller then finds the original (or the conflict).
        ~exists().where(
            entries.c.organization_id == _p("organization_id", "organization_id"),
            entries.c.idempotency_key == _p("idempotency_key", "idempotency_key"),
        ),
    )
    .values(
        balance=wallets.c.balance + _delta,
        version=wallets.c.version + 1,
        updated_at=_p("now", "updated_at", wallets),
    )
    .returning(wallets.c.id, wallets.c.balance, wallets.c.version, wallets.c.low_balance_threshold)
)
_ENTRY_COLUMNS = (
    "organization_id",
    "entry_type",
    "amount",
    "currency",
    "reason",
    "idempotency_key",
    "request_hash",
)
_RETURNED = (
    entries.c.id,
    entries.c.wallet_id,
    entries.c.sequence,
    entries.c.balance_after,
    entries.c.created_at,
)
_RECORD = (
    insert(entries)
    .values(
        **{c: _p(c, c) for c in _ENTRY_COLUMNS},
        created_at=_p("now", "created_at"),
        wallet_id=_p("wallet_id", "wallet_id"),
        sequence=_p("sequence", "sequence"),
        balance_after=_p("balance_after", "balance_after"),
    )
    .returning(*_RETURNED)
)
_moved = _MOVE.cte("moved")
_recorded = (
    insert(entries)
    .from_select(
        [*_ENTRY_COLUMNS, "created_at", "wallet_id", "sequence", "balance_after"],
        select(
            *(_p(c, c) for c in _ENTRY_COLUMNS),
            _p("now", "created_at"),
            _moved.c.id,
            _moved.c.version,
            _moved.c.balance,
        ),
    )
    .returning(*_RETURNED)
    .cte("recorded")
)
_MOVE_AND_RECORD = select(
    *(_recorded.c[c.key] for c in _RETURNED), _moved.c.low_balance_threshold
).select_from(_recorded.join(_moved, true()))


async def _find_replay(database: Database, request: _Request) -> Posting | None:
    """The original posting for this key, or None; IdempotencyConflictError if it differs."""
    async with database.sessions() as session:
        entry = await session.scalar(
            select(LedgerEntry).where(
                LedgerEntry.organization_id == request.organization_id,
                LedgerEntry.idempotency_key == request.idempotency_key,
            )
        )
        if entry is None:
            return None
        if entry.request_hash != request.fingerprint:
            raise IdempotencyConflictError(request.idempotency_key)
        wallet = await session.get_one(Wallet, entry.wallet_id)
    return Posting(entry=entry, wallet=wallet, replayed=True)


async def _open_missing_wallet(database: Database, request: _Request) -> bool:
    """Open the wallet a credit needs; False if the customer is not a live one of the tenant."""
    async with database.transactions.begin() as session:
        customer = await session.scalar(
            select(Customer.id).where(
                Customer.id == request.customer_id,
                Customer.organization_id == request.organization_id,
                Customer.deleted_at.is_(None),
            )
        )
        if customer is None:
            return False
        await open_wallet(session, request.organization_id, request.customer_id, request.currency)
    return True


async def _explain_refusal(database: Database, request: _Request) -> Exception:
    """Why the guarded update matched no row: unknown customer, or the balance."""
    async with database.sessions() as session:
        row = (
            await session.execute(
                select(Customer.id, Wallet.balance)
                .outerjoin(
                    Wallet,
                    and_(Wallet.customer_id == Customer.id, Wallet.currency == request.currency),
                )
                .where(
                    Customer.id == request.customer_id,
                    Customer.organization_id == request.organization_id,
                    Customer.deleted_at.is_(None),
                )
            )
        ).first()
    if row is None:
        return NotFoundError("Customer not found.")
    balance = row.balance or 0
    if request.entry_type is EntryType.CREDIT:
        return ValidationError(
            f"A wallet balance can be at most {MAX_BALANCE} minor units.", "amount"
        )
    return InsufficientBalanceError(
        balance=balance, requested=request.amount, currency=request.currency
    )
