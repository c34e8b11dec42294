"""One subscription's billing run as a pgbench script: the statements `billgraph bill` sends
for a renewal (captured in process with billgraph.db.trace.count_statements, see
bench.billing), in the same order, transactions and locks, without Python in between.

Even subscription ids take the fully-credit-paid path (17 statements, one transaction); odd
ones the part-paid path (26: the renewal's transaction, the charge's read, the outcome's
transaction). The due subscription is picked as the run picks it (ORDER BY next_action_at
LIMIT 1 FOR UPDATE SKIP LOCKED); its period moves on by one second instead of a month, so the
seeded set stays due and the unique keys (invoice per period, ledger key, hosted token) never
repeat. The wallets hold plenty: the part-paid path takes PART_CREDIT as the run would from a
wallet holding that much, the full path the plan's amount.
"""

from datetime import datetime

from bench.harness.subscriptions import PART_CREDIT
from billgraph.ledger.service import RESERVED_KEY_PREFIX

SUBSCRIPTION = (
    "SELECT subscriptions.* FROM subscriptions WHERE next_action_at IS NOT NULL AND "
    "next_action_at <= coalesce((SELECT test_clocks.frozen_time FROM test_clocks WHERE "
    "test_clocks.id = subscriptions.test_clock_id), CAST('{now}' AS timestamptz)) "
    "ORDER BY next_action_at, id LIMIT 1 FOR UPDATE SKIP LOCKED \\gset s_"
)
OPEN_LOCKED = (
    "SELECT invoices.* FROM invoices WHERE subscription_id = :s_id AND status = 'OPEN' "
    "ORDER BY id FOR UPDATE;"
)
# charges.reschedule: the open invoices and when a pending attempt among them was made.
OPEN = (
    "SELECT invoices.*, invoice_attempts.created_at FROM invoices LEFT OUTER JOIN "
    "invoice_attempts ON invoice_attempts.invoice_id = invoices.id AND "
    "invoice_attempts.outcome = 'PENDING' WHERE invoices.subscription_id = :s_id AND "
    "invoices.status = 'OPEN' ORDER BY invoices.id;"
)
NEXT = "CAST(:s_next_billing_at AS timestamptz) + interval '1 second'"
NUMBER = "'INV-' || lpad(CAST(:last_number AS text), 6, '0')"
# The credit's ledger key, billgraph:invoice:<id>:credit:1:0 (the first attempt, nothing
# applied before), with its colons spelled chr(58):
# pgbench would read ":invoice" in a literal as a variable.
CREDIT_KEY = " || chr(58) || ".join(
    [
        f"'{RESERVED_KEY_PREFIX.rstrip(':')}'",
        "'invoice'",
        "CAST(:invoice_id AS text)",
        "'credit'",
        "'1'",
        "'0'",
    ]
)

RENEWAL = [
    SUBSCRIPTION,
    OPEN_LOCKED,
    "SELECT plans.* FROM plans WHERE organization_id = :s_organization_id AND id = :s_plan_id "
    "\\gset p_",
    f"UPDATE subscriptions SET current_period_start = :s_next_billing_at, "
    f"current_period_end = {NEXT}, next_billing_at = {NEXT} WHERE id = :s_id;",
    "SELECT invoices.* FROM invoices WHERE subscription_id = :s_id "
    "AND period_start = :s_next_billing_at;",
    "INSERT INTO invoice_counters (organization_id, last_number) VALUES (:s_organization_id, 0) "
    "ON CONFLICT (organization_id) DO NOTHING;",
    "UPDATE invoice_counters SET last_number = last_number + 1 "
    "WHERE organization_id = :s_organization_id RETURNING last_number \\gset",
    "INSERT INTO invoices (organization_id, customer_id, subscription_id, number, status, "
    "currency, subtotal, discount, wallet_credit_applied, total, amount_due, amount_paid, "
    "attempt_count, next_payment_attempt_at, due_at, paid_at, period_start, period_end, "
    "hosted_token, ledger_entry_id, created_at, updated_at) VALUES (:s_organization_id, "
    ":s_customer_id, :s_id, :last_number, 'OPEN', :p_currency, :p_amount, 0, 0, :p_amount, "
    ":p_amount, 0, 0, NULL, CAST('{now}' AS timestamptz), NULL, :s_next_billing_at, "
    f"{NEXT}, md5(CAST(:run AS text) || '-' || CAST(:client_id AS text) || '-' || CAST(:n AS text)), NULL, "
    "CAST('{now}' AS timestamptz), now()) RETURNING id AS invoice_id \\gset",
    "INSERT INTO invoice_lines (invoice_id, description, amount, quantity, period_start, "
    f"period_end) VALUES (:invoice_id, 'Bench monthly', :p_amount, 1, :s_next_billing_at, {NEXT}) "
    "RETURNING id;",
    "SELECT balance FROM wallets WHERE organization_id = :s_organization_id AND "
    "customer_id = :s_customer_id AND currency = :p_currency FOR UPDATE \\gset",
]
CREDIT = [
    "SAVEPOINT sa_savepoint_1;",
    # billgraph.ledger.statements.MOVE_AND_RECORD
    "WITH moved AS (UPDATE wallets SET balance = balance + :delta, version = version + 1, "
    "updated_at = now() WHERE customer_id = :s_customer_id AND currency = :p_currency AND "
    "organization_id = :s_organization_id AND balance + :delta >= 0 AND "
    "balance + :delta <= 9007199254740991 AND EXISTS (SELECT * FROM customers WHERE "
    "customers.id = :s_customer_id AND customers.deleted_at IS NULL) AND NOT EXISTS (SELECT * "
    "FROM ledger_entries WHERE ledger_entries.organization_id = :s_organization_id AND "
    f"ledger_entries.idempotency_key = {CREDIT_KEY}) RETURNING id, balance, version, low_balance_threshold), recorded AS ("
    "INSERT INTO ledger_entries (organization_id, entry_type, amount, currency, reason, "
    "idempotency_key, request_hash, created_at, wallet_id, sequence, balance_after) SELECT "
    f"CAST(:s_organization_id AS bigint), 'DEBIT', CAST(:take AS bigint), "
    f"CAST(:p_currency AS varchar), 'Invoice ' || {NUMBER}, "
    f"{CREDIT_KEY}, md5(CAST(:invoice_id AS text)), "
    "now(), moved.id, moved.version, moved.balance FROM moved RETURNING id, wallet_id, "
    "sequence, balance_after, created_at) SELECT recorded.id AS entry_id, recorded.wallet_id, "
    "recorded.sequence, recorded.balance_after, recorded.created_at, "
    "moved.low_balance_threshold FROM recorded JOIN moved ON true \\gset e_",
    "RELEASE SAVEPOINT sa_savepoint_1;",
]
EVENT = (
    "INSERT INTO subscription_events (organization_id, subscription_id, type, message, "
    "invoice_id, created_at) VALUES (:s_organization_id, :s_id, 'payment_succeeded', "
    f"'Invoice ' || {NUMBER} || ' was paid by {{how}}.', :invoice_id, "
    "CAST('{now}' AS timestamptz)) RETURNING id;"
)
RESCHEDULED = f"UPDATE subscriptions SET next_action_at = {NEXT} WHERE id = :s_id;"
PAID_BY_CREDIT = [
    "UPDATE invoices SET status = 'PAID', wallet_credit_applied = :take, amount_due = 0, "
    "next_payment_attempt_at = NULL, paid_at = CAST('{now}' AS timestamptz), "
    "ledger_entry_id = :e_entry_id, updated_at = now() WHERE id = :invoice_id;",
    EVENT.replace("{how}", "wallet credit"),
    OPEN,
    RESCHEDULED,
]
PART_PAID = [
    "UPDATE invoices SET wallet_credit_applied = :take, amount_due = :owed, attempt_count = 1, "
    "next_payment_attempt_at = NULL, ledger_entry_id = :e_entry_id, updated_at = now() "
    "WHERE id = :invoice_id;",
    "INSERT INTO invoice_attempts (invoice_id, number, amount, outcome, failure_code, "
    "failure_message, provider_charge_id, idempotency_key, created_at, updated_at) VALUES "
    "(:invoice_id, 1, :owed, 'PENDING', NULL, NULL, NULL, NULL, CAST('{now}' AS timestamptz), "
    "now()) RETURNING id AS attempt_id \\gset",
    OPEN,
    "UPDATE subscriptions SET next_action_at = CAST('{now}' AS timestamptz) WHERE id = :s_id;",
]
# charges.charge: what it reads before calling the provider, then the outcome's unit.
CHARGE_READ = [
    "SELECT invoice_attempts.*, invoices.*, subscriptions.*, payment_methods.* FROM "
    "invoice_attempts JOIN invoices ON invoices.id = invoice_attempts.invoice_id JOIN "
    "subscriptions ON subscriptions.id = invoices.subscription_id LEFT OUTER JOIN "
    "payment_methods ON payment_methods.id = subscriptions.payment_method_id AND "
    "payment_methods.organization_id = subscriptions.organization_id WHERE "
    "invoice_attempts.id = :attempt_id AND invoice_attempts.outcome = 'PENDING';",
]
CHARGED = [
    "SELECT subscriptions.* FROM subscriptions WHERE organization_id = :s_organization_id "
    "AND id = :s_id FOR UPDATE;",
    "SELECT invoice_attempts.* FROM invoice_attempts WHERE invoice_id = :invoice_id "
    "AND outcome = 'PENDING' FOR UPDATE;",
    "SELECT invoices.* FROM invoices WHERE organization_id = :s_organization_id "
    "AND id = :invoice_id FOR UPDATE;",
    "UPDATE invoices SET status = 'PAID', amount_paid = :owed, "
    "paid_at = CAST('{now}' AS timestamptz), updated_at = now() WHERE id = :invoice_id;",
    "UPDATE invoice_attempts SET outcome = 'SUCCEEDED', provider_charge_id = 'ch_sandbox_' || "
    "md5(CAST(:run AS text) || '-' || CAST(:client_id AS text) || '-' || CAST(:n AS text)), updated_at = now() WHERE id = :attempt_id;",
    EVENT.replace("{how}", "the payment method"),
    OPEN,
    RESCHEDULED,
]

# SQL statements per subscription, as counted in process (BEGIN/COMMIT are not statements
# there: the driver sends them).
FULL_STATEMENTS = len(RENEWAL) + len(CREDIT) + len(PAID_BY_CREDIT)
PART_STATEMENTS = len(RENEWAL) + len(CREDIT) + len(PART_PAID) + len(CHARGE_READ) + len(CHARGED)


def _lines(statements: list[str], now: datetime) -> list[str]:
    return [s.replace("{now}", now.isoformat()) for s in statements]


def renewal_script(now: datetime) -> str:
    """The pgbench script (pass it to bench.harness.pgbench.run_pgbench, which sets :n and
    :run): one due subscription billed per transaction, at the run's `now`."""
    lines = [
        "\\set n :n + 1",
        "BEGIN;",
        *_lines(RENEWAL, now),
        "\\if :s_id % 2 = 0",
        "\\set take :p_amount",
        "\\set delta -1 * :take",
        *_lines(CREDIT, now),
        *_lines(PAID_BY_CREDIT, now),
        "COMMIT;",
        "\\else",
        f"\\set take {PART_CREDIT}",
        "\\set delta -1 * :take",
        "\\set owed :p_amount - :take",
        *_lines(CREDIT, now),
        *_lines(PART_PAID, now),
        "COMMIT;",
        "BEGIN;",
        *_lines(CHARGE_READ, now),
        "ROLLBACK;",
        "BEGIN;",
        *_lines(CHARGED, now),
        "COMMIT;",
        "\\endif",
    ]
    return "\n".join(lines) + "\n"
