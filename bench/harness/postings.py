"""The service's posting as SQL for pgbench, on the seeded wallets."""

from bench.harness.seed import Seeded

ENTRY_COLUMNS = (
    "organization_id, wallet_id, sequence, entry_type, amount, currency, balance_after, "
    "reason, idempotency_key, request_hash, created_at"
)


def posting(org: int) -> str:
    """The service's write, a DEBIT of 1 on :wid: one guarded UPDATE feeding the INSERT, in
    one statement (see bench.harness.pgbench.script for the key's variables)."""
    return f"""WITH moved AS (
  UPDATE wallets SET balance = balance - 1, version = version + 1, updated_at = now()
  WHERE id = :wid AND balance - 1 >= 0
  RETURNING id, balance, version
)
INSERT INTO ledger_entries ({ENTRY_COLUMNS})
SELECT {org}, id, version, 'DEBIT', 1, 'USD', balance, NULL,
       'pgb-' || :run || '-' || :client_id || '-' || :n, 'x', now()
FROM moved;
"""


def wallet_choices(seeded: Seeded) -> dict[str, str]:
    """How a transaction picks :wid: "hot" the hot wallet, "random" any of the 1,000."""
    first, last = seeded.wallet_ids[0], seeded.wallet_ids[-1]
    if last - first + 1 != len(seeded.wallet_ids):
        raise RuntimeError(
            f"seeded wallet ids are not contiguous ({first}..{last}); "
            "pgbench's random(min, max) needs them to be"
        )
    return {
        "hot": f"\\set wid {seeded.hot_wallet_id}",
        "random": f"\\set wid random({first}, {last})",
    }
