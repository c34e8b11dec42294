"""stripe subscriptions

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01

Subscriptions and invoices Stripe runs, mirrored from its webhooks: the Stripe ids they
mirror (unique), and when the Stripe object last applied was fetched (an older fetch is
never applied over a newer one).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMN and unique indexes: SQLite can add neither a constraint to an existing
    # table nor rebuild it without dropping what points at it.
    op.add_column("subscriptions", sa.Column("provider_subscription_id", sa.String(255)))
    op.add_column("subscriptions", sa.Column("provider_synced_at", sa.DateTime(timezone=True)))
    op.create_index(
        "ix_subscriptions_provider_provider_subscription_id",
        "subscriptions",
        ["provider", "provider_subscription_id"],
        unique=True,
    )
    op.add_column("invoices", sa.Column("provider_invoice_id", sa.String(255)))
    op.add_column("invoices", sa.Column("provider_synced_at", sa.DateTime(timezone=True)))
    op.create_index(
        "ix_invoices_provider_invoice_id", "invoices", ["provider_invoice_id"], unique=True
    )


def downgrade() -> None:
    op.drop_index("ix_invoices_provider_invoice_id", "invoices")
    op.drop_column("invoices", "provider_synced_at")
    op.drop_column("invoices", "provider_invoice_id")
    op.drop_index("ix_subscriptions_provider_provider_subscription_id", "subscriptions")
    op.drop_column("subscriptions", "provider_synced_at")
    op.drop_column("subscriptions", "provider_subscription_id")
