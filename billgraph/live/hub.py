"""The subscribers of one gateway process, and the fan-out of events to them.

Events arrive from the broker in an inbox and are dispatched by one task, in order. Per wallet
the hub hands out versions in sequence: an event older than what it has seen is dropped, and
when one arrives ahead of its predecessors (two replicas' notifications crossing, or some lost
while the broker reconnected) the hub reads the missing entries back from the ledger first.
For a wallet it has not seen yet, "missing" means written since its watchers subscribed.

Each subscriber has a bounded queue. When it is full, the queue coalesces to the latest event
per wallet (the subscriber sees the version jump); a subscriber that falls behind on more
wallets than its queue holds is ended, and its client re-reads. A slow dashboard costs its own
queue, never the ledger's writers or other subscribers.

Billing events (subscription status changes, invoice updates) go to billing subscribers
(live/billing.py): the rows they name are read back once per event, and only when someone
here watches their organization and customer.
"""

import asyncio
from collections import OrderedDict, defaultdict, deque
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager, suppress
from datetime import datetime, timedelta

from prometheus_client import Counter, Gauge

from billgraph.db.engine import Database
from billgraph.db.models import LedgerEntry, Wallet, utcnow
from billgraph.live import billing, repository
from billgraph.live.billing import BillingSubscriber, Topic
from billgraph.live.events import (
    ApiKeyRevoked,
    BalanceChanged,
    Event,
    InvoiceUpdated,
    SubscriptionStatusChanged,
)
from billgraph.logs import get_logger

log = get_logger(__name__)

SUBSCRIBERS = Gauge("billgraph_subscribers", "Live subscriptions in this process")
EVENTS = Counter("billgraph_events_total", "Events received by this process", ["type"])
READ_BACK = Counter("billgraph_events_read_back_total", "Entries read back from the ledger")
COALESCED = Counter("billgraph_events_coalesced_total", "Events a slow subscriber skipped")

# The most entries read back to fill one gap; beyond, the subscriber gets the latest state.
MAX_READ_BACK = 1_000
# The most entries a resync re-sends; beyond, each changed wallet's latest state.
MAX_RESYNC_ENTRIES = 10_000
MAX_REMEMBERED_REVOCATIONS = 10_000
# Entry times come from the writing replica's clock, subscription times from this one's.
CLOCK_SKEW = timedelta(seconds=2)
# Wallets whose last version the hub remembers (least recently changed forgotten first).
MAX_TRACKED_WALLETS = 100_000


class SubscriptionEnded(Exception):
    """The hub ended the subscription. `code` None: the server is stopping (a normal end);
    otherwise why the client must re-read and resubscribe."""

    def __init__(self, message: str, code: str | None) -> None:
        super().__init__(message)
        self.code = code


SLOW_SUBSCRIBER = "SUBSCRIBER_TOO_SLOW"


class Subscriber:
    """One live subscription: what it watches and its bounded, coalescing queue."""

    def __init__(
        self,
        organization_id: int,
        *,
        wallet_id: int | None,
        customer_id: int | None,
        low_balance_only: bool,
        capacity: int,
    ) -> None:
        self.organization_id = organization_id
        self.wallet_id = wallet_id
        self.customer_id = customer_id
        self.low_balance_only = low_balance_only
        self.capacity = capacity
        self.skipped = 0
        self.since = utcnow()
        self._queue: deque[BalanceChanged] = deque()
        self._wakeup = asyncio.Event()
        self._delivered: dict[int, int] = {}  # wallet id -> last version handed out
        self._ended: SubscriptionEnded | None = None

    def matches(self, event: BalanceChanged) -> bool:
        wallet = event.wallet
        return (
            wallet.organization_id == self.organization_id
            and (self.wallet_id is None or wallet.id == self.wallet_id)
            and (self.customer_id is None or wallet.customer_id == self.customer_id)
            and (not self.low_balance_only or event.low_balance)
        )

    def offer(self, event: BalanceChanged) -> None:
        """Queue `event` without ever waiting."""
        if self._ended is not None:
            return
        if len(self._queue) >= self.capacity:
            if not self.low_balance_only:  # each alert counts: alerts never coalesce
                self._coalesce()
            if len(self._queue) >= self.capacity:
                self.end(
                    "The subscriber fell too far behind; re-read and resubscribe.", SLOW_SUBSCRIBER
                )
                return
        self._queue.append(event)
        self._wakeup.set()

    def _coalesce(self) -> None:
        latest: dict[int, BalanceChanged] = {}
        for event in self._queue:  # keeps each wallet's latest, in the order they came
            latest.pop(event.wallet_id, None)
            latest[event.wallet_id] = event
        skipped = len(self._queue) - len(latest)
        self.skipped += skipped
        COALESCED.inc(skipped)
        self._queue = deque(latest.values())

    def delivered_up_to(self, wallet_id: int, version: int) -> None:
        """The client holds `wallet_id` up to `version`: nothing older reaches it again."""
        self._delivered[wallet_id] = max(version, self._delivered.get(wallet_id, 0))

    def end(self, reason: str, code: str | None = None) -> None:
        self._ended = SubscriptionEnded(reason, code)
        self._queue.clear()
        self._wakeup.set()

    async def next(self) -> BalanceChanged:
        """The next event, each wallet's in version order and none twice."""
        while True:
            while not self._queue:
                if self._ended is not None:
                    raise self._ended
                self._wakeup.clear()
                await self._wakeup.wait()
            event = self._queue.popleft()
            if event.version > self._delivered.get(event.wallet_id, 0):
                self._delivered[event.wallet_id] = event.version
                return event


SocketCloser = Callable[[], Coroutine[object, object, None]]


class Hub:
    def __init__(self, database: Database, *, queue_size: int) -> None:
        self._database = database
        self.queue_size = queue_size
        self._by_wallet: dict[int, set[Subscriber]] = defaultdict(set)
        self._by_customer: dict[int, set[Subscriber]] = defaultdict(set)
        self._by_organization: dict[int, set[Subscriber]] = defaultdict(set)
        self._organizations: dict[int, int] = defaultdict(int)  # subscribers per organization
        self._sockets: dict[int, set[SocketCloser]] = defaultdict(set)  # per API key
        # Billing subscribers by (topic, organization); each filters by customer itself.
        self._billing: dict[tuple[Topic, int], set[BillingSubscriber]] = defaultdict(set)
        self._billing_organizations: dict[int, int] = defaultdict(int)
        self._versions: OrderedDict[int, int] = OrderedDict()
        self._inbox: asyncio.Queue[Event] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._closing: set[asyncio.Task[None]] = set()
        # Keys revoked lately, for sockets still authenticating when the news came.
        self._revoked: OrderedDict[int, None] = OrderedDict()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="billgraph-event-hub")

    async def stop(self) -> None:
        """End every subscription (their clients get `complete`) and stop dispatching."""
        for subscribers in self._by_organization, self._by_customer, self._by_wallet:
            for group in subscribers.values():
                for subscriber in group:
                    subscriber.end("The server is shutting down.")
        for billing_group in self._billing.values():
            for billing_subscriber in billing_group:
                billing_subscriber.end("The server is shutting down.")
        if self._task is not None:
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task

    def watches(self, organization_id: int) -> bool:
        """Whether anyone here subscribes to the organization's balances. Events of the
        others can be ignored: a first event after a subscription reads back what it needs."""
        return organization_id in self._organizations

    def watches_billing(self, organization_id: int) -> bool:
        """Whether anyone here subscribes to the organization's subscriptions or invoices."""
        return organization_id in self._billing_organizations

    def receive(self, event: Event) -> None:
        self._inbox.put_nowait(event)

    @contextmanager
    def subscribe(
        self,
        organization_id: int,
        *,
        wallet_id: int | None = None,
        customer_id: int | None = None,
        low_balance_only: bool = False,
    ) -> Iterator[Subscriber]:
        subscriber = Subscriber(
            organization_id,
            wallet_id=wallet_id,
            customer_id=customer_id,
            low_balance_only=low_balance_only,
            capacity=self.queue_size,
        )
        if wallet_id is not None:
            index, key = self._by_wallet, wallet_id
        elif customer_id is not None:
            index, key = self._by_customer, customer_id
        else:
            index, key = self._by_organization, organization_id
        index[key].add(subscriber)
        self._organizations[organization_id] += 1
        SUBSCRIBERS.inc()
        try:
            yield subscriber
        finally:
            SUBSCRIBERS.dec()
            index[key].discard(subscriber)
            if not index[key]:
                del index[key]
            self._organizations[organization_id] -= 1
            if not self._organizations[organization_id]:
                del self._organizations[organization_id]

    @contextmanager
    def subscribe_billing(
        self, topic: Topic, organization_id: int, *, customer_id: int | None = None
    ) -> Iterator[BillingSubscriber]:
        subscriber = BillingSubscriber(
            topic, organization_id, customer_id=customer_id, capacity=self.queue_size
        )
        key = (topic, organization_id)
        self._billing[key].add(subscriber)
        self._billing_organizations[organization_id] += 1
        SUBSCRIBERS.inc()
        try:
            yield subscriber
        finally:
            SUBSCRIBERS.dec()
            self._billing[key].discard(subscriber)
            if not self._billing[key]:
                del self._billing[key]
            self._billing_organizations[organization_id] -= 1
            if not self._billing_organizations[organization_id]:
                del self._billing_organizations[organization_id]

    def add_socket(self, api_key_id: int, close: SocketCloser) -> Callable[[], None]:
        """Register an open socket of `api_key_id`, closed if the key is revoked. Returns the
        function that unregisters it."""
        self._sockets[api_key_id].add(close)
        if api_key_id in self._revoked:  # revoked while the socket was authenticating
            self._close_sockets(api_key_id)

        def remove() -> None:
            closers = self._sockets.get(api_key_id)
            if closers is not None:
                closers.discard(close)
                if not closers:
                    del self._sockets[api_key_id]

        return remove

    async def resync(self, since: datetime) -> None:
        """After events may have been lost (the broker reconnected): re-send every entry of
        the watched organizations written since `since` (each subscriber drops what it
        holds), and close the sockets of keys revoked meanwhile."""
        changed: list[tuple[Wallet, LedgerEntry]] = []
        revoked: list[int] = []
        async with self._database.sessions() as session:
            if self._organizations:
                organizations = list(self._organizations)
                changed = await repository.entries_since(
                    session, organizations, since, limit=MAX_RESYNC_ENTRIES
                )
                if len(changed) == MAX_RESYNC_ENTRIES:  # too many: at least the latest states
                    changed += await repository.wallets_changed_since(session, organizations, since)
            if self._sockets:
                revoked = await repository.revoked_api_key_ids(session, list(self._sockets))
        for wallet, entry in changed:
            self.receive(BalanceChanged.of(wallet, entry))
        for api_key_id in revoked:
            self._key_revoked(api_key_id)

    async def _run(self) -> None:
        while True:
            event = await self._inbox.get()
            try:
                await self._dispatch(event)
            except Exception:
                log.exception("event dispatch failed")

    async def _dispatch(self, event: Event) -> None:
        if isinstance(event, ApiKeyRevoked):
            EVENTS.labels("key_revoked").inc()
            self._key_revoked(event.api_key_id)
            return
        if not isinstance(event, BalanceChanged):  # one class check: balances are the busy path
            await self._dispatch_billing(event)
            return
        EVENTS.labels("balance").inc()
        last = self._versions.get(event.wallet_id)
        if last is not None and event.version <= last:
            return  # seen already (read back earlier, or re-sent)
        self._versions[event.wallet_id] = event.version
        self._versions.move_to_end(event.wallet_id)
        if len(self._versions) > MAX_TRACKED_WALLETS:
            self._versions.popitem(last=False)
        watchers = self._watchers(event)
        if not watchers:
            return
        events = [event]
        if event.entry is None or event.version > (last or 0) + 1:
            # A gap since the last event, or a wallet not seen yet (its predecessors may
            # still be on their way): read what the watchers have not had from the ledger.
            since = min(s.since for s in watchers) - CLOCK_SKEW
            events = await self._read_back(event, last, since)
        for subscriber in watchers:
            for each in events:
                if subscriber.matches(each):
                    subscriber.offer(each)

    async def _dispatch_billing(self, event: SubscriptionStatusChanged | InvoiceUpdated) -> None:
        topic = billing.topic_of(event)
        EVENTS.labels(topic.value).inc()
        group = self._billing.get((topic, event.organization_id), set())
        watchers = [subscriber for subscriber in group if subscriber.matches(event)]
        if not watchers:
            return
        delivery = await billing.read_back(self._database, event)
        if delivery is None:
            return
        for subscriber in watchers:
            subscriber.offer(delivery, too_slow=SLOW_SUBSCRIBER)

    def _watchers(self, event: BalanceChanged) -> set[Subscriber]:
        wallet = event.wallet
        return (
            self._by_wallet.get(wallet.id, set())
            | self._by_customer.get(wallet.customer_id, set())
            | self._by_organization.get(wallet.organization_id, set())
        )

    async def _read_back(
        self, event: BalanceChanged, last: int | None, since: datetime
    ) -> list[BalanceChanged]:
        """The entries after `last` up to `event` written since the earliest watcher
        subscribed, from the ledger (`last` may be stale: events of organizations nobody
        here watched were not even decoded)."""
        after = max(event.version - MAX_READ_BACK, last or 0)
        try:
            async with self._database.sessions() as session:
                entries = await repository.entries_after(
                    session,
                    event.wallet_id,
                    after,
                    upto=event.version,
                    limit=MAX_READ_BACK,
                    written_since=since,
                )
        except Exception:
            log.exception("reading missed entries back failed", wallet_id=event.wallet_id)
            return [event] if event.entry is not None else []
        READ_BACK.inc(len(entries))
        return [BalanceChanged.of(event.wallet, entry) for entry in entries]

    def _key_revoked(self, api_key_id: int) -> None:
        self._revoked[api_key_id] = None
        if len(self._revoked) > MAX_REMEMBERED_REVOCATIONS:
            self._revoked.popitem(last=False)
        self._close_sockets(api_key_id)

    def _close_sockets(self, api_key_id: int) -> None:
        for close in list(self._sockets.pop(api_key_id, ())):
            task = asyncio.create_task(close())
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)
