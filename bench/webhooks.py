"""Webhook benchmark: completed top-ups per second through POST /webhooks/sandbox, next to
createLedgerEntry writes on the same gateway, concurrency and customers.

    .venv/bin/python -m bench.webhooks             # full run: 3,000 sessions, 15 s of writes
    .venv/bin/python -m bench.webhooks --quick     # 300 sessions, 3 s of writes, a smoke test
    .venv/bin/python -m bench.webhooks --sessions 8000 --seconds 20

It starts a throwaway PostgreSQL with durable commits, migrates and seeds it as bench.ledger
does (bench.harness.seed: 1,000 customers with a funded USD wallet), opens the sandbox checkout
sessions through billgraph/checkout (the service createCheckoutSession calls: real OPEN rows
with the sandbox's session ids), counts the SQL statements of one ledger write, one webhook
delivery and one duplicate on the app in process, and runs `billgraph serve --workers 2` as a subprocess with
BILLGRAPH_SANDBOX_WEBHOOK_SECRET set, so that the benchmark can sign. Then, with 32
concurrent closed-loop clients (bench.harness.http.RawConnection):

1. createLedgerEntry, DEBIT 1 on the 1,000 customers at random (bench.ledger's load,
   bench.harness.load.closed_loop): writes/s, p50, p99;
2. a signed `checkout.session.completed` event per session to /webhooks/sandbox, 10% of the
   deliveries being duplicates of an event already sent (same event id and body; half
   re-signed, half with the same signature header): completed top-ups/s, deliveries/s, p50,
   p99;

each with the gateway's and PostgreSQL's CPU per request (bench.harness.cpu) and the
transactions PostgreSQL committed per request (commit records in the WAL, pg_waldump),
against the issue's expectation that the webhook path costs no more than one extra
transaction per event. At the
end it checks every answer (2xx; each event `credited` once, `duplicate` otherwise), what is
stored (every session COMPLETE with exactly one credit of its amount on its customer's wallet,
credits == session amounts per customer and in total, each event once in the inbox) and the
ledger invariant (billgraph/ledger/audit.py, as `billgraph check-ledger`).

Progress goes to stderr; the results (plain tables, then the same as Markdown for
bench/RESULTS.md) go to stdout. Exits 1 if any request failed or any check did not hold.
"""

import json
import math
import random
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import httpx

from bench.harness import runner
from bench.harness.checkouts import (
    RETRY_WINDOW,
    WEBHOOK_PATH,
    WEBHOOK_SECRET,
    Delivery,
    WebhookResult,
    answer_problems,
    deliver,
    gateway_env,
    open_sessions,
    plan,
    signed,
    stored_problems,
)
from bench.harness.cpu import CpuMeter
from bench.harness.database import (
    Commits,
    check_invariant,
    checkpoint,
    commits_between,
    postgres_facts,
    wal_position,
)
from bench.harness.debits import debit_body, debit_result
from bench.harness.load import HttpResult, closed_loop
from bench.harness.processes import Gateway, start_gateway
from bench.harness.progress import progress
from bench.harness.report import Report, Table, fmt, machine
from bench.harness.seed import CUSTOMERS, Seeded, seed
from bench.harness.tracing import tracing_env
from billgraph.app import create_app
from billgraph.checkout.webhooks import Outcome
from billgraph.db.engine import Database, connect
from billgraph.db.trace import count_statements
from billgraph.settings import Settings

GATEWAY_WORKERS = 2
CLIENTS = 32
DUPLICATE_SHARE = 0.10
SESSIONS, QUICK_SESSIONS = 3_000, 300
EXPECTATION = "the webhook path should cost no more than one extra transaction per event"
PROBES = 2  # sessions paid in process to count statements: one warms up, one is counted
WRITE, TOP_UP, DUPLICATE = "createLedgerEntry write", "webhook, credited", "webhook, duplicate"


async def statements_per_request(
    database: Database,
    url: str,
    seeded: Seeded,
    probes: Sequence[Delivery],
    answers: defaultdict[str, list[str]],
) -> dict[str, list[str]]:
    """The SQL statements of one ledger write, one webhook delivery that credits and the same
    event again, on the app in this process (httpx.ASGITransport, same database), each after
    one uncounted request of its kind (the first of a key writes lastUsedAt, the first of a
    pool sets its connection up). `probes`: PROBES deliveries and a duplicate of the last."""
    settings = Settings(
        database_url=url,
        rate_limit_per_second=0,
        log_level="WARNING",
        sandbox_webhook_secret=WEBHOOK_SECRET,
    )
    counted: dict[str, list[str]] = {}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(settings, database)),
        base_url="http://billgraph.bench",
        timeout=60,
    ) as client:

        async def write(key: str) -> None:
            response = await client.post(
                "/graphql",
                content=debit_body(seeded.customers[0], key),
                headers={
                    "authorization": f"Bearer {seeded.api_key}",
                    "content-type": "application/json",
                },
            )
            debit_result(response.status_code, response.text)

        async def hook(delivery: Delivery) -> None:
            response = await client.post(
                WEBHOOK_PATH,
                content=delivery.body,
                headers={
                    "content-type": "application/json",
                    "billgraph-signature": signed(delivery.body),
                },
            )
            if response.status_code != 200:
                raise RuntimeError(
                    f"webhook in process: HTTP {response.status_code}: {response.text}"
                )
            answers[delivery.event_id].append(str(json.loads(response.text)["outcome"]))

        await write("probe-warm")
        with count_statements(database) as statements:
            await write("probe-counted")
        counted[WRITE] = list(statements)
        await hook(probes[0])
        for name, delivery in ((TOP_UP, probes[1]), (DUPLICATE, probes[2])):
            with count_statements(database) as statements:
                await hook(delivery)
            counted[name] = list(statements)
    for name, statements in counted.items():
        progress(f"step 2: {name}: {len(statements)} SQL statements (in-process)")
        for statement in statements:
            progress(f"step 2:   {' '.join(statement.split())[:110]}")
    return counted


@dataclass(frozen=True)
class Cost:
    """Per request of a measurement: gateway and PostgreSQL CPU ms, PostgreSQL commits (WAL
    commit records) and WAL bytes."""

    gateway_ms: float
    postgres_ms: float
    commits: float
    wal_bytes: float

    @staticmethod
    def of(cpu: dict[str, float], seconds: float, requests: int, wal: Commits) -> "Cost":
        if not requests:
            return Cost(math.nan, math.nan, math.nan, math.nan)
        return Cost(
            cpu["gateway"] * seconds * 1000 / requests,
            cpu["postgres"] * seconds * 1000 / requests,
            (wal.commits + wal.aborts) / requests,
            wal.wal_bytes / requests,
        )

    def cells(self) -> list[str]:
        return [
            fmt(self.gateway_ms, 2),
            fmt(self.postgres_ms, 2),
            fmt(self.commits, 2),
            fmt(self.wal_bytes, 0),
        ]


@dataclass
class Figures:
    ledger: HttpResult
    ledger_cost: Cost
    hooks: WebhookResult
    delivery_cost: Cost
    top_up_cost: Cost
    statements: dict[str, int]  # in process, per request: WRITE, TOP_UP, DUPLICATE

    @property
    def extra_commits(self) -> float:
        """Per event: a webhook delivery's commits beyond a ledger write's."""
        return self.delivery_cost.commits - self.ledger_cost.commits


def _ratio(a: float, b: float) -> str:
    return "—" if not b or math.isnan(a) or math.isnan(b) else f"{a / b:.2f}"


def figures_table(f: Figures) -> Table:
    h, w = f.hooks, f.ledger
    dup, credited = Outcome.DUPLICATE.value, Outcome.CREDITED.value
    rows = [
        [
            "createLedgerEntry (DEBIT 1), writes",
            f"{w.requests:,}",
            fmt(w.writes_per_second),
            fmt(w.p50_ms, 2),
            fmt(w.p99_ms, 2),
            str(w.errors),
            *f.ledger_cost.cells(),
        ],
        [
            f"webhooks, every delivery ({DUPLICATE_SHARE:.0%} duplicates)",
            f"{h.deliveries:,}",
            fmt(h.deliveries_per_second),
            fmt(h.p_ms(50), 2),
            fmt(h.p_ms(99), 2),
            str(len(h.errors)),
            *f.delivery_cost.cells(),
        ],
        [
            "webhooks, completed top-ups (answered credited)",
            f"{h.top_ups:,}",
            fmt(h.top_ups_per_second),
            fmt(h.p_ms(50, credited), 2),
            fmt(h.p_ms(99, credited), 2),
            "—",
            *f.top_up_cost.cells(),
        ],
        [
            "webhooks, duplicates (answered duplicate)",
            f"{len(h.by_outcome.get(dup, [])):,}",
            "—",
            fmt(h.p_ms(50, dup), 2),
            fmt(h.p_ms(99, dup), 2),
            "—",
            *["—"] * 4,
        ],
    ]
    header = [
        "case",
        "requests",
        "per second",
        "p50 ms",
        "p99 ms",
        "errors",
        "gateway CPU ms each",
        "postgres CPU ms each",
        "PG commits each",
        "WAL bytes each",
    ]
    caption = (
        f"Webhook top-ups against ledger writes, {CLIENTS} concurrent clients on one gateway, "
        f"over the same {CUSTOMERS:,} customers:"
    )
    return Table(caption, header, rows)


def ratio_table(f: Figures) -> Table:
    w, t = f.ledger_cost, f.top_up_cost
    write_p50, top_up_p50 = f.ledger.p50_ms, f.hooks.p_ms(50, Outcome.CREDITED.value)
    pairs = [
        ("per second", f.ledger.writes_per_second, f.hooks.top_ups_per_second, 1),
        ("gateway CPU ms", w.gateway_ms, t.gateway_ms, 2),
        ("postgres CPU ms", w.postgres_ms, t.postgres_ms, 2),
        ("PG commits", w.commits, t.commits, 2),
        ("WAL bytes", w.wal_bytes, t.wal_bytes, 0),
        ("SQL statements (in process)", f.statements[WRITE], f.statements[TOP_UP], 0),
        ("p50 ms", write_p50, top_up_p50, 2),
    ]
    rows = [[name, fmt(a, d), fmt(b, d), _ratio(b, a)] for name, a, b, d in pairs]
    header = ["per request", "ledger write", "completed top-up", "top-up / write"]
    return Table("A completed top-up against a ledger write:", header, rows)


def cpu_table(f: Figures) -> Table:
    roles = ("load", "gateway", "postgres", "other")
    rows = [
        ["createLedgerEntry writes", *(fmt(f.ledger.cpu[r], 2) for r in roles)],
        ["webhook deliveries", *(fmt(f.hooks.cpu[r], 2) for r in roles)],
    ]
    header = ["case", "bench client", "gateway", "postgres", "other"]
    return Table("Cores busy during each measurement:", header, rows)


def verdict(f: Figures) -> str:
    """The expectation against what was measured."""
    w, d, t = f.ledger_cost, f.delivery_cost, f.top_up_cost
    holds = "holds" if f.extra_commits <= 1.0 else "does NOT hold"
    speed = f.hooks.top_ups_per_second / f.ledger.writes_per_second
    costs = "holds" if speed >= 0.5 else "does NOT hold"
    return (
        f"a delivery committed {d.commits:.2f} PostgreSQL transactions, a ledger write "
        f"{w.commits:.2f}: {f.extra_commits:+.2f} per event, so counted in transactions it "
        f"{holds}; read as cost (a top-up no dearer than a write and one more transaction "
        f"like it, so at least half the writes' rate) it {costs}: top-ups/s / writes/s = "
        f"{speed:.2f}; "
        f"it ran {f.statements[TOP_UP]} SQL statements to the write's {f.statements[WRITE]} "
        f"({f.statements[DUPLICATE]} for a duplicate), and a completed top-up cost the gateway "
        f"{t.gateway_ms:.2f} ms of CPU ({_ratio(t.gateway_ms, w.gateway_ms)}x a write's "
        f"{w.gateway_ms:.2f} ms), PostgreSQL {t.postgres_ms:.2f} ms "
        f"({_ratio(t.postgres_ms, w.postgres_ms)}x {w.postgres_ms:.2f} ms) and "
        f"{t.wal_bytes:,.0f} WAL bytes ({_ratio(t.wal_bytes, w.wal_bytes)}x {w.wal_bytes:,.0f})"
    )


async def benchmark(run: runner.Run) -> int:
    count = run.args.sessions
    if count is None:
        count = QUICK_SESSIONS if run.args.quick else SESSIONS
    warm_count = min(300, max(CLIENTS, count // 10))
    database = connect(run.server.url)
    meter = CpuMeter({"postgres": run.postgres_pids})
    gateway: Gateway | None = None
    try:
        seeded = await seed(database)
        facts = await postgres_facts(database)

        total = PROBES + warm_count + count
        progress(
            f"step 2: opening {total:,} sandbox checkout sessions through "
            f"checkout.service.create ({PROBES} to count statements, {warm_count:,} for the "
            "warm-up)"
        )
        started = time.monotonic()
        sessions = await open_sessions(database, seeded, total)
        opened_in = time.monotonic() - started
        progress(f"step 2: {len(sessions):,} sessions opened in {opened_in:.1f} s")
        rng = random.Random("bench.webhooks")
        probes = plan(sessions[:PROBES], 0.0, rng)
        last = probes[-1]
        probes.append(Delivery(last.event_id, last.body, last.session, True, True))
        warm_plan = plan(sessions[PROBES : PROBES + warm_count], DUPLICATE_SHARE, rng)
        measured_plan = plan(sessions[PROBES + warm_count :], DUPLICATE_SHARE, rng)
        every: list[Delivery] = [*probes, *warm_plan, *measured_plan]
        answers: defaultdict[str, list[str]] = defaultdict(list)
        statements = await statements_per_request(database, run.server.url, seeded, probes, answers)

        gateway = await start_gateway(
            run.server.url,
            run.workdir,
            workers=GATEWAY_WORKERS,
            env={**tracing_env(None), **gateway_env()},
        )
        meter.roles["gateway"] = [gateway.process.pid]

        await checkpoint(database)
        progress(
            f"step 3: HTTP createLedgerEntry DEBIT 1, random customers, c={CLIENTS}: "
            f"{run.warmup:.0f} s warm-up + {run.seconds} s"
        )
        customers = seeded.customers
        warm = await closed_loop(
            gateway, seeded.api_key, customers, CLIENTS, run.warmup, 0, "ledger-warm", meter
        )
        if warm.errors:
            progress(f"  warm-up: {warm.errors} errors, e.g. {warm.error_samples[0]}")
        start = await wal_position(database)
        ledger = await closed_loop(
            gateway, seeded.api_key, customers, CLIENTS, run.seconds, 0, "ledger-run", meter
        )
        ledger_wal = commits_between(run.server, start, await wal_position(database))
        ledger.log()
        progress(f"  -> WAL: {ledger_wal}")
        check_alive(gateway, "the ledger writes")

        await checkpoint(database)
        progress(
            f"step 4: webhook warm-up: {len(warm_plan):,} deliveries for {warm_count:,} "
            f"sessions, c={CLIENTS}"
        )
        warm_hooks = await deliver(gateway, warm_plan, CLIENTS, meter, answers)
        warm_hooks.log()
        progress(
            f"step 4: POST /webhooks/sandbox, {len(measured_plan):,} deliveries for {count:,} "
            f"sessions ({DUPLICATE_SHARE:.0%} duplicates), c={CLIENTS}"
        )
        start = await wal_position(database)
        hooks = await deliver(gateway, measured_plan, CLIENTS, meter, answers)
        hooks_wal = commits_between(run.server, start, await wal_position(database))
        hooks.log()
        progress(f"  -> WAL: {hooks_wal}")
        check_alive(gateway, "the webhook deliveries")

        progress("step 5: checking the answers, the sessions, credits and inbox, the ledger")
        answered_wrong = answer_problems(every, answers)
        stored_wrong, stored = await stored_problems(
            database, seeded.organization_id, sessions, every
        )
        invariant_ok, invariant = await check_invariant(database)
        progress(f"step 5: {stored}")
        progress(f"step 5: {invariant.splitlines()[0]}")
        for problem in [*answered_wrong, *stored_wrong][:20]:
            progress(f"  problem: {problem}")
        gateway_log = gateway.log_tail(20) if gateway.log_path.stat().st_size else ""
    finally:
        if gateway is not None:
            progress("stopping the gateway")
            progress(f"gateway exited with {gateway.stop()}")
        await database.dispose()

    f = Figures(
        ledger=ledger,
        ledger_cost=Cost.of(ledger.cpu, ledger.seconds, ledger.requests, ledger_wal),
        hooks=hooks,
        delivery_cost=Cost.of(hooks.cpu, hooks.seconds, hooks.deliveries, hooks_wal),
        top_up_cost=Cost.of(hooks.cpu, hooks.seconds, hooks.top_ups, hooks_wal),
        statements={name: len(found) for name, found in statements.items()},
    )
    request_errors = warm.errors + ledger.errors + len(warm_hooks.errors) + len(hooks.errors)
    problems = [*answered_wrong, *stored_wrong]
    checks = "all hold" if not problems else f"{len(problems)} FAILED"
    duplicates = len(hooks.by_outcome.get(Outcome.DUPLICATE.value, []))
    Report(
        title="Webhooks benchmark",
        command_line=run.command_line,
        machine=machine(
            str(facts),
            f"gateway: billgraph serve --workers {GATEWAY_WORKERS}, rate limit off, pool 20 per "
            "worker, tracing off, BILLGRAPH_SANDBOX_WEBHOOK_SECRET set; load generator, gateway "
            "and PostgreSQL share the machine",
        ),
        tables=[figures_table(f), ratio_table(f), cpu_table(f)],
        summary=[
            f'expectation: "{EXPECTATION}": {verdict(f)}',
            f"request errors (no answer or not 2xx, warm-ups included): {request_errors}",
            f"answers and stored state: {checks}; {stored}",
            *(f"  {p}" for p in problems[:20]),
            f"ledger invariant: {invariant}",
            *([f"gateway log (tail):\n{gateway_log}"] if gateway_log else []),
        ],
        notes=[
            f'The expectation: "{EXPECTATION}". Measured: {verdict(f)}.',
            f"{len(sessions):,} sandbox checkout sessions (5.00-104.00 USD, round-robin over "
            f"the {CUSTOMERS:,} customers) opened in process through checkout.service.create "
            f"in {opened_in:.1f} s; {warm_count:,} of them paid in a warm-up of the webhook "
            f"path and {PROBES} in process to count statements (not measured; checked with "
            "the others).",
            "Webhooks: one `checkout.session.completed` event per session (the sandbox's shape, "
            "Billgraph-Signature HMAC-SHA256 signed when sent), in random order; "
            f"{DUPLICATE_SHARE:.0%} of the deliveries are duplicates (same event id and body, "
            f"half re-signed, half with the original's header) sent 1-{RETRY_WINDOW} deliveries "
            f"after their original ({hooks.duplicates_in_flight} of {duplicates:,} while it was "
            f"still in flight); {CLIENTS} keep-alive connections, closed loop, until every "
            f"delivery is answered ({hooks.seconds:.1f} s); top-ups/s counts `credited` answers.",
            "Ledger writes: bench.ledger's load (DEBIT 1, a unique idempotency key each, "
            f"customers at random), {run.seconds} s after {run.warmup:.0f} s of warm-up, on the "
            "same gateway before the webhooks.",
            "CPU: process-tree CPU time of the gateway and of PostgreSQL over each measurement, "
            "per request (per completed top-up: the CPU of every delivery, duplicates included, "
            "divided by the top-ups); cores busy in the last table ('other' is every process "
            f"outside the benchmark: it was {run.busy_before:.2f} cores in the second before "
            "the run started).",
            "PG commits: commit and abort records in the WAL over each measurement (pg_waldump): "
            "the transactions that wrote, whichever backend ran them (the gateway's posting or "
            "unit of work, its live-event NOTIFY after commit, autovacuum); a read-only "
            "transaction (the API-key lookup) writes none. SQL statements: one request of each "
            "kind on the app in process (httpx.ASGITransport), after one of its kind.",
            f"Request errors (no answer or not 2xx, warm-ups included): {request_errors}. "
            f"Checks of the answers and the stored state: {checks}: {stored}.",
            f"Ledger invariant after the run: {invariant.splitlines()[0]}",
        ],
    ).print()
    failed = request_errors or problems or not invariant_ok
    return 1 if failed else 0


def check_alive(gateway: Gateway, during: str) -> None:
    if not gateway.alive():
        raise RuntimeError(
            f"the gateway died during {during} (exit {gateway.process.returncode}):\n"
            f"{gateway.log_tail()}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = runner.options("bench.webhooks", __doc__.splitlines()[0], f"{QUICK_SESSIONS} sessions")
    parser.add_argument(
        "--sessions",
        type=int,
        default=None,
        help=f"checkout sessions paid through the webhook (default {SESSIONS:,}, "
        f"{QUICK_SESSIONS} with --quick), plus a tenth (at most 300) for the warm-up",
    )
    return runner.main(parser, benchmark, sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    sys.exit(main())
