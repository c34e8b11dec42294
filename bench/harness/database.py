"""What the benchmarks ask of their database: its facts, checkpoints, the ledger invariant."""

from dataclasses import dataclass

from sqlalchemy import text

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
