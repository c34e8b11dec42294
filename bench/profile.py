"""Profile: where one gateway worker's time goes under a read or a write, by package (py-spy).

    .venv/bin/python -m bench.profile                     # wallet read, 16 clients, 15 s of samples
    .venv/bin/python -m bench.profile --quick             # 3 s of samples, a smoke test
    .venv/bin/python -m bench.profile --read customers --clients 8
    .venv/bin/python -m bench.profile --read debits --clients 32   # bench.ledger's random writes
    .venv/bin/python -m bench.profile --server ceiling    # the same for bench.ceiling
    .venv/bin/python -m bench.profile --sampler cpu       # CPU-time samples instead of py-spy

On the database of bench.reads (same seed, same history), it starts `billgraph serve
--workers 2` (or the ceiling), warms it up, and puts the read's closed-loop load on it; once
the load runs (a read, or `--read debits`: createLedgerEntry spread over the 1,000 wallets,
as bench.ledger sends it), it picks the busier of the two workers and records it for --seconds (100
samples a second by default). The stacks are then summarised by package, by the frame a
sample was taken in (self time; time in C, a Cython extension or a builtin counts for the
Python frame that called it: asyncpg's protocol for asyncpg, the JSON encoder for json), by
the packages on the stack (inclusive), by module and by function.

Two samplers:
- py-spy (the default): `py-spy record` from outside, idle samples left out. It counts a
  thread that waits for a core as active: on a shared machine part of the samples are that
  wait (the summary says how much, from the worker's measured CPU), and they fall on the code
  that runs right after waking another process (asyncpg's execute, uvicorn's send).
- cpu: a SIGPROF sampler inside the server's processes (bench/harness/cpusampler, put on their
  PYTHONPATH), one sample per 1/rate s of the process's CPU time: proportional to CPU whatever
  else the machine runs. C code between two Python frames (the event loop's own work) counts
  for the next Python frame that runs.

py-spy is not one of the project's dependencies: install it outside, for example with
`python3 -m pip install --target /tmp/pyspy py-spy` (`make bench-profile` does so when it is
missing). It is looked for in --py-spy, $PY_SPY, the PATH and /tmp/pyspy/bin. It attaches with
ptrace, which needs root or CAP_SYS_PTRACE (or kernel.yama.ptrace_scope 0); --sampler cpu
needs neither.

Progress goes to stderr; the summary (plain, then Markdown for bench/RESULTS.md) to stdout.
Exits 1 if the sampler could not record or a request failed.
"""

import asyncio
import sys
from pathlib import Path

from bench.harness import cpu_sampling, pyspy, runner
from bench.harness.cpu import CpuMeter
from bench.harness.cpu_sampling import sampler_env
from bench.harness.database import postgres_facts
from bench.harness.history import add_history
from bench.harness.processes import Gateway, start_gateway
from bench.harness.progress import progress
from bench.harness.reading import ReadResult, customers_read, debits, read_loop, wallet_read
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
    py_spy = pyspy.find(args.py_spy) if args.sampler == "py-spy" else None
    if args.sampler == "py-spy" and py_spy is None:
        progress(
            f"py-spy not found (--py-spy, $PY_SPY, PATH, /tmp/pyspy/bin); install: {pyspy.INSTALL}"
        )
        return 1
    sampler = (
        f"py-spy {args.rate} Hz" + (", nonblocking" if args.nonblocking else "")
        if args.sampler == "py-spy"
        else f"SIGPROF every {1000 / args.rate:g} ms of CPU (bench/harness/cpusampler)"
    )
    env = sampler_env(run.workdir, args.rate) if args.sampler == "cpu" else {}
    database = connect(run.server.url)
    server: Gateway | None = None
    failure = ""
    try:
        seeded = await seed(database)
        await add_history(database, seeded, HISTORY)
        facts = await postgres_facts(database)
        reads = {"wallet": wallet_read, "customers": customers_read, "debits": debits}
        read = reads[args.read](seeded)
        if args.server == "billgraph":
            server = await start_gateway(
                run.server.url, run.workdir, workers=WORKERS, env={**tracing_env(None), **env}
            )
        else:
            server = await start_ceiling(run.server.url, run.workdir, workers=WORKERS, env=env)
        pids = await worker_pids(server, WORKERS)
        meter = CpuMeter({"postgres": run.postgres_pids, args.server: [server.process.pid]})
        split = CpuMeter({str(pid): [pid] for pid in pids})

        warm = max(2.0, 2 * run.warmup)
        progress(f"step 2: warm-up, {read.name} at {args.clients} clients: {warm:.0f} s")
        await read_loop(server, seeded.api_key, read, args.clients, warm, 0, "warm", meter)

        load_seconds = PICK_SECONDS + run.seconds + 2
        progress(
            f"step 3: {read.name} at {args.clients} clients for {load_seconds:.0f} s; "
            f"{sampler} on the busier worker for {run.seconds} s"
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
        if py_spy is not None:
            recorded = await asyncio.to_thread(
                pyspy.record,
                py_spy,
                target,
                run.seconds,
                raw,
                rate=args.rate,
                nonblocking=args.nonblocking,
            )
            said = [
                line
                for line in (recorded.stdout + recorded.stderr).splitlines()
                if "Samples:" in line
            ]
            progress(f"py-spy: {said[-1] if said else 'done'}")
            if recorded.returncode != 0 or not raw.exists():
                failure = f"py-spy failed (exit {recorded.returncode}):\n{recorded.stderr[-2000:]}"
        else:
            raw = await cpu_sampling.sample(target, run.seconds, run.workdir)
        result = await load
        result.log(args.server)
    finally:
        if server is not None:
            progress(f"{args.server} exited with {server.stop()}")
        await database.dispose()

    if failure:
        progress(failure)
        progress(
            "if ptrace is refused, run as root or with CAP_SYS_PTRACE, try --nonblocking, or "
            "--sampler cpu (no ptrace: a sampler inside the server's processes)"
        )
        return 1
    if args.keep:
        args.keep.write_bytes(raw.read_bytes())
        progress(f"raw stacks kept in {args.keep}")
    profile = pyspy.read_raw(raw)
    progress(
        f"{profile.samples:,} samples of the event loop's thread; {profile.other_threads:,} of "
        "other threads left out"
    )
    c = result.cpu
    # py-spy counts a thread as active while it runs or waits for a core: on a busy machine
    # the samples exceed the worker's CPU, and the excess falls after whatever woke another
    # process (a socket write to PostgreSQL or the client). The CPU sampler's follow its CPU.
    sampled = profile.samples / (run.seconds * args.rate)
    busy = result.workers[pids.index(target)] if len(result.workers) == len(pids) else 0.0
    if args.sampler == "py-spy":
        waiting = max(0.0, 1 - busy / sampled) if sampled else 0.0
        quality = (
            f"the worker was sampled active {sampled:.0%} of the time and busy {busy:.2f} "
            f"cores: about {waiting:.0%} of its samples are time it waited for a core. py-spy "
            "samples a thread that runs or waits for a core alike, which on a shared machine "
            "inflates the code that runs right after waking another process (asyncpg's "
            "execute, uvicorn's send); --sampler cpu does not"
        )
    else:
        quality = (
            f"the samples stand for {sampled:.2f} cores of CPU; the worker was busy {busy:.2f} "
            "(C code between two Python frames, the event loop's own work among it, counts for "
            "the next Python frame that runs)"
        )
    progress(f"sampling: {quality}")
    Report(
        title=f"Profile ({args.server}, {read.name}, {args.clients} clients)",
        command_line=run.command_line,
        machine=machine(
            str(facts),
            f"{args.server} with --workers {WORKERS}; {sampler} on worker {target} for "
            f"{run.seconds} s",
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
            f"sampling: {quality}",
        ],
        notes=[
            f"`{read.title}` at {args.clients} clients (bench.reads' data) on "
            f"{args.server}; {sampler}, the busier worker, idle time excluded.",
            "Self: the package of the frame each sample was taken in (C and Cython code count "
            "for the Python frame that called them). Inclusive: samples with that package "
            "anywhere on the stack (every stack runs under uvicorn and the event loop, but "
            "SQLAlchemy's code that runs in a greenlet is sampled without the frames that "
            "called it: inclusive shares of billgraph and Strawberry are lower bounds).",
            f"{profile.other_threads:,} samples of other threads (uvicorn's supervisor pipe) "
            "left out.",
            f"Sampling: {quality}.",
            f"Under sampling: {result.requests_per_second:,.1f} req/s, "
            f"{result.cpu_ms(args.server):.2f} ms of {args.server} CPU per request, "
            f"{result.errors} errors; other processes {c['other']:.2f} cores.",
        ],
    ).print()
    return 1 if result.errors else 0


def main(argv: list[str] | None = None) -> int:
    parser = runner.options("bench.profile", __doc__.splitlines()[0], "3 s of samples")
    parser.add_argument("--read", choices=("wallet", "customers", "debits"), default="wallet")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--server", choices=("billgraph", "ceiling"), default="billgraph")
    parser.add_argument("--rate", type=int, default=100, help="samples per second (default 100)")
    parser.add_argument(
        "--sampler",
        choices=("py-spy", "cpu"),
        default="py-spy",
        help="py-spy (default), or cpu: a SIGPROF sampler inside the server's processes",
    )
    parser.add_argument(
        "--nonblocking", action="store_true", help="py-spy does not pause the worker"
    )
    parser.add_argument("--py-spy", default=None, help="py-spy's path")
    parser.add_argument("--keep", type=Path, default=None, help="keep the raw stacks in this file")
    return runner.main(parser, benchmark, sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    sys.exit(main())
