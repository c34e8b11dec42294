"""bench.live, step 4: what fan-out costs the ledger's writers. bench.ledger's closed-loop load
on a gateway with the PostgreSQL broker and idle subscribers, then with the memory broker (no
NOTIFY) and none."""

import asyncio
from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import text

from bench.harness.cpu import CpuMeter
from bench.harness.database import checkpoint
from bench.harness.http import RawConnection
from bench.harness.load import HttpResult, closed_loop
from bench.harness.processes import HOST, Gateway
from bench.harness.progress import progress
from bench.harness.report import Table, fmt
from bench.harness.runner import Run
from bench.harness.seed import SHAPES, Seeded, case_name
from bench.live_deliveries import StreamCheck, Watched, check_streams, post_debit
from bench.live_gateways import Gateways, ws_url
from bench.live_subscribers import SUB_WALLET, SubscriberProcesses
from billgraph.db.engine import Database
from billgraph.graphql.node import to_global_id

SUBSCRIBERS = 100  # idle sockets on the writers' gateway: 1 on the hot wallet, 99 on others
CLIENTS = 32
WORKERS = 2  # as bench.ledger


@dataclass
class Fanout:
    seconds: int  # per measurement, after `warmup`
    warmup: float
    postgres: dict[str, HttpResult] = field(default_factory=dict)  # shape -> with fan-out
    memory: dict[str, HttpResult] = field(default_factory=dict)  # shape -> memory broker
    streams: dict[str, StreamCheck] = field(default_factory=dict)  # shape -> its subscribers'

    @property
    def write_errors(self) -> int:
        return sum(r.errors for r in (*self.postgres.values(), *self.memory.values()))

    def table(self) -> Table:
        header = [
            "case",
            "fan-out: writes/s",
            "p50 ms",
            "p99 ms",
            "errors",
            "events to subscribers",
            "missing",
            "version jumps",
            "memory broker: writes/s",
            "p50 ms",
            "p99 ms",
            "errors",
            "fan-out/memory",
        ]
        rows = []
        for shape in SHAPES:
            f, m = self.postgres[shape], self.memory[shape]
            check = self.streams.get(shape, StreamCheck())
            ratio = (
                f"{f.writes_per_second / m.writes_per_second:.2f}" if m.writes_per_second else "—"
            )
            rows.append(
                [
                    case_name(shape, CLIENTS),
                    fmt(f.writes_per_second),
                    fmt(f.p50_ms, 2),
                    fmt(f.p99_ms, 2),
                    str(f.errors),
                    f"{check.delivered:,}",
                    str(check.missing),
                    str(check.jumps),
                    fmt(m.writes_per_second),
                    fmt(m.p50_ms, 2),
                    fmt(m.p99_ms, 2),
                    str(m.errors),
                    ratio,
                ]
            )
        caption = "Ledger writes (`createLedgerEntry` over HTTP) with and without fan-out:"
        return Table(caption, header, rows)

    def cpu_table(self) -> Table:
        header = [
            "case",
            "fan-out: bench client",
            "gateway",
            "postgres",
            "subscribers",
            "other",
            "memory: bench client",
            "gateway",
            "postgres",
            "other",
        ]
        rows = []
        for shape in SHAPES:
            f, m = self.postgres[shape].cpu, self.memory[shape].cpu
            rows.append(
                [
                    case_name(shape, CLIENTS),
                    *(
                        fmt(f[r], 2)
                        for r in ("load", "gateway", "postgres", "subscribers", "other")
                    ),
                    *(fmt(m[r], 2) for r in ("load", "gateway", "postgres", "other")),
                ]
            )
        return Table("Cores busy during each:", header, rows)

    def note(self) -> str:
        return (
            f"Fan-out: bench.ledger's load ({CLIENTS} closed-loop clients, DEBIT 1) on `billgraph "
            f"serve --workers {WORKERS}`, {self.seconds} s after {self.warmup:.0f} s warm-up; with "
            f"the PostgreSQL broker and {SUBSCRIBERS} idle subscribers on that gateway (1 on the "
            f"hot wallet, {SUBSCRIBERS - 1} on wallets of the random set: a tenth of the random "
            "writes reach a socket; their streams checked as above against every version "
            "written, warm-up included), then with BILLGRAPH_EVENT_BROKER=memory and no "
            "subscribers (no NOTIFY)."
        )


async def _versions(database: Database, wallets: dict[str, int]) -> dict[str, int]:
    """Global id -> current version, for `wallets` (global id -> database id)."""
    async with database.engine.connect() as connection:
        rows = (
            await connection.execute(
                text("SELECT id, version FROM wallets WHERE id = ANY(:ids)"),
                {"ids": list(wallets.values())},
            )
        ).all()
    version: dict[int, int] = {db_id: v for db_id, v in rows}
    return {gid: int(version[db_id]) for gid, db_id in wallets.items()}


async def _load(
    run: Run,
    database: Database,
    gateway: Gateway,
    seeded: Seeded,
    broker: str,
    shape: str,
    meter: CpuMeter,
) -> HttpResult:
    await checkpoint(database)
    progress(
        f"step 4: HTTP createLedgerEntry, {broker} broker, {case_name(shape, CLIENTS)}: "
        f"{run.warmup:.0f} s warm-up + {run.seconds} s"
    )
    result = await closed_loop(
        gateway,
        seeded.api_key,
        seeded.debited(shape),
        CLIENTS,
        run.seconds,
        run.warmup,
        f"live-{broker}-{shape}",
        meter,
    )
    result.log()
    return result


async def _subscribe(
    gateway: Gateway, subscribers: SubscriberProcesses, seeded: Seeded, watch: list[str]
) -> Watched:
    """Socket i on wallet watch[i]; the hot wallet's seen to deliver."""
    opened, failed, failures = await subscribers.open(ws_url(gateway), seeded.api_key, watch)
    if failed:
        raise RuntimeError(f"{failed} fan-out sockets failed: {failures}")
    await asyncio.sleep(1)  # registered on whichever worker took the socket
    async with RawConnection(HOST, gateway.port, seeded.api_key) as connection:
        check = await post_debit(connection, seeded.hot_customer, seeded.hot_wallet, "check")
    if await subscribers.wait(SUB_WALLET, {seeded.hot_wallet: check.version}, timeout=10):
        raise RuntimeError("the hot wallet's subscriber got no event in 10 s")
    await subscribers.collect()
    progress(
        f"step 4: {opened} idle subscribers on the postgres-broker gateway: 1 on the hot wallet, "
        f"{opened - 1} on wallets of the random set"
    )
    return {(i, SUB_WALLET): w for i, w in enumerate(watch)}


async def _check(
    database: Database,
    subscribers: SubscriberProcesses,
    watched: Watched,
    ids: dict[str, int],
    before: dict[str, int],
) -> StreamCheck:
    """Every version written since `before` (warm-up included) must reach the watchers."""
    after = await _versions(database, ids)
    expected = {w: list(range(before[w] + 1, after[w] + 1)) for w in after if after[w] > before[w]}
    behind = await subscribers.wait(SUB_WALLET, {w: v[-1] for w, v in expected.items()}, timeout=15)
    receipts, errors = await subscribers.collect()
    streams: dict[tuple[int, str], list[int]] = defaultdict(list)
    for index, subscription, version, _ in receipts:
        streams[(index, subscription)].append(version)
    check = check_streams(streams, watched, expected)
    progress(
        f"  {check.delivered:,} events to {check.subscriptions} subscribers ({check}, behind "
        f"{behind}), {len(errors)} socket errors"
    )
    for error in errors[:3]:
        progress(f"  socket error: {error}")
    return check


async def fanout_cost(run: Run, database: Database, gateways: Gateways, seeded: Seeded) -> Fanout:
    fanout = Fanout(run.seconds, run.warmup)
    gateway = await gateways.start(
        "gateway (postgres broker)", workers=WORKERS, broker="postgres", label="step 4"
    )
    # One socket on the hot wallet, the rest on 99 of the 1,000 (a tenth of the random writes).
    watch = (seeded.hot_wallet_id, *seeded.wallet_ids[: SUBSCRIBERS - 1])
    ids: dict[str, int] = {to_global_id("Wallet", w): w for w in watch}
    subscribers = await SubscriberProcesses.start(1)
    try:
        watched = await _subscribe(gateway, subscribers, seeded, list(ids))
        meter = CpuMeter(
            {
                "gateway": [gateway.process.pid],
                "postgres": run.postgres_pids,
                "subscribers": subscribers.pids,
            }
        )
        for shape in SHAPES:
            before = await _versions(database, ids)
            fanout.postgres[shape] = await _load(
                run, database, gateway, seeded, "postgres", shape, meter
            )
            fanout.streams[shape] = await _check(database, subscribers, watched, ids, before)
    finally:
        await subscribers.close()
    await gateways.stop(gateway)

    gateway = await gateways.start(
        "gateway (memory broker)", workers=WORKERS, broker="memory", label="step 4"
    )
    meter = CpuMeter({"gateway": [gateway.process.pid], "postgres": run.postgres_pids})
    for shape in SHAPES:
        fanout.memory[shape] = await _load(run, database, gateway, seeded, "memory", shape, meter)
    await gateways.stop(gateway)
    return fanout
