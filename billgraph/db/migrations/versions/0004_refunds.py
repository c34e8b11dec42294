"""refunds and provider customers

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01

Refunds of checkout sessions (made through billgraph or in a provider's dashboard), the
customers' ids at providers, and the provider's payment id on a paid session (what a refund
and a dashboard refund's event name). The new column is nullable and unconstrained, so SQLite
adds it in place.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# SQLite only auto-increments an "INTEGER PRIMARY KEY".
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "checkout_sessions", sa.Column("provider_payment_id", sa.String(length=255), nullable=True)
    )
    op.create_index(
        "ix_checkout_sessions_provider_payment_id",
        "checkout_sessions",
        ["provider", "provider_payment_id"],
    )
    op.create_table(
        "provider_customers",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("organization_id", BIG_ID, nullable=False),
        sa.Column("customer_id", BIG_ID, nullable=False),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("provider_customer_id", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_provider_customers_organization_id_organizations"),
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_provider_customers_customer_id_customers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_provider_customers")),
        sa.UniqueConstraint(
            "customer_id", "provider", name=op.f("uq_provider_customers_customer_id_provider")
        ),
        sa.UniqueConstraint(
            "provider",
            "provider_customer_id",
            name=op.f("uq_provider_customers_provider_provider_customer_id"),
        ),
    )
    op.create_table(
        "refunds",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("organization_id", BIG_ID, nullable=False),
        sa.Column("checkout_session_id", BIG_ID, nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("wallet_debited", sa.BigInteger(), nullable=False),
        sa.Column("shortfall", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("allow_shortfall", sa.Boolean(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=255), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("provider_refund_id", sa.String(length=255), nullable=True),
        sa.Column("ledger_entry_id", BIG_ID, nullable=True),
        sa.Column("failure_code", sa.String(length=64), nullable=True),
        sa.Column("failure_message", sa.String(length=500), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("amount > 0", name=op.f("ck_refunds_amount_positive")),
        sa.CheckConstraint(
            "wallet_debited >= 0 AND shortfall >= 0 AND wallet_debited + shortfall <= amount",
            name=op.f("ck_refunds_debit_within_amount"),
        ),
        sa.CheckConstraint(
            "status IN ('PENDING', 'SUCCEEDED', 'FAILED')", name=op.f("ck_refunds_status_known")
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_refunds_organization_id_organizations"),
        ),
        sa.ForeignKeyConstraint(
            ["checkout_session_id"],
            ["checkout_sessions.id"],
            name=op.f("fk_refunds_checkout_session_id_checkout_sessions"),
        ),
        sa.ForeignKeyConstraint(
            ["ledger_entry_id"],
            ["ledger_entries.id"],
            name=op.f("fk_refunds_ledger_entry_id_ledger_entries"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_refunds")),
        sa.UniqueConstraint(
            "organization_id",
            "idempotency_key",
            name=op.f("uq_refunds_organization_id_idempotency_key"),
        ),
    )
    op.create_index("ix_refunds_checkout_session_id_id", "refunds", ["checkout_session_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_refunds_checkout_session_id_id", table_name="refunds")
    op.drop_table("refunds")
    op.drop_table("provider_customers")
    op.drop_index("ix_checkout_sessions_provider_payment_id", table_name="checkout_sessions")
    op.drop_column("checkout_sessions", "provider_payment_id")
