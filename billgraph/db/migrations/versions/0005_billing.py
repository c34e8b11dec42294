"""billing: test clocks, plans, payment methods, subscriptions, invoices

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01

Billing's tables: test clocks (and which customer lives on one: a table of its own, so the
customers table is not altered), plans, saved payment methods, subscriptions, the per
organization invoice counter, invoices with their lines and payment attempts, and the events of
each subscription. New tables only: the same statements on both databases.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# SQLite only auto-increments an "INTEGER PRIMARY KEY".
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "invoice_counters",
        sa.Column("organization_id", BIG_ID, nullable=False),
        sa.Column("last_number", sa.BigInteger(), nullable=False),
        sa.CheckConstraint(
            "last_number >= 0", name=op.f("ck_invoice_counters_last_number_not_negative")
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_invoice_counters_organization_id_organizations"),
        ),
        sa.PrimaryKeyConstraint("organization_id", name=op.f("pk_invoice_counters")),
    )
    op.create_table(
        "plans",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("organization_id", BIG_ID, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("interval", sa.String(length=8), nullable=False),
        sa.Column("interval_count", sa.Integer(), nullable=False),
        sa.Column("trial_days", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("interval IN ('MONTH', 'YEAR')", name=op.f("ck_plans_interval_known")),
        sa.CheckConstraint("amount > 0", name=op.f("ck_plans_amount_positive")),
        sa.CheckConstraint("interval_count >= 1", name=op.f("ck_plans_interval_count_positive")),
        sa.CheckConstraint("trial_days >= 0", name=op.f("ck_plans_trial_days_not_negative")),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_plans_organization_id_organizations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plans")),
    )
    op.create_index("ix_plans_organization_id_id", "plans", ["organization_id", "id"], unique=False)
    op.create_table(
        "test_clocks",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("organization_id", BIG_ID, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("frozen_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_test_clocks_organization_id_organizations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_test_clocks")),
    )
    op.create_index(
        "ix_test_clocks_organization_id_id", "test_clocks", ["organization_id", "id"], unique=False
    )
    op.create_table(
        "customer_test_clocks",
        sa.Column("customer_id", BIG_ID, nullable=False),
        sa.Column("organization_id", BIG_ID, nullable=False),
        sa.Column("test_clock_id", BIG_ID, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_customer_test_clocks_customer_id_customers"),
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_customer_test_clocks_organization_id_organizations"),
        ),
        sa.ForeignKeyConstraint(
            ["test_clock_id"],
            ["test_clocks.id"],
            name=op.f("fk_customer_test_clocks_test_clock_id_test_clocks"),
        ),
        sa.PrimaryKeyConstraint("customer_id", name=op.f("pk_customer_test_clocks")),
    )
    op.create_index(
        op.f("ix_customer_test_clocks_test_clock_id"),
        "customer_test_clocks",
        ["test_clock_id"],
        unique=False,
    )
    op.create_table(
        "payment_methods",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("organization_id", BIG_ID, nullable=False),
        sa.Column("customer_id", BIG_ID, nullable=False),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("secret", sa.String(length=1000), nullable=False),
        sa.Column("provider_customer_key", sa.String(length=255), nullable=True),
        sa.Column("brand", sa.String(length=32), nullable=True),
        sa.Column("last4", sa.String(length=4), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "kind IN ('card', 'billing_key')", name=op.f("ck_payment_methods_kind_known")
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_payment_methods_customer_id_customers")
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_payment_methods_organization_id_organizations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_methods")),
    )
    op.create_index(
        "ix_payment_methods_customer_id_id", "payment_methods", ["customer_id", "id"], unique=False
    )
    op.create_table(
        "subscriptions",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("organization_id", BIG_ID, nullable=False),
        sa.Column("customer_id", BIG_ID, nullable=False),
        sa.Column("plan_id", BIG_ID, nullable=False),
        sa.Column("pending_plan_id", BIG_ID, nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("payment_method_id", BIG_ID, nullable=True),
        sa.Column("test_clock_id", BIG_ID, nullable=True),
        sa.Column("current_period_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("current_period_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("billing_anchor", sa.DateTime(timezone=True), nullable=False),
        sa.Column("trial_end", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancel_at_period_end", sa.Boolean(), nullable=False),
        sa.Column("cancel_reason", sa.String(length=500), nullable=True),
        sa.Column("canceled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next_billing_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reminded_for", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next_action_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("idempotency_key", sa.String(length=255), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('INCOMPLETE', 'TRIALING', 'ACTIVE', 'PAST_DUE', 'SUSPENDED', 'CANCELED')",
            name=op.f("ck_subscriptions_status_known"),
        ),
        sa.CheckConstraint(
            "current_period_end > current_period_start",
            name=op.f("ck_subscriptions_period_ordered"),
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_subscriptions_customer_id_customers")
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_subscriptions_organization_id_organizations"),
        ),
        sa.ForeignKeyConstraint(
            ["payment_method_id"],
            ["payment_methods.id"],
            name=op.f("fk_subscriptions_payment_method_id_payment_methods"),
        ),
        sa.ForeignKeyConstraint(
            ["pending_plan_id"], ["plans.id"], name=op.f("fk_subscriptions_pending_plan_id_plans")
        ),
        sa.ForeignKeyConstraint(
            ["plan_id"], ["plans.id"], name=op.f("fk_subscriptions_plan_id_plans")
        ),
        sa.ForeignKeyConstraint(
            ["test_clock_id"],
            ["test_clocks.id"],
            name=op.f("fk_subscriptions_test_clock_id_test_clocks"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subscriptions")),
        sa.UniqueConstraint(
            "organization_id",
            "idempotency_key",
            name=op.f("uq_subscriptions_organization_id_idempotency_key"),
        ),
    )
    op.create_index(
        "ix_subscriptions_customer_id_id", "subscriptions", ["customer_id", "id"], unique=False
    )
    op.create_index(
        "ix_subscriptions_next_action_at", "subscriptions", ["next_action_at"], unique=False
    )
    op.create_index(
        op.f("ix_subscriptions_test_clock_id"), "subscriptions", ["test_clock_id"], unique=False
    )
    op.create_table(
        "invoices",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("organization_id", BIG_ID, nullable=False),
        sa.Column("customer_id", BIG_ID, nullable=False),
        sa.Column("subscription_id", BIG_ID, nullable=True),
        sa.Column("number", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("subtotal", sa.BigInteger(), nullable=False),
        sa.Column("discount", sa.BigInteger(), nullable=False),
        sa.Column("wallet_credit_applied", sa.BigInteger(), nullable=False),
        sa.Column("total", sa.BigInteger(), nullable=False),
        sa.Column("amount_due", sa.BigInteger(), nullable=False),
        sa.Column("amount_paid", sa.BigInteger(), nullable=False),
        sa.Column("attempt_count", sa.Integer(), nullable=False),
        sa.Column("next_payment_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("paid_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("period_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("period_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("hosted_token", sa.String(length=64), nullable=False),
        sa.Column("ledger_entry_id", BIG_ID, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('DRAFT', 'OPEN', 'PAID', 'VOID', 'UNCOLLECTIBLE')",
            name=op.f("ck_invoices_status_known"),
        ),
        sa.CheckConstraint(
            "amount_due = total - wallet_credit_applied",
            name=op.f("ck_invoices_amount_due_is_total_less_credit"),
        ),
        sa.CheckConstraint("amount_paid <= amount_due", name=op.f("ck_invoices_paid_within_due")),
        sa.CheckConstraint(
            "attempt_count >= 0", name=op.f("ck_invoices_attempt_count_not_negative")
        ),
        sa.CheckConstraint("number > 0", name=op.f("ck_invoices_number_positive")),
        sa.CheckConstraint(
            "subtotal >= 0 AND discount >= 0 AND wallet_credit_applied >= 0 AND total >= 0 AND amount_due >= 0 AND amount_paid >= 0",
            name=op.f("ck_invoices_amounts_not_negative"),
        ),
        sa.CheckConstraint(
            "total = subtotal - discount", name=op.f("ck_invoices_total_is_subtotal_less_discount")
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_invoices_customer_id_customers")
        ),
        sa.ForeignKeyConstraint(
            ["ledger_entry_id"],
            ["ledger_entries.id"],
            name=op.f("fk_invoices_ledger_entry_id_ledger_entries"),
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_invoices_organization_id_organizations"),
        ),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["subscriptions.id"],
            name=op.f("fk_invoices_subscription_id_subscriptions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invoices")),
        sa.UniqueConstraint("hosted_token", name=op.f("uq_invoices_hosted_token")),
        sa.UniqueConstraint(
            "organization_id", "number", name=op.f("uq_invoices_organization_id_number")
        ),
        sa.UniqueConstraint(
            "subscription_id", "period_start", name=op.f("uq_invoices_subscription_id_period_start")
        ),
    )
    op.create_index("ix_invoices_customer_id_id", "invoices", ["customer_id", "id"], unique=False)
    op.create_table(
        "invoice_attempts",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("invoice_id", BIG_ID, nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("failure_code", sa.String(length=64), nullable=True),
        sa.Column("failure_message", sa.String(length=500), nullable=True),
        sa.Column("provider_charge_id", sa.String(length=255), nullable=True),
        sa.Column("idempotency_key", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "outcome IN ('PENDING', 'SUCCEEDED', 'FAILED')",
            name=op.f("ck_invoice_attempts_outcome_known"),
        ),
        sa.CheckConstraint("amount >= 0", name=op.f("ck_invoice_attempts_amount_not_negative")),
        sa.CheckConstraint("number >= 1", name=op.f("ck_invoice_attempts_number_positive")),
        sa.ForeignKeyConstraint(
            ["invoice_id"], ["invoices.id"], name=op.f("fk_invoice_attempts_invoice_id_invoices")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invoice_attempts")),
        sa.UniqueConstraint(
            "invoice_id",
            "idempotency_key",
            name=op.f("uq_invoice_attempts_invoice_id_idempotency_key"),
        ),
        sa.UniqueConstraint(
            "invoice_id", "number", name=op.f("uq_invoice_attempts_invoice_id_number")
        ),
    )
    op.create_table(
        "invoice_lines",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("invoice_id", BIG_ID, nullable=False),
        sa.Column("description", sa.String(length=500), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("period_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("period_end", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("quantity >= 1", name=op.f("ck_invoice_lines_quantity_positive")),
        sa.ForeignKeyConstraint(
            ["invoice_id"], ["invoices.id"], name=op.f("fk_invoice_lines_invoice_id_invoices")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invoice_lines")),
    )
    op.create_index(
        "ix_invoice_lines_invoice_id_id", "invoice_lines", ["invoice_id", "id"], unique=False
    )
    op.create_table(
        "subscription_events",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("organization_id", BIG_ID, nullable=False),
        sa.Column("subscription_id", BIG_ID, nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("message", sa.String(length=500), nullable=False),
        sa.Column("invoice_id", BIG_ID, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "type IN ('created', 'activated', 'trial_will_end', 'renewal_upcoming', 'payment_succeeded', 'payment_failed', 'past_due', 'suspended', 'plan_changed', 'cancel_scheduled', 'canceled', 'resumed')",
            name=op.f("ck_subscription_events_type_known"),
        ),
        sa.ForeignKeyConstraint(
            ["invoice_id"], ["invoices.id"], name=op.f("fk_subscription_events_invoice_id_invoices")
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_subscription_events_organization_id_organizations"),
        ),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["subscriptions.id"],
            name=op.f("fk_subscription_events_subscription_id_subscriptions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subscription_events")),
    )
    op.create_index(
        "ix_subscription_events_subscription_id_id",
        "subscription_events",
        ["subscription_id", "id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_subscription_events_subscription_id_id", table_name="subscription_events")
    op.drop_table("subscription_events")
    op.drop_index("ix_invoice_lines_invoice_id_id", table_name="invoice_lines")
    op.drop_table("invoice_lines")
    op.drop_table("invoice_attempts")
    op.drop_index("ix_invoices_customer_id_id", table_name="invoices")
    op.drop_table("invoices")
    op.drop_index("ix_subscriptions_customer_id_id", table_name="subscriptions")
    op.drop_index("ix_subscriptions_next_action_at", table_name="subscriptions")
    op.drop_table("subscriptions")
    op.drop_index("ix_payment_methods_customer_id_id", table_name="payment_methods")
    op.drop_table("payment_methods")
    op.drop_table("customer_test_clocks")
    op.drop_index("ix_test_clocks_organization_id_id", table_name="test_clocks")
    op.drop_table("test_clocks")
    op.drop_index("ix_plans_organization_id_id", table_name="plans")
    op.drop_table("plans")
    op.drop_table("invoice_counters")
