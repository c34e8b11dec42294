"""Live balances benchmark: walletBalanceChanged delivery over real WebSockets, its memory,
and what fan-out costs the ledger's writers.

    .venv/bin/python -m bench.live             # full run, 15 s per measurement (~4 min)
    .venv/bin/python -m bench.live --quick     # 3 s per measurement, a smoke test (~2 min)
    .venv/bin/python -m bench.live --seconds 10

It starts a throwaway PostgreSQL with durable commits and seeds it like bench.ledger (1,000
customers with a USD wallet, one hot wallet). Then:

1. Delivery latency, 1,000 subscribers on ONE gateway process. Gateway A (`billgraph serve
   --workers 1`, PostgreSQL broker) holds 1,000 graphql-transport-ws sockets, one subscription
   each, opened by separate subscriber processes (this module's hidden `_subscribers`
   command): 10 subscribers on each of 100 wallets. Writes go over HTTP to gateway B (another
   process, --workers 1), so every event crosses processes over LISTEN/NOTIFY. Latency is a
   subscriber's receipt time minus the writer's time (one clock: same machine), twice: from
   the write's HTTP response (the commit happened before it: a lower bound) and from the
   write's request start (before the commit: an upper bound).
   (a) single writes, one at a time, each awaited by its wallet's 10 subscribers;
   (b) open-loop 200 writes/s round-robin over the 100 wallets for --seconds, checking every
       subscriber's stream for missing, duplicated and out-of-order versions, and version
       jumps (the hub coalesces a subscriber that falls behind);
   (c) single writes to one wallet that all 1,000 sockets watch (a second subscription each).
2. Memory: gateway A's RSS before the 1,000 sockets (after warm-up) and with them idle.
3. Fan-out cost to writers: bench.ledger's createLedgerEntry load (32 clients, hot wallet and
   random wallets, --workers 2) with the PostgreSQL broker and 100 subscribers connected, then
   with BILLGRAPH_EVENT_BROKER=memory (no NOTIFY); and pgbench on the service's statement
   alone, inside BEGIN ... SELECT 1; COMMIT, and inside BEGIN ... SELECT pg_notify(...); COMMIT
   (what a NOTIFY inside the ledger transaction would cost).
4. The ledger invariant on the resulting database.

Progress goes to stderr; the results (plain tables, then the same as Markdown for
bench/RESULTS.md) go to stdout. Exits 1 if a write failed, a subscriber missed an event
without a version jump, saw one twice or out of order, pgbench failed or the invariant does
not hold.
"""

import argparse
import asyncio
import contextlib
import itertools
import json
import math
import os
import platform
import re
import resource
import shlex
import sys
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from importlib.metadata import version as package_version
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import httpx
import websockets
from sqlalchemy import text
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from bench.ledger import (
    ROOT,
    CpuMeter,
    Gateway,
    HttpResult,
    PgbenchResult,
    RawConnection,
    Seeded,
    check_invariant,
    checkpoint,
    debit_body,
    fmt,
    http_writes,
    markdown_table,
    percentile,
    plain_table,
    postgres_facts,
    progress,
    run_with_postgres,
    run_pgbench,
    seed,
    single_statement_script,
    start_gateway,
    stop_gateway,
    write_failure,
)
from billgraph.db.engine import Database, connect
from billgraph.db.models import LedgerEntry, Wallet
from billgraph.live.events import BalanceChanged, encode
from billgraph.live.brokers import CHANNEL
from billgraph.graphql.node import to_global_id
from tests.support import postgres

SUBSCRIBERS = 1_000
WATCHED_WALLETS = 100  # 10 subscribers per wallet
SUBSCRIBER_PROCESSES = 2  # one per core: their CPU is the load generator's, not the gateway's
OPEN_CONCURRENCY = 50  # handshakes in flight per subscriber process
WRITE_RATE = 200  # writes/s in (b)
WRITE_CONNECTIONS = 8  # keep-alive HTTP connections of the paced writer
FANOUT_SUBSCRIBERS = 100  # idle sockets on the writers' gateway in step 4
FANOUT_CLIENTS = 32
FANOUT_WORKERS = 2  # as bench.ledger
SUB_WALLET, SUB_HOT = "1", "2"  # subscription ids on every socket: its own wallet, the hot one

BALANCE_CHANGED = "subscription($w: ID) { walletBalanceChanged(walletId: $w) { version balance entry { id } } }"
PONG = json.dumps({"type": "pong"})


def raise_open_files_limit() -> int:
    """1,000 sockets need more descriptors than a default soft limit of 1,024; children
    (gateways, subscriber processes) inherit the raised limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        soft = hard if hard != resource.RLIM_INFINITY else max(soft, 65_536)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    return soft


# --- The subscriber processes (`python -m bench.live _subscribers`) ----------------------------
#
# The parent drives each one with JSON lines on its stdin and reads one JSON line back per
# command on its stdout. Receipt times are taken the moment a frame is handed over.


class _Socket:
    __slots__ = ("index", "connection", "wallets", "last")

    def __init__(self, index: int, connection: ClientConnection) -> None:
        self.index = index
        self.connection = connection
        self.wallets: dict[str, str] = {}  # subscription id -> wallet global id
        self.last: dict[str, int] = {}  # subscription id -> highest version received


class SubscriberProcess:
    def __init__(self) -> None:
        self.sockets: list[_Socket] = []
        self.readers: set[asyncio.Task[None]] = set()
        self.receipts: list[tuple[int, str, int, float]] = []  # socket, subscription, version, time
        self.errors: list[str] = []
        self.closing = False

    async def _open_one(self, url: str, api_key: str, index: int, wallet: str) -> None:
        # Library defaults otherwise (permessage-deflate on, as browsers offer); no client pings:
        # a busy gateway would be dropped for a late pong, and the server pings anyway.
        connection = await ws_connect(url, subprotocols=[Subprotocol("graphql-transport-ws")],
                                      open_timeout=60, ping_interval=None)
        try:
            await connection.send(json.dumps({"type": "connection_init",
                                              "payload": {"authorization": f"Bearer {api_key}"}}))
            ack = json.loads(await asyncio.wait_for(connection.recv(), 60))
            if ack.get("type") != "connection_ack":
                raise RuntimeError(f"no connection_ack: {ack}")
        except BaseException:
            await connection.close()
            raise
        sock = _Socket(index, connection)
        self.sockets.append(sock)
        await self._subscribe(sock, SUB_WALLET, wallet)
        task = asyncio.create_task(self._read(sock))
        self.readers.add(task)
        task.add_done_callback(self.readers.discard)

    async def _subscribe(self, sock: _Socket, subscription: str, wallet: str) -> None:
        sock.wallets[subscription] = wallet
        await sock.connection.send(json.dumps({"id": subscription, "type": "subscribe",
                                               "payload": {"query": BALANCE_CHANGED, "variables": {"w": wallet}}}))

    async def _read(self, sock: _Socket) -> None:
        try:
            async for raw in sock.connection:
                received = time.time()
                message = json.loads(raw)
                kind = message.get("type")
                if kind == "next":
                    payload = message.get("payload") or {}
                    data = (payload.get("data") or {}).get("walletBalanceChanged")
                    if payload.get("errors") or data is None:
                        self.errors.append(f"socket {sock.index}: {str(raw)[:300]}")
                        continue
                    subscription, version = message["id"], int(data["version"])
                    sock.last[subscription] = max(version, sock.last.get(subscription, 0))
                    self.receipts.append((sock.index, subscription, version, received))
                elif kind == "ping":
                    await sock.connection.send(PONG)
                elif kind != "pong":
                    self.errors.append(f"socket {sock.index}: {str(raw)[:300]}")
        except ConnectionClosed as closed:
            if not self.closing:
                self.errors.append(f"socket {sock.index} closed: {closed}")

    async def open(self, request: dict[str, Any]) -> dict[str, Any]:
        gate = asyncio.Semaphore(request["concurrency"])
        failures: list[str] = []

        async def one(index: int, wallet: str) -> None:
            async with gate:
                try:
                    await self._open_one(request["url"], request["api_key"], index, wallet)
                except Exception as exc:  # noqa: BLE001 - counted and reported by the parent
                    failures.append(f"socket {index}: {type(exc).__name__}: {exc}")

        started = time.monotonic()
        await asyncio.gather(*(one(request["base"] + i, w) for i, w in enumerate(request["wallets"])))
        return {"opened": len(request["wallets"]) - len(failures), "failures": failures[:5],
                "failed": len(failures), "seconds": time.monotonic() - started}

    async def subscribe(self, request: dict[str, Any]) -> dict[str, Any]:
        for sock in self.sockets:
            await self._subscribe(sock, request["subscription"], request["wallet"])
        return {"subscribed": len(self.sockets)}

    async def wait(self, request: dict[str, Any]) -> dict[str, Any]:
        """Until every subscription `subscription` on a wallet of `targets` has received at
        least that wallet's target version, or `timeout`."""
        subscription, targets = request["subscription"], request["targets"]
        behind = [s for s in self.sockets if s.wallets.get(subscription) in targets]
        deadline = time.monotonic() + request["timeout"]
        while True:
            behind = [s for s in behind if s.last.get(subscription, 0) < targets[s.wallets[subscription]]]
            if not behind or time.monotonic() > deadline:
                return {"behind": len(behind)}
            await asyncio.sleep(0.005)

    async def collect(self, _request: dict[str, Any]) -> dict[str, Any]:
        receipts, errors = self.receipts, self.errors
        self.receipts, self.errors = [], []
        return {"receipts": receipts, "errors": errors}

    async def close(self, _request: dict[str, Any]) -> dict[str, Any]:
        self.closing = True
        await asyncio.gather(*(s.connection.close() for s in self.sockets), return_exceptions=True)
        for task in list(self.readers):
            task.cancel()
        return {"closed": len(self.sockets)}

    async def serve(self, out: TextIO) -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=2**26)
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while line := await reader.readline():
            request = json.loads(line)
            reply = await getattr(self, request["command"])(request)
            out.write(json.dumps(reply, separators=(",", ":")) + "\n")
            out.flush()
            if request["command"] == "close":
                return


def subscriber_main() -> int:
    raise_open_files_limit()
    # The protocol owns stdout; anything a library prints goes to stderr instead.
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    try:
        import uvloop  # the gateway's loop too (uvicorn); less client CPU on a shared machine
    except ImportError:
        asyncio.run(SubscriberProcess().serve(out))
    else:
        uvloop.run(SubscriberProcess().serve(out))
    return 0


@dataclass
class SubscriberProcesses:
    """The parent's handle on the subscriber processes."""

    processes: list[asyncio.subprocess.Process]

    @classmethod
    async def start(cls, count: int) -> "SubscriberProcesses":
        processes = [
            await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bench.live", "_subscribers", cwd=ROOT,
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, limit=2**26,
            )
            for _ in range(count)
        ]
        return cls(processes)

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.processes]

    async def _call(self, process: asyncio.subprocess.Process, request: dict[str, Any]) -> dict[str, Any]:
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write(json.dumps(request).encode() + b"\n")
        await process.stdin.drain()
        line = await process.stdout.readline()
        if not line:
            raise RuntimeError(f"subscriber process {process.pid} exited ({await process.wait()}) "
                               f"during {request['command']}")
        return json.loads(line)  # type: ignore[no-any-return]

    async def each(self, requests: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """One request per process, concurrently."""
        return list(await asyncio.gather(*(self._call(p, r) for p, r in zip(self.processes, requests, strict=True))))

    async def all(self, request: dict[str, Any]) -> list[dict[str, Any]]:
        return await self.each([request] * len(self.processes))

    async def open(self, url: str, api_key: str, wallets: list[str]) -> tuple[int, int, list[str]]:
        """Socket i watches wallets[i]; returns (opened, failed, failure samples)."""
        share = math.ceil(len(wallets) / len(self.processes))
        replies = await self.each([
            {"command": "open", "url": url, "api_key": api_key, "base": n * share,
             "wallets": wallets[n * share:(n + 1) * share], "concurrency": OPEN_CONCURRENCY}
            for n in range(len(self.processes))
        ])
        return (sum(r["opened"] for r in replies), sum(r["failed"] for r in replies),
                [f for r in replies for f in r["failures"]])

    async def wait(self, subscription: str, targets: dict[str, int], timeout: float) -> int:
        """Subscriptions still behind their wallet's target version after at most `timeout`."""
        replies = await self.all({"command": "wait", "subscription": subscription, "targets": targets,
                                  "timeout": timeout})
        return sum(r["behind"] for r in replies)

    async def collect(self) -> tuple[list[tuple[int, str, int, float]], list[str]]:
        replies = await self.all({"command": "collect"})
        return ([tuple(x) for r in replies for x in r["receipts"]],  # type: ignore[misc]
                [e for r in replies for e in r["errors"]])

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.all({"command": "close"}), 30)
        for process in self.processes:
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await process.wait()


# --- Gateway helpers ------------------------------------------------------------------------------


def ws_url(gateway: Gateway) -> str:
    return gateway.base_url.replace("http://", "ws://") + "/graphql"


def rss_kb(pid: int) -> int:
    """Resident memory of `pid` and its descendants (with --workers 1, uvicorn serves in the
    `billgraph serve` process itself: the tree is one process)."""
    total = 0
    for each in [pid, *descendants(pid)]:
        try:
            with open(f"/proc/{each}/status") as f:
                total += next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
        except (OSError, StopIteration):
            pass
    return total


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = defaultdict(list)
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/stat") as f:
                    data = f.read()
            except OSError:
                continue
            children[int(data[data.rindex(")") + 2:].split()[1])].append(int(entry.name))
    found, stack = [], list(children.get(pid, []))
    while stack:
        child = stack.pop()
        found.append(child)
        stack.extend(children.get(child, []))
    return found


async def wallet_versions(database: Database, wallet_ids: dict[str, int]) -> dict[str, int]:
    """Global id -> current version, for the wallets of `wallet_ids` (global id -> database id)."""
    async with database.engine.connect() as connection:
        rows = (await connection.execute(text("SELECT id, version FROM wallets WHERE id = ANY(:ids)"),
                                         {"ids": list(wallet_ids.values())})).all()
    version = dict(rows)
    return {gid: int(version[db_id]) for gid, db_id in wallet_ids.items()}


async def metric(client: httpx.AsyncClient, gateway: Gateway, name: str) -> float:
    """A sample of the process that answers /metrics (the only one at --workers 1)."""
    body = (await client.get(f"{gateway.base_url}/metrics")).text
    found = re.search(rf"^{re.escape(name)} (\S+)$", body, re.MULTILINE)
    return float(found.group(1)) if found else math.nan


async def await_subscribers(gateway: Gateway, expected: int, timeout: float = 60) -> float:
    """Subscriptions register once the gateway starts their stream, after the subscribe
    message: wait for its gauge rather than guess."""
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=10) as client:
        while True:
            count = await metric(client, gateway, "billgraph_subscribers")
            if count >= expected or time.monotonic() > deadline:
                return count
            await asyncio.sleep(0.2)


async def warm_up(gateway: Gateway, writer: Gateway, seeded: Seeded, api_key: str) -> None:
    """Fill the subscriber gateway's connection pool and run its socket path once, so its
    memory baseline holds what any busy process holds."""
    async with httpx.AsyncClient(base_url=gateway.base_url, timeout=30,
                                 headers={"authorization": f"Bearer {api_key}"}) as client:
        for _ in range(3):
            replies = await asyncio.gather(*(client.post("/graphql", json={"query": "{ __typename }"})
                                             for _ in range(40)))
            assert all(r.status_code == 200 for r in replies), replies[0].text
    subscribers = await SubscriberProcesses.start(1)
    try:
        wallets = [to_global_id("Wallet", w) for w in seeded.wallet_ids[-10:]]  # not watched later
        opened, failed, failures = await subscribers.open(ws_url(gateway), api_key, wallets)
        if failed:
            raise RuntimeError(f"warm-up sockets failed: {failures}")
        await await_subscribers(gateway, opened, timeout=30)
        versions = {}
        async with writer_connection(writer, api_key) as connection:
            for customer, wallet in zip(seeded.customer_ids[-10:], wallets, strict=True):
                write = await post_debit(connection, to_global_id("Customer", customer), wallet, "warm")
                versions[wallet] = write.version
        behind = await subscribers.wait(SUB_WALLET, versions, timeout=10)
        if behind:
            raise RuntimeError(f"warm-up: {behind} of 10 sockets got no event in 10 s; see the gateway logs")
    finally:
        await subscribers.close()


# --- Writes and their deliveries ---------------------------------------------------------------


@dataclass(frozen=True)
class Write:
    wallet: str  # global id
    version: int  # the wallet's version after it (the entry's sequence)
    sent: float  # wall clock when the request started
    acked: float  # wall clock when its response had been read: committed before


class WriteFailed(Exception):
    pass


_keys = itertools.count()


@contextlib.asynccontextmanager
async def writer_connection(gateway: Gateway, api_key: str) -> AsyncIterator[RawConnection]:
    url = httpx.URL(gateway.base_url)
    connection = RawConnection(url.host, url.port or 80, api_key)
    try:
        yield connection
    finally:
        await connection.close()


async def post_debit(connection: RawConnection, customer: str, wallet: str, tag: str) -> Write:
    body = json.dumps(debit_body(customer, f"live-{tag}-{os.getpid()}-{next(_keys)}")).encode()
    sent = time.time()
    status, reply = await connection.post(body)
    acked = time.time()
    failure = write_failure(status, reply)
    if failure is not None:
        raise WriteFailed(failure)
    version = int(json.loads(reply)["data"]["createLedgerEntry"]["wallet"]["version"])
    return Write(wallet, version, sent, acked)


async def paced_writes(gateway: Gateway, api_key: str, targets: list[tuple[str, str]], rate: float,
                       seconds: float) -> tuple[list[Write], list[str], float]:
    """Open loop: write k is due at start + k/rate, round-robin over `targets` (customer, wallet),
    on WRITE_CONNECTIONS connections; a write that finds every connection busy goes late (the
    achieved rate shows it). Returns the writes, the failures and the elapsed seconds."""
    total = int(rate * seconds)
    counter = itertools.count()
    writes: list[Write] = []
    failures: list[str] = []
    start = time.perf_counter() + 0.05

    async def worker() -> None:
        async with writer_connection(gateway, api_key) as connection:
            while (k := next(counter)) < total:
                delay = start + k / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                customer, wallet = targets[k % len(targets)]
                try:
                    writes.append(await post_debit(connection, customer, wallet, "paced"))
                except (WriteFailed, OSError, asyncio.IncompleteReadError, ValueError) as exc:
                    failures.append(f"{type(exc).__name__}: {exc}")
                    await connection.close()
                    connection.writer = None

    await asyncio.gather(*(worker() for _ in range(WRITE_CONNECTIONS)))
    return writes, failures, time.perf_counter() - start


@dataclass
class StreamCheck:
    """Every subscription's stream of versions against the versions written."""

    subscriptions: int = 0  # that watched a written wallet
    delivered: int = 0
    missing: int = 0  # never arrived
    duplicated: int = 0  # arrived twice
    out_of_order: int = 0  # arrived after a later version
    jumps: int = 0  # skipped versions: the hub coalesced a subscriber that fell behind

    @property
    def failed(self) -> bool:
        return bool(self.duplicated or self.out_of_order or (self.missing and not self.jumps))


def check_streams(streams: dict[tuple[int, str], list[int]], watched: dict[tuple[int, str], str],
                  expected: dict[str, list[int]]) -> StreamCheck:
    """`streams`: versions per subscription in the order received; `expected`: the versions
    written per wallet, consecutive (nothing else writes to these wallets meanwhile)."""
    check = StreamCheck()
    for key, wallet in watched.items():
        versions = sorted(expected.get(wallet, []))
        if not versions:
            continue
        check.subscriptions += 1
        stream = streams.get(key, [])
        check.delivered += len(stream)
        check.missing += len(set(versions) - set(stream))
        check.duplicated += len(stream) - len(set(stream))
        previous = versions[0] - 1
        for version in stream:
            if version < previous:
                check.out_of_order += 1
            elif version > previous + 1:
                check.jumps += 1
            previous = max(previous, version)
    return check


@dataclass
class Deliveries:
    name: str
    writes: int
    write_errors: int
    write_seconds: float
    deliveries: int = 0
    delivery_seconds: float = math.nan  # first write sent to last event received
    from_ack_ms: list[float] = field(default_factory=list)
    from_sent_ms: list[float] = field(default_factory=list)
    last_per_write_ms: list[float] = field(default_factory=list)  # each write's slowest delivery (from ack)
    streams: StreamCheck = field(default_factory=StreamCheck)
    unexpected: int = 0  # events of no write of this measurement
    socket_errors: list[str] = field(default_factory=list)  # error/complete messages, closed sockets
    error_samples: list[str] = field(default_factory=list)  # of the write errors
    behind: int = 0  # subscriptions short of the last version when the wait timed out
    cpu: dict[str, float] = field(default_factory=dict)
    open_loop: bool = False  # else one write at a time: rates only tell the pacing

    @property
    def writes_per_second(self) -> float:
        return self.writes / self.write_seconds if self.write_seconds else math.nan

    @property
    def deliveries_per_second(self) -> float:
        return self.deliveries / self.delivery_seconds if self.delivery_seconds else math.nan

    @property
    def failed(self) -> bool:
        return bool(self.write_errors or self.streams.failed)


def analyse(result: Deliveries, writes: list[Write], receipts: list[tuple[int, str, int, float]],
            watched: dict[tuple[int, str], str]) -> Deliveries:
    """Match each receipt to its write; check every subscription's stream of versions."""
    by_key = {(w.wallet, w.version): w for w in writes}
    expected: dict[str, list[int]] = defaultdict(list)
    for w in writes:
        expected[w.wallet].append(w.version)
    streams: dict[tuple[int, str], list[int]] = defaultdict(list)
    slowest: dict[tuple[str, int], float] = {}
    last_received = -math.inf
    for index, subscription, version, received in receipts:
        wallet = watched.get((index, subscription))
        write = by_key.get((wallet, version)) if wallet is not None else None
        if write is None:
            result.unexpected += 1
            continue
        result.from_ack_ms.append((received - write.acked) * 1000)
        result.from_sent_ms.append((received - write.sent) * 1000)
        key = (write.wallet, write.version)
        slowest[key] = max(slowest.get(key, -math.inf), (received - write.acked) * 1000)
        streams[(index, subscription)].append(version)
        last_received = max(last_received, received)
    result.deliveries = len(result.from_ack_ms)
    result.last_per_write_ms = list(slowest.values())
    if writes and result.deliveries:
        result.delivery_seconds = last_received - min(w.sent for w in writes)
    result.streams = check_streams(streams, watched, expected)
    return result


async def single_writes(name: str, writer: Gateway, api_key: str, subscribers: SubscriberProcesses,
                        subscription: str, targets: list[tuple[str, str]], watched: dict[tuple[int, str], str],
                        repeats: int, timeout: float, meter: CpuMeter) -> Deliveries:
    """One write at a time; the next only once every subscriber of its wallet has it."""
    await subscribers.collect()  # start clean
    before = meter.snapshot()
    writes: list[Write] = []
    errors: list[str] = []
    behind = 0
    started = time.perf_counter()
    async with writer_connection(writer, api_key) as connection:
        for k in range(repeats):
            customer, wallet = targets[k % len(targets)]
            try:
                write = await post_debit(connection, customer, wallet, "single")
            except WriteFailed as exc:
                errors.append(str(exc))
                continue
            writes.append(write)
            behind += await subscribers.wait(subscription, {wallet: write.version}, timeout)
            await asyncio.sleep(0.05)
    elapsed = time.perf_counter() - started
    after = meter.snapshot()
    receipts, socket_errors = await subscribers.collect()
    result = Deliveries(name, len(writes), len(errors), elapsed, socket_errors=socket_errors,
                        error_samples=errors[:5], behind=behind, cpu=CpuMeter.usage(before, after))
    return analyse(result, writes, receipts, watched)


async def sustained_writes(name: str, writer: Gateway, api_key: str, subscribers: SubscriberProcesses,
                           targets: list[tuple[str, str]], watched: dict[tuple[int, str], str],
                           seconds: float, meter: CpuMeter) -> Deliveries:
    await subscribers.collect()
    before = meter.snapshot()
    writes, failures, elapsed = await paced_writes(writer, api_key, targets, WRITE_RATE, seconds)
    after = meter.snapshot()
    last: dict[str, int] = {}
    for w in writes:
        last[w.wallet] = max(w.version, last.get(w.wallet, 0))
    behind = await subscribers.wait(SUB_WALLET, last, timeout=15)  # drain
    receipts, socket_errors = await subscribers.collect()
    result = Deliveries(name, len(writes), len(failures), elapsed, socket_errors=socket_errors,
                        error_samples=failures[:5], behind=behind, cpu=CpuMeter.usage(before, after), open_loop=True)
    return analyse(result, writes, receipts, watched)


def describe(check: StreamCheck) -> str:
    return (f"missing {check.missing}, duplicated {check.duplicated}, out of order {check.out_of_order}, "
            f"version jumps {check.jumps}")


def report_deliveries(d: Deliveries) -> None:
    progress(f"  -> {d.writes} writes ({d.writes_per_second:,.1f}/s), {d.deliveries:,} deliveries "
             f"({d.deliveries_per_second:,.0f}/s) to {d.streams.subscriptions} subscriptions; from response "
             f"p50 {percentile(d.from_ack_ms, 50):.1f} ms, p99 {percentile(d.from_ack_ms, 99):.1f} ms, "
             f"max {max(d.from_ack_ms, default=math.nan):.1f} ms; {describe(d.streams)}, unexpected "
             f"{d.unexpected}, write errors {d.write_errors}, behind {d.behind}")
    if d.writes <= 20:
        progress(f"  each write's slowest delivery (ms, from response): {' '.join(f'{v:.0f}' for v in d.last_per_write_ms)}")
    c = d.cpu
    progress(f"  cores busy: writer {c['load']:.2f}, gateway B {c['writer gateway']:.2f}, gateway A "
             f"{c['gateway']:.2f}, postgres {c['postgres']:.2f}, subscribers {c['subscribers']:.2f}, "
             f"other {c['other']:.2f}")
    for error in [*d.socket_errors[:5], *d.error_samples]:
        progress(f"  error: {error}")


# --- pgbench: a NOTIFY inside the ledger transaction -----------------------------------------------


def event_payload() -> str:
    """A real balance event as the broker sends it, re-spaced after each ':' so that pgbench
    does not read `:null` as a variable (the size grows by a few bytes)."""
    now = datetime.now(UTC)
    wallet = Wallet(id=1234, organization_id=1, customer_id=1234, currency="USD", balance=9_999_989,
                    version=12, low_balance_threshold=None, updated_at=now)
    entry = LedgerEntry(id=123_456, organization_id=1, wallet_id=1234, sequence=12, entry_type="DEBIT",
                        amount=1, currency="USD", balance_after=9_999_989, reason=None,
                        idempotency_key="live-paced-4242-123456", request_hash="x", created_at=now)
    payload = json.dumps(json.loads(encode(BalanceChanged(wallet=wallet, entry=entry))), separators=(",", ": "))
    assert "'" not in payload and not re.search(r":[A-Za-z_]", payload), payload
    return payload


def in_transaction_script(org: int, wallet_choice: str, extra_statement: str) -> str:
    """The service's statement inside BEGIN ... COMMIT, followed by `extra_statement`."""
    meta, statement, rest = single_statement_script(org, wallet_choice).partition("WITH moved AS")
    assert statement, "single_statement_script changed shape"
    return f"{meta}BEGIN;\n{statement}{rest}{extra_statement};\nCOMMIT;\n"


@dataclass
class PgbenchCase:
    name: str
    wallets: str  # "hot" or "random"
    runs: dict[str, PgbenchResult] = field(default_factory=dict)  # variant -> result


PGBENCH_VARIANTS = ("statement", "select", "notify")
PGBENCH_LABELS = {"statement": "statement alone", "select": "in BEGIN..SELECT 1; COMMIT",
                  "notify": "in BEGIN..SELECT pg_notify; COMMIT"}


# --- Reporting ---------------------------------------------------------------------------------------


def _ms(values: list[float], p: float) -> str:
    return fmt(percentile(values, p), 1)


def latency_rows(results: list[Deliveries]) -> tuple[list[str], list[list[str]]]:
    header = ["case", "writes", "writes/s", "deliveries", "deliveries/s",
              "from response: p50 ms", "p99 ms", "max ms", "slowest per write, p50 ms",
              "from request start: p50 ms", "p99 ms", "max ms"]
    rows = [[
        d.name, f"{d.writes:,}", fmt(d.writes_per_second) if d.open_loop else "—", f"{d.deliveries:,}",
        fmt(d.deliveries_per_second, 0) if d.open_loop else "—",
        _ms(d.from_ack_ms, 50), _ms(d.from_ack_ms, 99), fmt(max(d.from_ack_ms, default=math.nan)),
        _ms(d.last_per_write_ms, 50),
        _ms(d.from_sent_ms, 50), _ms(d.from_sent_ms, 99), fmt(max(d.from_sent_ms, default=math.nan)),
    ] for d in results]
    return header, rows


def integrity_rows(results: list[Deliveries]) -> tuple[list[str], list[list[str]]]:
    header = ["case", "subscriptions", "missing", "duplicated", "out of order", "version jumps",
              "unexpected", "socket errors", "write errors"]
    rows = [[d.name, f"{d.streams.subscriptions:,}", str(d.streams.missing), str(d.streams.duplicated),
             str(d.streams.out_of_order), str(d.streams.jumps), str(d.unexpected), str(len(d.socket_errors)),
             str(d.write_errors)] for d in results]
    return header, rows


def delivery_cpu_rows(results: list[Deliveries]) -> tuple[list[str], list[list[str]]]:
    header = ["case", "writer (bench)", "gateway B (writes)", "gateway A (1,000 sockets)", "postgres",
              "subscriber processes", "other"]
    return header, [[d.name, fmt(d.cpu["load"], 2), fmt(d.cpu["writer gateway"], 2), fmt(d.cpu["gateway"], 2),
                     fmt(d.cpu["postgres"], 2), fmt(d.cpu["subscribers"], 2), fmt(d.cpu["other"], 2)]
                    for d in results]


def fanout_rows(fanout: dict[str, HttpResult], memory: dict[str, HttpResult],
                streams: dict[str, StreamCheck]) -> tuple[list[str], list[list[str]]]:
    header = ["case", "fan-out: writes/s", "p50 ms", "p99 ms", "errors", "events to subscribers",
              "missing", "version jumps", "memory broker: writes/s", "p50 ms", "p99 ms", "errors", "fan-out/memory"]
    rows = []
    for shape, label in (("hot", f"hot wallet, c={FANOUT_CLIENTS}"), ("random", f"random wallets, c={FANOUT_CLIENTS}")):
        f, m, check = fanout[shape], memory[shape], streams.get(shape, StreamCheck())
        rows.append([label, fmt(f.writes_per_second), fmt(f.p50_ms, 2), fmt(f.p99_ms, 2), str(f.errors),
                     f"{check.delivered:,}", str(check.missing), str(check.jumps),
                     fmt(m.writes_per_second), fmt(m.p50_ms, 2), fmt(m.p99_ms, 2),
                     str(m.errors), f"{f.writes_per_second / m.writes_per_second:.2f}" if m.writes_per_second else "—"])
    return header, rows


def fanout_cpu_rows(fanout: dict[str, HttpResult], memory: dict[str, HttpResult]) -> tuple[list[str], list[list[str]]]:
    header = ["case", "fan-out: bench client", "gateway", "postgres", "subscribers", "other",
              "memory: bench client", "gateway", "postgres", "other"]
    rows = []
    for shape in ("hot", "random"):
        f, m = fanout[shape].cpu, memory[shape].cpu
        rows.append([f"{shape} wallet{'s' if shape == 'random' else ''}, c={FANOUT_CLIENTS}",
                     fmt(f["load"], 2), fmt(f["gateway"], 2), fmt(f["postgres"], 2), fmt(f["subscribers"], 2),
                     fmt(f["other"], 2), fmt(m["load"], 2), fmt(m["gateway"], 2), fmt(m["postgres"], 2),
                     fmt(m["other"], 2)])
    return header, rows


def pgbench_rows(cases: list[PgbenchCase]) -> tuple[list[str], list[list[str]]]:
    header = ["case"]
    for variant in PGBENCH_VARIANTS:
        header += [f"{PGBENCH_LABELS[variant]}: tps", "p99 ms"]
    header += ["notify/SELECT 1", "notify/statement"]
    rows = []
    for case in cases:
        row = [case.name]
        for variant in PGBENCH_VARIANTS:
            run = case.runs.get(variant)
            row += [fmt(run.tps) if run else "—", fmt(run.p99_ms, 2) if run else "—"]
        tps = {v: case.runs[v].tps if v in case.runs else math.nan for v in PGBENCH_VARIANTS}
        for base in ("select", "statement"):
            ratio = tps["notify"] / tps[base] if tps[base] else math.nan
            row.append("—" if math.isnan(ratio) else f"{ratio:.2f}")
        rows.append(row)
    return header, rows


# --- Main -----------------------------------------------------------------------------------------


@dataclass
class Memory:
    before_kb: int
    after_kb: int
    sockets: int
    processes: int  # in the gateway's tree
    idle_gateway_cores: float

    @property
    def per_subscriber_kb(self) -> float:
        return (self.after_kb - self.before_kb) / self.sockets if self.sockets else math.nan


async def benchmark(args: argparse.Namespace, server: postgres.PostgresServer, workdir: Path,
                    command_line: str) -> int:
    seconds = args.seconds
    repeats = 10 if args.quick else 20
    database = connect(server.url)
    postmaster_pid: int | None = None
    try:
        postmaster_pid = int((server.root / "data" / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        progress("could not read postmaster.pid: PostgreSQL CPU will read 0")
    gateways: list[Gateway] = []
    subscribers: SubscriberProcesses | None = None
    log_warnings: list[str] = []

    async def stop(gateway: Gateway) -> None:
        gateways.remove(gateway)
        code = await asyncio.to_thread(stop_gateway, gateway)
        progress(f"{gateway.log_path.stem} exited with {code}")
        # A listener that reconnected or a failed dispatch would explain odd figures.
        for line in gateway.log_path.read_text(errors="replace").splitlines():
            if re.search(r'"level": "(warning|error|critical)"|Traceback|ERROR', line):
                log_warnings.append(f"{gateway.log_path.stem}: {line[:300]}")

    try:
        seeded = await seed(database)
        pg_version, durability = await postgres_facts(database)
        key = seeded.api_key
        customers = [to_global_id("Customer", c) for c in seeded.customer_ids]
        wallets = [to_global_id("Wallet", w) for w in seeded.wallet_ids]
        hot = (to_global_id("Customer", seeded.hot_customer_id), to_global_id("Wallet", seeded.hot_wallet_id))
        targets = list(zip(customers[:WATCHED_WALLETS], wallets[:WATCHED_WALLETS], strict=True))

        # --- Step 2: two single-process gateways, 1,000 sockets on A, memory ---
        postgres_broker = {"BILLGRAPH_EVENT_BROKER": "postgres"}
        a = await start_gateway(server.url, workdir, workers=1, env=postgres_broker,
                                name="gateway A (subscribers)", label="step 2")
        gateways.append(a)
        b = await start_gateway(server.url, workdir, workers=1, env=postgres_broker,
                                name="gateway B (writes)", label="step 2")
        gateways.append(b)
        tree = descendants(a.process.pid)
        progress(f"step 2: gateway A pid {a.process.pid}, {len(tree)} descendant processes "
                 "(uvicorn serves in process at --workers 1)")
        progress("step 2: warm-up (40 concurrent requests x 3, 10 sockets with one event each)")
        await warm_up(a, b, seeded, key)
        await asyncio.sleep(1)
        before_kb = rss_kb(a.process.pid)

        subscribers = await SubscriberProcesses.start(SUBSCRIBER_PROCESSES)
        watch = [wallets[i % WATCHED_WALLETS] for i in range(SUBSCRIBERS)]
        progress(f"step 2: opening {SUBSCRIBERS:,} sockets to gateway A from {SUBSCRIBER_PROCESSES} processes, "
                 f"{SUBSCRIBERS // WATCHED_WALLETS} per wallet on {WATCHED_WALLETS} wallets "
                 f"(gateway A RSS {before_kb / 1024:.1f} MB)")
        started = time.monotonic()
        opened, failed, failures = await subscribers.open(ws_url(a), key, watch)
        registered = await await_subscribers(a, SUBSCRIBERS)
        open_seconds = time.monotonic() - started
        progress(f"step 2: {opened:,} sockets open, {registered:,.0f} subscriptions registered in "
                 f"{open_seconds:.1f} s; {failed} failed")
        for failure in failures:
            progress(f"  error: {failure}")
        if failed or registered < SUBSCRIBERS:
            raise RuntimeError(f"only {registered:.0f} of {SUBSCRIBERS} subscriptions registered:\n{a.log_tail()}")
        meter = CpuMeter(gateway_pid=a.process.pid, postmaster_pid=postmaster_pid,
                         extra_pids={"writer gateway": [b.process.pid], "subscribers": subscribers.pids})
        idle_seconds = 3.0
        idle_before = meter.snapshot()
        await asyncio.sleep(idle_seconds)  # idle: only keep-alive pings
        idle = CpuMeter.usage(idle_before, meter.snapshot())
        memory = Memory(before_kb, rss_kb(a.process.pid), opened, 1 + len(descendants(a.process.pid)),
                        idle["gateway"])
        progress(f"step 2: gateway A RSS {memory.before_kb / 1024:.1f} MB -> {memory.after_kb / 1024:.1f} MB with "
                 f"{opened:,} idle sockets: {memory.per_subscriber_kb:.1f} KB per subscriber; "
                 f"{memory.idle_gateway_cores:.2f} cores busy while idle")

        # --- Step 3: delivery latency ---
        watched = {(i, SUB_WALLET): w for i, w in enumerate(watch)}
        deliveries: list[Deliveries] = []
        progress(f"step 3a: {repeats} single writes through gateway B, each to a different wallet with "
                 f"{SUBSCRIBERS // WATCHED_WALLETS} subscribers")
        single = await single_writes(f"(a) single write, {SUBSCRIBERS // WATCHED_WALLETS} subscribers",
                                     b, key, subscribers, SUB_WALLET, targets, watched, repeats, 10, meter)
        report_deliveries(single)
        deliveries.append(single)

        await checkpoint(database)
        progress(f"step 3b: {WRITE_RATE} writes/s for {seconds} s through gateway B (open loop, "
                 f"{WRITE_CONNECTIONS} connections), round-robin over the {WATCHED_WALLETS} watched wallets")
        sustained = await sustained_writes(f"(b) {WRITE_RATE} writes/s for {seconds} s, {len(watch):,} subscribers",
                                           b, key, subscribers, targets, watched, seconds, meter)
        report_deliveries(sustained)
        deliveries.append(sustained)

        progress(f"step 3c: every socket subscribes to the hot wallet too; {repeats} single writes to it")
        await subscribers.all({"command": "subscribe", "subscription": SUB_HOT, "wallet": hot[1]})
        registered = await await_subscribers(a, 2 * SUBSCRIBERS)
        if registered < 2 * SUBSCRIBERS:
            raise RuntimeError(f"only {registered:.0f} of {2 * SUBSCRIBERS} subscriptions registered")
        hot_watched = {(i, SUB_HOT): hot[1] for i in range(len(watch))}
        broadcast = await single_writes(f"(c) single write, {len(watch):,} subscribers on one wallet",
                                        b, key, subscribers, SUB_HOT, [hot], hot_watched, repeats, 20, meter)
        report_deliveries(broadcast)
        deliveries.append(broadcast)
        rss_after_kb = rss_kb(a.process.pid)
        async with httpx.AsyncClient(timeout=10) as client:
            hub_counters = {name: await metric(client, a, f"billgraph_events_{name}_total")
                            for name in ("read_back", "coalesced")}
        progress(f"step 3: gateway A's hub: {hub_counters['read_back']:.0f} entries read back, "
                 f"{hub_counters['coalesced']:.0f} events coalesced")

        progress("step 3: closing the sockets and gateways A and B")
        await subscribers.close()
        subscribers = None
        await stop(a)
        await stop(b)

        # --- Step 4: the ledger's writers with and without fan-out ---
        warmup = min(2.0, seconds / 5)
        wallet_db_ids = {to_global_id("Wallet", w): w
                         for w in [seeded.hot_wallet_id, *seeded.wallet_ids[:FANOUT_SUBSCRIBERS - 1]]}
        shapes = {"hot": [hot[0]], "random": customers}
        fanout: dict[str, HttpResult] = {}
        memory_broker: dict[str, HttpResult] = {}
        fanout_streams: dict[str, StreamCheck] = {}
        fanout_watched: dict[tuple[int, str], str] = {}
        for broker in ("postgres", "memory"):
            gateway = await start_gateway(server.url, workdir, workers=FANOUT_WORKERS,
                                          env={"BILLGRAPH_EVENT_BROKER": broker}, name=f"gateway ({broker} broker)",
                                          label="step 4")
            gateways.append(gateway)
            meter = CpuMeter(gateway_pid=gateway.process.pid, postmaster_pid=postmaster_pid)
            if broker == "postgres":
                # One socket on the hot wallet, the rest on 99 of the 1,000 (a tenth of the random writes).
                subscribers = await SubscriberProcesses.start(1)
                watch = [hot[1], *wallets[:FANOUT_SUBSCRIBERS - 1]]
                fanout_watched = {(i, SUB_WALLET): w for i, w in enumerate(watch)}
                opened, failed, failures = await subscribers.open(ws_url(gateway), key, watch)
                if failed:
                    raise RuntimeError(f"{failed} fan-out sockets failed: {failures}")
                await asyncio.sleep(1)  # registered on whichever worker took the socket
                async with writer_connection(gateway, key) as connection:
                    check = await post_debit(connection, hot[0], hot[1], "check")
                if await subscribers.wait(SUB_WALLET, {hot[1]: check.version}, timeout=10):
                    raise RuntimeError("the hot wallet's subscriber got no event in 10 s")
                await subscribers.collect()
                meter.extra_pids = {"subscribers": subscribers.pids}
                progress(f"step 4: {opened} idle subscribers on the {broker}-broker gateway: 1 on the hot wallet, "
                         f"{opened - 1} on wallets of the random set")
            for shape, ids in shapes.items():
                await checkpoint(database)
                progress(f"step 4: HTTP createLedgerEntry, {broker} broker, {shape} wallet"
                         f"{'s' if shape == 'random' else ''}, c={FANOUT_CLIENTS}: {warmup:.0f} s warm-up + {seconds} s")
                before = await wallet_versions(database, wallet_db_ids) if subscribers is not None else {}
                result = await http_writes(gateway, key, ids, FANOUT_CLIENTS, seconds, warmup,
                                           f"live-{broker}-{shape}", meter)
                (fanout if broker == "postgres" else memory_broker)[shape] = result
                extra = ""
                if subscribers is not None:
                    # Every version written meanwhile (warm-up included) must reach the watchers.
                    after = await wallet_versions(database, wallet_db_ids)
                    expected = {w: list(range(before[w] + 1, after[w] + 1)) for w in after if after[w] > before[w]}
                    behind = await subscribers.wait(SUB_WALLET, {w: v[-1] for w, v in expected.items()}, timeout=15)
                    receipts, errors = await subscribers.collect()
                    streams: dict[tuple[int, str], list[int]] = defaultdict(list)
                    for index, subscription, version, _ in receipts:
                        streams[(index, subscription)].append(version)
                    check = fanout_streams[shape] = check_streams(streams, fanout_watched, expected)
                    extra = (f", {check.delivered:,} events to {check.subscriptions} subscribers ({describe(check)}, "
                             f"behind {behind}), {len(errors)} socket errors")
                    for error in errors[:3]:
                        progress(f"  socket error: {error}")
                progress(f"  -> {result.writes_per_second:,.1f} writes/s, p50 {result.p50_ms:.2f} ms, p99 "
                         f"{result.p99_ms:.2f} ms, {result.errors} errors{extra}; cores busy: gateway "
                         f"{result.cpu['gateway']:.2f}, postgres {result.cpu['postgres']:.2f}")
                for sample in result.error_samples:
                    progress(f"  error: {sample}")
            if subscribers is not None:
                await subscribers.close()
                subscribers = None
            await stop(gateway)

        # --- Step 5: pgbench, a NOTIFY inside the transaction ---
        first_wallet, last_wallet = seeded.wallet_ids[0], seeded.wallet_ids[-1]
        if last_wallet - first_wallet + 1 != len(seeded.wallet_ids):
            raise RuntimeError("seeded wallet ids are not contiguous; pgbench's random(min, max) needs them to be")
        choices = {"hot": f"\\set wid {seeded.hot_wallet_id}",
                   "random": f"\\set wid random({first_wallet}, {last_wallet})"}
        payload = event_payload()
        pg_cases = [PgbenchCase(f"random wallets, c={FANOUT_CLIENTS}", "random"),
                    PgbenchCase(f"hot wallet, c={FANOUT_CLIENTS}", "hot")]
        pg_meter = CpuMeter(postmaster_pid=postmaster_pid)
        for case in pg_cases:
            org = seeded.organization_id
            scripts = {
                "statement": single_statement_script(org, choices[case.wallets]),
                "select": in_transaction_script(org, choices[case.wallets], "SELECT 1"),
                "notify": in_transaction_script(org, choices[case.wallets],
                                                f"SELECT pg_notify('{CHANNEL}', '{payload}')"),
            }
            for variant, script in scripts.items():
                await checkpoint(database)
                progress(f"step 5: pgbench, {case.name}, {PGBENCH_LABELS[variant]}: {seconds} s")
                run = await asyncio.to_thread(run_pgbench, server, workdir, script, FANOUT_CLIENTS, seconds,
                                              f"{variant}-{case.wallets}-c{FANOUT_CLIENTS}", pg_meter)
                case.runs[variant] = run
                progress(f"  -> {run.tps:,.1f} tps, p50 {run.p50_ms:.2f} ms, p99 {run.p99_ms:.2f} ms, failed "
                         f"{run.failed}{', ABORTED' if run.aborted else ''}")
                if run.aborted or run.failed:
                    progress(f"  pgbench output:\n{run.output}")

        progress("step 6: checking the ledger invariant")
        invariant_ok, invariant_report = await check_invariant(database)
        progress(f"step 6: {invariant_report.splitlines()[0]}")
    finally:
        if subscribers is not None:
            await subscribers.close()
        for gateway in list(gateways):
            progress(f"stopping {gateway.log_path.stem}")
            await stop(gateway)
        await database.dispose()

    # --- Output ---
    date = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    machine = (f"{os.cpu_count()} CPUs, Linux {platform.release()}, Python {platform.python_version()}, "
               f"PostgreSQL {pg_version} (fsync={durability['fsync']}, synchronous_commit="
               f"{durability['synchronous_commit']}, wal_sync_method={durability['wal_sync_method']}), "
               f"gateways: billgraph serve, rate limit off, pool 20 per worker, uvicorn {package_version('uvicorn')}, "
               f"strawberry-graphql {package_version('strawberry-graphql')}, subscribers: websockets "
               f"{websockets.__version__}; load generator (writer, subscriber processes), gateways and PostgreSQL "
               "share the machine")
    latency_header, latency = latency_rows(deliveries)
    integrity_header, integrity = integrity_rows(deliveries)
    cpu_header, cpu = delivery_cpu_rows(deliveries)
    memory_header = ["gateway A RSS before", "with 1,000 idle sockets", "per subscriber", "after step 3",
                     "processes", "cores busy, idle sockets", "time to open 1,000"]
    memory_row = [[f"{memory.before_kb / 1024:,.1f} MB", f"{memory.after_kb / 1024:,.1f} MB",
                   f"{memory.per_subscriber_kb:,.1f} KB", f"{rss_after_kb / 1024:,.1f} MB", str(memory.processes),
                   f"{memory.idle_gateway_cores:.2f}", f"{open_seconds:.1f} s"]]
    fan_header, fan = fanout_rows(fanout, memory_broker, fanout_streams)
    fan_cpu_header, fan_cpu = fanout_cpu_rows(fanout, memory_broker)
    pg_header, pg = pgbench_rows(pg_cases)
    write_errors = sum(d.write_errors for d in deliveries) + sum(
        r.errors for r in (*fanout.values(), *memory_broker.values()))
    pgbench_failures = sum(r.failed + r.aborted for case in pg_cases for r in case.runs.values())
    stream_failures = [d.name for d in deliveries if d.failed]
    stream_failures += [f"fan-out, {shape}" for shape, check in fanout_streams.items() if check.failed]
    notes = [
        f"Delivery: gateway A (`billgraph serve --workers 1`, BILLGRAPH_EVENT_BROKER=postgres) holds "
        f"{SUBSCRIBERS:,} graphql-transport-ws sockets with one `walletBalanceChanged(walletId)` subscription "
        f"each ({SUBSCRIBERS // WATCHED_WALLETS} per wallet on {WATCHED_WALLETS} wallets; selection "
        "`version balance entry { id }`), opened by "
        f"{SUBSCRIBER_PROCESSES} subscriber processes (websockets, permessage-deflate as negotiated by default, "
        "pongs to the server's pings). Writes (DEBIT 1) go over HTTP to gateway B, another "
        "`--workers 1` process: every event crosses processes through LISTEN/NOTIFY. Default queue size "
        "and keep-alive.",
        "Latency = subscriber's receipt time − writer's time, one clock (same machine). *From response*: "
        "the write's HTTP response had been read (its commit happened before: a lower bound on "
        "commit-to-delivery, negative if the event beats the response). *From request start*: before "
        "the commit (an upper bound). *Slowest per write*: each write's last delivery, from response, median "
        "over writes.",
        f"(a) and (c): {repeats} writes one at a time, each to a different wallet in (a), all to the one "
        "wallet every socket also subscribes to in (c) (a second subscription per socket); the next write "
        "goes once every subscriber has the previous one. (b): open loop, write k due at k/"
        f"{WRITE_RATE} s, {WRITE_CONNECTIONS} keep-alive connections, round-robin over the {WATCHED_WALLETS} "
        "wallets; deliveries/s = deliveries ÷ (first write sent → last event received).",
        "Stream checks per subscription, against the versions written: *missing* never arrived, "
        "*duplicated* arrived twice, *out of order* arrived after a later one, *version jumps* skipped "
        "versions (the hub coalesces a subscriber that falls behind), *unexpected* matched no write. "
        f"Gateway A's hub after (a)-(c): {hub_counters['read_back']:.0f} entries read back from the ledger, "
        f"{hub_counters['coalesced']:.0f} events coalesced.",
        "Memory: VmRSS of gateway A's process tree (uvicorn serves in the `billgraph serve` process at "
        "--workers 1), after warm-up (40 concurrent requests, 10 sockets with one event) and then with "
        f"the {SUBSCRIBERS:,} sockets subscribed and idle; per subscriber = difference ÷ {SUBSCRIBERS:,}.",
        f"Fan-out: bench.ledger's load ({FANOUT_CLIENTS} closed-loop clients, DEBIT 1) on `billgraph serve "
        f"--workers {FANOUT_WORKERS}`, {seconds} s after {warmup:.0f} s warm-up; with the PostgreSQL broker "
        f"and {FANOUT_SUBSCRIBERS} idle subscribers on that gateway (1 on the hot wallet, "
        f"{FANOUT_SUBSCRIBERS - 1} on wallets of the random set: a tenth of the random writes reach a "
        "socket; their streams checked as above against every version written, warm-up included), then "
        "with BILLGRAPH_EVENT_BROKER=memory and no subscribers (no NOTIFY).",
        f"pgbench: -M prepared -j 2 -n, c={FANOUT_CLIENTS}, {seconds} s, the service's single statement alone; "
        "inside BEGIN; statement; SELECT 1; COMMIT (the same round trips as the next); inside BEGIN; "
        f"statement; SELECT pg_notify('{CHANNEL}', <a {len(payload.encode())}-byte balance event>); COMMIT. "
        "Nobody listens during pgbench.",
    ]

    print()
    print(f"billgraph live balances benchmark, {date}")
    print(f"command: {command_line}")
    print(machine)
    print()
    print("delivery latency (1,000 subscribers on one gateway process, writes through another)")
    print(plain_table(latency_header, latency))
    print()
    print(plain_table(integrity_header, integrity))
    print()
    print("cores busy during each (for (b): while writing, not the drain after)")
    print(plain_table(cpu_header, cpu))
    print()
    print("memory")
    print(plain_table(memory_header, memory_row))
    print()
    print("ledger writes with and without fan-out")
    print(plain_table(fan_header, fan))
    print()
    print(plain_table(fan_cpu_header, fan_cpu))
    print()
    print("pgbench: a NOTIFY inside the ledger transaction")
    print(plain_table(pg_header, pg))
    print()
    print(f"write errors: {write_errors}; pgbench failed/aborted: {pgbench_failures}; "
          f"stream check failures: {', '.join(stream_failures) or 'none'}")
    print(f"ledger invariant: {invariant_report}")
    print(f"gateway log warnings and errors: {len(log_warnings)}")
    for line in log_warnings[:10]:
        print(f"  {line}")

    print()
    print("----- Markdown (for bench/RESULTS.md) -----")
    print()
    print(f"## Live balances benchmark, {date}")
    print()
    print(f"Command: `{command_line}`  ")
    print(f"Machine: {machine}.")
    print()
    print(f"Delivery latency, {SUBSCRIBERS:,} subscribers on one gateway process, writes through another:")
    print()
    print(markdown_table(latency_header, latency))
    print()
    print(markdown_table(integrity_header, integrity))
    print()
    print("Cores busy during each (for (b): while writing, not the drain after):")
    print()
    print(markdown_table(cpu_header, cpu))
    print()
    print("Memory of the subscribers' gateway:")
    print()
    print(markdown_table(memory_header, memory_row))
    print()
    print("Ledger writes (`createLedgerEntry` over HTTP) with and without fan-out:")
    print()
    print(markdown_table(fan_header, fan))
    print()
    print("Cores busy during each:")
    print()
    print(markdown_table(fan_cpu_header, fan_cpu))
    print()
    print("pgbench, a NOTIFY inside the ledger transaction:")
    print()
    print(markdown_table(pg_header, pg))
    print()
    for note in notes:
        print(f"- {note}")
    print(f"- Write errors: {write_errors}; pgbench failed/aborted transactions: {pgbench_failures}; stream "
          f"check failures: {', '.join(stream_failures) or 'none'}.")
    print(f"- Ledger invariant after the run: {invariant_report.splitlines()[0]}")
    print()

    failed = bool(write_errors or pgbench_failures or stream_failures or not invariant_ok)
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_subscribers"]:  # hidden: a subscriber process driven by the benchmark
        return subscriber_main()
    parser = argparse.ArgumentParser(prog="python -m bench.live", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short measurements (3 s each, 10 single writes)")
    parser.add_argument("--seconds", type=int, default=None, help="seconds per measurement (default 15, 3 with --quick)")
    args = parser.parse_args(argv)
    if args.seconds is None:
        args.seconds = 3 if args.quick else 15
    if not 1 <= args.seconds <= 100:
        parser.error("--seconds must be between 1 and 100 (pgbench runs under a 120 s timeout)")
    command_line = " ".join([".venv/bin/python -m bench.live", *map(shlex.quote, argv)])

    limit = raise_open_files_limit()
    if limit < SUBSCRIBERS + 200:
        progress(f"WARNING: the open-files limit is {limit}; {SUBSCRIBERS:,} sockets may not fit")
    return run_with_postgres(args, command_line, benchmark, workdir_prefix="billgraph-bench-live-")

if __name__ == "__main__":
    sys.exit(main())
