"""low balance threshold

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21

A wallet may carry a low-balance threshold: an event fires each time its balance goes from at
or above it to below it. NULL: no alerts.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


CHECK = "ck_wallets_low_balance_threshold_not_negative"


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        # SQLite adds a column with its CHECK but no constraint to an existing table, and a
        # batch rebuild would drop the table the ledger's entries point at.
        op.execute(
            "ALTER TABLE wallets ADD COLUMN low_balance_threshold BIGINT "
            f"CONSTRAINT {CHECK} CHECK (low_balance_threshold >= 0)"
        )
    else:
        op.add_column("wallets", sa.Column("low_balance_threshold", sa.BigInteger()))
        op.create_check_constraint(op.f(CHECK), "wallets", "low_balance_threshold >= 0")


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        op.drop_constraint(op.f(CHECK), "wallets", type_="check")
    op.drop_column("wallets", "low_balance_threshold")
