"""Live events: what the ledger and billing announce after a commit, and how it reaches
subscribers.

Events are state, not the source of truth: a balance event carries the wallet as it was right
after one ledger entry, and the entry's sequence is the wallet's version. A subscriber ignores
anything older than what it holds, and whatever is lost in transit is read back from the
ledger (see hub.py). Writers publish only after their transaction commits.

brokers.py carries events between processes: PostgreSQL LISTEN/NOTIFY by default, or in
process on SQLite; hub.py fans them out to the subscribers of this process.

Billing events carry ids and statuses only: each receiving process reads the subscription or
invoice back once (live/billing.py), so they are never too large for the wire, and what a
subscriber gets is the committed state when the event reached its process.
"""

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Row

from billgraph.db.models import LedgerEntry, Wallet

_WALLET_FIELDS = (
    "id",
    "organization_id",
    "customer_id",
    "currency",
    "balance",
    "version",
    "low_balance_threshold",
)
_ENTRY_FIELDS = (
    "id",
    "organization_id",
    "wallet_id",
    "sequence",
    "entry_type",
    "amount",
    "currency",
    "balance_after",
    "reason",
    "idempotency_key",
)


@dataclass(frozen=True, slots=True)
class WalletState:
    """A wallet as an event carries it (as it was right after one entry): a plain record, not
    an ORM object, as one is made for every posting and for every event a process receives."""

    id: int
    organization_id: int
    customer_id: int
    currency: str
    balance: int
    version: int
    low_balance_threshold: int | None
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class EntryState:
    """A ledger entry as a posting or an event carries it (a plain record, as WalletState)."""

    id: int
    organization_id: int
    wallet_id: int
    sequence: int
    entry_type: str
    amount: int
    currency: str
    balance_after: int
    reason: str | None
    idempotency_key: str
    created_at: datetime


# As read from the database (ORM objects) or carried by a posting or an event (records).
AnyWallet = Wallet | WalletState
AnyEntry = LedgerEntry | EntryState


def crossed_low_balance(threshold: int | None, entry: AnyEntry) -> bool:
    """Whether `entry` took its wallet from at-or-above `threshold` to below it."""
    if threshold is None or entry.entry_type != "DEBIT":
        return False
    return entry.balance_after < threshold <= entry.balance_after + entry.amount


@dataclass(frozen=True)
class BalanceChanged:
    """One committed ledger entry and the wallet right after it.

    `entry` is None when it was too large for the wire; the receiver reads it back.
    """

    wallet: AnyWallet
    entry: AnyEntry | None

    @property
    def organization_id(self) -> int:
        return self.wallet.organization_id

    @property
    def wallet_id(self) -> int:
        return self.wallet.id

    @property
    def version(self) -> int:
        return self.wallet.version

    @property
    def low_balance(self) -> bool:
        return self.entry is not None and crossed_low_balance(
            self.wallet.low_balance_threshold, self.entry
        )

    @classmethod
    def of(cls, wallet: AnyWallet | Row[Any], entry: AnyEntry) -> "BalanceChanged":
        """The event for `entry`, with `wallet` (its current row, a model or a plain row) as
        it was right after it."""
        after = WalletState(
            id=wallet.id,
            organization_id=wallet.organization_id,
            customer_id=wallet.customer_id,
            currency=wallet.currency,
            balance=entry.balance_after,
            version=entry.sequence,
            low_balance_threshold=wallet.low_balance_threshold,
            updated_at=entry.created_at,
        )
        return cls(wallet=after, entry=entry)


@dataclass(frozen=True)
class ApiKeyRevoked:
    """A key was revoked: every socket it opened is closed, on every replica."""

    organization_id: int
    api_key_id: int


@dataclass(frozen=True)
class SubscriptionStatusChanged:
    """A subscription's status changed (`previous_status` None: it was created), and the
    SubscriptionEvent that recorded the change, if one did."""

    organization_id: int
    customer_id: int
    subscription_id: int
    previous_status: str | None
    status: str
    event_id: int | None


@dataclass(frozen=True)
class InvoiceUpdated:
    """An invoice was issued, or what it shows changed (status, amounts, attempts)."""

    organization_id: int
    customer_id: int
    invoice_id: int
    status: str


BillingEvent = SubscriptionStatusChanged | InvoiceUpdated
Event = BalanceChanged | ApiKeyRevoked | SubscriptionStatusChanged | InvoiceUpdated


def _compact(message: dict[str, Any]) -> str:
    """Compact JSON, UTF-8 as is (every value a column of bounded size: orjson takes them)."""
    return orjson.dumps(message).decode()


def encode(event: Event, *, with_entry: bool = True) -> str:
    if isinstance(event, ApiKeyRevoked):
        message = {"type": "key_revoked", "org": event.organization_id, "key": event.api_key_id}
        return json.dumps(message)
    if isinstance(event, SubscriptionStatusChanged):
        return _compact(
            {
                "type": "subscription_status",
                "org": event.organization_id,
                "customer": event.customer_id,
                "subscription": event.subscription_id,
                "previous": event.previous_status,
                "status": event.status,
                "event": event.event_id,
            }
        )
    if isinstance(event, InvoiceUpdated):
        return _compact(
            {
                "type": "invoice",
                "org": event.organization_id,
                "customer": event.customer_id,
                "invoice": event.invoice_id,
                "status": event.status,
            }
        )
    wallet: dict[str, Any] = {f: getattr(event.wallet, f) for f in _WALLET_FIELDS}
    wallet["updated_at"] = event.wallet.updated_at.isoformat()
    entry: dict[str, Any] | None = None
    if with_entry and event.entry is not None:
        entry = {f: getattr(event.entry, f) for f in _ENTRY_FIELDS}
        entry["created_at"] = event.entry.created_at.isoformat()
    return _compact({"type": "balance", "wallet": wallet, "entry": entry})


def _optional_int(value: object) -> int | None:
    return None if value is None else int(value)  # type: ignore[call-overload]


def decode(payload: str) -> Event:
    """The event in `payload`; raises ValueError (or KeyError/TypeError) if malformed."""
    message = json.loads(payload)
    if message["type"] == "key_revoked":
        return ApiKeyRevoked(organization_id=int(message["org"]), api_key_id=int(message["key"]))
    if message["type"] == "subscription_status":
        previous = message["previous"]
        return SubscriptionStatusChanged(
            organization_id=int(message["org"]),
            customer_id=int(message["customer"]),
            subscription_id=int(message["subscription"]),
            previous_status=None if previous is None else str(previous),
            status=str(message["status"]),
            event_id=_optional_int(message["event"]),
        )
    if message["type"] == "invoice":
        return InvoiceUpdated(
            organization_id=int(message["org"]),
            customer_id=int(message["customer"]),
            invoice_id=int(message["invoice"]),
            status=str(message["status"]),
        )
    if message["type"] != "balance":
        raise ValueError(f"unknown event type {message['type']!r}")
    wallet = dict(message["wallet"])
    wallet["updated_at"] = datetime.fromisoformat(wallet["updated_at"])
    entry = message["entry"]
    if entry is not None:
        entry = EntryState(**{**entry, "created_at": datetime.fromisoformat(entry["created_at"])})
    return BalanceChanged(wallet=WalletState(**wallet), entry=entry)
