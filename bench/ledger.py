"""Ledger benchmark: the real gateway over HTTP against pgbench on the same PostgreSQL.

    .venv/bin/python -m bench.ledger             # full run, 15 s per measurement (~3 min)
    .venv/bin/python -m bench.ledger --quick     # 3 s per measurement, a smoke test
    .venv/bin/python -m bench.ledger --seconds 10

It starts a throwaway PostgreSQL with durable commits (fsync and synchronous_commit on),
migrates it, creates an organization and seeds 1,000 customers with a USD wallet credited
10,000,000 each (the first 100 with 10 more entries) plus one hot wallet credited 10^12. Rows
of customers and wallets go in by SQL; every ledger entry goes through billgraph/ledger.
Then `billgraph serve --workers 2` runs as a subprocess, and the script measures:

1. the dashboard query (customers -> wallets -> ledgerEntries): SQL statements per request,
   counted in-process (the app on httpx.ASGITransport, same database), for 10 and 100
   customers, and its median latency over HTTP against the real server;
2. createLedgerEntry (DEBIT 1, unique idempotency keys) over HTTP at 1 and 32 concurrent
   clients, on one hot wallet and spread over the 1,000 wallets: writes/s, p50, p99, errors;
3. pgbench running the service's single-statement transaction (a data-modifying CTE) for the
   same cases, and a naive 4-statement transaction on the hot wallet at 32 clients;
4. the ledger invariant on the resulting database.

Progress goes to stderr; the results (a plain table, then the same as Markdown for
bench/RESULTS.md) go to stdout. Exits 1 if a write failed, the statement counts differ or the
invariant does not hold.
"""

import argparse
import asyncio
import glob
import itertools
import json
import math
import os
import platform
import random
import re
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text

from billgraph.app import create_app
from billgraph.db.engine import Database, connect
from billgraph.db.migrate import upgrade
from billgraph.graphql.node import to_global_id
from billgraph.core.unit import unit_of_work
from billgraph.ledger import service as ledger
from billgraph.organizations import service as organizations
from billgraph.settings import Settings
from tests.support import postgres
from tests.support.ledger import count_statements, ledger_violations

ROOT = Path(__file__).resolve().parents[1]

CUSTOMERS = 1_000
WALLET_FUNDS = 10_000_000
HOT_FUNDS = 10**12
DASHBOARD_CUSTOMERS_WITH_HISTORY = 100
EXTRA_ENTRIES = 10  # on top of the funding credit: 11 entries per wallet
SEED_CONCURRENCY = 16
GATEWAY_WORKERS = 2
CONCURRENCIES = (1, 32)

DASHBOARD = """
query Dashboard($first: Int!) { viewer { customers(first: $first) { edges { node { id email
  wallets { id balance ledgerEntries(first: 10) { edges { node { id amount balanceAfter } } } }
} } } } }
"""

DEBIT = """
mutation Debit($input: CreateLedgerEntryInput!) {
  createLedgerEntry(input: $input) {
    __typename
    ... on CreateLedgerEntrySuccess { replayed entry { id sequence balanceAfter } wallet { balance version } }
    ... on UserError { code message }
  }
}
"""

_started = time.monotonic()


def progress(message: str) -> None:
    print(f"[bench {time.monotonic() - _started:6.1f}s] {message}", file=sys.stderr, flush=True)


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile; nan for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- CPU accounting: which process used the 2 cores ------------------------------------------

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _process_table() -> dict[int, tuple[int, int]]:
    """pid -> (ppid, utime+stime+cutime+cstime in ticks) for every live process."""
    table: dict[int, tuple[int, int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as f:
                data = f.read()
        except OSError:
            continue
        rest = data[data.rindex(")") + 2 :].split()
        table[int(entry.name)] = (int(rest[1]), sum(int(x) for x in rest[11:15]))
    return table


def _tree_seconds(root: int | None, table: dict[int, tuple[int, int]]) -> float:
    """CPU seconds of a process and its live descendants, plus the children they reaped
    (a PostgreSQL backend that exited is counted in the postmaster's cutime/cstime)."""
    if root is None or root not in table:
        return 0.0
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += table[pid][1]
        stack.extend(children.get(pid, []))
    return total / _CLOCK_TICKS


def _machine_busy_seconds() -> float:
    """CPU seconds the whole machine spent busy (all cores), from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    total = sum(fields[:8])  # guest time is already in user
    return (total - idle) / _CLOCK_TICKS


@dataclass(frozen=True)
class CpuSnapshot:
    wall: float
    load: float  # this process plus reaped children (pgbench): the load generator
    gateway: float
    postgres: float
    machine: float
    extra: dict[str, float] = field(default_factory=dict)  # CpuMeter.extra_pids' roles


@dataclass
class CpuMeter:
    gateway_pid: int | None = None
    postmaster_pid: int | None = None
    # More roles, each the process trees of its pids (bench.live: a second gateway, subscribers).
    extra_pids: dict[str, list[int]] = field(default_factory=dict)

    def snapshot(self) -> CpuSnapshot:
        table = _process_table()
        times = os.times()
        return CpuSnapshot(
            wall=time.monotonic(),
            load=times.user + times.system + times.children_user + times.children_system,
            gateway=_tree_seconds(self.gateway_pid, table),
            postgres=_tree_seconds(self.postmaster_pid, table),
            machine=_machine_busy_seconds(),
            extra={role: sum(_tree_seconds(pid, table) for pid in pids) for role, pids in self.extra_pids.items()},
        )

    @staticmethod
    def usage(before: CpuSnapshot, after: CpuSnapshot) -> dict[str, float]:
        """Average cores busy per role over the interval."""
        wall = max(after.wall - before.wall, 1e-9)
        usage = {
            "load": (after.load - before.load) / wall,
            "gateway": (after.gateway - before.gateway) / wall,
            "postgres": (after.postgres - before.postgres) / wall,
            "machine": (after.machine - before.machine) / wall,
        }
        for role, seconds in after.extra.items():
            usage[role] = (seconds - before.extra.get(role, 0.0)) / wall
        # Whatever else ran on the machine meanwhile (another job would skew the figures).
        accounted = usage["load"] + usage["gateway"] + usage["postgres"] + sum(usage[r] for r in after.extra)
        usage["other"] = max(0.0, usage["machine"] - accounted)
        return usage


def machine_idle_check(seconds: float = 1.0) -> float:
    """Cores busy on the machine over `seconds` while this script does nothing."""
    start_busy, start = _machine_busy_seconds(), time.monotonic()
    time.sleep(seconds)
    return (_machine_busy_seconds() - start_busy) / (time.monotonic() - start)


# --- Results -------------------------------------------------------------------------------


@dataclass
class HttpResult:
    writes_per_second: float
    p50_ms: float
    p99_ms: float
    ok: int
    errors: int
    seconds: float
    cpu: dict[str, float]
    error_samples: list[str] = field(default_factory=list)


@dataclass
class PgbenchResult:
    tps: float
    latency_avg_ms: float
    p50_ms: float
    p99_ms: float
    transactions: int
    failed: int
    aborted: bool
    returncode: int
    cpu: dict[str, float]
    output: str


@dataclass
class Case:
    name: str
    wallets: str  # "hot" or "random"
    clients: int
    http: HttpResult | None = None
    pgbench: PgbenchResult | None = None


@dataclass
class Seeded:
    organization_id: int
    api_key: str
    customer_ids: list[int]  # the 1,000, in creation order
    wallet_ids: list[int]
    hot_customer_id: int
    hot_wallet_id: int


# --- Database setup and seeding ------------------------------------------------------------


async def seed(database: Database) -> Seeded:
    progress("step 0: migrating and creating the organization")
    await upgrade(database)
    async with unit_of_work(database) as unit:
        created = await organizations.create(unit, "Bench Org", "USD")
    org = created.organization.id

    progress(f"step 1: seeding {CUSTOMERS} customers and wallets (SQL), hot customer and wallet")
    async with database.engine.begin() as connection:
        await connection.execute(
            text(
                """
                INSERT INTO customers (organization_id, email, email_normalized, name, external_id,
                                       created_at, updated_at)
                SELECT :org, 'bench' || g || '@example.com', 'bench' || g || '@example.com',
                       'Bench customer ' || g, 'bench-' || g, now(), now()
                FROM generate_series(1, :n) AS g ORDER BY g
                """
            ),
            {"org": org, "n": CUSTOMERS},
        )
        await connection.execute(
            text(
                """
                INSERT INTO wallets (organization_id, customer_id, currency, balance, version,
                                     created_at, updated_at)
                SELECT organization_id, id, 'USD', 0, 0, now(), now()
                FROM customers WHERE organization_id = :org ORDER BY id
                """
            ),
            {"org": org},
        )
        hot_customer_id = (
            await connection.execute(
                text(
                    """
                    INSERT INTO customers (organization_id, email, email_normalized, name, external_id,
                                           created_at, updated_at)
                    VALUES (:org, 'hot@example.com', 'hot@example.com', 'Hot wallet', 'bench-hot', now(), now())
                    RETURNING id
                    """
                ),
                {"org": org},
            )
        ).scalar_one()
        hot_wallet_id = (
            await connection.execute(
                text(
                    """
                    INSERT INTO wallets (organization_id, customer_id, currency, balance, version,
                                         created_at, updated_at)
                    VALUES (:org, :customer, 'USD', 0, 0, now(), now()) RETURNING id
                    """
                ),
                {"org": org, "customer": hot_customer_id},
            )
        ).scalar_one()
        rows = (
            await connection.execute(
                text(
                    "SELECT c.id, w.id FROM customers c JOIN wallets w ON w.customer_id = c.id "
                    "WHERE c.organization_id = :org AND c.id <> :hot ORDER BY c.id"
                ),
                {"org": org, "hot": hot_customer_id},
            )
        ).all()
    customer_ids = [r[0] for r in rows]
    wallet_ids = [r[1] for r in rows]

    progress(
        f"step 1: ledger entries through ledger.commit_entry: {CUSTOMERS} x credit "
        f"{WALLET_FUNDS:,}, {EXTRA_ENTRIES} more on the first {DASHBOARD_CUSTOMERS_WITH_HISTORY}, "
        f"hot wallet credit {HOT_FUNDS:,}"
    )
    gate = asyncio.Semaphore(SEED_CONCURRENCY)

    async def post(customer_id: int, entry_type: ledger.EntryType, amount: int, key: str) -> None:
        request = ledger.entry_request(
            org,
            customer_id=customer_id,
            currency="USD",
            entry_type=entry_type,
            amount=amount,
            reason="bench seed",
            idempotency_key=key,
        )
        posting = await ledger.commit_entry(database, request)
        assert not posting.replayed, key

    async def fund(index: int, customer_id: int) -> None:
        async with gate:
            await post(customer_id, ledger.EntryType.CREDIT, WALLET_FUNDS, f"seed-{customer_id}-fund")
            if index < DASHBOARD_CUSTOMERS_WITH_HISTORY:
                for j in range(EXTRA_ENTRIES):
                    kind = ledger.EntryType.DEBIT if j % 2 == 0 else ledger.EntryType.CREDIT
                    await post(customer_id, kind, 100 + j, f"seed-{customer_id}-{j}")

    started = time.monotonic()
    await post(hot_customer_id, ledger.EntryType.CREDIT, HOT_FUNDS, "seed-hot-fund")
    await asyncio.gather(*(fund(i, c) for i, c in enumerate(customer_ids)))
    async with database.engine.connect() as connection:
        count = (await connection.execute(text("SELECT count(*) FROM ledger_entries"))).scalar_one()
        await connection.execute(text("ANALYZE"))
    progress(f"step 1: {count} ledger entries written in {time.monotonic() - started:.1f} s")
    return Seeded(
        organization_id=org,
        api_key=created.api_key.secret,
        customer_ids=customer_ids,
        wallet_ids=wallet_ids,
        hot_customer_id=hot_customer_id,
        hot_wallet_id=hot_wallet_id,
    )


async def checkpoint(database: Database) -> None:
    """Flush dirty pages first, so no measurement pays for the previous one's checkpoint."""
    async with database.engine.connect() as connection:
        await connection.execute(text("CHECKPOINT"))


# --- The gateway process ----------------------------------------------------------------------


@dataclass
class Gateway:
    process: subprocess.Popen[bytes]
    base_url: str
    log_path: Path

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


async def start_gateway(database_url: str, workdir: Path, *, workers: int = GATEWAY_WORKERS,
                        env: dict[str, str] | None = None, name: str = "gateway", label: str = "step 0") -> Gateway:
    """`billgraph serve` on a free port; `env` adds BILLGRAPH_* settings, `name` tells its log apart."""
    port = _free_port()
    executable = Path(sys.executable).parent / "billgraph"
    if not executable.exists():
        executable = ROOT / ".venv" / "bin" / "billgraph"
    command = [str(executable), "serve", "--database-url", database_url, "--port", str(port),
               "--workers", str(workers)]
    environment = {**os.environ, "BILLGRAPH_RATE_LIMIT_PER_SECOND": "0", "BILLGRAPH_LOG_LEVEL": "WARNING",
                   **(env or {})}
    log_path = workdir / f"{name.replace(' ', '-')}.log"
    progress(f"{label}: starting the {name}: {' '.join(command)}")
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=environment, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    gateway = Gateway(process, f"http://127.0.0.1:{port}", log_path)
    deadline = time.monotonic() + 60
    async with httpx.AsyncClient(timeout=2) as client:
        while True:
            if not gateway.alive():
                raise RuntimeError(f"billgraph serve exited with {process.returncode}:\n{gateway.log_tail()}")
            try:
                if (await client.get(f"{gateway.base_url}/healthz")).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"billgraph serve did not answer /healthz in 60 s:\n{gateway.log_tail()}")
            await asyncio.sleep(0.2)
    progress(f"{label}: {name} healthy at {gateway.base_url} (pid {process.pid})")
    return gateway


def stop_gateway(gateway: Gateway) -> int | None:
    if gateway.alive():
        gateway.process.terminate()
        try:
            gateway.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            progress("gateway did not stop in 20 s after SIGTERM; killing its process group")
            os.killpg(gateway.process.pid, signal.SIGKILL)
            gateway.process.wait()
    return gateway.process.returncode


# --- Step 2: the dashboard query --------------------------------------------------------------


def _check_dashboard(body: dict[str, Any], first: int) -> None:
    assert "errors" not in body, body.get("errors")
    edges = body["data"]["viewer"]["customers"]["edges"]
    assert len(edges) == first, f"{len(edges)} customers, expected {first}"
    for edge in edges:
        wallets = edge["node"]["wallets"]
        assert len(wallets) == 1, edge
        entries = wallets[0]["ledgerEntries"]["edges"]
        assert len(entries) == 10, f"{len(entries)} entries on {wallets[0]['id']}, expected 10"


async def dashboard(database: Database, database_url: str, seeded: Seeded, gateway: Gateway,
                    runs: int) -> dict[str, Any]:
    headers = {"authorization": f"Bearer {seeded.api_key}"}
    settings = Settings(database_url=database_url, rate_limit_per_second=0, log_level="WARNING")
    app = create_app(settings, database)
    counts: dict[int, int] = {}
    statements_seen: dict[int, list[str]] = {}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://billgraph.bench",
                                 headers=headers, timeout=60) as client:

        async def run(first: int) -> dict[str, Any]:
            response = await client.post("/graphql", json={"query": DASHBOARD, "variables": {"first": first}})
            assert response.status_code == 200, response.text[:500]
            return response.json()  # type: ignore[no-any-return]

        # Warm up: the first request of a key may write lastUsedAt, the first connections
        # of the pool run the dialect's setup queries. Counted requests follow at once.
        for first in (10, 100):
            _check_dashboard(await run(first), first)
        for first in (10, 100):
            with count_statements(database) as statements:
                _check_dashboard(await run(first), first)
            counts[first] = len(statements)
            statements_seen[first] = list(statements)
            progress(f"step 2: dashboard first={first}: {len(statements)} SQL statements (in-process)")
    for first, statements in statements_seen.items():
        for statement in statements:
            progress(f"step 2:   first={first}: {' '.join(statement.split())[:110]}")

    latencies: dict[int, list[float]] = {}
    async with httpx.AsyncClient(base_url=gateway.base_url, headers=headers, timeout=60) as client:
        for first in (10, 100):
            for _ in range(3):  # warm-up, not timed
                response = await client.post("/graphql", json={"query": DASHBOARD, "variables": {"first": first}})
                _check_dashboard(response.json(), first)
            samples = []
            for _ in range(runs):
                t0 = time.perf_counter()
                response = await client.post("/graphql", json={"query": DASHBOARD, "variables": {"first": first}})
                samples.append(time.perf_counter() - t0)
                assert response.status_code == 200, response.text[:500]
                _check_dashboard(response.json(), first)
            latencies[first] = samples
            progress(
                f"step 2: dashboard first={first} over HTTP: median {statistics.median(samples) * 1000:.1f} ms "
                f"({runs} runs, {len(response.content):,} bytes)"
            )
    return {"counts": counts, "latencies": latencies}


# --- Step 3: ledger writes over HTTP -----------------------------------------------------------


def debit_body(customer_global_id: str, key: str) -> dict[str, Any]:
    return {
        "query": DEBIT,
        "operationName": "Debit",
        "variables": {
            "input": {
                "customerId": customer_global_id,
                "amount": 1,
                "currency": "USD",
                "entryType": "DEBIT",
                "idempotencyKey": key,
            }
        },
    }


def write_failure(status: int, text: str) -> str | None:
    """None for a fresh successful debit, else what went wrong."""
    if status != 200:
        return f"HTTP {status}: {text[:300]}"
    try:
        body = json.loads(text)
    except ValueError:
        return f"not JSON: {text[:300]}"
    if body.get("errors"):
        return f"GraphQL errors: {str(body['errors'])[:300]}"
    result = (body.get("data") or {}).get("createLedgerEntry") or {}
    if result.get("__typename") != "CreateLedgerEntrySuccess":
        return f"{result.get('__typename')}: {str(result)[:300]}"
    if result.get("replayed"):
        return f"unexpected replay: {str(result)[:300]}"
    return None


class RawConnection:
    """A lean HTTP/1.1 keep-alive client for the write load.

    httpx spends more CPU per request than the gateway does; on a 2-core machine shared by
    load generator, gateway and PostgreSQL, that would measure the client. This one writes
    pre-formatted requests and reads Content-Length bodies, nothing more.
    """

    def __init__(self, host: str, port: int, api_key: str) -> None:
        self.host, self.port = host, port
        self.head = (
            f"POST /graphql HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {api_key}\r\n"
            "Content-Type: application/json\r\nContent-Length: "
        ).encode()
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, body: bytes) -> tuple[int, str]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        self.writer.write(self.head + str(len(body)).encode() + b"\r\n\r\n" + body)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        length = next(int(v) for k, _, v in (line.partition(":") for line in lines[1:]) if k.lower() == "content-length")
        return status, (await self.reader.readexactly(length)).decode()

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            await self.writer.wait_closed()


async def http_writes(gateway: Gateway, api_key: str, customer_global_ids: list[str], clients: int,
                      seconds: float, warmup: float, tag: str, meter: CpuMeter) -> HttpResult:
    counter = itertools.count()
    url = httpx.URL(gateway.base_url)
    connections = [RawConnection(url.host, url.port or 80, api_key) for _ in range(clients)]

    async def phase(duration: float, record: bool) -> tuple[list[float], int, list[str], float]:
        latencies: list[float] = []
        failures: list[str] = []
        start = time.perf_counter()
        deadline = start + duration

        async def worker(number: int) -> None:
            rng = random.Random(f"{tag}-{number}")
            connection = connections[number]
            while time.perf_counter() < deadline:
                customer = customer_global_ids[0] if len(customer_global_ids) == 1 else rng.choice(customer_global_ids)
                body = json.dumps(debit_body(customer, f"http-{tag}-{'m' if record else 'w'}-{next(counter)}")).encode()
                t0 = time.perf_counter()
                try:
                    failure = write_failure(*await connection.post(body))
                except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                    failure = f"{type(exc).__name__}: {exc}"
                    await connection.close()
                    connection.writer = None
                elapsed = time.perf_counter() - t0
                if failure is None:
                    latencies.append(elapsed)
                else:
                    failures.append(failure)

        await asyncio.gather(*(worker(n) for n in range(clients)))
        return latencies, len(failures), failures, time.perf_counter() - start

    try:
        if warmup > 0:
            _, warm_errors, warm_failures, _ = await phase(warmup, record=False)
            if warm_errors:
                progress(f"  warm-up: {warm_errors} errors, e.g. {warm_failures[0]}")
        before = meter.snapshot()
        latencies, errors, failures, elapsed = await phase(seconds, record=True)
        after = meter.snapshot()
    finally:
        for connection in connections:
            await connection.close()
    return HttpResult(
        writes_per_second=len(latencies) / elapsed,
        p50_ms=percentile(latencies, 50) * 1000,
        p99_ms=percentile(latencies, 99) * 1000,
        ok=len(latencies),
        errors=errors,
        seconds=elapsed,
        cpu=CpuMeter.usage(before, after),
        error_samples=failures[:5],
    )


# --- Step 4: pgbench ---------------------------------------------------------------------------

_ENTRY_COLUMNS = ("organization_id, wallet_id, sequence, entry_type, amount, currency, balance_after, "
                  "reason, idempotency_key, request_hash, created_at")


def single_statement_script(org: int, wallet_choice: str) -> str:
    """The service's write: one guarded UPDATE feeding the INSERT, in one statement.

    `n` is a per-client counter (pgbench keeps a client's variables across transactions) and
    `run` a per-run tag given with -D, so idempotency keys never repeat."""
    return f"""{wallet_choice}
\\set n :n + 1
WITH moved AS (
  UPDATE wallets SET balance = balance - 1, version = version + 1, updated_at = now()
  WHERE id = :wid AND balance - 1 >= 0
  RETURNING id, balance, version
)
INSERT INTO ledger_entries ({_ENTRY_COLUMNS})
SELECT {org}, id, version, 'DEBIT', 1, 'USD', balance, NULL,
       'pgb-' || :run || '-' || :client_id || '-' || :n, 'x', now()
FROM moved;
"""


def naive_script(org: int, wallet_choice: str) -> str:
    """The conversational version: lock, check, update, insert, commit (4 round trips + BEGIN)."""
    return f"""{wallet_choice}
\\set n :n + 1
BEGIN;
SELECT balance, version FROM wallets WHERE id = :wid FOR UPDATE \\gset
\\set nb :balance - 1
\\set nv :version + 1
UPDATE wallets SET balance = balance - 1, version = version + 1, updated_at = now() WHERE id = :wid;
INSERT INTO ledger_entries ({_ENTRY_COLUMNS})
VALUES ({org}, :wid, :nv, 'DEBIT', 1, 'USD', :nb, NULL, 'pgbn-' || :run || '-' || :client_id || '-' || :n, 'x', now());
COMMIT;
"""


def _parse_pgbench_logs(prefix: Path) -> list[float]:
    """Per-transaction latencies (ms) from pgbench -l logs: `client tx latency_us script ...`."""
    latencies: list[float] = []
    for path in glob.glob(f"{prefix}.*"):
        with open(path) as f:
            for line in f:
                fields = line.split()
                if len(fields) >= 3 and fields[2].isdigit():
                    latencies.append(int(fields[2]) / 1000)
    return latencies


def run_pgbench(server: postgres.PostgresServer, workdir: Path, script: str, clients: int, seconds: int,
                tag: str, meter: CpuMeter) -> PgbenchResult:
    script_path = workdir / f"{tag}.sql"
    script_path.write_text(script)
    log_prefix = workdir / f"log-{tag}"
    if server.as_postgres_user:
        shutil.chown(script_path, "postgres", "postgres")
    jobs = 2  # pgbench itself lowers it to the number of clients (1 thread at -c 1)
    args = [
        "pgbench", "-h", "127.0.0.1", "-p", str(server.port), "-U", "postgres", "-n",
        "-c", str(clients), "-j", str(jobs), "-T", str(seconds), "-M", "prepared",
        "-D", "n=0", "-D", f"run={tag}", "-l", f"--log-prefix={log_prefix}",
        "-f", str(script_path), "billgraph",
    ]
    before = meter.snapshot()
    done = server.run(*args, check=False)
    after = meter.snapshot()
    output = done.stdout + done.stderr

    def number(pattern: str) -> float:
        found = re.search(pattern, done.stdout)
        return float(found.group(1)) if found else math.nan

    latencies = _parse_pgbench_logs(log_prefix)
    failed = number(r"number of failed transactions:\s*(\d+)")
    return PgbenchResult(
        tps=number(r"tps = ([\d.]+)"),
        latency_avg_ms=number(r"latency average = ([\d.]+) ms"),
        p50_ms=percentile(latencies, 50),
        p99_ms=percentile(latencies, 99),
        transactions=int(number(r"number of transactions actually processed:\s*(\d+)") or 0),
        failed=0 if math.isnan(failed) else int(failed),
        aborted="aborted" in output or done.returncode != 0,
        returncode=done.returncode,
        cpu=CpuMeter.usage(before, after),
        output=output,
    )


# --- Step 6: the invariant ---------------------------------------------------------------------

async def check_invariant(database: Database) -> tuple[bool, str]:
    violations = await ledger_violations(database)
    async with database.engine.connect() as connection:
        totals = (
            await connection.execute(
                text("SELECT (SELECT count(*) FROM wallets), (SELECT count(*) FROM ledger_entries)")
            )
        ).one()
    if not violations:
        return True, (f"OK: {totals[0]:,} wallets, {totals[1]:,} entries; for every wallet balance == "
                      "sum(credits) - sum(debits) >= 0, version == entry count == last sequence, and "
                      "every entry's balance_after is the running sum")
    return False, "\n".join(["FAILED", *(f"  {v}" for v in violations)])


# --- Reporting ---------------------------------------------------------------------------------


def fmt(value: float | None, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:,.{digits}f}"


def _ratio(case: Case) -> str:
    if case.http is None or case.pgbench is None or not case.pgbench.tps or math.isnan(case.pgbench.tps):
        return "—"
    return f"{case.http.writes_per_second / case.pgbench.tps:.2f}"


def _table_rows(cases: list[Case]) -> tuple[list[str], list[list[str]]]:
    header = ["case", "HTTP writes/s", "HTTP p50 ms", "HTTP p99 ms", "HTTP errors",
              "pgbench tps", "pgbench avg ms", "pgbench p50 ms", "pgbench p99 ms", "HTTP/pgbench"]
    rows = []
    for case in cases:
        h, p = case.http, case.pgbench
        rows.append([
            case.name,
            fmt(h.writes_per_second) if h else "—",
            fmt(h.p50_ms, 2) if h else "—",
            fmt(h.p99_ms, 2) if h else "—",
            str(h.errors) if h else "—",
            fmt(p.tps) if p else "—",
            fmt(p.latency_avg_ms, 2) if p else "—",
            fmt(p.p50_ms, 2) if p else "—",
            fmt(p.p99_ms, 2) if p else "—",
            _ratio(case),
        ])
    return header, rows


def _cpu_rows(cases: list[Case]) -> tuple[list[str], list[list[str]]]:
    header = ["case", "HTTP: bench client", "HTTP: gateway", "HTTP: postgres", "HTTP: other",
              "pgbench: pgbench", "pgbench: postgres", "pgbench: other"]
    rows = []
    for case in cases:
        h, p = case.http, case.pgbench
        rows.append([
            case.name,
            fmt(h.cpu["load"], 2) if h else "—",
            fmt(h.cpu["gateway"], 2) if h else "—",
            fmt(h.cpu["postgres"], 2) if h else "—",
            fmt(h.cpu["other"], 2) if h else "—",
            fmt(p.cpu["load"], 2) if p else "—",
            fmt(p.cpu["postgres"], 2) if p else "—",
            fmt(p.cpu["other"], 2) if p else "—",
        ])
    return header, rows


def plain_table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(header[i]), *(len(r[i]) for r in rows)) for i in range(len(header))]
    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))
    return "\n".join([line(header), "  ".join("-" * w for w in widths), *(line(r) for r in rows)])


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


# --- Main ----------------------------------------------------------------------------------------


async def postgres_facts(database: Database) -> tuple[str, dict[str, str]]:
    """The server's version and durability settings, for the report (and logged)."""
    async with database.engine.connect() as connection:
        pg_version = (await connection.execute(text("SHOW server_version"))).scalar_one()
        durability = {
            name: (await connection.execute(text(f"SHOW {name}"))).scalar_one()
            for name in ("fsync", "synchronous_commit", "full_page_writes", "wal_sync_method")
        }
    progress(f"PostgreSQL {pg_version}: {durability}")
    return pg_version, durability


async def benchmark(args: argparse.Namespace, server: postgres.PostgresServer, workdir: Path,
                    command_line: str) -> int:
    seconds = args.seconds
    warmup = min(2.0, seconds / 5)
    database = connect(server.url)
    meter = CpuMeter()
    try:
        meter.postmaster_pid = int((server.root / "data" / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        progress("could not read postmaster.pid: PostgreSQL CPU will read 0")
    gateway: Gateway | None = None
    try:
        seeded = await seed(database)
        pg_version, durability = await postgres_facts(database)

        gateway = await start_gateway(server.url, workdir)
        meter.gateway_pid = gateway.process.pid

        progress(f"step 2: dashboard query, first=10 and first=100 ({args.dashboard_runs} timed runs each)")
        board = await dashboard(database, server.url, seeded, gateway, args.dashboard_runs)

        hot = [to_global_id("Customer", seeded.hot_customer_id)]
        spread = [to_global_id("Customer", c) for c in seeded.customer_ids]
        first_wallet, last_wallet = seeded.wallet_ids[0], seeded.wallet_ids[-1]
        if last_wallet - first_wallet + 1 != len(seeded.wallet_ids):
            raise RuntimeError(f"seeded wallet ids are not contiguous ({first_wallet}..{last_wallet}); "
                               "pgbench's random(min, max) needs them to be")
        choices = {"hot": f"\\set wid {seeded.hot_wallet_id}",
                   "random": f"\\set wid random({first_wallet}, {last_wallet})"}

        cases = [Case(f"{w} wallet{'s' if w == 'random' else ''}, c={c}", w, c)
                 for w in ("hot", "random") for c in CONCURRENCIES]
        for case in cases:
            await checkpoint(database)
            progress(f"step 3: HTTP createLedgerEntry, {case.name}: {warmup:.0f} s warm-up + {seconds} s")
            case.http = await http_writes(
                gateway, seeded.api_key, hot if case.wallets == "hot" else spread, case.clients,
                seconds, warmup, f"{case.wallets}-c{case.clients}", meter,
            )
            h = case.http
            progress(f"  -> {h.writes_per_second:,.1f} writes/s, p50 {h.p50_ms:.2f} ms, p99 {h.p99_ms:.2f} ms, "
                     f"{h.errors} errors; cores busy: client {h.cpu['load']:.2f}, gateway {h.cpu['gateway']:.2f}, "
                     f"postgres {h.cpu['postgres']:.2f}, other processes {h.cpu['other']:.2f}")
            for sample in h.error_samples:
                progress(f"  error: {sample}")
            if not gateway.alive():
                raise RuntimeError(f"the gateway died during {case.name} (exit {gateway.process.returncode}):\n"
                                   f"{gateway.log_tail()}")

            await checkpoint(database)
            progress(f"step 4: pgbench single-statement CTE, {case.name}: {seconds} s")
            case.pgbench = await asyncio.to_thread(
                run_pgbench, server, workdir,
                single_statement_script(seeded.organization_id, choices[case.wallets]),
                case.clients, seconds, f"cte-{case.wallets}-c{case.clients}", meter,
            )
            p = case.pgbench
            progress(f"  -> {p.tps:,.1f} tps, latency avg {p.latency_avg_ms:.2f} ms, p99 {p.p99_ms:.2f} ms, "
                     f"failed {p.failed}{', ABORTED' if p.aborted else ''}; cores busy: pgbench "
                     f"{p.cpu['load']:.2f}, postgres {p.cpu['postgres']:.2f}, other processes {p.cpu['other']:.2f}")
            if p.aborted or p.failed:
                progress(f"  pgbench output:\n{p.output}")

        naive = Case("naive 4-statement, hot wallet, c=32 (pgbench only)", "hot", 32)
        await checkpoint(database)
        progress(f"step 4: pgbench naive BEGIN/SELECT FOR UPDATE/UPDATE/INSERT/COMMIT, hot wallet, c=32: {seconds} s")
        naive.pgbench = await asyncio.to_thread(
            run_pgbench, server, workdir, naive_script(seeded.organization_id, choices["hot"]),
            32, seconds, "naive-hot-c32", meter,
        )
        p = naive.pgbench
        progress(f"  -> {p.tps:,.1f} tps, latency avg {p.latency_avg_ms:.2f} ms, failed {p.failed}"
                 f"{', ABORTED' if p.aborted else ''}")
        if p.aborted or p.failed:
            progress(f"  pgbench output:\n{p.output}")
        cases.append(naive)

        progress("step 6: checking the ledger invariant")
        invariant_ok, invariant_report = await check_invariant(database)
        progress(f"step 6: {invariant_report.splitlines()[0]}")
        gateway_warnings = gateway.log_tail(20) if gateway.log_path.stat().st_size else ""
    finally:
        if gateway is not None:
            progress("stopping the gateway")
            code = stop_gateway(gateway)
            progress(f"gateway exited with {code}")
        await database.dispose()

    # --- Output ---
    counts, latencies = board["counts"], board["latencies"]
    http_errors = sum(c.http.errors for c in cases if c.http)
    pgbench_failures = sum((c.pgbench.failed + c.pgbench.aborted) for c in cases if c.pgbench)
    counts_equal = counts[10] == counts[100]
    header, rows = _table_rows(cases)
    cpu_header, cpu_rows = _cpu_rows(cases)
    date = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    machine = (f"{os.cpu_count()} CPUs, Linux {platform.release()}, Python {platform.python_version()}, "
               f"PostgreSQL {pg_version} (fsync={durability['fsync']}, synchronous_commit="
               f"{durability['synchronous_commit']}, wal_sync_method={durability['wal_sync_method']}), "
               f"gateway: billgraph serve --workers {GATEWAY_WORKERS}, rate limit off, pool 20 per worker; "
               "load generator, gateway and PostgreSQL share the machine")
    dashboard_lines = [
        f"dashboard statements: first=10 -> {counts[10]}, first=100 -> {counts[100]} "
        f"({'equal' if counts_equal else 'NOT EQUAL'})",
        f"dashboard median latency over HTTP ({args.dashboard_runs} runs): first=10 -> "
        f"{statistics.median(latencies[10]) * 1000:.1f} ms, first=100 -> {statistics.median(latencies[100]) * 1000:.1f} ms",
    ]
    notes = [
        f"{seconds} s per measurement (HTTP after {warmup:.0f} s of warm-up), DEBIT of 1 with a unique idempotency key per write.",
        "HTTP: a lean asyncio HTTP/1.1 client (bench.ledger.RawConnection), one keep-alive connection per client, closed loop; writes/s counts successes; any non-success is an error.",
        "pgbench: -M prepared -j 2 -n, the service's single-statement shape (WITH moved AS (UPDATE ...) INSERT ...); "
        "p50/p99 from its per-transaction log (-l).",
        "CPU: average cores busy per role during each measurement (the machine has "
        f"{os.cpu_count()}); 'other' is every process outside the benchmark (it was "
        f"{args.busy_before:.2f} cores in the second before the run started).",
    ]

    print()
    print(f"billgraph ledger benchmark, {date}")
    print(f"command: {command_line}")
    print(machine)
    print()
    for line in dashboard_lines:
        print(line)
    print()
    print(plain_table(header, rows))
    print()
    print("cores busy during each measurement")
    print(plain_table(cpu_header, cpu_rows))
    print()
    print(f"HTTP write errors: {http_errors}; pgbench failed/aborted: {pgbench_failures}")
    print(f"ledger invariant: {invariant_report}")
    if gateway_warnings:
        print(f"gateway log (tail):\n{gateway_warnings}")

    print()
    print("----- Markdown (for bench/RESULTS.md) -----")
    print()
    print(f"## Ledger benchmark, {date}")
    print()
    print(f"Command: `{command_line}`  ")
    print(f"Machine: {machine}.")
    print()
    print("Dashboard query (`viewer.customers(first: N) { wallets { ledgerEntries(first: 10) } }`):")
    print()
    print("| N | SQL statements (in-process) | median latency over HTTP |")
    print("|---:|---:|---:|")
    for first in (10, 100):
        print(f"| {first} | {counts[first]} | {statistics.median(latencies[first]) * 1000:.1f} ms |")
    print()
    print("Ledger writes (`createLedgerEntry` DEBIT 1) over HTTP against pgbench running the same SQL:")
    print()
    print(markdown_table(header, rows))
    print()
    print("Cores busy during each measurement:")
    print()
    print(markdown_table(cpu_header, cpu_rows))
    print()
    for note in notes:
        print(f"- {note}")
    print(f"- HTTP write errors: {http_errors}; pgbench failed/aborted transactions: {pgbench_failures}.")
    print(f"- Ledger invariant after the run: {invariant_report.splitlines()[0]}")
    print()

    failed = bool(http_errors or pgbench_failures or not counts_equal or not invariant_ok)
    return 1 if failed else 0


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ledger", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short measurements (3 s each, 10 dashboard runs)")
    parser.add_argument("--seconds", type=int, default=None, help="seconds per measurement (default 15, 3 with --quick)")
    parser.add_argument("--dashboard-runs", type=int, default=None, help="timed dashboard requests per page size (default 30)")
    args = parser.parse_args(argv)
    if args.seconds is None:
        args.seconds = 3 if args.quick else 15
    if args.dashboard_runs is None:
        args.dashboard_runs = 10 if args.quick else 30
    if not 1 <= args.seconds <= 100:
        parser.error("--seconds must be between 1 and 100 (pgbench runs under a 120 s timeout)")
    command_line = " ".join([".venv/bin/python -m bench.ledger", *map(shlex.quote, sys.argv[1:] if argv is None else argv)])

    return run_with_postgres(args, command_line, benchmark, workdir_prefix="billgraph-bench-")


def run_with_postgres(
    args: argparse.Namespace,
    command_line: str,
    run: Callable[[argparse.Namespace, postgres.PostgresServer, Path, str], Awaitable[int]],
    *,
    workdir_prefix: str,
) -> int:
    """Start a durable PostgreSQL and a work directory, run the benchmark, clean up."""
    # SIGTERM unwinds like Ctrl-C, through the finally blocks that stop the gateways and PostgreSQL.
    signal.signal(signal.SIGTERM, _interrupt)

    busy = args.busy_before = machine_idle_check()
    if busy > 0.3:
        progress(f"WARNING: the machine is already busy ({busy:.2f} cores) before the benchmark starts; "
                 "figures will be skewed (see the 'other' CPU columns)")
    progress(f"starting PostgreSQL (durable commits); {args.seconds} s per measurement")
    server = postgres.start(durable=True)
    progress(f"PostgreSQL on port {server.port}, data in {server.root}")
    workdir = Path(tempfile.mkdtemp(prefix=workdir_prefix))
    if server.as_postgres_user:
        shutil.chown(workdir, "postgres", "postgres")
    try:
        return asyncio.run(run(args, server, workdir, command_line))
    finally:
        progress("stopping PostgreSQL")
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
        progress("done")

if __name__ == "__main__":
    sys.exit(main())
