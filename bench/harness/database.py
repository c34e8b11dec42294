"""What the benchmarks ask of their database: its facts, checkpoints, the ledger invariant."""

from dataclasses import dataclass

from sqlalchemy import text

from bench.harness.postgres import PostgresServer
from bench.harness.progress import progress
from billgraph.db.engine import Database
from billgraph.ledger.audit import violations


@dataclass(frozen=True)
class PostgresFacts:
    version: str
    settings: dict[str, str]  # durability: fsync, synchronous_commit, ...

    def __str__(self) -> str:
        s = self.settings
        return (
            f"{self.version} (fsync={s['fsync']}, synchronous_commit={s['synchronous_commit']}, "
            f"wal_sync_method={s['wal_sync_method']})"
        )


async def postgres_facts(database: Database) -> PostgresFacts:
    """The server's version and durability settings, for the report (and logged)."""
    async with database.engine.connect() as connection:
        version = (await connection.execute(text("SHOW server_version"))).scalar_one()
        settings = {
            name: (await connection.execute(text(f"SHOW {name}"))).scalar_one()
            for name in ("fsync", "synchronous_commit", "full_page_writes", "wal_sync_method")
        }
    progress(f"PostgreSQL {version}: {settings}")
    return PostgresFacts(version, settings)


async def checkpoint(database: Database) -> None:
    """Flush dirty pages first, so that no measurement pays for the previous one's checkpoint."""
    async with database.engine.connect() as connection:
        await connection.execute(text("CHECKPOINT"))


async def check_invariant(database: Database) -> tuple[bool, str]:
    """Whether the stored ledger holds its invariant, and a report: one line if it does."""
    found = await violations(database)
    async with database.engine.connect() as connection:
        wallets, entries = (
            await connection.execute(
                text("SELECT (SELECT count(*) FROM wallets), (SELECT count(*) FROM ledger_entries)")
            )
        ).one()
    if not found:
        return True, (
            f"OK: {wallets:,} wallets, {entries:,} entries; for every wallet balance == "
            "sum(credits) - sum(debits) >= 0, version == entry count == last sequence, and "
            "every entry's balance_after is the running sum"
        )
    return False, "\n".join(["FAILED", *(f"  {v}" for v in found)])


@dataclass(frozen=True)
class Commits:
    """What PostgreSQL's WAL holds between two positions: commit and abort records (one per
    transaction that wrote; read-only transactions leave none, a subtransaction's writes go
    in its parent's record) and WAL bytes. Every backend's, autovacuum's too."""

    commits: int
    aborts: int
    wal_bytes: int


async def wal_position(database: Database) -> str:
    """Where the WAL is flushed to now: committed work is before it."""
    async with database.engine.connect() as connection:
        return str(
            (await connection.execute(text("SELECT pg_current_wal_flush_lsn()::text"))).scalar()
        )


def commits_between(server: PostgresServer, start: str, end: str) -> Commits:
    """The commit and abort records from `start` to `end` (pg_waldump --stats=record)."""
    data = server.root / "data"
    done = server.run(
        "pg_waldump",
        "--stats=record",
        "--rmgr=Transaction",
        "-s",
        start,
        "-e",
        end,
        "-p",
        str(data / "pg_wal"),
        check=False,
    )
    output = done.stdout
    if done.returncode and "Transaction/" not in output:
        raise RuntimeError(f"pg_waldump {start}..{end} failed: {done.stderr.strip()[:500]}")
    counts = {"COMMIT": 0, "ABORT": 0}
    for line in output.splitlines():
        name, _, rest = line.strip().partition(" ")
        kind = name.removeprefix("Transaction/")
        if name.startswith("Transaction/") and kind in counts:
            counts[kind] += int(rest.split()[0])
    lsn = [int(high, 16) << 32 | int(low, 16) for high, low in (p.split("/") for p in (start, end))]
    return Commits(counts["COMMIT"], counts["ABORT"], lsn[1] - lsn[0])
