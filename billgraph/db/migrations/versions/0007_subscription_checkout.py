"""subscription checkout sessions

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01

A checkout session in mode SUBSCRIPTION collects a subscription's payment method: it names the
subscription and, once complete, the payment method it saved, and its amount (what the
subscription's open invoice owed) may be 0 (a trial owes nothing yet). SQLite cannot alter a
CHECK constraint or add a foreign key in place: batch mode copies the table, with the foreign
keys that point at it (refunds, the webhook inbox) checked when the migration commits.

The copy drops the old table, and with foreign keys on SQLite counts every row that points at
a dropped row as a violation; renaming the copy into place does not take the count back, so
the commit would fail on any database with a refund or a webhook event of a session. The rows
that point at checkout_sessions are set aside in temporary tables while it is copied and put
back afterwards, unchanged.
"""

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import sqlalchemy as sa
from alembic import op

# SQLite only auto-increments an "INTEGER PRIMARY KEY".
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# The tables whose rows point at checkout_sessions.
CHILDREN = ("refunds", "webhook_events")


@contextmanager
def _copying_checkout_sessions() -> Iterator[None]:
    """On SQLite, what batch mode's copy of checkout_sessions needs around it (see above)."""
    if op.get_bind().dialect.name != "sqlite":
        yield
        return
    # The copy drops and renames checkout_sessions: nothing is checked until the commit.
    op.execute("PRAGMA defer_foreign_keys = ON")
    for table in CHILDREN:
        op.execute(f"CREATE TEMP TABLE {table}_aside AS SELECT * FROM {table}")
        op.execute(f"DELETE FROM {table}")
    yield
    for table in CHILDREN:
        op.execute(f"INSERT INTO {table} SELECT * FROM {table}_aside")
        op.execute(f"DROP TABLE {table}_aside")


def upgrade() -> None:
    with _copying_checkout_sessions(), op.batch_alter_table("checkout_sessions") as batch:
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
    op.execute("DELETE FROM checkout_sessions WHERE mode = 'SUBSCRIPTION' AND amount = 0")
    with _copying_checkout_sessions(), op.batch_alter_table("checkout_sessions") as batch:
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
