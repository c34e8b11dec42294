"""Billing benchmark: `billgraph bill` over due sandbox subscriptions on PostgreSQL, next to
pgbench running the same SQL per subscription.

    .venv/bin/python -m bench.billing             # 1,000 and 10,000 subscriptions (~5 min)
    .venv/bin/python -m bench.billing --quick     # 200 and 2,000, 3 s of pgbench: a smoke test

It starts a throwaway PostgreSQL with durable commits, migrates it, and seeds by SQL
(bench.harness.subscriptions) sets of due subscriptions: customers with a saved sandbox card
(4242...) and a funded wallet, half with credit that pays the invoice in full, half with
credit that pays part of it (the rest charged to the card through the sandbox). Each set's
period ends on its own day, so `--now` one hour after it bills that set and no other. Then:

1. the SQL statements of one subscription's billing, each kind, counted in process
   (billing.run.bill with billgraph.db.trace.count_statements, after a warm-up run);
2. `billgraph bill --now ...` as a subprocess over 1,000, then 10,000 subscriptions:
   subscriptions billed per second, wall time, CPU seconds of the bill process (its rusage)
   and of PostgreSQL (its process tree), and peak memory (ru_maxrss; VmHWM sampled);
3. two `bill` processes at once over another 10,000;
4. pgbench running those statements (bench.harness.renewals) per subscription, at 1 and 2
   clients (as many as bill processes), on a set of its own in the same database.

After each run it checks what is stored (exactly one invoice per subscription period, PAID;
one wallet debit per invoice; one card charge per part-paid invoice and none otherwise;
gapless invoice numbers) and the ledger invariant. Progress goes to stderr; the results
(plain tables, then Markdown for bench/RESULTS.md) to stdout. Exits 1 if a bill process
failed or any check did not hold.
"""

import asyncio
import os
import re
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import text

from bench.harness import runner
from bench.harness.cpu import CpuMeter
from bench.harness.database import check_invariant, checkpoint, postgres_facts
from bench.harness.pgbench import PgbenchResult, run_pgbench
from bench.harness.processes import ROOT
from bench.harness.progress import progress
from bench.harness.renewals import FULL_STATEMENTS, PART_STATEMENTS, renewal_script
from bench.harness.report import Report, Table, fmt, machine
from bench.harness.subscriptions import (
    PART_CREDIT,
    PLAN_AMOUNT,
    SetCheck,
    SubscriptionSet,
    check_set,
    create_plan,
    seed_set,
)
from billgraph.billing.run import bill
from billgraph.checkout.providers import Providers
from billgraph.core.unit import unit_of_work
from billgraph.db.engine import Database, connect
from billgraph.db.migrate import upgrade
from billgraph.db.trace import count_statements
from billgraph.organizations import service as organizations
from billgraph.settings import Settings

SIZES, QUICK_SIZES = (1_000, 10_000), (200, 2_000)
PGBENCH_SET = 1_000  # subscriptions pgbench bills over and over (each stays due)
PGBENCH_FUNDS = 10**12
DAY = timedelta(days=1)
FIRST_DUE = datetime(2027, 1, 1, tzinfo=UTC)
POLL_SECONDS = 0.2
PROGRESS_SECONDS = 2.0
SUMMARY = re.compile(r"(\d+) subscriptions: (\d+) billed, (\d+) paid by credit, (\d+) charged")


@dataclass
class BillProcess:
    """One `billgraph bill` child: what it printed and what the kernel says it used."""

    pid: int
    started: float
    ended: float = 0.0
    exit_code: int | None = None
    cpu_seconds: float = 0.0  # user + system, from its rusage
    max_rss_kb: int = 0  # ru_maxrss
    hwm_kb: int = 0  # VmHWM, sampled while it ran
    summary: str = ""
    output: str = ""

    @property
    def peak_kb(self) -> int:
        """VmHWM, its own high-water mark since exec; ru_maxrss also counts the pages it
        shared with this process between the spawn and the exec."""
        return self.hwm_kb or self.max_rss_kb

    @property
    def subscriptions(self) -> int:
        """Subscriptions it stepped (one another run was charging counts for both)."""
        found = SUMMARY.search(self.summary)
        return int(found.group(1)) if found else 0

    @property
    def billed(self) -> int:
        """Invoices it issued."""
        found = SUMMARY.search(self.summary)
        return int(found.group(2)) if found else 0


@dataclass
class BillRun:
    name: str
    subscriptions: int
    processes: list[BillProcess]
    wall: float
    span: float  # first to last wallet debit of the set: billing without process start-up
    postgres_cpu: float
    rss_samples: list[tuple[int, int]] = field(default_factory=list)  # (billed, VmRSS kB)
    check: SetCheck | None = None
    invariant: str = ""

    @property
    def per_second(self) -> float:
        return self.subscriptions / self.wall

    @property
    def per_second_billing(self) -> float:
        return (self.subscriptions - 1) / self.span if self.span > 0 else float("nan")

    @property
    def bill_cpu(self) -> float:
        return sum(p.cpu_seconds for p in self.processes)

    @property
    def peak_mb(self) -> float:
        return max(p.peak_kb for p in self.processes) / 1024

    def rss_mb_at(self, share: float) -> float:
        """VmRSS of the first process when `share` of the set had been billed."""
        for billed, rss in self.rss_samples:
            if billed >= share * self.subscriptions:
                return rss / 1024
        return float("nan")

    @property
    def failed(self) -> bool:
        return (
            any(p.exit_code != 0 for p in self.processes)
            or sum(p.billed for p in self.processes) != self.subscriptions
            or self.check is None
            or not self.check.ok
            or not self.invariant.startswith("OK")
        )


def _status_kb(pid: int, key: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


async def _billed(database: Database, s: SubscriptionSet) -> int:
    async with database.engine.connect() as connection:
        count = await connection.execute(
            text(
                "SELECT count(*) FROM invoices WHERE organization_id = :org AND period_start = :d"
            ),
            {"org": s.organization_id, "d": s.due},
        )
        return int(count.scalar_one())


async def _span(database: Database, s: SubscriptionSet) -> float:
    async with database.engine.connect() as connection:
        first, last = (
            await connection.execute(
                text(
                    "SELECT min(e.created_at), max(e.created_at) FROM invoices i "
                    "JOIN ledger_entries e ON e.id = i.ledger_entry_id "
                    "WHERE i.organization_id = :org AND i.period_start = :d"
                ),
                {"org": s.organization_id, "d": s.due},
            )
        ).one()
    return (last - first).total_seconds() if first and last else float("nan")


def _spawn_bill(url: str, now: datetime, log: Path) -> BillProcess:
    executable = Path(sys.executable).parent / "billgraph"
    if not executable.exists():
        executable = ROOT / ".venv" / "bin" / "billgraph"
    command = [str(executable), "bill", "--now", now.isoformat(), "--database-url", url]
    env = {**os.environ, "BILLGRAPH_LOG_LEVEL": "WARNING"}
    with open(log, "wb") as out:
        # os.posix_spawn keeps the child ours to reap with wait4 (for its rusage).
        pid = os.posix_spawn(
            command[0],
            command,
            env,
            file_actions=[
                (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
                (os.POSIX_SPAWN_DUP2, out.fileno(), 1),
                (os.POSIX_SPAWN_DUP2, out.fileno(), 2),
            ],
        )
    progress(f"  started pid {pid}: {' '.join(command)}")
    return BillProcess(pid, time.monotonic())


async def run_bill(
    run: runner.Run, database: Database, s: SubscriptionSet, processes: int, label: str
) -> BillRun:
    """`processes` x `billgraph bill --now <s.billing_time>` at once; progress every 2 s."""
    meter = CpuMeter({"postgres": run.postgres_pids})
    await checkpoint(database)
    progress(f"{label}: billgraph bill over {s.count:,} due subscriptions, {processes} at once")
    before = meter.snapshot()
    started = time.monotonic()
    children = [
        _spawn_bill(run.server.url, s.billing_time, run.workdir / f"bill-{s.tag}-{i}.log")
        for i in range(processes)
    ]
    samples: list[tuple[int, int]] = []
    last_report = started
    while any(c.exit_code is None for c in children):
        await asyncio.sleep(POLL_SECONDS)
        for child in children:
            if child.exit_code is not None:
                continue
            child.hwm_kb = max(child.hwm_kb, _status_kb(child.pid, "VmHWM:"))
            pid, status, usage = os.wait4(child.pid, os.WNOHANG)
            if pid:
                child.ended = time.monotonic()
                child.exit_code = os.waitstatus_to_exitcode(status)
                child.cpu_seconds = usage.ru_utime + usage.ru_stime
                child.max_rss_kb = usage.ru_maxrss
        now = time.monotonic()
        if now - last_report >= PROGRESS_SECONDS or all(c.exit_code is not None for c in children):
            last_report = now
            billed = await _billed(database, s)
            rss = [_status_kb(c.pid, "VmRSS:") for c in children if c.exit_code is None]
            if children[0].exit_code is None and rss[0]:
                samples.append((billed, rss[0]))
            progress(
                f"  {billed:,}/{s.count:,} billed, {billed / (now - started):,.1f}/s, "
                f"bill RSS {', '.join(f'{kb / 1024:.1f}' for kb in rss) or '-'} MB"
            )
    wall = max(c.ended for c in children) - started
    after = meter.snapshot()
    for i, child in enumerate(children):
        child.output = (run.workdir / f"bill-{s.tag}-{i}.log").read_text(errors="replace")
        lines = [line for line in child.output.splitlines() if SUMMARY.search(line)]
        child.summary = lines[-1].removeprefix("billgraph: ") if lines else ""
        progress(
            f"  pid {child.pid}: exit {child.exit_code}, {child.ended - child.started:.1f} s, "
            f"CPU {child.cpu_seconds:.1f} s, ru_maxrss {child.max_rss_kb / 1024:.1f} MB, "
            f"VmHWM {child.hwm_kb / 1024:.1f} MB: {child.summary or child.output[-2000:]}"
        )
    result = BillRun(
        name=f"{s.count:,} subscriptions, {processes} process{'es' if processes > 1 else ''}",
        subscriptions=s.count,
        processes=children,
        wall=wall,
        span=await _span(database, s),
        postgres_cpu=after.roles["postgres"] - before.roles["postgres"],
        rss_samples=samples,
    )
    result.check = await check_set(database, s)
    _, result.invariant = await check_invariant(database)
    progress(f"  -> {result.per_second:,.1f} subscriptions/s over {wall:.1f} s")
    progress(f"  -> stored: {result.check.line()}")
    for problem in result.check.problems[:20]:
        progress(f"     {problem}")
    progress(f"  -> ledger invariant: {result.invariant.splitlines()[0]}")
    return result


async def statements_per_subscription(
    database: Database, url: str, probes: list[SubscriptionSet]
) -> dict[str, list[str]]:
    """The statements billing.run.bill sends for one subscription of each kind, in process:
    probes[0] warms the process up (the installation's key prefix, the pool), probes[1] is
    fully paid by credit (an even number), probes[2] part-paid. The run's last statement, the due query that
    finds nothing more, is the run's, not the subscription's."""
    providers = Providers(database, Settings(database_url=url, log_level="WARNING"))
    counted: dict[str, list[str]] = {}
    try:
        for kind, probe in zip(("warm-up", "full", "part"), probes, strict=True):
            with count_statements(database) as statements:
                summary = await bill(database, providers, probe.billing_time)
            if summary.subscriptions != 1:
                raise RuntimeError(f"the {kind} probe billed {summary.line()}")
            counted[kind] = [" ".join(s.split()) for s in statements[:-1]]
    finally:
        await providers.close()
    for kind in ("part", "full"):
        progress(f"step 1: one {kind}-paid subscription: {len(counted[kind])} SQL statements")
        for statement in counted[kind]:
            progress(f"step 1:   {statement[:110]}")
    return counted


def bill_table(runs: list[BillRun], ceilings: dict[int, PgbenchResult]) -> Table:
    rows = []
    for r in runs:
        ceiling = ceilings.get(len(r.processes))
        tps = ceiling.tps if ceiling else float("nan")
        rows.append(
            [
                r.name,
                fmt(r.wall, 1),
                fmt(r.per_second),
                fmt(r.per_second_billing),
                fmt(r.bill_cpu, 1),
                fmt(r.bill_cpu * 1000 / r.subscriptions, 2),
                fmt(r.postgres_cpu, 1),
                fmt(r.postgres_cpu * 1000 / r.subscriptions, 2),
                " + ".join(f"{p.peak_kb / 1024:.1f}" for p in r.processes),
                fmt(tps),
                fmt(r.per_second_billing / tps, 2) if ceiling else "—",
            ]
        )
    header = [
        "run",
        "wall s",
        "subscriptions/s (wall)",
        "subscriptions/s (billing)",
        "bill CPU s",
        "bill CPU ms each",
        "postgres CPU s",
        "postgres CPU ms each",
        "peak RSS MB",
        "pgbench tps (same clients)",
        "bill / pgbench",
    ]
    caption = (
        "`billgraph bill --now ...` over due sandbox subscriptions (half paid in full by wallet "
        "credit, half partly, the rest charged to the saved card):"
    )
    return Table(caption, header, rows)


def memory_table(runs: list[BillRun]) -> Table:
    rows = [
        [
            r.name,
            fmt(r.processes[0].max_rss_kb / 1024, 1),
            fmt(r.processes[0].hwm_kb / 1024, 1),
            fmt(r.rss_mb_at(0.1), 1),
            fmt(r.rss_mb_at(0.5), 1),
            fmt(r.rss_mb_at(0.9), 1),
        ]
        for r in runs
    ]
    header = [
        "run",
        "ru_maxrss MB",
        "VmHWM MB (sampled)",
        "VmRSS at 10% billed",
        "at 50%",
        "at 90%",
    ]
    return Table("Memory of the (first) bill process:", header, rows)


def pgbench_table(results: dict[int, PgbenchResult]) -> Table:
    rows = [
        [
            f"c={clients}",
            fmt(r.tps),
            fmt(r.latency_avg_ms, 2),
            fmt(r.p50_ms, 2),
            fmt(r.p99_ms, 2),
            str(r.failures),
            fmt(r.cpu["load"], 2),
            fmt(r.cpu["postgres"], 2),
            fmt(r.cpu["other"], 2),
        ]
        for clients, r in results.items()
    ]
    header = [
        "pgbench",
        "subscriptions/s (tps)",
        "avg ms",
        "p50 ms",
        "p99 ms",
        "failed",
        "cores: pgbench",
        "cores: postgres",
        "cores: other",
    ]
    return Table("pgbench, the same statements per subscription (the ceiling):", header, rows)


def statements_table(counted: dict[str, list[str]]) -> Table:
    rows = [
        [
            "fully paid by credit",
            str(len(counted["full"])),
            "1 (renewal)",
            str(FULL_STATEMENTS),
        ],
        [
            f"part-paid ({PART_CREDIT / 100:.2f} credit, {(PLAN_AMOUNT - PART_CREDIT) / 100:.2f} card)",
            str(len(counted["part"])),
            "2 (renewal, charge outcome) + 1 read",
            str(PART_STATEMENTS),
        ],
    ]
    header = ["subscription", "SQL statements (bill, in process)", "transactions", "pgbench script"]
    return Table("SQL per subscription:", header, rows)


async def benchmark(run: runner.Run) -> int:
    small, large = QUICK_SIZES if run.args.quick else SIZES
    database = connect(run.server.url)
    loads: list[str] = []
    try:
        progress("step 0: migrating, organizations and plans")
        await upgrade(database)
        facts = await postgres_facts(database)
        async with unit_of_work(database) as unit:
            org = (await organizations.create(unit, "Bench billing", "USD")).organization.id
            pg_org = (await organizations.create(unit, "Bench pgbench", "USD")).organization.id
        plan, pg_plan = await create_plan(database, org), await create_plan(database, pg_org)

        progress("step 0: seeding due subscriptions (SQL, in batches)")
        due = [FIRST_DUE + i * DAY for i in range(7)]
        probes = [
            await seed_set(database, org, plan, f"probe{i}", 1, due[i], first=i + 1)
            for i in range(3)
        ]
        one = await seed_set(database, org, plan, "small", small, due[3])
        ten = await seed_set(database, org, plan, "large", large, due[4])
        two = await seed_set(database, org, plan, "twice", large, due[5])
        pg_set = await seed_set(
            database,
            pg_org,
            pg_plan,
            "pgbench",
            PGBENCH_SET,
            due[6],
            full=PGBENCH_FUNDS,
            part=PGBENCH_FUNDS,
        )
        async with database.engine.connect() as connection:
            await connection.execute(text("ANALYZE"))

        counted = await statements_per_subscription(database, run.server.url, probes)
        runs = []
        for label, s, processes in (
            ("step 2", one, 1),
            ("step 3", ten, 1),
            ("step 4", two, 2),
        ):
            loads.append(_loadavg())
            runs.append(await run_bill(run, database, s, processes, label))

        ceilings: dict[int, PgbenchResult] = {}
        script = renewal_script(pg_set.billing_time + 5 * DAY)
        for clients in (1, 2):
            await checkpoint(database)
            loads.append(_loadavg())
            progress(
                f"step 5: pgbench, one subscription's billing per transaction, c={clients}, {run.seconds} s"
            )
            meter = CpuMeter({"postgres": run.postgres_pids})
            ceilings[clients] = run_pgbench(
                run.server, run.workdir, script, clients, run.seconds, f"bill-c{clients}", meter
            )
            ceilings[clients].log()
        invariant_ok, invariant = await check_invariant(database)
        progress(f"step 5: ledger invariant after pgbench: {invariant.splitlines()[0]}")
    finally:
        await database.dispose()

    statements_ok = (len(counted["full"]), len(counted["part"])) == (
        FULL_STATEMENTS,
        PART_STATEMENTS,
    )
    failed = (
        any(r.failed for r in runs)
        or not invariant_ok
        or any(c.failures for c in ceilings.values())
        or not statements_ok
    )
    one_run, ten_run, two_run = runs
    memory_growth = ten_run.peak_mb - one_run.peak_mb
    adds = two_run.per_second_billing / ten_run.per_second_billing
    summary = [
        *(f"{r.name}: stored {r.check.line() if r.check else '—'}" for r in runs),
        *(f"  {p}" for r in runs if r.check for p in r.check.problems[:20]),
        *(
            f"{r.name}: pid {p.pid} exit {p.exit_code}: {p.summary or p.output[-1000:]}"
            for r in runs
            for p in r.processes
        ),
        f"ledger invariant after each run: {', '.join(r.invariant.split(':')[0] for r in runs)}; "
        f"after pgbench: {invariant.splitlines()[0]}",
        f"statements per subscription: full {len(counted['full'])} (pgbench script "
        f"{FULL_STATEMENTS}), part {len(counted['part'])} (pgbench script {PART_STATEMENTS})"
        + ("" if statements_ok else ": DIFFERENT, update bench/harness/renewals.py"),
        f"load average (1 min) before each measurement: {', '.join(loads)}",
        "RESULT: " + ("FAILED" if failed else "all checks hold"),
    ]
    Report(
        title="Billing run",
        command_line=run.command_line,
        machine=machine(
            str(facts),
            "billgraph bill as a subprocess (BILLGRAPH_LOG_LEVEL=WARNING), pgbench and "
            "PostgreSQL share the machine",
        ),
        tables=[
            bill_table(runs, ceilings),
            memory_table(runs),
            pgbench_table(ceilings),
            statements_table(counted),
        ],
        summary=summary,
        notes=[
            f"Sets of {small:,} and {large:,} due subscriptions ({PLAN_AMOUNT / 100:.2f} USD a "
            f"month), seeded by SQL; even-numbered customers' wallets pay the invoice in full, "
            f"odd ones' {PART_CREDIT / 100:.2f} of it, the rest charged to their saved sandbox "
            "card 4242 4242 4242 4242. One organization: invoice numbers are allocated "
            "gaplessly from its one counter row.",
            "subscriptions/s (wall): the set over the bill process's wall time, start-up and "
            "migration check included; (billing): from the set's first wallet debit to its last. "
            "CPU: the bill process's rusage (user + system), PostgreSQL's process tree over the "
            "run. Peak RSS: each process's VmHWM (its high-water mark since exec), read every "
            f"{POLL_SECONDS} s; ru_maxrss, in the memory table, also counts the benchmark's "
            "pages the child shared between spawn and exec.",
            f"Memory from {small:,} to {large:,} subscriptions: peak {one_run.peak_mb:.1f} → "
            f"{ten_run.peak_mb:.1f} MB ({memory_growth:+.1f} MB).",
            f"Two processes at once over {large:,}: "
            + " + ".join(f"{p.billed:,}" for p in two_run.processes)
            + f" invoices issued, {two_run.per_second_billing:,.1f} subscriptions/s against one "
            f"process's {ten_run.per_second_billing:,.1f}/s ({adds:.2f}x); "
            f"{sum(p.subscriptions for p in two_run.processes) - large} subscriptions were "
            "stepped by both (one run found the other's PENDING card charge, asked the sandbox "
            "with the same idempotency key and found the outcome recorded: one charge).",
            "pgbench: bench/harness/renewals.py, the statements one subscription's billing runs "
            "(captured in process with billgraph.db.trace.count_statements), in the same "
            "transactions, with the same locks (the due query's FOR UPDATE SKIP LOCKED, the "
            "invoice counter, the wallet); -M prepared, "
            f"{run.seconds} s per client count, on {PGBENCH_SET:,} subscriptions of another "
            "organization that stay due (their period moves by a second).",
            "Checks after each run: exactly one invoice per subscription period, PAID; one "
            "wallet debit per invoice, of the credit it applied; one card charge per part-paid "
            "invoice, none for the others; invoice numbers 1..n without gaps; the ledger "
            f"invariant. {'All hold.' if not failed else 'FAILED: see the summary.'}",
            f"The machine has 2 cores shared with other work: these figures are floors. Load "
            f"average (1 min) before each measurement: {', '.join(loads)}; "
            f"{run.busy_before:.2f} cores were busy in the second before the run.",
        ],
    ).print()
    return 1 if failed else 0


def _loadavg() -> str:
    with open("/proc/loadavg") as f:
        return f.read().split()[0]


def main(argv: list[str] | None = None) -> int:
    parser = runner.options(
        "bench.billing",
        __doc__.splitlines()[0],
        f"{QUICK_SIZES[0]} and {QUICK_SIZES[1]:,} subscriptions",
    )
    return runner.main(parser, benchmark, sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    sys.exit(main())
