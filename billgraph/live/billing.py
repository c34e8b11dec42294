"""Live billing: the subscribers of subscription status changes and invoice updates, and
what the hub hands them.

A billing event carries ids and statuses only. The hub of each process that has a matching
subscriber reads the rows back once per event (`read_back`), not once per subscriber, and
offers every matching subscriber the same delivery. A subscriber's queue is bounded: when it
is full it coalesces to the latest delivery per subscription (the status change then spans
the skipped ones: `previous_status` of the first, the rest of the last) or per invoice; one
that falls behind on more than its queue holds is ended, as balance subscribers are.

Unlike balances, a billing event lost while the broker reconnected is not re-sent: clients
re-read what they show when they resubscribe.
"""

import asyncio
from collections import deque
from dataclasses import dataclass, replace
from enum import StrEnum

from billgraph.db.engine import Database
from billgraph.db.models import Invoice, Subscription, SubscriptionEvent
from billgraph.live import repository
from billgraph.live.events import BillingEvent, InvoiceUpdated, SubscriptionStatusChanged


class Topic(StrEnum):
    SUBSCRIPTION_STATUS = "subscription_status"
    INVOICE = "invoice"


def topic_of(event: BillingEvent) -> Topic:
    if isinstance(event, SubscriptionStatusChanged):
        return Topic.SUBSCRIPTION_STATUS
    return Topic.INVOICE


@dataclass(frozen=True)
class StatusDelivery:
    change: SubscriptionStatusChanged
    subscription: Subscription  # as committed when the event reached this process
    event: SubscriptionEvent | None

    @property
    def key(self) -> int:
        return self.change.subscription_id


@dataclass(frozen=True)
class InvoiceDelivery:
    update: InvoiceUpdated
    invoice: Invoice  # as committed when the event reached this process

    @property
    def key(self) -> int:
        return self.update.invoice_id


Delivery = StatusDelivery | InvoiceDelivery


async def read_back(database: Database, event: BillingEvent) -> Delivery | None:
    """The rows `event` names, read once for every subscriber of this process; None if they
    are gone."""
    async with database.sessions() as session:
        if isinstance(event, SubscriptionStatusChanged):
            found = await repository.subscription_with_event(
                session, event.subscription_id, event.event_id
            )
            if found is None:
                return None
            return StatusDelivery(event, found[0], found[1])
        invoice = await repository.invoice(session, event.invoice_id)
        return InvoiceDelivery(event, invoice) if invoice is not None else None


class BillingEnded(Exception):
    """See hub.SubscriptionEnded: `code` None is a normal end (the server is stopping)."""

    def __init__(self, message: str, code: str | None) -> None:
        super().__init__(message)
        self.code = code


class BillingSubscriber:
    """One live billing subscription: its topic, whom it watches, its bounded queue."""

    def __init__(
        self, topic: Topic, organization_id: int, *, customer_id: int | None, capacity: int
    ) -> None:
        self.topic = topic
        self.organization_id = organization_id
        self.customer_id = customer_id
        self.capacity = capacity
        self.skipped = 0
        self._queue: deque[Delivery] = deque()
        self._wakeup = asyncio.Event()
        self._ended: BillingEnded | None = None

    def matches(self, event: BillingEvent) -> bool:
        return event.organization_id == self.organization_id and (
            self.customer_id is None or event.customer_id == self.customer_id
        )

    def offer(self, delivery: Delivery, *, too_slow: str) -> None:
        """Queue `delivery` without ever waiting; coalesce when full, end if that is not
        enough (`too_slow` is the error code the client then gets)."""
        if self._ended is not None:
            return
        if len(self._queue) >= self.capacity:
            self._coalesce()
            if len(self._queue) >= self.capacity:
                self.end("The subscriber fell too far behind; re-read and resubscribe.", too_slow)
                return
        self._queue.append(delivery)
        self._wakeup.set()

    def _coalesce(self) -> None:
        latest: dict[int, Delivery] = {}
        for delivery in self._queue:  # each key's latest, in the order they came
            earlier = latest.pop(delivery.key, None)
            if isinstance(earlier, StatusDelivery) and isinstance(delivery, StatusDelivery):
                # One change from the first one's previous status to the last one's status.
                change = replace(delivery.change, previous_status=earlier.change.previous_status)
                delivery = replace(delivery, change=change)
            latest[delivery.key] = delivery
        self.skipped += len(self._queue) - len(latest)
        self._queue = deque(latest.values())

    def end(self, reason: str, code: str | None = None) -> None:
        self._ended = BillingEnded(reason, code)
        self._queue.clear()
        self._wakeup.set()

    async def next(self) -> Delivery:
        while not self._queue:
            if self._ended is not None:
                raise self._ended
            self._wakeup.clear()
            await self._wakeup.wait()
        return self._queue.popleft()
