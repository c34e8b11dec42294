"""Ledger benchmark: the real gateway over HTTP against pgbench on the same PostgreSQL.

    .venv/bin/python -m bench.ledger             # full run, 15 s per measurement (~3 min)
    .venv/bin/python -m bench.ledger --quick     # 3 s per measurement, a smoke test
    .venv/bin/python -m bench.ledger --seconds 10

It starts a throwaway PostgreSQL with durable commits (fsync and synchronous_commit on),
migrates it and seeds it (bench.harness.seed: 1,000 customers with a funded USD wallet, the
first 100 with history, one hot wallet). Then `billgraph serve --workers 2` runs as a
subprocess, and the script measures:

1. the dashboard query (customers -> wallets -> ledgerEntries): SQL statements per request,
   counted in-process (the app on httpx.ASGITransport, same database), for 10 and 100
   customers, and its median latency over HTTP against the real server; and a posting's SQL
   statements and Python calls, in-process (bench.harness.statements);
2. createLedgerEntry (DEBIT 1, unique idempotency keys) over HTTP at 1 and 32 concurrent
   clients, on one hot wallet and spread over the 1,000 wallets: writes/s, p50, p99, errors;
3. the same load on the ceiling for a Python server (bench.ceiling: the same request and
   posting statement answered by Starlette + asyncpg, no GraphQL) for the same cases;
4. pgbench running the service's single-statement transaction (a data-modifying CTE) for the
   same cases, and a naive 4-statement transaction on the hot wallet at 32 clients;
5. the ledger invariant on the resulting database.

Progress goes to stderr; the results (a plain table, then the same as Markdown for
bench/RESULTS.md) go to stdout. Exits 1 if a write failed, the statement counts differ or the
invariant does not hold.
"""

import asyncio
import math
import os
import sys
from contextlib import ExitStack
from dataclasses import dataclass

from bench.harness import runner
from bench.harness.cpu import CpuMeter
from bench.harness.database import check_invariant, checkpoint, postgres_facts
from bench.harness.load import HttpResult, closed_loop
from bench.harness.pgbench import JOBS, PgbenchResult, run_pgbench, script
from bench.harness.postings import ENTRY_COLUMNS, posting, wallet_choices
from bench.harness.processes import Gateway, start_gateway
from bench.harness.progress import progress
from bench.harness.reading import debits
from bench.harness.report import Report, Table, fmt, machine
from bench.harness.seed import SHAPES, case_name, seed
from bench.harness.servers import start_ceiling
from bench.harness.statements import count_reads
from bench.harness.tracing import OtlpSink, otlp_sink, tracing_env
from bench.ledger_dashboard import dashboard
from billgraph.db.engine import Database, connect

GATEWAY_WORKERS = 2
CONCURRENCIES = (1, 32)
NAIVE_CLIENTS = 32


@dataclass
class Case:
    name: str
    wallets: str  # "hot" or "random"
    clients: int
    http: HttpResult | None = None
    ceiling: HttpResult | None = None  # the same load on bench.ceiling (its "gateway" CPU)
    pgbench: PgbenchResult | None = None


def naive_posting(org: int) -> str:
    """The conversational posting: lock, check, update, insert, commit (4 round trips + BEGIN)."""
    return f"""BEGIN;
SELECT balance, version FROM wallets WHERE id = :wid FOR UPDATE \\gset
\\set nb :balance - 1
\\set nv :version + 1
UPDATE wallets SET balance = balance - 1, version = version + 1, updated_at = now() WHERE id = :wid;
INSERT INTO ledger_entries ({ENTRY_COLUMNS})
VALUES ({org}, :wid, :nv, 'DEBIT', 1, 'USD', :nb, NULL,
        'pgbn-' || :run || '-' || :client_id || '-' || :n, 'x', now());
COMMIT;
"""


def _ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}" if a and b and not math.isnan(b) else "—"


def writes_table(cases: list[Case]) -> Table:
    rows = []
    for case in cases:
        h, p, c = case.http, case.pgbench, case.ceiling
        http = h.writes_per_second if h else None
        ceiling = c.writes_per_second if c else None
        pgbench = p.tps if p else None
        rows.append(
            [
                case.name,
                *(
                    [fmt(h.writes_per_second), fmt(h.p50_ms, 2), fmt(h.p99_ms, 2), str(h.errors)]
                    if h
                    else ["—"] * 4
                ),
                *(
                    [fmt(p.tps), fmt(p.latency_avg_ms, 2), fmt(p.p50_ms, 2), fmt(p.p99_ms, 2)]
                    if p
                    else ["—"] * 4
                ),
                _ratio(http, pgbench),
                fmt(ceiling) if c else "—",
                _ratio(http, ceiling),
                _ratio(ceiling, pgbench),
            ]
        )
    header = [
        "case",
        "HTTP writes/s",
        "HTTP p50 ms",
        "HTTP p99 ms",
        "HTTP errors",
        "pgbench tps",
        "pgbench avg ms",
        "pgbench p50 ms",
        "pgbench p99 ms",
        "HTTP/pgbench",
        "ceiling writes/s",
        "HTTP/ceiling",
        "ceiling/pgbench",
    ]
    caption = (
        "Ledger writes (`createLedgerEntry` DEBIT 1) over HTTP against pgbench running the same "
        "SQL, and against the ceiling for a Python server (bench.ceiling: the same request and "
        "statement on Starlette + asyncpg, no GraphQL):"
    )
    return Table(caption, header, rows)


def cpu_table(cases: list[Case]) -> Table:
    header = [
        "case",
        "HTTP: bench client",
        "HTTP: gateway",
        "HTTP: postgres",
        "HTTP: other",
        "ceiling: server",
        "ceiling: postgres",
        "pgbench: pgbench",
        "pgbench: postgres",
        "pgbench: other",
    ]
    rows = []
    for case in cases:
        h, p = case.http, case.pgbench
        rows.append(
            [
                case.name,
                *(
                    [fmt(h.cpu[r], 2) for r in ("load", "gateway", "postgres", "other")]
                    if h
                    else ["—"] * 4
                ),
                *(
                    [fmt(c.cpu[r], 2) for r in ("gateway", "postgres")]
                    if (c := case.ceiling)
                    else ["—"] * 2
                ),
                *([fmt(p.cpu[r], 2) for r in ("load", "postgres", "other")] if p else ["—"] * 3),
            ]
        )
    return Table("Cores busy during each measurement:", header, rows)


async def benchmark(run: runner.Run) -> int:
    runs = run.args.dashboard_runs
    if runs is None:
        runs = 10 if run.args.quick else 30
    database = connect(run.server.url)
    meter = CpuMeter({"postgres": run.postgres_pids})
    with ExitStack() as stack:
        sink = stack.enter_context(otlp_sink()) if run.args.tracing else None
        return await _measure(run, runs, database, meter, sink)


async def _measure(
    run: runner.Run, runs: int, database: Database, meter: CpuMeter, sink: OtlpSink | None
) -> int:
    gateway: Gateway | None = None
    ceiling: Gateway | None = None
    try:
        seeded = await seed(database)
        facts = await postgres_facts(database)
        gateway = await start_gateway(
            run.server.url, run.workdir, workers=GATEWAY_WORKERS, env=tracing_env(sink)
        )
        meter.roles["gateway"] = [gateway.process.pid]
        ceiling = await start_ceiling(run.server.url, run.workdir, workers=GATEWAY_WORKERS)
        # The same roles, the ceiling's server in the gateway's place.
        ceiling_meter = CpuMeter({**meter.roles, "gateway": [ceiling.process.pid]})

        progress(f"step 2: dashboard query, first=10 and first=100 ({runs} timed runs each)")
        board = await dashboard(database, run.server.url, seeded, gateway, runs)
        counted = await count_reads(database, run.server.url, seeded.api_key, [debits(seeded)])
        per_posting = counted["debits-random"]
        progress(
            f"step 2: a posting in-process: {per_posting.per_request:g} SQL statements, "
            f"{per_posting.calls:,.0f} Python calls"
        )

        choices = wallet_choices(seeded)
        org = seeded.organization_id
        cases = [Case(case_name(w, c), w, c) for w in SHAPES for c in CONCURRENCIES]
        for case in cases:
            tag = f"{case.wallets}-c{case.clients}"
            await checkpoint(database)
            progress(
                f"step 3: HTTP createLedgerEntry, {case.name}: {run.warmup:.0f} s warm-up + "
                f"{run.seconds} s"
            )
            case.http = await closed_loop(
                gateway,
                seeded.api_key,
                seeded.debited(case.wallets),
                case.clients,
                run.seconds,
                run.warmup,
                tag,
                meter,
            )
            case.http.log()
            if not gateway.alive():
                raise RuntimeError(
                    f"the gateway died during {case.name} (exit {gateway.process.returncode}):\n"
                    f"{gateway.log_tail()}"
                )

            await checkpoint(database)
            progress(
                f"step 3: the same on the ceiling (bench.ceiling), {case.name}: "
                f"{run.warmup:.0f} s warm-up + {run.seconds} s"
            )
            case.ceiling = await closed_loop(
                ceiling,
                seeded.api_key,
                seeded.debited(case.wallets),
                case.clients,
                run.seconds,
                run.warmup,
                f"ceiling-{tag}",
                ceiling_meter,
            )
            case.ceiling.log()

            await checkpoint(database)
            progress(f"step 4: pgbench single-statement CTE, {case.name}: {run.seconds} s")
            case.pgbench = await asyncio.to_thread(
                run_pgbench,
                run.server,
                run.workdir,
                script(choices[case.wallets], posting(org)),
                case.clients,
                run.seconds,
                f"cte-{tag}",
                meter,
            )
            case.pgbench.log()

        naive = Case(
            f"naive 4-statement, hot wallet, c={NAIVE_CLIENTS} (pgbench only)", "hot", NAIVE_CLIENTS
        )
        await checkpoint(database)
        progress(
            "step 4: pgbench naive BEGIN/SELECT FOR UPDATE/UPDATE/INSERT/COMMIT, hot wallet, "
            f"c={NAIVE_CLIENTS}: {run.seconds} s"
        )
        naive.pgbench = await asyncio.to_thread(
            run_pgbench,
            run.server,
            run.workdir,
            script(choices["hot"], naive_posting(org)),
            NAIVE_CLIENTS,
            run.seconds,
            f"naive-hot-c{NAIVE_CLIENTS}",
            meter,
        )
        naive.pgbench.log()
        cases.append(naive)

        progress("step 6: checking the ledger invariant")
        invariant_ok, invariant = await check_invariant(database)
        progress(f"step 6: {invariant.splitlines()[0]}")
        gateway_log = gateway.log_tail(20) if gateway.log_path.stat().st_size else ""
    finally:
        if gateway is not None:
            progress("stopping the gateway")
            progress(f"gateway exited with {gateway.stop()}")
        if ceiling is not None:
            progress(f"ceiling exited with {ceiling.stop()}")
        await database.dispose()

    http_errors = sum(c.http.errors for c in cases if c.http)
    http_errors += sum(c.ceiling.errors for c in cases if c.ceiling)
    pgbench_failures = sum(c.pgbench.failures for c in cases if c.pgbench)
    Report(
        title="Ledger benchmark",
        command_line=run.command_line,
        machine=machine(
            str(facts),
            f"gateway: billgraph serve --workers {GATEWAY_WORKERS}, rate limit off, pool 20 per "
            "worker, tracing "
            + (
                f"on (OTLP/HTTP to a local sink: {sink.exports:,} exports received)"
                if sink is not None
                else "off"
            )
            + "; load generator, gateway and PostgreSQL share the machine",
        ),
        tables=[board.table(), writes_table(cases), cpu_table(cases)],
        summary=[
            f"dashboard: {runs} timed runs per N; SQL statements "
            f"{'equal' if board.statements_equal else 'NOT EQUAL'} for 10 and 100 customers",
            f"HTTP write errors: {http_errors}; pgbench failed/aborted: {pgbench_failures}",
            f"a posting (createLedgerEntry, in-process): {per_posting.per_request:g} SQL statements, "
            f"{per_posting.calls:,.0f} Python calls (cProfile's count, the same from run to run)",
            f"ledger invariant: {invariant}",
            *([f"gateway log (tail):\n{gateway_log}"] if gateway_log else []),
        ],
        notes=[
            f"{run.seconds} s per measurement (HTTP after {run.warmup:.0f} s of warm-up), DEBIT "
            "of 1 with a unique idempotency key per write.",
            "HTTP: a lean asyncio HTTP/1.1 client (bench.harness.http.RawConnection), one "
            "keep-alive connection per client, closed loop; writes/s counts successes; any "
            "non-success is an error.",
            f"pgbench: -M prepared -j {JOBS} -n, the service's single-statement shape (WITH moved "
            "AS (UPDATE ...) INSERT ...); p50/p99 from its per-transaction log (-l).",
            "CPU: average cores busy per role during each measurement (the machine has "
            f"{os.cpu_count()}); 'other' is every process outside the benchmark (it was "
            f"{run.busy_before:.2f} cores in the second before the run started).",
            f"HTTP write errors: {http_errors}; pgbench failed/aborted transactions: "
            f"{pgbench_failures}.",
            f"Ledger invariant after the run: {invariant.splitlines()[0]}",
        ],
    ).print()
    failed = http_errors or pgbench_failures or not board.statements_equal or not invariant_ok
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = runner.options("bench.ledger", __doc__.splitlines()[0], "10 dashboard runs")
    parser.add_argument(
        "--dashboard-runs",
        type=int,
        default=None,
        help="timed dashboard requests per page size (default 30, 10 with --quick)",
    )
    parser.add_argument(
        "--tracing",
        action="store_true",
        help="gateways export OpenTelemetry traces to a local OTLP sink (default: tracing off)",
    )
    return runner.main(parser, benchmark, sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    sys.exit(main())
