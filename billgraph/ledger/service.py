"""Ledger postings: credits and debits on a wallet, idempotent and never overdrawn.

The ledger is append-only: an entry is never updated or deleted (database triggers refuse
it), and each entry records the wallet's balance after it. For every wallet at every moment
`balance == sum(credits) - sum(debits) >= 0`.

A posting is one guarded move of the wallet's balance and the entry it records (posting.py).
Two ways in:
- `post_entry(unit, ...)` joins the caller's unit of work, so a webhook can record the
  provider's event, credit the wallet and mark the checkout paid in one transaction;
- `commit_entry(database, ...)` is a unit of work of its own: the single statement, group
  committed with the wallet's queued postings (createLedgerEntry's fast path).
"""

from sqlalchemy.ext.asyncio import AsyncSession

from billgraph.core import validation
from billgraph.core.errors import (
    BillingError,
    IdempotencyConflictError,
    InsufficientBalanceError,
    NotFoundError,
    ValidationError,
)
from billgraph.core.unit import UnitOfWork
from billgraph.customers import repository as customer_repository
from billgraph.db.engine import SQLITE_WRITER, Database
from billgraph.ledger import posting as writes
from billgraph.ledger import repository
from billgraph.ledger.posting import EntryRequest, EntryType, Posting
from billgraph.wallets import repository as wallet_repository

__all__ = [
    "RESERVED_KEY_PREFIX",
    "EntryType",
    "Posting",
    "commit_entry",
    "entry_request",
    "post_entry",
]

# Idempotency keys billgraph gives its own postings (a checkout session's credit): a client's
# key cannot take one first and turn the credit into a conflict.
RESERVED_KEY_PREFIX = "billgraph:"


def entry_request(
    organization_id: int,
    *,
    customer_id: int,
    currency: str,
    entry_type: EntryType,
    amount: int,
    reason: str | None,
    idempotency_key: str,
    reserved_key: bool = False,
) -> EntryRequest:
    """The checked request; raises ValidationError naming the field at fault. Only
    billgraph's own postings (`reserved_key`) may use a key with RESERVED_KEY_PREFIX."""
    key = validation.text(idempotency_key, "idempotencyKey", max_length=255, required=True)
    assert key is not None
    if key.startswith(RESERVED_KEY_PREFIX) and not reserved_key:
        raise ValidationError(
            f"Idempotency keys starting with {RESERVED_KEY_PREFIX!r} are reserved for billgraph.",
            "idempotencyKey",
        )
    return EntryRequest(
        organization_id=organization_id,
        customer_id=customer_id,
        currency=validation.currency(currency),
        entry_type=entry_type,
        amount=validation.amount(amount),
        reason=validation.text(reason, "reason", max_length=500),
        idempotency_key=key,
    )


async def post_entry(unit: UnitOfWork, request: EntryRequest, *, contended: bool = True) -> Posting:
    """Credit or debit the customer's wallet in the unit's transaction, exactly once per
    idempotency key; announced when the unit commits, nothing if it rolls back.

    Guarantees as commit_entry's; the wallet row stays locked until the unit ends. Raises
    NotFoundError, InsufficientBalanceError, IdempotencyConflictError, ValidationError (a
    balance over 2^53-1); the unit's transaction is left usable and nothing of this posting
    is written. `contended=False`: the caller holds a lock that no other writer of this key
    can pass (a checkout session's row for its credit), so no savepoint guards the write.
    """
    session = unit.session
    posting = await writes.write_in(unit, request, contended=contended)
    if posting is None:
        posting = await _replay(session, request)
    if (
        posting is None
        and request.entry_type is EntryType.CREDIT
        and await _open_missing_wallet(session, request)
    ):
        posting = await writes.write_in(unit, request, contended=contended) or await _replay(
            session, request
        )
    if posting is None:
        raise await _refusal(session, request)
    return posting


async def commit_entry(database: Database, request: EntryRequest) -> Posting:
    """Credit or debit the customer's wallet in a transaction of its own, exactly once per
    idempotency key, and announce it once committed.

    Guarantees: the balance check and the write are atomic, so racing postings never lose an
    update nor overdraw; the same key with the same parameters returns the original entry with
    `replayed=True` and writes nothing; a credit opens a missing wallet. Raises NotFoundError
    (unknown customer, or another organization's), InsufficientBalanceError,
    IdempotencyConflictError, ValidationError (a balance over 2^53-1); in each case nothing is
    written.
    """
    posting = await writes.write(database, request)
    if posting is not None:
        return posting
    # The guard matched no row: a replay, a wallet to open, or a refusal to explain.
    lock_key = SQLITE_WRITER if database.is_sqlite else (request.customer_id, request.currency)
    async with database.write_locks.hold(lock_key):
        async with database.sessions() as session:
            posting = await _replay(session, request)
        if posting is None and request.entry_type is EntryType.CREDIT:
            # Its own small transaction: the wallet stays open whatever the posting's fate.
            async with database.transactions.begin() as session:
                opened = await _open_missing_wallet(session, request)
            if opened:
                posting = await writes.write(database, request, queued=False)
                if posting is None:
                    async with database.sessions() as session:
                        posting = await _replay(session, request)
        if posting is not None:
            return posting
        async with database.sessions() as session:
            raise await _refusal(session, request)


async def _replay(session: AsyncSession, request: EntryRequest) -> Posting | None:
    """The original posting for this key, or None; IdempotencyConflictError if it differs."""
    entry = await repository.entry_by_key(session, request.organization_id, request.idempotency_key)
    if entry is None:
        return None
    if entry.request_hash != request.fingerprint:
        raise IdempotencyConflictError(request.idempotency_key)
    wallet = await wallet_repository.wallet_by_id(session, entry.wallet_id)
    return Posting(entry=entry, wallet=wallet, replayed=True)


async def _open_missing_wallet(session: AsyncSession, request: EntryRequest) -> bool:
    """Open the wallet a credit needs; False if the customer is not a live one of the tenant."""
    customer = await customer_repository.live_customer(
        session, request.organization_id, request.customer_id
    )
    if customer is None:
        return False
    await wallet_repository.open_wallet(
        session, request.organization_id, request.customer_id, request.currency
    )
    return True


async def _refusal(session: AsyncSession, request: EntryRequest) -> BillingError:
    """Why the guarded move matched no row: unknown customer, or the balance."""
    row = await repository.customer_balance(
        session, request.organization_id, request.customer_id, request.currency
    )
    if row is None:
        return NotFoundError("Customer not found.")
    if request.entry_type is EntryType.CREDIT:
        return ValidationError(
            f"A wallet balance can be at most {validation.MAX_AMOUNT} minor units.", "amount"
        )
    return InsufficientBalanceError(
        balance=row.balance or 0, requested=request.amount, currency=request.currency
    )
