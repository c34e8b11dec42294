"""Live balances benchmark: walletBalanceChanged delivery over real WebSockets, its memory,
and what fan-out costs the ledger's writers.

    .venv/bin/python -m bench.live             # full run, 15 s per measurement (~4 min)
    .venv/bin/python -m bench.live --quick     # 3 s per measurement, a smoke test (~2 min)
    .venv/bin/python -m bench.live --seconds 10

It starts a throwaway PostgreSQL with durable commits and seeds it like bench.ledger (1,000
customers with a USD wallet, one hot wallet). Then:

1. Delivery latency, 1,000 subscribers on ONE gateway process. Gateway A (`billgraph serve
   --workers 1`, PostgreSQL broker) holds 1,000 graphql-transport-ws sockets, one subscription
   each, opened by separate subscriber processes (bench.live_subscribers): 10 subscribers on
   each of 100 wallets. Writes go over HTTP to gateway B (another process, --workers 1), so
   every event crosses processes over LISTEN/NOTIFY. Latency is a subscriber's receipt time
   minus the writer's time (one clock: same machine), twice: from the write's HTTP response
   (the commit happened before it: a lower bound) and from the write's request start (before
   the commit: an upper bound).
   (a) single writes, one at a time, each awaited by its wallet's 10 subscribers;
   (b) open-loop 200 writes/s round-robin over the 100 wallets for --seconds, checking every
       subscriber's stream for missing, duplicated and out-of-order versions, and version
       jumps (the hub coalesces a subscriber that falls behind);
   (c) single writes to one wallet that all 1,000 sockets watch (a second subscription each).
2. Memory: gateway A's RSS before the 1,000 sockets (after warm-up) and with them idle.
3. Fan-out cost to writers (bench.live_fanout): bench.ledger's createLedgerEntry load (32
   clients, hot wallet and random wallets, --workers 2) with the PostgreSQL broker and 100
   subscribers connected, then with BILLGRAPH_EVENT_BROKER=memory (no NOTIFY); and pgbench
   (bench.live_notify) on the service's statement alone, inside BEGIN ... SELECT 1; COMMIT, and
   inside BEGIN ... SELECT pg_notify(...); COMMIT (what a NOTIFY inside the ledger transaction
   would cost).
4. The ledger invariant on the resulting database.

Progress goes to stderr; the results (plain tables, then the same as Markdown for
bench/RESULTS.md) go to stdout. Exits 1 if a write failed, a subscriber missed an event
without a version jump, saw one twice or out of order, pgbench failed or the invariant does
not hold.
"""

import asyncio
import math
import sys
from dataclasses import dataclass
from importlib.metadata import version as package_version

import httpx

from bench.harness import runner
from bench.harness.cpu import CpuMeter
from bench.harness.database import check_invariant, checkpoint, postgres_facts
from bench.harness.processes import process_table, tree
from bench.harness.progress import progress
from bench.harness.report import Report, Table, fmt, machine, percentile
from bench.harness.seed import Seeded, seed
from bench.live_deliveries import (
    WRITE_CONNECTIONS,
    WRITE_RATE,
    Deliveries,
    Stage,
    single_writes,
    sustained_writes,
)
from bench.live_fanout import fanout_cost
from bench.live_gateways import Gateways, await_subscribers, metric, rss_kb
from bench.live_memory import Memory, open_sockets, warm_up
from bench.live_notify import notify_cost
from bench.live_subscribers import SUB_HOT, SUB_WALLET, SubscriberProcesses, raise_open_files_limit
from billgraph.db.engine import Database, connect

SUBSCRIBERS = 1_000
WATCHED_WALLETS = 100  # 10 subscribers per wallet
SUBSCRIBER_PROCESSES = 2  # one per core: their CPU is the load generator's, not the gateway's


@dataclass
class Delivery:
    results: list[Deliveries]  # (a), (b), (c)
    memory: Memory
    hub: dict[str, float]  # gateway A's event counters after (a)-(c)


async def delivery(
    run: runner.Run, database: Database, gateways: Gateways, seeded: Seeded, repeats: int
) -> Delivery:
    """Steps 2 and 3: 1,000 sockets on gateway A, writes through gateway B."""
    a = await gateways.start(
        "gateway A (subscribers)", workers=1, broker="postgres", label="step 2"
    )
    b = await gateways.start("gateway B (writes)", workers=1, broker="postgres", label="step 2")
    progress(
        f"step 2: gateway A pid {a.process.pid}, "
        f"{len(tree(a.process.pid, process_table())) - 1} descendant processes "
        "(uvicorn serves in process at --workers 1)"
    )
    progress("step 2: warm-up (40 concurrent requests x 3, 10 sockets with one event each)")
    await warm_up(a, b, seeded)
    await asyncio.sleep(1)

    key, hot = seeded.api_key, (seeded.hot_customer, seeded.hot_wallet)
    targets = list(
        zip(seeded.customers[:WATCHED_WALLETS], seeded.wallets[:WATCHED_WALLETS], strict=True)
    )
    watch = [seeded.wallets[i % WATCHED_WALLETS] for i in range(SUBSCRIBERS)]
    watched = {(i, SUB_WALLET): w for i, w in enumerate(watch)}
    per_wallet = SUBSCRIBERS // WATCHED_WALLETS
    subscribers = await SubscriberProcesses.start(SUBSCRIBER_PROCESSES)
    try:
        meter = CpuMeter(
            {
                "gateway": [a.process.pid],
                "postgres": run.postgres_pids,
                "writer gateway": [b.process.pid],
                "subscribers": subscribers.pids,
            }
        )
        memory = await open_sockets(a, subscribers, meter, watch, key)

        progress(
            f"step 3a: {repeats} single writes through gateway B, each to a different wallet "
            f"with {per_wallet} subscribers"
        )
        stage = Stage(b, key, subscribers, meter)
        single = await single_writes(
            stage,
            f"(a) single write, {per_wallet} subscribers",
            SUB_WALLET,
            targets,
            watched,
            repeats=repeats,
            timeout=10,
        )
        single.log()

        await checkpoint(database)
        progress(
            f"step 3b: {WRITE_RATE} writes/s for {run.seconds} s through gateway B (open loop, "
            f"{WRITE_CONNECTIONS} connections), round-robin over the {WATCHED_WALLETS} watched "
            "wallets"
        )
        sustained = await sustained_writes(
            stage,
            f"(b) {WRITE_RATE} writes/s for {run.seconds} s, {SUBSCRIBERS:,} subscribers",
            targets,
            watched,
            run.seconds,
        )
        sustained.log()

        progress(
            f"step 3c: every socket subscribes to the hot wallet too; {repeats} single writes to it"
        )
        await subscribers.subscribe(SUB_HOT, hot[1])
        registered = await await_subscribers(a, 2 * SUBSCRIBERS)
        if registered < 2 * SUBSCRIBERS:
            raise RuntimeError(
                f"only {registered:.0f} of {2 * SUBSCRIBERS} subscriptions registered"
            )
        everyone = {(i, SUB_HOT): hot[1] for i in range(SUBSCRIBERS)}
        broadcast = await single_writes(
            stage,
            f"(c) single write, {SUBSCRIBERS:,} subscribers on one wallet",
            SUB_HOT,
            [hot],
            everyone,
            repeats=repeats,
            timeout=20,
        )
        broadcast.log()
        memory.after_deliveries_kb = rss_kb(a.process.pid)
        async with httpx.AsyncClient(timeout=10) as client:
            hub = {
                name: await metric(client, a, f"billgraph_events_{name}_total")
                for name in ("read_back", "coalesced")
            }
        progress(
            f"step 3: gateway A's hub: {hub['read_back']:.0f} entries read back, "
            f"{hub['coalesced']:.0f} events coalesced"
        )
        progress("step 3: closing the sockets and gateways A and B")
    finally:
        await subscribers.close()
    await gateways.stop(a)
    await gateways.stop(b)
    return Delivery([single, sustained, broadcast], memory, hub)


def _ms(values: list[float], p: float) -> str:
    return fmt(percentile(values, p), 1)


def delivery_tables(results: list[Deliveries]) -> list[Table]:
    latency = Table(
        f"Delivery latency, {SUBSCRIBERS:,} subscribers on one gateway process, writes through "
        "another:",
        [
            "case",
            "writes",
            "writes/s",
            "deliveries",
            "deliveries/s",
            "from response: p50 ms",
            "p99 ms",
            "max ms",
            "slowest per write, p50 ms",
            "from request start: p50 ms",
            "p99 ms",
            "max ms",
        ],
        [
            [
                d.name,
                f"{d.writes:,}",
                fmt(d.writes_per_second) if d.open_loop else "—",
                f"{d.deliveries:,}",
                fmt(d.deliveries_per_second, 0) if d.open_loop else "—",
                _ms(d.from_ack_ms, 50),
                _ms(d.from_ack_ms, 99),
                fmt(max(d.from_ack_ms, default=math.nan)),
                _ms(d.last_per_write_ms, 50),
                _ms(d.from_sent_ms, 50),
                _ms(d.from_sent_ms, 99),
                fmt(max(d.from_sent_ms, default=math.nan)),
            ]
            for d in results
        ],
    )
    integrity = Table(
        None,
        [
            "case",
            "subscriptions",
            "missing",
            "duplicated",
            "out of order",
            "version jumps",
            "unexpected",
            "socket errors",
            "write errors",
        ],
        [
            [
                d.name,
                f"{d.streams.subscriptions:,}",
                str(d.streams.missing),
                str(d.streams.duplicated),
                str(d.streams.out_of_order),
                str(d.streams.jumps),
                str(d.unexpected),
                str(len(d.socket_errors)),
                str(d.write_errors),
            ]
            for d in results
        ],
    )
    roles = ("load", "writer gateway", "gateway", "postgres", "subscribers", "other")
    cpu = Table(
        "Cores busy during each (for (b): while writing, not the drain after):",
        [
            "case",
            "writer (bench)",
            "gateway B (writes)",
            "gateway A (1,000 sockets)",
            "postgres",
            "subscriber processes",
            "other",
        ],
        [[d.name, *(fmt(d.cpu[r], 2) for r in roles)] for d in results],
    )
    return [latency, integrity, cpu]


def notes(repeats: int, hub: dict[str, float]) -> list[str]:
    return [
        "Delivery: gateway A (`billgraph serve --workers 1`, BILLGRAPH_EVENT_BROKER=postgres) "
        f"holds {SUBSCRIBERS:,} graphql-transport-ws sockets with one "
        "`walletBalanceChanged(walletId)` subscription each "
        f"({SUBSCRIBERS // WATCHED_WALLETS} per wallet on {WATCHED_WALLETS} wallets; selection "
        f"`version balance entry {{ id }}`), opened by {SUBSCRIBER_PROCESSES} subscriber "
        "processes (websockets, permessage-deflate as negotiated by default, pongs to the "
        "server's pings). Writes (DEBIT 1) go over HTTP to gateway B, another `--workers 1` "
        "process: every event crosses processes through LISTEN/NOTIFY. Default queue size and "
        "keep-alive.",
        "Latency = subscriber's receipt time \u2212 writer's time, one clock (same machine). *From "
        "response*: the write's HTTP response had been read (its commit happened before: a lower "
        "bound on commit-to-delivery, negative if the event beats the response). *From request "
        "start*: before the commit (an upper bound). *Slowest per write*: each write's last "
        "delivery, from response, median over writes.",
        f"(a) and (c): {repeats} writes one at a time, each to a different wallet in (a), all to "
        "the one wallet every socket also subscribes to in (c) (a second subscription per "
        "socket); the next write goes once every subscriber has the previous one. (b): open "
        f"loop, write k due at k/{WRITE_RATE} s, {WRITE_CONNECTIONS} keep-alive connections, "
        f"round-robin over the {WATCHED_WALLETS} wallets; deliveries/s = deliveries ÷ (first "
        "write sent → last event received).",
        "Stream checks per subscription, against the versions written: *missing* never arrived, "
        "*duplicated* arrived twice, *out of order* arrived after a later one, *version jumps* "
        "skipped versions (the hub coalesces a subscriber that falls behind), *unexpected* "
        f"matched no write. Gateway A's hub after (a)-(c): {hub['read_back']:.0f} entries read "
        f"back from the ledger, {hub['coalesced']:.0f} events coalesced.",
        "Memory: VmRSS of gateway A's process tree (uvicorn serves in the `billgraph serve` "
        "process at --workers 1), after warm-up (40 concurrent requests, 10 sockets with one "
        f"event) and then with the {SUBSCRIBERS:,} sockets subscribed and idle; per subscriber "
        f"= difference ÷ {SUBSCRIBERS:,}.",
    ]


async def benchmark(run: runner.Run) -> int:
    repeats = 10 if run.args.quick else 20
    database = connect(run.server.url)
    gateways = Gateways(run)
    try:
        seeded = await seed(database)
        facts = await postgres_facts(database)
        delivered = await delivery(run, database, gateways, seeded, repeats)
        fanout = await fanout_cost(run, database, gateways, seeded)
        notify = await notify_cost(run, database, seeded)
        progress("step 6: checking the ledger invariant")
        invariant_ok, invariant = await check_invariant(database)
        progress(f"step 6: {invariant.splitlines()[0]}")
    finally:
        await gateways.stop_all()
        await database.dispose()

    write_errors = sum(d.write_errors for d in delivered.results) + fanout.write_errors
    pgbench_failures = notify.failures
    stream_failures = [d.name for d in delivered.results if d.failed]
    stream_failures += [f"fan-out, {shape}" for shape, c in fanout.streams.items() if c.failed]

    def failures(pgbench: str) -> str:
        streams = ", ".join(stream_failures) or "none"
        return f"{pgbench}: {pgbench_failures}; stream check failures: {streams}"

    Report(
        title="Live balances benchmark",
        command_line=run.command_line,
        machine=machine(
            str(facts),
            "gateways: billgraph serve, rate limit off, pool 20 per worker, uvicorn "
            f"{package_version('uvicorn')}, strawberry-graphql "
            f"{package_version('strawberry-graphql')}, subscribers: websockets "
            f"{package_version('websockets')}; load generator (writer, subscriber processes), "
            "gateways and PostgreSQL share the machine",
        ),
        tables=[
            *delivery_tables(delivered.results),
            delivered.memory.table(),
            fanout.table(),
            fanout.cpu_table(),
            notify.table(),
        ],
        summary=[
            f"write errors: {write_errors}; {failures('pgbench failed/aborted')}",
            f"ledger invariant: {invariant}",
            f"gateway log warnings and errors: {len(gateways.warnings)}",
            *(f"  {line}" for line in gateways.warnings[:10]),
        ],
        notes=[
            *notes(repeats, delivered.hub),
            fanout.note(),
            notify.note(),
            f"Write errors: {write_errors}; {failures('pgbench failed/aborted transactions')}.",
            f"Ledger invariant after the run: {invariant.splitlines()[0]}",
        ],
    ).print()
    failed = write_errors or pgbench_failures or stream_failures or not invariant_ok
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = runner.options("bench.live", __doc__.splitlines()[0], "10 single writes")
    limit = raise_open_files_limit()
    if limit < SUBSCRIBERS + 200:
        progress(f"WARNING: the open-files limit is {limit}; {SUBSCRIBERS:,} sockets may not fit")
    return runner.main(parser, benchmark, sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    sys.exit(main())
