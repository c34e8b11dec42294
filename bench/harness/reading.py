"""The two reads of the read benchmark, as request bodies for a closed-loop load: the wallet
with its 20 newest entries, and a page of 10 customers with their wallets' 5 newest entries;
each response checked cheaply (status, no error, a full page). And the ledger benchmark's
write as the same kind of load (Debits), for bench.profile."""

import asyncio
import itertools
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from bench.harness.cpu import CpuMeter
from bench.harness.debits import WriteFailed, debit_body, debit_result
from bench.harness.http import RawConnection, RequestFailed
from bench.harness.processes import HOST, Gateway
from bench.harness.progress import progress
from bench.harness.report import percentile
from bench.harness.seed import Seeded
from billgraph.graphql.pagination import encode_cursor

# Named, so that the ceiling (which parses no GraphQL) can tell them apart; the gateway
# ignores the names. The selections are those of issue 11.
WALLET = (
    "query Wallet($id: ID!) { wallet(id: $id) { id balance ledgerEntries(first: 20) "
    "{ edges { node { id amount idempotencyKey createdAt } } } } }"
)
CUSTOMERS = (
    "query Customers($after: String) { customers(first: 10, after: $after) { edges { node { id "
    "wallets { id balance ledgerEntries(first: 5) { edges { node { id amount createdAt } } } } "
    "} } } }"
)
CUSTOMER_CURSOR = "customer"  # billgraph.graphql.customers.types.CUSTOMER_CURSOR


@dataclass(frozen=True)
class Read:
    name: str  # "wallet", "customers"
    operation: str  # the document's operation name
    title: str  # for the report
    bodies: list[bytes]  # one request each; the load draws them at random
    nodes: int  # '"node":' in a full answer: the check

    def check(self, status: int, text: str) -> None:
        """RequestFailed unless `text` is a full answer."""
        if status != 200:
            raise RequestFailed(f"HTTP {status}: {text[:300]}")
        if not text.startswith('{"data":{"') or '"errors"' in text:
            raise RequestFailed(f"not a clean answer: {text[:300]}")
        if (found := text.count('"node":')) != self.nodes:
            raise RequestFailed(f"{found} nodes, expected {self.nodes}: {text[:300]}")

    def body(self, rng: random.Random) -> bytes:
        """The next request of a client drawing with `rng`."""
        return self.bodies[rng.randrange(len(self.bodies))]


@dataclass(frozen=True)
class Debits(Read):
    """createLedgerEntry DEBIT 1 (bench.ledger's write) on any of `customers`, each request
    with a fresh idempotency key; an answer must be a fresh success."""

    customers: list[str] = field(default_factory=list)
    _keys: "itertools.count[int]" = field(default_factory=itertools.count)

    def check(self, status: int, text: str) -> None:
        try:
            debit_result(status, text)
        except WriteFailed as exc:
            raise RequestFailed(str(exc)) from None

    def body(self, rng: random.Random) -> bytes:
        return debit_body(rng.choice(self.customers), f"{self.name}-{next(self._keys)}")


def _body(query: str, operation: str, variables: dict[str, object]) -> bytes:
    return json.dumps({"query": query, "operationName": operation, "variables": variables}).encode()


def wallet_read(seeded: Seeded) -> Read:
    """`wallet(id:)` of any of the 1,000 wallets, with its 20 newest entries."""
    return Read(
        "wallet",
        "Wallet",
        "wallet(id:) { id balance ledgerEntries(first: 20) { id amount idempotencyKey createdAt } }",
        [_body(WALLET, "Wallet", {"id": w}) for w in seeded.wallets],
        20,
    )


def debits(seeded: Seeded, shape: str = "random") -> Debits:
    """Debits spread over the 1,000 wallets ("random") or on the hot one ("hot")."""
    return Debits(
        f"debits-{shape}",
        "Debit",
        f"createLedgerEntry(DEBIT 1) on {'one hot wallet' if shape == 'hot' else '1,000 wallets'}",
        [],
        0,
        customers=seeded.debited(shape),
    )


def customers_read(seeded: Seeded, page: int = 10, entries: int = 5) -> Read:
    """`customers(first: 10, after:)` from any of the 1,000 customers' cursors that leave a
    full page; each customer has one wallet, each wallet its 5 newest entries."""
    cursors = [encode_cursor(CUSTOMER_CURSOR, c) for c in seeded.customer_ids[:-page]]
    return Read(
        "customers",
        "Customers",
        "customers(first: 10, after:) { id wallets { id balance ledgerEntries(first: 5) "
        "{ id amount createdAt } } }",
        [_body(CUSTOMERS, "Customers", {"after": c}) for c in cursors],
        page * (1 + entries),
    )


@dataclass
class ReadResult:
    requests_per_second: float  # successes only
    p50_ms: float
    p99_ms: float
    errors: int
    cpu: dict[str, float]  # cores busy per role (CpuMeter.usage)
    workers: list[float]  # cores busy per worker of the server under load
    error_samples: list[str]
    requests: int  # measured: successes and errors
    seconds: float  # measured

    def cpu_ms(self, role: str) -> float:
        """CPU milliseconds of `role` per request."""
        return self.cpu[role] * self.seconds * 1000 / max(self.requests, 1)

    def log(self, role: str) -> None:
        c = self.cpu
        split = "/".join(f"{w:.2f}" for w in self.workers)
        progress(
            f"  -> {self.requests_per_second:,.1f} req/s, p50 {self.p50_ms:.2f} ms, p99 "
            f"{self.p99_ms:.2f} ms, {self.errors} errors; CPU per request: {role} "
            f"{self.cpu_ms(role):.2f} ms, postgres {self.cpu_ms('postgres'):.2f} ms; cores busy: "
            f"client {c['load']:.2f}, {role} {c[role]:.2f} (workers {split}), postgres "
            f"{c['postgres']:.2f}, other {c['other']:.2f}"
        )
        for sample in self.error_samples:
            progress(f"  error: {sample}")


async def read_loop(
    server: Gateway,
    api_key: str,
    read: Read,
    clients: int,
    seconds: float,
    warmup: float,
    tag: str,
    meter: CpuMeter,
    workers: CpuMeter | None = None,
) -> ReadResult:
    """`clients` keep-alive connections each sending its next `read` (a body drawn at random)
    when the last one answered, for `warmup` seconds and then `seconds` measured. The
    connections open during the first half of the warm-up, one after another. `meter`
    measures the roles; `workers`, if given, the server's workers one by one."""
    connections = [RawConnection(HOST, server.port, api_key) for _ in range(clients)]
    check: Callable[[int, str], None] = read.check
    body_for: Callable[[random.Random], bytes] = read.body

    async def phase(
        duration: float, record: bool, stagger: float = 0.0
    ) -> tuple[list[float], list[str], float]:
        latencies: list[float] = []
        failures: list[str] = []
        start = time.perf_counter()
        deadline = start + duration

        async def client(number: int) -> None:
            rng = random.Random(f"{tag}-{'m' if record else 'w'}-{number}")
            connection = connections[number]
            if stagger:
                # Connections arrive one after another, as a client pool's do, not in one
                # burst (which the first worker to wake up would accept whole).
                await asyncio.sleep(number * stagger / clients)
            while time.perf_counter() < deadline:
                body = body_for(rng)
                t0 = time.perf_counter()
                try:
                    check(*await connection.post(body))
                except RequestFailed as exc:
                    failures.append(str(exc))
                else:
                    latencies.append(time.perf_counter() - t0)

        await asyncio.gather(*(client(n) for n in range(clients)))
        return latencies, failures, time.perf_counter() - start

    try:
        if warmup > 0:
            _, warm_failures, _ = await phase(warmup, record=False, stagger=warmup / 2)
            if warm_failures:
                progress(f"  warm-up: {len(warm_failures)} errors, e.g. {warm_failures[0]}")
        before = meter.snapshot()
        split_before = workers.snapshot() if workers else None
        latencies, failures, elapsed = await phase(seconds, record=True)
        after = meter.snapshot()
        split_after = workers.snapshot() if workers else None
    finally:
        for connection in connections:
            await connection.close()
    split: list[float] = []
    if workers and split_before and split_after:
        usage = CpuMeter.usage(split_before, split_after)
        split = [usage[role] for role in workers.roles]
    return ReadResult(
        requests_per_second=len(latencies) / elapsed,
        p50_ms=percentile(latencies, 50) * 1000,
        p99_ms=percentile(latencies, 99) * 1000,
        errors=len(failures),
        cpu=CpuMeter.usage(before, after),
        workers=split,
        error_samples=failures[:5],
        requests=len(latencies) + len(failures),
        seconds=elapsed,
    )


async def answers(server: Gateway, api_key: str, read: Read, count: int) -> list[str]:
    """The server's answers to `count` of `read`'s bodies spread over them, one after the
    other (checked)."""
    step = max(1, len(read.bodies) // count)
    async with RawConnection(HOST, server.port, api_key) as connection:
        found = []
        for body in read.bodies[::step][:count]:
            status, text = await connection.post(body)
            read.check(status, text)
            found.append(text)
        return found
