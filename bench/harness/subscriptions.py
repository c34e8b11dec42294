"""Due sandbox subscriptions for the billing benchmark, seeded by SQL, and the checks of what
a billing run stored for them.

A set is `count` customers of one organization, each with a USD wallet funded by one ledger
credit (so the ledger invariant holds from the start), a saved sandbox card (4242...) and an
ACTIVE monthly subscription to the organization's plan whose period ends at the set's `due`
time. Even-numbered customers have credit that pays the invoice in full (FULL_CREDIT), odd
ones credit that pays part of it (PART_CREDIT; the rest is charged to the card). Their
reminders are recorded (`reminded_for`), so a run after `due` renews each of them once.
The kind is in the subscription's idempotency key: `bench-<set>-<full|part>-<n>`.
"""

import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import text

from bench.harness.progress import progress
from billgraph.billing.periods import add_months
from billgraph.db.engine import Database
from billgraph.ledger.service import RESERVED_KEY_PREFIX

PLAN_AMOUNT = 1_000  # 10.00 USD a month
FULL_CREDIT = 1_500  # pays the invoice, 5.00 left
PART_CREDIT = 400  # pays 4.00; 6.00 charged to the card
CARD = "4242424242424242"
BATCH = 2_000

PLAN = """
INSERT INTO plans (organization_id, name, amount, currency, interval, interval_count,
                   trial_days, active, created_at)
VALUES (:org, 'Bench monthly', :amount, 'USD', 'MONTH', 1, 0, true, now()) RETURNING id
"""

# One statement per batch: customers, wallets, their funding credits, cards, subscriptions.
SET_ROWS = """
WITH c AS (
  INSERT INTO customers (organization_id, email, email_normalized, name, external_id,
                         created_at, updated_at)
  SELECT :org, :tag || '-' || g || '@example.com', :tag || '-' || g || '@example.com',
         'Bench subscriber ' || g, 'bench-' || :tag || '-' || g, now(), now()
  FROM generate_series(CAST(:lo AS integer), CAST(:hi AS integer)) AS g ORDER BY g
  RETURNING id, external_id
), cg AS (
  SELECT id, CAST(split_part(external_id, '-', 3) AS integer) AS g FROM c
), w AS (
  INSERT INTO wallets (organization_id, customer_id, currency, balance, version,
                       created_at, updated_at)
  SELECT :org, id, 'USD', CASE WHEN g % 2 = 0 THEN CAST(:full AS bigint)
                               ELSE CAST(:part AS bigint) END, 1, now(), now()
  FROM cg ORDER BY id
  RETURNING id, balance
), e AS (
  INSERT INTO ledger_entries (organization_id, wallet_id, sequence, entry_type, amount,
                              currency, balance_after, reason, idempotency_key,
                              request_hash, created_at)
  SELECT :org, id, 1, 'CREDIT', balance, 'USD', balance, 'bench seed',
         :tag || '-fund-' || id, 'x', now()
  FROM w
), pm AS (
  INSERT INTO payment_methods (organization_id, customer_id, provider, kind, secret, brand,
                               last4, created_at)
  SELECT :org, id, 'SANDBOX', 'card', CAST(:card AS varchar), 'visa', :last4, now() FROM cg
  RETURNING id, customer_id
)
INSERT INTO subscriptions (organization_id, customer_id, plan_id, status, provider,
                           payment_method_id, current_period_start, current_period_end,
                           billing_anchor, cancel_at_period_end, next_billing_at,
                           reminded_for, next_action_at, idempotency_key, request_hash,
                           created_at, updated_at)
SELECT :org, pm.customer_id, :plan, 'ACTIVE', 'SANDBOX', pm.id, :start, :due, :start, false,
       :due, :due, :due,
       'bench-' || :tag || '-' || CASE WHEN cg.g % 2 = 0 THEN 'full' ELSE 'part' END
         || '-' || cg.g,
       'x', :start, now()
FROM pm JOIN cg ON cg.id = pm.customer_id ORDER BY cg.g
"""


@dataclass(frozen=True)
class SubscriptionSet:
    tag: str  # a letter or a word: in emails, keys and idempotency keys
    organization_id: int
    count: int
    due: datetime  # the end of the seeded period: a run after it bills the set

    @property
    def billing_time(self) -> datetime:
        """The --now of the run that bills this set (and no later set)."""
        return self.due + timedelta(hours=1)

    @property
    def next_period_end(self) -> datetime:
        return add_months(self.due, 1)


async def create_plan(database: Database, organization_id: int) -> int:
    async with database.engine.begin() as connection:
        plan = await connection.execute(text(PLAN), {"org": organization_id, "amount": PLAN_AMOUNT})
        return int(plan.scalar_one())


async def seed_set(
    database: Database,
    organization_id: int,
    plan_id: int,
    tag: str,
    count: int,
    due: datetime,
    *,
    full: int = FULL_CREDIT,
    part: int = PART_CREDIT,
    first: int = 1,
) -> SubscriptionSet:
    """`count` due subscriptions numbered from `first` (see the module: even numbers are paid
    in full by credit), in batches of BATCH, progress per batch."""
    started = time.monotonic()
    last = first + count - 1
    for lo in range(first, last + 1, BATCH):
        hi = min(last, lo + BATCH - 1)
        async with database.engine.begin() as connection:
            await connection.execute(
                text(SET_ROWS),
                {
                    "org": organization_id,
                    "plan": plan_id,
                    "tag": tag,
                    "lo": lo,
                    "hi": hi,
                    "full": full,
                    "part": part,
                    "card": CARD,
                    "last4": CARD[-4:],
                    "start": add_months(due, -1),
                    "due": due,
                },
            )
        if count > BATCH:
            progress(f"  seeding set {tag}: {hi - first + 1:,}/{count:,} subscriptions")
    progress(
        f"  set {tag}: {count:,} subscriptions due {due:%Y-%m-%d %H:%M} UTC seeded in "
        f"{time.monotonic() - started:.1f} s"
    )
    return SubscriptionSet(tag, organization_id, count, due)


# --- what a run must have stored ------------------------------------------------------------

# Per subscription of the set: its invoices for the period, their credit debits (keyed by
# invoice) and charges (attempts), and what the subscription and invoice say now.
PER_SUBSCRIPTION = f"""
WITH s AS (
  SELECT id, status, current_period_start, next_billing_at, next_action_at,
         split_part(idempotency_key, '-', 3) AS kind
  FROM subscriptions
  WHERE organization_id = :org AND idempotency_key LIKE 'bench-' || :tag || '-%'
), i AS (
  SELECT subscription_id, count(*) AS invoices, min(id) AS invoice_id
  FROM invoices WHERE organization_id = :org AND period_start = :due
  GROUP BY subscription_id
), d AS (
  SELECT CAST(split_part(idempotency_key, ':', 3) AS bigint) AS invoice_id, count(*) AS debits,
         sum(amount) AS debited
  FROM ledger_entries
  WHERE organization_id = :org AND entry_type = 'DEBIT'
    AND idempotency_key LIKE '{RESERVED_KEY_PREFIX}invoice:%:credit:%'
  GROUP BY 1
), a AS (
  SELECT invoice_id, count(*) AS attempts,
         count(*) FILTER (WHERE outcome = 'SUCCEEDED') AS charges,
         count(DISTINCT provider_charge_id) AS charge_ids, sum(amount) AS charged
  FROM invoice_attempts GROUP BY invoice_id
)
SELECT s.id, s.kind, s.status, s.current_period_start, s.next_billing_at, s.next_action_at,
       COALESCE(i.invoices, 0) AS invoices, v.status AS invoice_status,
       v.wallet_credit_applied, v.amount_due, v.amount_paid,
       COALESCE(d.debits, 0) AS debits, COALESCE(d.debited, 0) AS debited,
       COALESCE(a.attempts, 0) AS attempts, COALESCE(a.charges, 0) AS charges,
       COALESCE(a.charge_ids, 0) AS charge_ids, COALESCE(a.charged, 0) AS charged
FROM s
LEFT JOIN i ON i.subscription_id = s.id
LEFT JOIN invoices v ON v.id = i.invoice_id
LEFT JOIN d ON d.invoice_id = i.invoice_id
LEFT JOIN a ON a.invoice_id = i.invoice_id
"""

NUMBERS = """
SELECT count(*), count(DISTINCT number), COALESCE(max(number), 0),
       (SELECT last_number FROM invoice_counters WHERE organization_id = :org)
FROM invoices WHERE organization_id = :org
"""


@dataclass(frozen=True)
class SetCheck:
    subscriptions: int
    invoices: int
    debits: int
    charges: int
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems

    def line(self) -> str:
        verdict = "OK" if self.ok else f"FAILED ({len(self.problems)} problems)"
        return (
            f"{verdict}: {self.subscriptions:,} subscriptions, {self.invoices:,} invoices for "
            f"the period (one each), {self.debits:,} wallet debits (one per invoice), "
            f"{self.charges:,} card charges (one per part-paid invoice, none otherwise)"
        )


def _row_problems(r: object, s: SubscriptionSet) -> list[str]:
    """What is wrong with one subscription's row of PER_SUBSCRIPTION after billing `s`."""
    get = r._mapping  # type: ignore[attr-defined]
    full = get["kind"] == "full"
    owed_by_card = 0 if full else PLAN_AMOUNT - PART_CREDIT
    expected = {
        "invoices": 1,
        "status": "ACTIVE",
        "invoice_status": "PAID",
        "wallet_credit_applied": PLAN_AMOUNT - owed_by_card,
        "amount_due": owed_by_card,
        "amount_paid": owed_by_card,
        "debits": 1,
        "debited": PLAN_AMOUNT - owed_by_card,
        "attempts": 0 if full else 1,
        "charges": 0 if full else 1,
        "charge_ids": 0 if full else 1,
        "charged": owed_by_card,
        "current_period_start": s.due,
        "next_billing_at": s.next_period_end,
    }
    return [
        f"subscription {get['id']} ({get['kind']}): {name} is {get[name]!r}, not {value!r}"
        for name, value in expected.items()
        if get[name] != value
    ]


async def check_set(database: Database, s: SubscriptionSet) -> SetCheck:
    """Exactly one invoice for the period per subscription, PAID, with one wallet debit of
    the credit it applied, and one successful charge of the rest (none if credit paid it
    all); the subscription ACTIVE in its next period; and the organization's invoice numbers
    gapless (1..n, as many as invoices, the counter at n)."""
    async with database.engine.connect() as connection:
        rows = (
            await connection.execute(
                text(PER_SUBSCRIPTION), {"org": s.organization_id, "tag": s.tag, "due": s.due}
            )
        ).all()
        total, distinct, highest, counter = (
            await connection.execute(text(NUMBERS), {"org": s.organization_id})
        ).one()
    problems: list[str] = []
    if len(rows) != s.count:
        problems.append(f"set {s.tag}: {len(rows)} subscriptions stored, {s.count} seeded")
    for row in rows:
        problems.extend(_row_problems(row, s))
    if not total == distinct == highest == (counter or 0):
        problems.append(
            f"invoice numbers: {total} invoices, {distinct} distinct numbers, highest "
            f"{highest}, counter {counter}: not gapless"
        )
    return SetCheck(
        subscriptions=len(rows),
        invoices=sum(r.invoices for r in rows),
        debits=sum(r.debits for r in rows),
        charges=sum(r.charges for r in rows),
        problems=problems,
    )
