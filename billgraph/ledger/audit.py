"""The ledger's invariant, checked on what is stored: for every wallet
`balance == sum(credits) - sum(debits) >= 0`, its version is its entry count and last sequence,
and each entry's balance_after is the running sum up to it. `billgraph check-ledger` runs it."""

from sqlalchemy import text

from billgraph.db.engine import Database

# Wallets whose balance is negative, differs from the net of their entries, or whose version
# is not their entry count and last sequence.
WALLET_VIOLATIONS = """
SELECT w.id, w.balance, w.version,
       COALESCE(SUM(CASE WHEN e.entry_type = 'CREDIT' THEN e.amount ELSE -e.amount END), 0) AS net,
       COUNT(e.id) AS entries, COALESCE(MAX(e.sequence), 0) AS last_sequence
FROM wallets w LEFT JOIN ledger_entries e ON e.wallet_id = w.id
GROUP BY w.id, w.balance, w.version
HAVING w.balance < 0
    OR w.balance != COALESCE(SUM(CASE WHEN e.entry_type = 'CREDIT' THEN e.amount ELSE -e.amount END), 0)
    OR w.version != COUNT(e.id)
    OR w.version != COALESCE(MAX(e.sequence), 0)
ORDER BY w.id
LIMIT 20
"""

# Entries whose balance_after is not the running sum of their wallet's entries up to them.
ENTRY_VIOLATIONS = """
SELECT wallet_id, sequence, balance_after, running FROM (
  SELECT wallet_id, sequence, balance_after,
         SUM(CASE WHEN entry_type = 'CREDIT' THEN amount ELSE -amount END)
           OVER (PARTITION BY wallet_id ORDER BY sequence) AS running
  FROM ledger_entries
) AS t
WHERE balance_after != running OR balance_after < 0
ORDER BY wallet_id, sequence
LIMIT 20
"""


async def violations(database: Database) -> list[str]:
    """Every way the stored ledger breaks `balance == sum(credits) - sum(debits) >= 0`, as
    readable lines (at most 20 of each kind); empty when it holds."""
    async with database.engine.connect() as connection:
        wallets = (await connection.execute(text(WALLET_VIOLATIONS))).all()
        entries = (await connection.execute(text(ENTRY_VIOLATIONS))).all()
    return [
        *(
            f"wallet {r.id}: balance {r.balance}, version {r.version}, net of entries {r.net}, "
            f"{r.entries} entries, last sequence {r.last_sequence}"
            for r in wallets
        ),
        *(
            f"wallet {r.wallet_id} entry #{r.sequence}: balance_after {r.balance_after}, "
            f"running sum {r.running}"
            for r in entries
        ),
    ]
