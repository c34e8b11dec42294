"""The ledger's write statements, built once: each posting only binds its parameters (building
and hashing SQLAlchemy constructs per request cost more than the database round trip).

- MOVE: the guarded UPDATE of the wallet row. It matches no row when the balance would leave
  0..2^53-1, the customer is deleted or not the organization's, or the idempotency key is used.
- RECORD: the INSERT of the entry, with what MOVE returned (SQLite: two statements).
- MOVE_AND_RECORD: both as one statement, a data-modifying CTE (PostgreSQL), returning the
  entry and the wallet's low-balance threshold.
"""

from typing import cast

from sqlalchemy import (
    BigInteger,
    BindParameter,
    Table,
    bindparam,
    exists,
    insert,
    select,
    true,
    update,
)

from billgraph.core.validation import MAX_AMOUNT
from billgraph.db.models import Customer, LedgerEntry, Wallet
from billgraph.db.plain import Prebuilt

wallets = cast(Table, Wallet.__table__)
entries = cast(Table, LedgerEntry.__table__)


def _p(name: str, column: str, table: Table = entries) -> BindParameter[object]:
    return bindparam(f"p_{name}", type_=table.c[column].type)


_delta = bindparam("p_delta", type_=BigInteger())
MOVE = (
    update(wallets)
    .where(
        wallets.c.customer_id == _p("customer_id", "customer_id", wallets),
        wallets.c.currency == _p("currency", "currency", wallets),
        wallets.c.organization_id == _p("organization_id", "organization_id", wallets),
        wallets.c.balance + _delta >= 0,
        wallets.c.balance + _delta <= MAX_AMOUNT,
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
RECORD = (
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
_moved = MOVE.cte("moved")
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
MOVE_AND_RECORD = select(
    *(_recorded.c[c.key] for c in _RETURNED), _moved.c.low_balance_threshold
).select_from(_recorded.join(_moved, true()))
# The same on a plain connection (billgraph.db.plain): a posting of its own, autocommitted.
POSTING = Prebuilt(MOVE_AND_RECORD)
