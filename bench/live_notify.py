"""bench.live, step 5: what a NOTIFY inside the ledger transaction would cost, by pgbench."""

import asyncio
import json
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

from bench.harness.cpu import CpuMeter
from bench.harness.database import checkpoint
from bench.harness.pgbench import JOBS, PgbenchResult, run_pgbench, script
from bench.harness.postings import posting, wallet_choices
from bench.harness.progress import progress
from bench.harness.report import Table, fmt
from bench.harness.runner import Run
from bench.harness.seed import Seeded, case_name
from billgraph.db.engine import Database
from billgraph.db.models import LedgerEntry, Wallet
from billgraph.live.brokers import CHANNEL
from billgraph.live.events import BalanceChanged, encode

CLIENTS = 32
VARIANTS = {
    "statement": "statement alone",
    "select": "in BEGIN..SELECT 1; COMMIT",
    "notify": "in BEGIN..SELECT pg_notify; COMMIT",
}


def event_payload() -> str:
    """A real balance event as the broker sends it, re-spaced after each ':' so that pgbench
    does not read `:null` as a variable (the size grows by a few bytes)."""
    now = datetime.now(UTC)
    wallet = Wallet(
        id=1234,
        organization_id=1,
        customer_id=1234,
        currency="USD",
        balance=9_999_989,
        version=12,
        low_balance_threshold=None,
        updated_at=now,
    )
    entry = LedgerEntry(
        id=123_456,
        organization_id=1,
        wallet_id=1234,
        sequence=12,
        entry_type="DEBIT",
        amount=1,
        currency="USD",
        balance_after=9_999_989,
        reason=None,
        idempotency_key="live-paced-4242-123456",
        request_hash="x",
        created_at=now,
    )
    event = json.loads(encode(BalanceChanged(wallet=wallet, entry=entry)))
    payload = json.dumps(event, separators=(",", ": "))
    assert "'" not in payload and not re.search(r":[A-Za-z_]", payload), payload
    return payload


@dataclass
class NotifyCase:
    name: str
    wallets: str  # "hot" or "random"
    runs: dict[str, PgbenchResult] = field(default_factory=dict)  # variant -> result


@dataclass
class Notify:
    cases: list[NotifyCase]
    payload_bytes: int  # of the event each notifying transaction sends
    seconds: int  # per run

    @property
    def failures(self) -> int:
        return sum(r.failures for case in self.cases for r in case.runs.values())

    def table(self) -> Table:
        header = ["case"]
        for label in VARIANTS.values():
            header += [f"{label}: tps", "p99 ms"]
        header += ["notify/SELECT 1", "notify/statement"]
        rows = []
        for case in self.cases:
            row = [case.name]
            for variant in VARIANTS:
                result = case.runs.get(variant)
                row += [fmt(result.tps), fmt(result.p99_ms, 2)] if result else ["—", "—"]
            tps = {v: case.runs[v].tps if v in case.runs else math.nan for v in VARIANTS}
            for base in ("select", "statement"):
                ratio = tps["notify"] / tps[base] if tps[base] else math.nan
                row.append("—" if math.isnan(ratio) else f"{ratio:.2f}")
            rows.append(row)
        return Table("pgbench, a NOTIFY inside the ledger transaction:", header, rows)

    def note(self) -> str:
        return (
            f"pgbench: -M prepared -j {JOBS} -n, c={CLIENTS}, {self.seconds} s, the service's "
            "single statement alone; inside BEGIN; statement; SELECT 1; COMMIT (the same round "
            "trips as the next); inside BEGIN; statement; SELECT pg_notify('"
            f"{CHANNEL}', <a {self.payload_bytes}-byte balance event>); COMMIT. Nobody listens "
            "during pgbench."
        )


async def notify_cost(run: Run, database: Database, seeded: Seeded) -> Notify:
    """The service's statement alone, inside BEGIN ... SELECT 1; COMMIT (the same round trips
    as the next) and inside BEGIN ... SELECT pg_notify(...); COMMIT, on both wallet shapes."""
    choices = wallet_choices(seeded)
    statement = posting(seeded.organization_id)
    payload = event_payload()
    notify = f"SELECT pg_notify('{CHANNEL}', '{payload}')"
    bodies = {
        "statement": statement,
        "select": f"BEGIN;\n{statement}SELECT 1;\nCOMMIT;\n",
        "notify": f"BEGIN;\n{statement}{notify};\nCOMMIT;\n",
    }
    cases = [NotifyCase(case_name(shape, CLIENTS), shape) for shape in ("random", "hot")]
    meter = CpuMeter({"postgres": run.postgres_pids})
    for case in cases:
        for variant, body in bodies.items():
            await checkpoint(database)
            progress(f"step 5: pgbench, {case.name}, {VARIANTS[variant]}: {run.seconds} s")
            result = await asyncio.to_thread(
                run_pgbench,
                run.server,
                run.workdir,
                script(choices[case.wallets], body),
                CLIENTS,
                run.seconds,
                f"{variant}-{case.wallets}-c{CLIENTS}",
                meter,
            )
            result.log()
            case.runs[variant] = result
    return Notify(cases, len(payload.encode()), run.seconds)
