"""pgbench on the benchmark's PostgreSQL: the same SQL as the gateway, without the gateway."""

import glob
import math
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from bench.harness.cpu import CpuMeter
from bench.harness.postgres import PostgresServer
from bench.harness.progress import progress
from bench.harness.report import percentile

JOBS = 2  # pgbench itself lowers it to the number of clients (1 thread at -c 1)


@dataclass
class PgbenchResult:
    tps: float
    latency_avg_ms: float
    p50_ms: float
    p99_ms: float
    failed: int  # transactions pgbench counted as failed
    aborted: bool  # a client aborted, or pgbench itself failed
    cpu: dict[str, float]
    output: str

    @property
    def failures(self) -> int:
        return self.failed + self.aborted

    def log(self) -> None:
        """The result on the progress lines, with pgbench's output if anything failed."""
        c = self.cpu
        progress(
            f"  -> {self.tps:,.1f} tps, latency avg {self.latency_avg_ms:.2f} ms, p50 "
            f"{self.p50_ms:.2f} ms, p99 {self.p99_ms:.2f} ms, failed {self.failed}"
            f"{', ABORTED' if self.aborted else ''}; cores busy: pgbench {c['load']:.2f}, "
            f"postgres {c['postgres']:.2f}, other processes {c['other']:.2f}"
        )
        if self.failures:
            progress(f"  pgbench output:\n{self.output}")


def script(wallet: str, body: str) -> str:
    """A pgbench script: `wallet` (a \\set of :wid), then `body`. `n` counts the client's
    transactions (pgbench keeps a client's variables across them) and `run` names the run
    (run_pgbench sets both with -D), so keys made of :run, :client_id and :n never repeat."""
    return f"{wallet}\n\\set n :n + 1\n{body}"


def _latencies_ms(prefix: Path) -> list[float]:
    """Per-transaction latencies from pgbench -l logs: `client tx latency_us script ...`."""
    latencies: list[float] = []
    for path in glob.glob(f"{prefix}.*"):
        with open(path) as f:
            for line in f:
                fields = line.split()
                if len(fields) >= 3 and fields[2].isdigit():
                    latencies.append(int(fields[2]) / 1000)
    return latencies


def run_pgbench(
    server: PostgresServer,
    workdir: Path,
    text: str,
    clients: int,
    seconds: int,
    tag: str,
    meter: CpuMeter,
) -> PgbenchResult:
    """`text` (see `script`) for `seconds` at `clients`, prepared statements, no vacuum."""
    script_path = workdir / f"{tag}.sql"
    script_path.write_text(text)
    log_prefix = workdir / f"log-{tag}"
    if server.as_postgres_user:
        shutil.chown(script_path, "postgres", "postgres")
    args = [
        "pgbench",
        "-h",
        "127.0.0.1",
        "-p",
        str(server.port),
        "-U",
        "postgres",
        "-n",
        "-c",
        str(clients),
        "-j",
        str(JOBS),
        "-T",
        str(seconds),
        "-M",
        "prepared",
        "-D",
        "n=0",
        "-D",
        f"run={tag}",
        "-l",
        f"--log-prefix={log_prefix}",
        "-f",
        str(script_path),
        "billgraph",
    ]
    before = meter.snapshot()
    done = server.run(*args, check=False)
    after = meter.snapshot()
    output = done.stdout + done.stderr

    def number(pattern: str) -> float:
        found = re.search(pattern, done.stdout)
        return float(found.group(1)) if found else math.nan

    latencies = _latencies_ms(log_prefix)
    failed = number(r"number of failed transactions:\s*(\d+)")
    return PgbenchResult(
        tps=number(r"tps = ([\d.]+)"),
        latency_avg_ms=number(r"latency average = ([\d.]+) ms"),
        p50_ms=percentile(latencies, 50),
        p99_ms=percentile(latencies, 99),
        failed=0 if math.isnan(failed) else int(failed),
        aborted="aborted" in output or done.returncode != 0,
        cpu=CpuMeter.usage(before, after),
        output=output,
    )
