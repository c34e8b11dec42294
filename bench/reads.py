"""Read benchmark: the gateway's two hot reads over HTTP, next to the ceiling for a Python server.

    .venv/bin/python -m bench.reads             # full run, 15 s per measurement (~5 min)
    .venv/bin/python -m bench.reads --quick     # 3 s per measurement, a smoke test
    .venv/bin/python -m bench.reads --seconds 10

It starts a throwaway PostgreSQL with durable commits, migrates and seeds it (bench.harness.seed:
1,000 customers with a funded USD wallet; then bench.harness.history: 24 more entries on each
of those wallets by SQL, so every read returns full pages). Then two servers run as
subprocesses, side by side, each with `--workers 2`:

- billgraph: `billgraph serve --workers 2` (rate limit off, tracing off);
- ceiling: bench.ceiling under `uvicorn --factory --workers 2`, a minimal Starlette + asyncpg
  app running the same SQL statements as the gateway and answering the same bytes (checked
  before the load: identical answers for a sample of requests), with no GraphQL and no ORM.

For each read, at each client count, billgraph and then the ceiling take the same closed-loop
load (bench.harness.reading: keep-alive connections, each sending its next request, a random
wallet or a random page, when the last one answered):

1. `wallet(id:) { id balance ledgerEntries(first: 20) { ... } }` at 1, 16 and 64 clients;
2. `customers(first: 10, after:) { wallets { ledgerEntries(first: 5) { ... } } }` at 1, 8, 16
   and 64 clients;

and reports req/s, p50/p99 latency, CPU milliseconds per request of the server and of
PostgreSQL (each role's process tree, bench.harness.cpu), the ratio billgraph / ceiling, and
SQL statements per request (the gateway's counted in-process with billgraph.db.trace, and
compared with the ceiling's), and the gateway's Python calls per request (in-process,
cProfile): a figure that does not move with the machine's speed.

Progress goes to stderr; the results (a plain table, then the same as Markdown for
bench/RESULTS.md) go to stdout. Exits 1 if a request failed, the two servers answered
differently or the ledger invariant does not hold.
"""

import sys
from dataclasses import dataclass, field

from bench import ceiling
from bench.harness import runner
from bench.harness.cpu import CpuMeter
from bench.harness.database import check_invariant, checkpoint, postgres_facts
from bench.harness.history import add_history
from bench.harness.processes import Gateway, start_gateway
from bench.harness.progress import progress
from bench.harness.reading import Read, ReadResult, answers, customers_read, read_loop, wallet_read
from bench.harness.report import Report, Table, fmt, machine
from bench.harness.seed import seed
from bench.harness.servers import start_ceiling, worker_pids
from bench.harness.statements import Statements, count_reads, normalized
from bench.harness.tracing import tracing_env
from billgraph.db.engine import connect

WORKERS = 2
HISTORY = 24  # entries added to each wallet: 25 on most, 35 on the first 100
CLIENTS = {"wallet": (1, 16, 64), "customers": (1, 8, 16, 64)}
SERVERS = ("billgraph", "ceiling")
PARITY_REQUESTS = 8  # per read, compared byte for byte before the load


@dataclass
class Case:
    read: Read
    clients: int
    results: dict[str, ReadResult] = field(default_factory=dict)  # server -> result

    @property
    def name(self) -> str:
        return f"{self.read.name}, c={self.clients}"


@dataclass(frozen=True)
class SqlCheck:
    read: str
    billgraph: Statements
    ceiling: list[str]

    @property
    def same(self) -> bool:
        return [normalized(s) for s in self.billgraph.last] == [normalized(s) for s in self.ceiling]


def reads_table(cases: list[Case]) -> Table:
    rows = []
    for case in cases:
        for server in SERVERS:
            r = case.results.get(server)
            if r is None:
                continue
            rows.append(
                [
                    case.name,
                    server,
                    fmt(r.requests_per_second),
                    fmt(r.p50_ms, 2),
                    fmt(r.p99_ms, 2),
                    str(r.errors),
                    fmt(r.cpu_ms(server), 2),
                    fmt(r.cpu_ms("postgres"), 2),
                    fmt(r.cpu[server], 2),
                    " / ".join(f"{w:.2f}" for w in r.workers) or "—",
                    fmt(r.cpu["postgres"], 2),
                    fmt(r.cpu["load"], 2),
                    fmt(r.cpu["other"], 2),
                ]
            )
    header = [
        "read, clients",
        "server",
        "req/s",
        "p50 ms",
        "p99 ms",
        "errors",
        "server CPU ms/req",
        "postgres CPU ms/req",
        "server cores",
        "per worker",
        "postgres cores",
        "client cores",
        "other cores",
    ]
    return Table("Reads over HTTP, billgraph and the ceiling under the same load:", header, rows, 2)


def ratio_table(cases: list[Case]) -> Table:
    rows = []
    for case in cases:
        b, c = case.results.get("billgraph"), case.results.get("ceiling")
        if b is None or c is None:
            continue
        rows.append(
            [
                case.name,
                fmt(b.requests_per_second),
                fmt(c.requests_per_second),
                f"{b.requests_per_second / c.requests_per_second:.2f}",
                fmt(b.cpu_ms("billgraph"), 2),
                fmt(c.cpu_ms("ceiling"), 2),
                f"{b.cpu_ms('billgraph') / c.cpu_ms('ceiling'):.1f}",
                fmt(b.cpu_ms("postgres"), 2),
                fmt(c.cpu_ms("postgres"), 2),
            ]
        )
    header = [
        "read, clients",
        "billgraph req/s",
        "ceiling req/s",
        "req/s billgraph/ceiling",
        "billgraph CPU ms/req",
        "ceiling CPU ms/req",
        "CPU billgraph/ceiling",
        "postgres ms/req (billgraph)",
        "postgres ms/req (ceiling)",
    ]
    return Table(
        "billgraph / ceiling (req/s: the figure to raise; CPU per request: to lower):", header, rows
    )


def imbalanced(cases: list[Case], share: float = 0.75) -> list[str]:
    """The measurements with 2 clients or more where one worker did more than `share` of
    its server's work: the connections landed unevenly (each stays on the worker that
    accepted it)."""
    found = []
    for case in cases:
        for server, r in case.results.items():
            total = sum(r.workers)
            if case.clients > 1 and total > 0 and max(r.workers) / total > share:
                found.append(
                    f"{server} {case.name} ({' / '.join(f'{w:.2f}' for w in r.workers)} cores)"
                )
    return found


def statements_table(checks: list[SqlCheck]) -> Table:
    rows = [
        [
            c.read,
            f"{c.billgraph.per_request:g}",
            str(len(c.ceiling)),
            "yes" if c.same else "NO (see the progress lines)",
            f"{c.billgraph.calls:,.0f}",
        ]
        for c in checks
    ]
    return Table(
        "SQL statements per request, and billgraph's Python calls per request (in-process, "
        "cProfile: the same from run to run, where CPU time is not):",
        ["read", "billgraph (in-process)", "ceiling", "same SQL", "billgraph calls"],
        rows,
    )


async def benchmark(run: runner.Run) -> int:
    database = connect(run.server.url)
    servers: dict[str, Gateway] = {}
    try:
        seeded = await seed(database)
        await add_history(database, seeded, HISTORY)
        facts = await postgres_facts(database)
        reads = [wallet_read(seeded), customers_read(seeded)]

        progress(f"step 2: SQL statements per read, in-process ({len(reads)} reads)")
        counted = await count_reads(database, run.server.url, seeded.api_key, reads)
        checks = [SqlCheck(r.name, counted[r.name], ceiling.statements(r.operation)) for r in reads]
        for check in checks:
            progress(
                f"step 2: {check.read}: {check.billgraph.per_request:g} statements and "
                f"{check.billgraph.calls:,.0f} Python calls per request; "
                f"the ceiling's SQL is {'the same' if check.same else 'DIFFERENT'}"
            )
            for statement in check.billgraph.last:
                progress(f"step 2:   {normalized(statement)[:140]}")
        await checkpoint(database)

        servers["billgraph"] = await start_gateway(
            run.server.url, run.workdir, workers=WORKERS, env=tracing_env(None)
        )
        servers["ceiling"] = await start_ceiling(run.server.url, run.workdir, workers=WORKERS)
        meter = CpuMeter({"postgres": run.postgres_pids})
        split: dict[str, CpuMeter] = {}
        for name, server in servers.items():
            meter.roles[name] = [server.process.pid]
            pids = await worker_pids(server, WORKERS)
            split[name] = CpuMeter({f"{name} worker {pid}": [pid] for pid in pids})
            progress(f"step 0: {name} workers: {pids}")

        progress(f"step 3: the servers' answers compared ({PARITY_REQUESTS} requests per read)")
        mismatches = []
        for read in reads:
            got = {
                name: await answers(server, seeded.api_key, read, PARITY_REQUESTS)
                for name, server in servers.items()
            }
            differ = [
                i
                for i, (a, b) in enumerate(zip(got["billgraph"], got["ceiling"], strict=True))
                if a != b
            ]
            if differ:
                i = differ[0]
                mismatches.append(read.name)
                progress(
                    f"step 3: {read.name}: {len(differ)} of {PARITY_REQUESTS} answers DIFFER, e.g.\n"
                    f"  billgraph: {got['billgraph'][i][:400]}\n  ceiling:   {got['ceiling'][i][:400]}"
                )
            else:
                size = len(got["billgraph"][0])
                progress(f"step 3: {read.name}: identical answers ({size:,} bytes each)")

        warm = 2 * run.warmup
        progress(f"step 3: warming both servers' workers up: each read at 16 clients, {warm:.0f} s")
        for read in reads:
            for name, server in servers.items():
                warmed = await read_loop(
                    server, seeded.api_key, read, 16, warm, 0, f"warm-{name}", meter
                )
                if warmed.errors:
                    progress(f"  {name}, {read.name}: {warmed.errors} errors while warming up")

        cases = [Case(read, clients) for read in reads for clients in CLIENTS[read.name]]
        for case in cases:
            for name, server in servers.items():
                progress(
                    f"step 4: {name}, {case.name}: {run.warmup:.0f} s warm-up + {run.seconds} s"
                )
                result = await read_loop(
                    server,
                    seeded.api_key,
                    case.read,
                    case.clients,
                    run.seconds,
                    run.warmup,
                    f"{name}-{case.read.name}-c{case.clients}",
                    meter,
                    split[name],
                )
                result.log(name)
                case.results[name] = result
                if not server.alive():
                    raise RuntimeError(
                        f"{name} died during {case.name} (exit {server.process.returncode}):\n"
                        f"{server.log_tail()}"
                    )

        progress("step 5: checking the ledger invariant")
        invariant_ok, invariant = await check_invariant(database)
        progress(f"step 5: {invariant.splitlines()[0]}")
        logs = {
            name: server.log_tail(20)
            for name, server in servers.items()
            if server.log_path.stat().st_size
        }
    finally:
        for name, server in servers.items():
            progress(f"stopping {name}")
            progress(f"{name} exited with {server.stop()}")
        await database.dispose()

    errors = sum(r.errors for c in cases for r in c.results.values())
    uneven = imbalanced(cases)
    balance = (
        "one worker did more than 3/4 of its server's work in: " + "; ".join(uneven)
        if uneven
        else "the connections were spread evenly enough over the workers (neither did more "
        "than 3/4 of its server's work) in every case with 2 clients or more"
    )
    Report(
        title="Read benchmark",
        command_line=run.command_line,
        machine=machine(
            str(facts),
            f"billgraph serve --workers {WORKERS} (rate limit off, pool 20 per worker, tracing "
            f"off) and the ceiling (bench.ceiling, uvicorn --workers {WORKERS}, asyncpg pool 20 "
            "per worker); load generator, servers and PostgreSQL share the machine",
        ),
        tables=[reads_table(cases), ratio_table(cases), statements_table(checks)],
        summary=[
            f"request errors: {errors}; answers "
            + (f"DIFFER for {', '.join(mismatches)}" if mismatches else "identical")
            + f" ({PARITY_REQUESTS} compared per read)",
            f"ledger invariant: {invariant}",
            f"workers: {balance}",
            *[f"{name} log (tail):\n{log}" for name, log in logs.items()],
        ],
        notes=[
            f"{run.seconds} s per measurement after {run.warmup:.0f} s of warm-up, billgraph then "
            "the ceiling for each case; closed loop over keep-alive connections (bench.harness."
            "http.RawConnection), each request a random one of the 1,000 wallets or of the "
            f"{len(reads[1].bodies):,} pages of 10 customers that follow a customer's cursor.",
            f"Data: 1,000 customers, one USD wallet each with {HISTORY + 1} entries or more "
            "(the first 100: 35); every answer is a full page (20 entries; 10 customers x 5 "
            "entries), checked on every request.",
            "CPU ms/req: CPU time of the role's process tree (the server's workers; "
            "PostgreSQL's backends) over the measurement ÷ requests answered; 'per worker' is "
            "cores busy in each of the server's two workers; 'other' is every process outside "
            f"the benchmark (it was {run.busy_before:.2f} cores in the second before the run).",
            "Ceiling: the gateway's own SQL statements (the API key's lookup first, as the "
            "gateway does; compared with the gateway's on every run: the 'same SQL' column) "
            "on one pooled asyncpg connection per request, the answer built from the rows "
            "and written with json.dumps as Starlette does; its answers were compared byte for "
            "byte with the gateway's. No GraphQL, no ORM, no middleware: what a Python server "
            "needs at least for these reads.",
            "Workers: a keep-alive connection stays on the worker that accepted it, so the "
            f"split between the two can be uneven; {balance}.",
            f"Request errors: {errors}; answers "
            + (f"DIFFER for {', '.join(mismatches)}." if mismatches else "identical."),
            f"Ledger invariant after the run: {invariant.splitlines()[0]}",
        ],
    ).print()
    return 1 if errors or mismatches or not invariant_ok else 0


def main(argv: list[str] | None = None) -> int:
    parser = runner.options("bench.reads", __doc__.splitlines()[0], "the same cases")
    return runner.main(parser, benchmark, sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    sys.exit(main())
