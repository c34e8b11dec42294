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
from dataclasses import dataclass
from datetime import datetime
from enum import Enum

from sqlalchemy import Row, and_, exists, insert, literal, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from billgraph.db.engine import SQLITE_WRITER, Database
from billgraph.db.models import Customer, LedgerEntry, Wallet, utcnow
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

    @property
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
    # Writers of one wallet queue here, so only one per process waits on the row lock; on
    # SQLite, which has one writer for the whole file, every posting shares a single queue.
    lock_key = SQLITE_WRITER if database.is_sqlite else (customer_id, request.currency)
    async with database.write_locks.hold(lock_key):
        posting = await _try_post(database, request) or await _find_replay(database, request)
        if posting is None and request.entry_type is EntryType.CREDIT:
            # The guard matched no row: perhaps the wallet does not exist yet. Open it, retry once.
            if await _open_missing_wallet(database, request):
                posting = await _try_post(database, request) or await _find_replay(database, request)
        if posting is not None:
            return posting
        raise await _explain_refusal(database, request)


async def _try_post(database: Database, request: _Request) -> Posting | None:
    """Write the entry if the guard holds; None if it did not or the key is taken."""
    now = utcnow()
    try:
        async with database.engine.begin() as connection:
            if database.is_sqlite:
                row = await _write_sqlite(connection, request, now)
            else:
                row = await _write_postgresql(connection, request, now)
    except IntegrityError:
        # The idempotency key is already used (perhaps by a racing request): the transaction
        # rolled back as a whole, wallet update included.
        return None
    if row is None:
        return None
    entry = LedgerEntry(
        id=row.id,
        organization_id=request.organization_id,
        wallet_id=row.wallet_id,
        sequence=row.sequence,
        entry_type=request.entry_type.value,
        amount=request.amount,
        currency=request.currency,
        balance_after=row.balance_after,
        reason=request.reason,
        idempotency_key=request.idempotency_key,
        request_hash=request.fingerprint,
        created_at=now,
    )
    wallet = Wallet(
        id=row.wallet_id,
        organization_id=request.organization_id,
        customer_id=request.customer_id,
        currency=request.currency,
        balance=row.balance_after,
        version=row.sequence,
        updated_at=now,
    )
    return Posting(entry=entry, wallet=wallet, replayed=False)


def _guarded_update(request: _Request, now: datetime):  # type: ignore[no-untyped-def]
    live_customer = exists().where(
        Customer.id == request.customer_id,
        Customer.organization_id == request.organization_id,
        Customer.deleted_at.is_(None),
    )
    return (
        update(wallets)
        .where(
            wallets.c.customer_id == request.customer_id,
            wallets.c.currency == request.currency,
            wallets.c.organization_id == request.organization_id,
            wallets.c.balance + request.delta >= 0,
            wallets.c.balance + request.delta <= MAX_BALANCE,
            live_customer,
        )
        .values(
            balance=wallets.c.balance + request.delta,
            version=wallets.c.version + 1,
            updated_at=now,
        )
        .returning(wallets.c.id, wallets.c.balance, wallets.c.version)
    )


def _entry_values(request: _Request, now: datetime) -> dict[str, object]:
    return {
        "organization_id": request.organization_id,
        "entry_type": request.entry_type.value,
        "amount": request.amount,
        "currency": request.currency,
        "reason": request.reason,
        "idempotency_key": request.idempotency_key,
        "request_hash": request.fingerprint,
        "created_at": now,
    }


async def _write_postgresql(
    connection: AsyncConnection, request: _Request, now: datetime
) -> Row[tuple[int, int, int, int]] | None:
    # One statement: the row lock is held for a single round trip, not a conversation.
    moved = _guarded_update(request, now).cte("moved")
    values = _entry_values(request, now)
    columns = [*values, "wallet_id", "sequence", "balance_after"]
    source = select(
        *(literal(v, entries.c[k].type) for k, v in values.items()),
        moved.c.id,
        moved.c.version,
        moved.c.balance,
    )
    statement = (
        insert(entries)
        .from_select(columns, source)
        .returning(
            entries.c.id,
            entries.c.wallet_id,
            entries.c.sequence,
            entries.c.balance_after,
        )
    )
    return (await connection.execute(statement)).first()  # type: ignore[return-value]


async def _write_sqlite(
    connection: AsyncConnection, request: _Request, now: datetime
) -> Row[tuple[int, int, int, int]] | None:
    moved = (await connection.execute(_guarded_update(request, now))).first()
    if moved is None:
        return None
    wallet_id, balance, version = moved
    statement = (
        insert(entries)
        .values(
            **_entry_values(request, now),
            wallet_id=wallet_id,
            sequence=version,
            balance_after=balance,
        )
        .returning(entries.c.id, entries.c.wallet_id, entries.c.sequence, entries.c.balance_after)
    )
    return (await connection.execute(statement)).first()  # type: ignore[return-value]


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
    async with database.sessions.begin() as session:
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
