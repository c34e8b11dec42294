"""A benchmark's life: its command line, a durable PostgreSQL and a work directory, the run,
and the clean-up whatever happens."""

import argparse
import asyncio
import shlex
import shutil
import signal
import tempfile
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path

from bench.harness import postgres
from bench.harness.cpu import busy_cores
from bench.harness.progress import progress


@dataclass(frozen=True)
class Run:
    args: argparse.Namespace
    command_line: str  # what reproduces the run, for the report
    server: postgres.PostgresServer
    workdir: Path  # pgbench scripts and logs, gateway logs; the postgres user may write in it
    busy_before: float  # cores busy on the machine in the second before the run
    postgres_pids: list[int]  # the postmaster, whose children are the backends; [] if unknown

    @property
    def seconds(self) -> int:
        """Of each measurement."""
        return int(self.args.seconds)

    @property
    def warmup(self) -> float:
        """Of each closed-loop HTTP measurement, before its `seconds`."""
        return min(2.0, self.seconds / 5)


Benchmark = Callable[[Run], Coroutine[None, None, int]]


def options(module: str, description: str, quick: str) -> argparse.ArgumentParser:
    """--quick and --seconds; `quick` says what else --quick shortens."""
    parser = argparse.ArgumentParser(prog=f"python -m {module}", description=description)
    parser.add_argument(
        "--quick", action="store_true", help=f"short measurements (3 s each, {quick})"
    )
    parser.add_argument(
        "--seconds",
        type=int,
        default=None,
        help="seconds per measurement (default 15, 3 with --quick)",
    )
    return parser


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def main(parser: argparse.ArgumentParser, benchmark: Benchmark, argv: list[str]) -> int:
    """Parse `argv`, run `benchmark` on a fresh durable PostgreSQL; its exit code."""
    args = parser.parse_args(argv)
    if args.seconds is None:
        args.seconds = 3 if args.quick else 15
    if not 1 <= args.seconds <= 100:
        parser.error("--seconds must be between 1 and 100 (pgbench runs under a 120 s timeout)")
    command_line = " ".join([f".venv/bin/{parser.prog}", *map(shlex.quote, argv)])

    # SIGTERM unwinds like Ctrl-C, through the finally blocks that stop gateways and PostgreSQL.
    signal.signal(signal.SIGTERM, _interrupt)
    busy = busy_cores()
    if busy > 0.3:
        progress(
            f"WARNING: the machine is already busy ({busy:.2f} cores) before the benchmark "
            "starts; figures will be skewed (see the 'other' CPU columns)"
        )
    progress(f"starting PostgreSQL (durable commits); {args.seconds} s per measurement")
    server = postgres.start(durable=True)
    progress(f"PostgreSQL on port {server.port}, data in {server.root}")
    postmaster = server.postmaster_pid
    if postmaster is None:
        progress("could not read postmaster.pid: PostgreSQL CPU will read 0")
    workdir = Path(
        tempfile.mkdtemp(prefix=f"billgraph-{parser.prog.split()[-1].replace('.', '-')}-")
    )
    if server.as_postgres_user:
        shutil.chown(workdir, "postgres", "postgres")
    try:
        return asyncio.run(
            benchmark(
                Run(args, command_line, server, workdir, busy, [postmaster] if postmaster else [])
            )
        )
    finally:
        progress("stopping PostgreSQL")
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
        progress("done")
