"""Profile: where one gateway worker's time goes under a read, by package (py-spy).

    .venv/bin/python -m bench.profile                     # wallet read, 16 clients, 15 s of samples
    .venv/bin/python -m bench.profile --quick             # 3 s of samples, a smoke test
    .venv/bin/python -m bench.profile --read customers --clients 8
    .venv/bin/python -m bench.profile --server ceiling    # the same for bench.ceiling

On the database of bench.reads (same seed, same history), it starts `billgraph serve
--workers 2` (or the ceiling), warms it up, and puts the read's closed-loop load on it; once
the load runs, it picks the busier of the two workers and records it with `py-spy record` for
--seconds (100 samples a second by default, idle samples left out: what the worker spent
on a core). The stacks are then summarised by package, by the frame a sample was taken in
(self time; time in C, a Cython extension or a builtin counts for the Python frame that
called it: asyncpg's protocol for asyncpg, the JSON encoder for json), by the packages on the
stack (inclusive), by module and by function.

py-spy is not one of the project's dependencies: install it outside, for example with
`python3 -m pip install --target /tmp/pyspy py-spy` (`make bench-profile` does so when it is
missing). It is looked for in --py-spy, $PY_SPY, the PATH and /tmp/pyspy/bin. It attaches with
ptrace, which needs root or CAP_SYS_PTRACE (or kernel.yama.ptrace_scope 0).

Progress goes to stderr; the summary (plain, then Markdown for bench/RESULTS.md) to stdout.
Exits 1 if py-spy could not record or a request failed.
"""

import asyncio
import sys
from pathlib import Path

from bench.harness import pyspy, runner
from bench.harness.cpu import CpuMeter
from bench.harness.database import postgres_facts
from bench.harness.history import add_history
from bench.harness.processes import Gateway, start_gateway
from bench.harness.progress import progress
from bench.harness.reading import ReadResult, customers_read, read_loop, wallet_read
from bench.harness.report import Report, Table, machine
from bench.harness.seed import seed
from bench.harness.servers import start_ceiling, worker_pids
from bench.harness.tracing import tracing_env
from bench.reads import HISTORY, WORKERS
from billgraph.db.engine import connect

TOP = 15  # rows of the module and function tables
PICK_SECONDS = 1.0  # of load measured per worker to pick the busier one


def _table(profile: pyspy.Profile, counts: dict[str, int], caption: str, limit: int) -> Table:
    ranked = sorted(counts.items(), key=lambda item: -item[1])[:limit]
    return Table(
        caption,
        ["", "samples", "share"],
        [[name, f"{n:,}", f"{profile.share(n):.1f}%"] for name, n in ranked],
    )


def group_table(profile: pyspy.Profile) -> Table:
    groups = sorted(profile.by_group, key=lambda g: -profile.by_group[g])
    groups += sorted(set(profile.inclusive) - set(groups))
    return Table(
        f"Where the worker's time goes, by package ({profile.samples:,} samples):",
        ["package", "self", "inclusive"],
        [
            [
                g,
                f"{profile.share(profile.by_group[g]):.1f}%",
                f"{profile.share(profile.inclusive[g]):.1f}%",
            ]
            for g in groups
        ],
    )


async def benchmark(run: runner.Run) -> int:
    args = run.args
    py_spy = pyspy.find(args.py_spy)
    if py_spy is None:
        progress(
            f"py-spy not found (--py-spy, $PY_SPY, PATH, /tmp/pyspy/bin); install: {pyspy.INSTALL}"
        )
        return 1
    database = connect(run.server.url)
    server: Gateway | None = None
    try:
        seeded = await seed(database)
        await add_history(database, seeded, HISTORY)
        facts = await postgres_facts(database)
        read = wallet_read(seeded) if args.read == "wallet" else customers_read(seeded)
        if args.server == "billgraph":
            server = await start_gateway(
                run.server.url, run.workdir, workers=WORKERS, env=tracing_env(None)
            )
        else:
            server = await start_ceiling(run.server.url, run.workdir, workers=WORKERS)
        pids = await worker_pids(server, WORKERS)
        meter = CpuMeter({"postgres": run.postgres_pids, args.server: [server.process.pid]})
        split = CpuMeter({str(pid): [pid] for pid in pids})

        warm = max(2.0, 2 * run.warmup)
        progress(f"step 2: warm-up, {read.name} read at {args.clients} clients: {warm:.0f} s")
        await read_loop(server, seeded.api_key, read, args.clients, warm, 0, "warm", meter)

        load_seconds = PICK_SECONDS + run.seconds + 2
        progress(
            f"step 3: {read.name} read at {args.clients} clients for {load_seconds:.0f} s; py-spy "
            f"on the busier worker for {run.seconds} s at {args.rate} Hz"
        )
        load: asyncio.Task[ReadResult] = asyncio.create_task(
            read_loop(
                server,
                seeded.api_key,
                read,
                args.clients,
                load_seconds,
                0.5,
                "profile",
                meter,
                split,
            )
        )
        await asyncio.sleep(0.5)
        before = split.snapshot()
        await asyncio.sleep(PICK_SECONDS)
        usage = CpuMeter.usage(before, split.snapshot())
        target = max(pids, key=lambda pid: usage[str(pid)])
        progress(
            "step 3: workers' cores busy "
            + ", ".join(f"{pid}: {usage[str(pid)]:.2f}" for pid in pids)
            + f"; recording {target}"
        )
        raw = run.workdir / "profile.raw"
        recorded = await asyncio.to_thread(
            pyspy.record,
            py_spy,
            target,
            run.seconds,
            raw,
            rate=args.rate,
            nonblocking=args.nonblocking,
        )
        result = await load
        result.log(args.server)
    finally:
        if server is not None:
            progress(f"{args.server} exited with {server.stop()}")
        await database.dispose()

    if recorded.returncode != 0 or not raw.exists():
        progress(f"py-spy failed (exit {recorded.returncode}):\n{recorded.stderr[-2000:]}")
        progress(
            "if ptrace is refused, run as root or with CAP_SYS_PTRACE, try --nonblocking, or "
            "start the server under py-spy (py-spy record -- python -m uvicorn ...)"
        )
        return 1
    if args.keep:
        args.keep.write_bytes(raw.read_bytes())
        progress(f"raw stacks kept in {args.keep}")
    profile = pyspy.read_raw(raw)
    said = [line for line in (recorded.stdout + recorded.stderr).splitlines() if "Samples:" in line]
    progress(f"py-spy: {said[-1] if said else 'done'}")
    progress(
        f"{profile.samples:,} samples of the event loop's thread; {profile.other_threads:,} of "
        "other threads left out"
    )
    c = result.cpu
    Report(
        title=f"Read profile ({args.server}, {read.name} read, {args.clients} clients)",
        command_line=run.command_line,
        machine=machine(
            str(facts),
            f"{args.server} with --workers {WORKERS}; py-spy {args.rate} Hz"
            + (", nonblocking" if args.nonblocking else "")
            + f" on worker {target} for {run.seconds} s",
        ),
        tables=[
            group_table(profile),
            _table(profile, profile.by_module, "By module (self):", TOP),
            _table(profile, profile.by_function, "By function (self):", TOP),
        ],
        summary=[
            f"load while sampled: {result.requests_per_second:,.1f} req/s, p50 "
            f"{result.p50_ms:.2f} ms, p99 {result.p99_ms:.2f} ms, {result.errors} errors; "
            f"{args.server} {result.cpu_ms(args.server):.2f} ms CPU per request "
            f"(workers {' / '.join(f'{w:.2f}' for w in result.workers)} cores), postgres "
            f"{result.cpu_ms('postgres'):.2f} ms; other processes {c['other']:.2f} cores",
        ],
        notes=[
            f"`{read.title}` at {args.clients} clients (bench.reads' load and data) on "
            f"{args.server}; py-spy record of the busier worker, idle samples excluded.",
            "Self: the package of the frame each sample was taken in (C and Cython code count "
            "for the Python frame that called them). Inclusive: samples with that package "
            "anywhere on the stack (every stack runs under uvicorn and the event loop, but "
            "SQLAlchemy's code that runs in a greenlet is sampled without the frames that "
            "called it: inclusive shares of billgraph and Strawberry are lower bounds).",
            f"{profile.other_threads:,} samples of other threads (uvicorn's supervisor pipe) "
            "left out.",
            f"Under sampling: {result.requests_per_second:,.1f} req/s, "
            f"{result.cpu_ms(args.server):.2f} ms of {args.server} CPU per request, "
            f"{result.errors} errors (py-spy pauses the worker for each sample unless "
            "--nonblocking).",
        ],
    ).print()
    return 1 if result.errors else 0


def main(argv: list[str] | None = None) -> int:
    parser = runner.options("bench.profile", __doc__.splitlines()[0], "3 s of samples")
    parser.add_argument("--read", choices=("wallet", "customers"), default="wallet")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--server", choices=("billgraph", "ceiling"), default="billgraph")
    parser.add_argument("--rate", type=int, default=100, help="samples per second (default 100)")
    parser.add_argument(
        "--nonblocking", action="store_true", help="py-spy does not pause the worker"
    )
    parser.add_argument("--py-spy", default=None, help="py-spy's path")
    parser.add_argument("--keep", type=Path, default=None, help="keep the raw stacks in this file")
    return runner.main(parser, benchmark, sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    sys.exit(main())
