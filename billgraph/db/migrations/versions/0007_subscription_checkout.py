"""subscription checkout sessions

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01

A checkout session in mode SUBSCRIPTION collects a subscription's payment method: it names the
subscription and, once complete, the payment method it saved, and its amount (what the
subscription's open invoice owed) may be 0 (a trial owes nothing yet). SQLite cannot alter a
CHECK constraint or add a foreign key in place: batch mode copies the table, with the foreign
keys that point at it (refunds, the webhook inbox) checked when the migration commits.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# SQLite only auto-increments an "INTEGER PRIMARY KEY".
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _defer_foreign_keys() -> None:
    # The copy drops and renames checkout_sessions while rows of other tables point at it.
    if op.get_bind().dialect.name == "sqlite":
        op.execute("PRAGMA defer_foreign_keys = ON")


def upgrade() -> None:
    _defer_foreign_keys()
    with op.batch_alter_table("checkout_sessions") as batch:
        batch.add_column(sa.Column("subscription_id", BIG_ID, nullable=True))
        batch.add_column(sa.Column("payment_method_id", BIG_ID, nullable=True))
        batch.create_foreign_key(
            op.f("fk_checkout_sessions_subscription_id_subscriptions"),
            "subscriptions",
            ["subscription_id"],
            ["id"],
        )
        batch.create_foreign_key(
            op.f("fk_checkout_sessions_payment_method_id_payment_methods"),
            "payment_methods",
            ["payment_method_id"],
            ["id"],
        )
        batch.create_index("ix_checkout_sessions_subscription_id", ["subscription_id"])
        batch.drop_constraint(op.f("ck_checkout_sessions_amount_positive"), type_="check")
        batch.create_check_constraint(
            op.f("ck_checkout_sessions_amount_by_mode"),
            "amount > 0 OR (mode = 'SUBSCRIPTION' AND amount = 0)",
        )


def downgrade() -> None:
    _defer_foreign_keys()
    op.execute("DELETE FROM checkout_sessions WHERE mode = 'SUBSCRIPTION' AND amount = 0")
    with op.batch_alter_table("checkout_sessions") as batch:
        batch.drop_constraint(op.f("ck_checkout_sessions_amount_by_mode"), type_="check")
        batch.create_check_constraint(op.f("ck_checkout_sessions_amount_positive"), "amount > 0")
        batch.drop_index("ix_checkout_sessions_subscription_id")
        batch.drop_constraint(
            op.f("fk_checkout_sessions_payment_method_id_payment_methods"), type_="foreignkey"
        )
        batch.drop_constraint(
            op.f("fk_checkout_sessions_subscription_id_subscriptions"), type_="foreignkey"
        )
        batch.drop_column("payment_method_id")
        batch.drop_column("subscription_id")
