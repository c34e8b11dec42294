"""Ledger history for the read benchmarks: `per_wallet` more entries on each of the seeded
1,000 wallets, written by SQL in one transaction (a read benchmark needs full pages, not the
posting path: bench.harness.seed already put the funding credits through billgraph/ledger).

The entries continue each wallet's ledger as a posting would: credits of 1, 2, 3, ... with
sequence and balance_after following on from the wallet's version and balance, which are
brought up to date in the same transaction, so the ledger invariant still holds."""

import time

from sqlalchemy import text

from bench.harness.postings import ENTRY_COLUMNS
from bench.harness.progress import progress
from bench.harness.seed import Seeded
from billgraph.db.engine import Database

ENTRIES = f"""
WITH n AS (SELECT CAST(:per_wallet AS integer) AS n)
INSERT INTO ledger_entries ({ENTRY_COLUMNS})
SELECT w.organization_id, w.id, w.version + g, 'CREDIT', g, w.currency,
       w.balance + g * (g + 1) / 2, 'bench history', 'history-' || w.id || '-' || g, 'x', now()
FROM n, wallets w CROSS JOIN generate_series(1, n.n) AS g
WHERE w.id = ANY(:wallets)
ORDER BY w.id, g
"""
WALLETS = """
UPDATE wallets SET balance = balance + CAST(:credited AS bigint),
                   version = version + CAST(:per_wallet AS bigint), updated_at = now()
WHERE id = ANY(:wallets)
"""


async def add_history(database: Database, seeded: Seeded, per_wallet: int) -> int:
    """Add `per_wallet` credits to each of the seeded wallets (not the hot one); the number
    of ledger entries in the database afterwards."""
    started = time.monotonic()
    wallets = seeded.wallet_ids
    async with database.engine.begin() as connection:
        await connection.execute(text(ENTRIES), {"per_wallet": per_wallet, "wallets": wallets})
        await connection.execute(
            text(WALLETS),
            {
                "per_wallet": per_wallet,
                "credited": per_wallet * (per_wallet + 1) // 2,
                "wallets": wallets,
            },
        )
    async with database.autocommit.connect() as connection:
        count = int(
            (await connection.execute(text("SELECT count(*) FROM ledger_entries"))).scalar_one()
        )
        await connection.execute(text("VACUUM ANALYZE ledger_entries"))
        await connection.execute(text("VACUUM ANALYZE wallets"))
    progress(
        f"step 1: {per_wallet} more entries on each of {len(seeded.wallet_ids):,} wallets (SQL): "
        f"{count:,} entries in all, {time.monotonic() - started:.1f} s"
    )
    return count
