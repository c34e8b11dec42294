"""What billing announces to live subscribers: subscription status changes and invoice
updates, seen where the unit's session writes them, published once the unit has committed.

No service announces anything by hand: ORM hooks on the models watch every flush of a unit's
session, so a status assigned anywhere (the billing run, dunning, a webhook, a mutation) is
announced, once per change, and a change rolled back never is.
- A Subscription whose `status` a flush changes: (previous, new). One inserted through the
  ORM, or through repository.insert_subscription's Core insert (`subscription_inserted`), is
  a change from no status (previousStatus null): a subscriber learns of new subscriptions.
- Each change is linked to the SubscriptionEvent the same unit recorded for it (events.record:
  `created`, `activated`, `past_due`, `suspended`, `canceled`), or to none (a trial ending
  without a payment method becomes INCOMPLETE with no event).
- An Invoice inserted, or whose shown fields (status, amounts, attempts, dates) a flush
  changes: one InvoiceUpdated per invoice and unit, however many flushes touched it.
Writes outside a unit of work, and bulk UPDATE statements on these tables, are not seen (there
are none).

Mapper events rather than a session-wide before_flush: they run only for these three models,
so a unit that touches none of them (every ledger posting) pays nothing, and a flush hands
them each row with its attribute history, the previous status included.
"""

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Mapper, PassiveFlag, object_session
from sqlalchemy.orm.attributes import get_history

from billgraph.billing.dunning import SubscriptionStatus
from billgraph.billing.events import EventType
from billgraph.core.unit import UnitOfWork
from billgraph.db.models import Invoice, Subscription, SubscriptionEvent
from billgraph.live.events import InvoiceUpdated, SubscriptionStatusChanged

_CHANGES = "billgraph.billing.changes"

# What an invoice shows: a change of any announces it.
INVOICE_FIELDS = (
    "status",
    "subtotal",
    "discount",
    "wallet_credit_applied",
    "total",
    "amount_due",
    "amount_paid",
    "attempt_count",
    "next_payment_attempt_at",
    "due_at",
    "paid_at",
)

# The event that records a move into each status (CREATED: a new subscription's first).
RECORDED_BY: dict[str, EventType] = {
    SubscriptionStatus.ACTIVE: EventType.ACTIVATED,
    SubscriptionStatus.PAST_DUE: EventType.PAST_DUE,
    SubscriptionStatus.SUSPENDED: EventType.SUSPENDED,
    SubscriptionStatus.CANCELED: EventType.CANCELED,
}


@dataclass(frozen=True)
class _StatusChange:
    subscription_id: int
    organization_id: int
    customer_id: int
    previous: str | None
    status: str


@dataclass
class _Changes:
    """One unit's billing changes, in the order its flushes made them."""

    statuses: list[_StatusChange] = field(default_factory=list)
    recorded: list[tuple[int, int, str]] = field(default_factory=list)  # subscription, id, type
    invoices: dict[int, InvoiceUpdated] = field(default_factory=dict)

    def events(self) -> list[SubscriptionStatusChanged | InvoiceUpdated]:
        """The unit's events, each status change linked to the event that recorded it."""
        unclaimed = list(self.recorded)
        out: list[SubscriptionStatusChanged | InvoiceUpdated] = []
        for change in self.statuses:
            wanted = (
                EventType.CREATED if change.previous is None else RECORDED_BY.get(change.status)
            )
            event_id = None
            for index, (subscription_id, recorded_id, type_) in enumerate(unclaimed):
                if subscription_id == change.subscription_id and type_ == wanted:
                    event_id = recorded_id
                    del unclaimed[index]
                    break
            out.append(
                SubscriptionStatusChanged(
                    organization_id=change.organization_id,
                    customer_id=change.customer_id,
                    subscription_id=change.subscription_id,
                    previous_status=change.previous,
                    status=change.status,
                    event_id=event_id,
                )
            )
        out.extend(self.invoices.values())
        return out


def _changes_of(unit: UnitOfWork) -> _Changes:
    info = unit.session.info
    changes = info.get(_CHANGES)
    if changes is None:
        changes = info[_CHANGES] = _Changes()
        unit.after_commit_from(changes.events)
    assert isinstance(changes, _Changes)
    return changes


def _changes_of_row(row: object) -> _Changes | None:
    session = object_session(row)
    unit = UnitOfWork.of_session(session) if session is not None else None
    return _changes_of(unit) if unit is not None else None


def subscription_inserted(unit: UnitOfWork, subscription_id: int, values: dict[str, Any]) -> None:
    """Announce a subscription written by a Core insert (the ORM hooks do not see those)."""
    _changes_of(unit).statuses.append(
        _StatusChange(
            subscription_id,
            int(values["organization_id"]),
            int(values["customer_id"]),
            None,
            str(values["status"]),
        )
    )


def _status_change(row: Subscription, previous: str | None) -> None:
    changes = _changes_of_row(row)
    if changes is not None:
        changes.statuses.append(
            _StatusChange(row.id, row.organization_id, row.customer_id, previous, row.status)
        )


def _invoice_touched(row: Invoice) -> None:
    changes = _changes_of_row(row)
    if changes is not None:
        changes.invoices[row.id] = InvoiceUpdated(
            organization_id=row.organization_id,
            customer_id=row.customer_id,
            invoice_id=row.id,
            status=row.status,
        )


@event.listens_for(Subscription, "before_update")
def _subscription_updated(_mapper: Mapper[Any], _connection: object, row: Subscription) -> None:
    # get_history: a third of the cost of inspect(row).attrs (it runs on every flushed row).
    history = get_history(row, "status", PassiveFlag.PASSIVE_NO_INITIALIZE)
    if not history.has_changes():
        return
    previous = history.deleted[0] if history.deleted else None
    if previous != row.status:
        _status_change(row, previous)


@event.listens_for(Subscription, "after_insert")
def _subscription_inserted(_mapper: Mapper[Any], _connection: object, row: Subscription) -> None:
    _status_change(row, None)


@event.listens_for(SubscriptionEvent, "after_insert")
def _event_recorded(_mapper: Mapper[Any], _connection: object, row: SubscriptionEvent) -> None:
    changes = _changes_of_row(row)
    if changes is not None:
        changes.recorded.append((row.subscription_id, row.id, row.type))


@event.listens_for(Invoice, "after_insert")
def _invoice_inserted(_mapper: Mapper[Any], _connection: object, row: Invoice) -> None:
    _invoice_touched(row)


@event.listens_for(Invoice, "before_update")
def _invoice_updated(_mapper: Mapper[Any], _connection: object, row: Invoice) -> None:
    if any(
        get_history(row, name, PassiveFlag.PASSIVE_NO_INITIALIZE).has_changes()
        for name in INVOICE_FIELDS
    ):
        _invoice_touched(row)
