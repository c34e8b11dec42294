"""checkout sessions

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01

Checkout sessions at payment providers, the webhook inbox (one row per provider event,
unique by the provider's event id) and the secrets the gateway generates for itself (the
sandbox's webhook signing secret). New tables only: the same statements on both databases.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# SQLite only auto-increments an "INTEGER PRIMARY KEY".
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "checkout_sessions",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("organization_id", BIG_ID, nullable=False),
        sa.Column("customer_id", BIG_ID, nullable=False),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("success_url", sa.String(length=2000), nullable=False),
        sa.Column("cancel_url", sa.String(length=2000), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("provider_session_id", sa.String(length=255), nullable=False),
        sa.Column("idempotency_key", sa.String(length=255), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("ledger_entry_id", BIG_ID, nullable=True),
        sa.Column("last_payment_error_code", sa.String(length=64), nullable=True),
        sa.Column("last_payment_error_message", sa.String(length=500), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("amount > 0", name=op.f("ck_checkout_sessions_amount_positive")),
        sa.CheckConstraint(
            "status IN ('OPEN', 'COMPLETE', 'EXPIRED', 'FAILED')",
            name=op.f("ck_checkout_sessions_status_known"),
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_checkout_sessions_organization_id_organizations"),
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_checkout_sessions_customer_id_customers"),
        ),
        sa.ForeignKeyConstraint(
            ["ledger_entry_id"],
            ["ledger_entries.id"],
            name=op.f("fk_checkout_sessions_ledger_entry_id_ledger_entries"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_checkout_sessions")),
        sa.UniqueConstraint(
            "organization_id",
            "idempotency_key",
            name=op.f("uq_checkout_sessions_organization_id_idempotency_key"),
        ),
        sa.UniqueConstraint(
            "provider",
            "provider_session_id",
            name=op.f("uq_checkout_sessions_provider_provider_session_id"),
        ),
    )
    op.create_index(
        "ix_checkout_sessions_customer_id_id", "checkout_sessions", ["customer_id", "id"]
    )
    op.create_table(
        "webhook_events",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("provider_event_id", sa.String(length=255), nullable=False),
        sa.Column("event_type", sa.String(length=100), nullable=False),
        sa.Column("checkout_session_id", BIG_ID, nullable=True),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["checkout_session_id"],
            ["checkout_sessions.id"],
            name=op.f("fk_webhook_events_checkout_session_id_checkout_sessions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_events")),
        sa.UniqueConstraint(
            "provider",
            "provider_event_id",
            name=op.f("uq_webhook_events_provider_provider_event_id"),
        ),
    )
    op.create_index(
        op.f("ix_webhook_events_checkout_session_id"), "webhook_events", ["checkout_session_id"]
    )
    op.create_table(
        "generated_secrets",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_generated_secrets")),
    )


def downgrade() -> None:
    op.drop_table("generated_secrets")
    op.drop_index(op.f("ix_webhook_events_checkout_session_id"), table_name="webhook_events")
    op.drop_table("webhook_events")
    op.drop_index("ix_checkout_sessions_customer_id_id", table_name="checkout_sessions")
    op.drop_table("checkout_sessions")
