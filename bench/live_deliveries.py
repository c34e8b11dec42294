"""bench.live, step 3: writes through one gateway, their deliveries to the subscribers of
another, matched up: latency per delivery and each subscription's stream of versions checked."""

import asyncio
import itertools
import math
import os
import time
from collections import defaultdict
from dataclasses import dataclass, field

from bench.harness.cpu import CpuMeter
from bench.harness.debits import WriteFailed, debit_body, debit_result
from bench.harness.http import RawConnection, RequestFailed
from bench.harness.processes import HOST, Gateway
from bench.harness.progress import progress
from bench.harness.report import percentile
from bench.live_subscribers import SUB_WALLET, SubscriberProcesses

WRITE_RATE = 200  # writes/s in (b)
WRITE_CONNECTIONS = 8  # keep-alive HTTP connections of the paced writer

Watched = dict[tuple[int, str], str]  # (socket index, subscription id) -> wallet global id


@dataclass(frozen=True)
class Write:
    wallet: str  # global id
    version: int  # the wallet's version after it (the entry's sequence)
    sent: float  # wall clock when the request started
    acked: float  # wall clock when its response had been read: committed before


@dataclass
class Writes:
    written: list[Write] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0  # from the first write due to the last one answered


_keys = itertools.count()


async def post_debit(connection: RawConnection, customer: str, wallet: str, tag: str) -> Write:
    """One debit of `customer` (global id), whose wallet is `wallet`; WriteFailed if refused."""
    body = debit_body(customer, f"live-{tag}-{os.getpid()}-{next(_keys)}")
    sent = time.time()
    status, reply = await connection.post(body)
    acked = time.time()
    version = int(debit_result(status, reply)["wallet"]["version"])
    return Write(wallet, version, sent, acked)


async def paced_writes(
    gateway: Gateway, api_key: str, targets: list[tuple[str, str]], rate: float, seconds: float
) -> Writes:
    """Open loop: write k is due at start + k/rate, round-robin over `targets` (customer,
    wallet), on WRITE_CONNECTIONS connections; a write that finds every connection busy goes
    late (the achieved rate shows it)."""
    total = int(rate * seconds)
    counter = itertools.count()
    writes = Writes()
    start = time.perf_counter() + 0.05

    async def worker() -> None:
        async with RawConnection(HOST, gateway.port, api_key) as connection:
            while (k := next(counter)) < total:
                delay = start + k / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                customer, wallet = targets[k % len(targets)]
                try:
                    writes.written.append(await post_debit(connection, customer, wallet, "paced"))
                except (WriteFailed, RequestFailed) as exc:
                    writes.failures.append(str(exc))

    await asyncio.gather(*(worker() for _ in range(WRITE_CONNECTIONS)))
    writes.seconds = time.perf_counter() - start
    return writes


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

    def __str__(self) -> str:
        return (
            f"missing {self.missing}, duplicated {self.duplicated}, out of order "
            f"{self.out_of_order}, version jumps {self.jumps}"
        )


def check_streams(
    streams: dict[tuple[int, str], list[int]], watched: Watched, expected: dict[str, list[int]]
) -> StreamCheck:
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
    open_loop: bool  # else one write at a time: rates only tell the pacing
    done: Writes
    behind: int  # subscriptions short of the last version when the wait timed out
    cpu: dict[str, float]
    socket_errors: list[str] = field(default_factory=list)  # error messages, closed sockets
    deliveries: int = 0
    delivery_seconds: float = math.nan  # first write sent to last event received
    from_ack_ms: list[float] = field(default_factory=list)
    from_sent_ms: list[float] = field(default_factory=list)
    last_per_write_ms: list[float] = field(default_factory=list)  # slowest delivery (from ack)
    streams: StreamCheck = field(default_factory=StreamCheck)
    unexpected: int = 0  # events of no write of this measurement

    @property
    def writes(self) -> int:
        return len(self.done.written)

    @property
    def write_errors(self) -> int:
        return len(self.done.failures)

    @property
    def writes_per_second(self) -> float:
        return self.writes / self.done.seconds if self.done.seconds else math.nan

    @property
    def deliveries_per_second(self) -> float:
        return self.deliveries / self.delivery_seconds if self.delivery_seconds else math.nan

    @property
    def failed(self) -> bool:
        return bool(self.write_errors or self.streams.failed)

    async def receive(self, subscribers: SubscriberProcesses, watched: Watched) -> None:
        """Match each receipt to its write; check every subscription's stream of versions."""
        receipts, self.socket_errors = await subscribers.collect()
        writes = self.done.written
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
                self.unexpected += 1
                continue
            self.from_ack_ms.append((received - write.acked) * 1000)
            self.from_sent_ms.append((received - write.sent) * 1000)
            key = (write.wallet, write.version)
            slowest[key] = max(slowest.get(key, -math.inf), (received - write.acked) * 1000)
            streams[(index, subscription)].append(version)
            last_received = max(last_received, received)
        self.deliveries = len(self.from_ack_ms)
        self.last_per_write_ms = list(slowest.values())
        if writes and self.deliveries:
            self.delivery_seconds = last_received - min(w.sent for w in writes)
        self.streams = check_streams(streams, watched, expected)

    def log(self) -> None:
        progress(
            f"  -> {self.writes} writes ({self.writes_per_second:,.1f}/s), {self.deliveries:,} "
            f"deliveries ({self.deliveries_per_second:,.0f}/s) to {self.streams.subscriptions} "
            f"subscriptions; from response p50 {percentile(self.from_ack_ms, 50):.1f} ms, p99 "
            f"{percentile(self.from_ack_ms, 99):.1f} ms, max "
            f"{max(self.from_ack_ms, default=math.nan):.1f} ms; {self.streams}, unexpected "
            f"{self.unexpected}, write errors {self.write_errors}, behind {self.behind}"
        )
        if self.writes <= 20:
            slowest = " ".join(f"{v:.0f}" for v in self.last_per_write_ms)
            progress(f"  each write's slowest delivery (ms, from response): {slowest}")
        c = self.cpu
        progress(
            f"  cores busy: writer {c['load']:.2f}, gateway B {c['writer gateway']:.2f}, gateway A "
            f"{c['gateway']:.2f}, postgres {c['postgres']:.2f}, subscribers "
            f"{c['subscribers']:.2f}, other {c['other']:.2f}"
        )
        for error in [*self.socket_errors[:5], *self.done.failures[:5]]:
            progress(f"  error: {error}")


@dataclass(frozen=True)
class Stage:
    """What every delivery measurement runs on."""

    writer: Gateway  # gateway B: the writes go through it
    api_key: str
    subscribers: SubscriberProcesses  # on gateway A
    meter: CpuMeter


async def single_writes(
    stage: Stage,
    name: str,
    subscription: str,
    targets: list[tuple[str, str]],
    watched: Watched,
    repeats: int,
    timeout: float,
) -> Deliveries:
    """One write at a time, round-robin over `targets` (customer, wallet); the next only once
    every subscription `subscription` on its wallet has it, or after `timeout`."""
    await stage.subscribers.collect()  # start clean
    before = stage.meter.snapshot()
    done = Writes()
    behind = 0
    started = time.perf_counter()
    async with RawConnection(HOST, stage.writer.port, stage.api_key) as connection:
        for k in range(repeats):
            customer, wallet = targets[k % len(targets)]
            try:
                write = await post_debit(connection, customer, wallet, "single")
            except WriteFailed as exc:
                done.failures.append(str(exc))
                continue
            done.written.append(write)
            behind += await stage.subscribers.wait(subscription, {wallet: write.version}, timeout)
            await asyncio.sleep(0.05)
    done.seconds = time.perf_counter() - started
    result = Deliveries(name, False, done, behind, CpuMeter.usage(before, stage.meter.snapshot()))
    await result.receive(stage.subscribers, watched)
    return result


async def sustained_writes(
    stage: Stage, name: str, targets: list[tuple[str, str]], watched: Watched, seconds: float
) -> Deliveries:
    """WRITE_RATE writes/s for `seconds`, then the drain: until every subscriber has caught up,
    15 s at most."""
    await stage.subscribers.collect()  # start clean
    before = stage.meter.snapshot()
    done = await paced_writes(stage.writer, stage.api_key, targets, WRITE_RATE, seconds)
    cpu = CpuMeter.usage(before, stage.meter.snapshot())
    last: dict[str, int] = {}
    for w in done.written:
        last[w.wallet] = max(w.version, last.get(w.wallet, 0))
    behind = await stage.subscribers.wait(SUB_WALLET, last, timeout=15)
    result = Deliveries(name, True, done, behind, cpu)
    await result.receive(stage.subscribers, watched)
    return result
