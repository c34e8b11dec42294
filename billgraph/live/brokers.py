"""Brokers carry events from the process that committed a write to every process's hub.

One small interface: `publish` (after commit; never blocks, never raises), `start`, `stop`.
- InProcessBroker: the hub of this process only. SQLite's choice (one process per file).
- PostgresBroker: LISTEN/NOTIFY on the database itself, so replicas need no other component.
  Publishing happens after the ledger's commit, batched on a connection of its own: a NOTIFY
  inside the ledger transaction would serialize every commit on PostgreSQL's notification
  queue lock (bench/RESULTS.md has the measurement). Each process keeps one listening
  connection, which reconnects by itself and then has the hub re-send what it may have missed.
  A process that only writes (`billgraph bill`, see `create_publisher`) publishes without
  listening, so the gateways' subscribers hear of its commits too.
"""

import asyncio
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from contextlib import suppress
from datetime import timedelta

import asyncpg
from sqlalchemy.engine import make_url

from billgraph.db.engine import Database
from billgraph.db.models import utcnow
from billgraph.live.events import (
    ApiKeyRevoked,
    BalanceChanged,
    Event,
    InvoiceUpdated,
    SubscriptionStatusChanged,
    decode,
    encode,
)
from billgraph.live.hub import Hub
from billgraph.logs import get_logger

log = get_logger(__name__)

CHANNEL = "billgraph_events"
# PostgreSQL refuses NOTIFY payloads from 8000 bytes on.
MAX_PAYLOAD_BYTES = 7_900
# Notifications per round trip when publishing.
PUBLISH_BATCH = 500
# Events waiting to be published while the database is unreachable, at most.
MAX_OUTBOX = 100_000
PUBLISH_TIMEOUT = 5.0
# How long a stopping process tries to publish what it committed.
FLUSH_TIMEOUT = 2.0
# How far before the last sign of life a lost listener may have missed events: an entry's
# time is taken before it waits for its row lock and commits (up to the statement timeout),
# on the writing replica's clock.
RESYNC_MARGIN = timedelta(seconds=30)


class Broker(ABC):
    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        # Told of every committed key revocation (its id), and when some may have been missed.
        self._on_revoked: list[Callable[[int], None]] = []
        self._on_missed: list[Callable[[], None]] = []

    @property
    def delivered(self) -> bool:
        """Whether every key revocation, wherever committed, reaches this process now (so a
        key may be believed for a moment without asking the database)."""
        return False

    def watch_revocations(self, revoked: Callable[[int], None], missed: Callable[[], None]) -> None:
        """Call `revoked(api_key_id)` for each committed revocation as soon as it reaches this
        process, and `missed()` whenever revocations may have been missed."""
        self._on_revoked.append(revoked)
        self._on_missed.append(missed)

    def _revoked(self, event: Event) -> None:
        if isinstance(event, ApiKeyRevoked):
            for revoked in self._on_revoked:
                revoked(event.api_key_id)

    def _missed(self) -> None:
        for missed in self._on_missed:
            missed()

    async def start(self) -> None:
        self.hub.start()

    async def stop(self) -> None:
        await self.hub.stop()

    @abstractmethod
    def publish(self, event: Event) -> None:
        """Send a committed change to every process's hub; never blocks, never raises."""


class InProcessBroker(Broker):
    def publish(self, event: Event) -> None:
        self.hub.receive(event)


class PostgresBroker(Broker):
    """`listen=False`: a process that only writes (`billgraph bill`) and has no subscribers
    publishes without holding a listening connection."""

    def __init__(
        self, hub: Hub, database_url: str, *, check_interval: float = 2.0, listen: bool = True
    ) -> None:
        super().__init__(hub)
        self._listen_too = listen
        url = make_url(database_url).set(drivername="postgresql")
        self._dsn = url.render_as_string(hide_password=False)
        self._check_interval = check_interval
        self._outbox: list[str] = []
        self._wake = asyncio.Event()
        self._listening = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._publisher: asyncpg.Connection | None = None
        self._sending = False

    @property
    def delivered(self) -> bool:
        return self._listening.is_set()

    async def start(self) -> None:
        await super().start()
        self._tasks = [asyncio.create_task(self._publish_loop(), name="billgraph-publisher")]
        if not self._listen_too:
            return
        self._tasks.append(asyncio.create_task(self._listen(), name="billgraph-listener"))
        try:  # serve even if the database is late: the listener keeps trying
            await asyncio.wait_for(self._listening.wait(), timeout=10)
        except TimeoutError:
            log.warning("event listener not connected yet; retrying in the background")

    async def stop(self) -> None:
        # What was committed before the stop still goes out, if the database lets it.
        with suppress(TimeoutError):
            await asyncio.wait_for(self._flushed(), timeout=FLUSH_TIMEOUT)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with suppress(asyncio.CancelledError, Exception):
                await task
        if self._publisher is not None:
            self._publisher.terminate()
        await super().stop()

    async def _flushed(self) -> None:
        while self._outbox or self._sending:
            await asyncio.sleep(0.01)

    def publish(self, event: Event) -> None:
        self._revoked(event)  # committed: this process forgets the key before answering
        # "b<organization id>:" ("s" for billing, "k" for a key) ahead of the JSON lets a
        # receiver skip events nobody in its process watches without decoding them.
        if isinstance(event, BalanceChanged):
            kind = "b"
        elif isinstance(event, SubscriptionStatusChanged | InvoiceUpdated):
            kind = "s"
        else:
            kind = "k"
        payload = f"{kind}{event.organization_id}:{encode(event)}"
        if len(payload.encode()) > MAX_PAYLOAD_BYTES and isinstance(event, BalanceChanged):
            # receivers read the entry back
            payload = f"b{event.organization_id}:{encode(event, with_entry=False)}"
        if len(self._outbox) >= MAX_OUTBOX:  # the database is unreachable for long: shed
            del self._outbox[:PUBLISH_BATCH]  # the oldest (receivers read them back later)
            log.warning("event outbox full; oldest events dropped", count=PUBLISH_BATCH)
        self._outbox.append(payload)
        self._wake.set()

    async def _connect(self, role: str) -> asyncpg.Connection:
        return await asyncpg.connect(
            self._dsn, server_settings={"application_name": f"billgraph-{role}"}, timeout=10
        )

    async def _publish_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await asyncio.sleep(0)  # let postings committed together join one round trip
            while self._outbox:
                batch = self._outbox[:PUBLISH_BATCH]
                del self._outbox[:PUBLISH_BATCH]
                self._sending = True
                await self._send(batch)  # keeps trying, so later events never overtake it
                self._sending = False

    async def _send(self, batch: list[str]) -> None:
        backoff = 0.1
        while True:
            try:
                if self._publisher is None or self._publisher.is_closed():
                    self._publisher = await self._connect("publisher")
                # One round trip for the batch; notifications keep their order.
                await self._publisher.execute(
                    "SELECT pg_notify($1, p) FROM unnest($2::text[]) WITH ORDINALITY AS t(p, n)"
                    " ORDER BY n",
                    CHANNEL,
                    batch,
                    timeout=PUBLISH_TIMEOUT,
                )
                return
            except Exception as exc:  # noqa: BLE001 - reconnect and retry whatever failed
                if self._publisher is not None:
                    self._publisher.terminate()
                self._publisher = None
                log.warning("publishing events failed; retrying", error=str(exc) or repr(exc))
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 5.0)

    def _on_notification(
        self, _connection: object, _pid: int, _channel: str, payload: object
    ) -> None:
        text = str(payload)
        try:
            head, _, body = text.partition(":")
            kind = head[:1]
            if kind == "b":
                if not self.hub.watches(int(head[1:])):
                    return
            elif kind == "s" and not self.hub.watches_billing(int(head[1:])):
                return
            event = decode(body)
        except (ValueError, KeyError, TypeError):
            log.warning("malformed event ignored", payload=text[:200])
            return
        self._revoked(event)
        self.hub.receive(event)

    async def _listen(self) -> None:
        backoff = 0.1
        alive_at = time.time()  # wall clock of the last sign of life
        while True:
            connection = None
            try:
                connection = await self._connect("listener")
                lost = asyncio.Event()
                connection.add_termination_listener(lambda _c, lost=lost: lost.set())
                await connection.add_listener(CHANNEL, self._on_notification)
                # Revocations from now on arrive; those of the gap may not have.
                self._missed()
                # Whatever was committed while nobody listened is sent again (a no-op at
                # start, when nobody subscribes yet).
                since = utcnow() - timedelta(seconds=time.time() - alive_at) - RESYNC_MARGIN
                await self.hub.resync(since)
                self._listening.set()
                backoff = 0.1
                while True:
                    alive_at = time.time()
                    try:
                        await asyncio.wait_for(lost.wait(), timeout=self._check_interval)
                        raise ConnectionError("listener connection closed")
                    except TimeoutError:
                        await connection.fetchval("SELECT 1", timeout=self._check_interval)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - keep listening whatever went wrong
                log.warning(
                    "event listener lost; reconnecting", error=str(exc) or type(exc).__name__
                )
            finally:
                if connection is not None and not connection.is_closed():
                    connection.terminate()
            self._listening.clear()
            self._missed()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 5.0)


def create_broker(database: Database, database_url: str, *, kind: str, queue_size: int) -> Broker:
    """The broker for `kind`: "postgres", "memory", or "auto" (PostgreSQL's own on
    PostgreSQL, in process on SQLite)."""
    hub = Hub(database, queue_size=queue_size)
    if kind == "auto":
        kind = "memory" if database.is_sqlite else "postgres"
    if kind == "postgres":
        if database.is_sqlite:
            raise ValueError("the postgres event broker needs a PostgreSQL database")
        return PostgresBroker(hub, database_url)
    return InProcessBroker(hub)


def create_publisher(database: Database, database_url: str) -> Broker | None:
    """What a process without subscribers (`billgraph bill`) announces its commits through:
    PostgreSQL's NOTIFY, which every gateway on the database listens to; None on SQLite,
    where events stay in the process that wrote them."""
    if database.is_sqlite:
        return None
    return PostgresBroker(Hub(database, queue_size=1), database_url, listen=False)
