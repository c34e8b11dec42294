"""coupons, promotion codes, subscription discounts; signed proration invoices

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01

Coupons, the promotion codes that redeem them, and the discount a subscription took (a table
of its own: subscriptions are not altered). And one constraint of invoices loosened: a
prorated downgrade's invoice has a negative subtotal and total, credited back to the wallet
(wallet_credit_applied = total), with nothing due.

SQLite cannot alter a CHECK constraint, and rebuilding `invoices` is not possible with
foreign keys on (its lines, attempts and events point at it) inside the migration's
transaction. The constraint is only loosened (every stored row satisfies the new one), which
is the case SQLite documents for editing the table's definition in place
(https://www.sqlite.org/lang_altertable.html, "otheralter"): the stored CREATE TABLE text is
rewritten, the schema version bumped, and the result checked.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# SQLite only auto-increments an "INTEGER PRIMARY KEY".
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_NAME = "ck_invoices_amounts_not_negative"
OLD_CHECK = (
    "subtotal >= 0 AND discount >= 0 AND wallet_credit_applied >= 0 AND total >= 0 "
    "AND amount_due >= 0 AND amount_paid >= 0"
)
NEW_NAME = "ck_invoices_amounts_in_range"
NEW_CHECK = (
    "discount >= 0 AND amount_due >= 0 AND amount_paid >= 0 AND ("
    "(subtotal >= 0 AND total >= 0 AND wallet_credit_applied >= 0) "
    "OR (total < 0 AND wallet_credit_applied = total))"
)


def upgrade() -> None:
    op.create_table(
        "coupons",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("organization_id", BIG_ID, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("percent_off", sa.Integer(), nullable=True),
        sa.Column("amount_off", sa.BigInteger(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("duration", sa.String(length=16), nullable=False),
        sa.Column("duration_in_months", sa.Integer(), nullable=True),
        sa.Column("max_redemptions", sa.Integer(), nullable=True),
        sa.Column("times_redeemed", sa.Integer(), nullable=False),
        sa.Column("redeem_by", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "(percent_off IS NOT NULL AND amount_off IS NULL AND currency IS NULL) OR "
            "(percent_off IS NULL AND amount_off IS NOT NULL AND currency IS NOT NULL)",
            name=op.f("ck_coupons_percent_or_amount"),
        ),
        sa.CheckConstraint(
            "percent_off BETWEEN 1 AND 100", name=op.f("ck_coupons_percent_off_in_range")
        ),
        sa.CheckConstraint("amount_off > 0", name=op.f("ck_coupons_amount_off_positive")),
        sa.CheckConstraint(
            "duration IN ('ONCE', 'REPEATING', 'FOREVER')", name=op.f("ck_coupons_duration_known")
        ),
        sa.CheckConstraint(
            "(duration = 'REPEATING' AND duration_in_months >= 1) OR "
            "(duration <> 'REPEATING' AND duration_in_months IS NULL)",
            name=op.f("ck_coupons_months_for_repeating"),
        ),
        sa.CheckConstraint(
            "times_redeemed >= 0 AND (max_redemptions IS NULL OR "
            "(max_redemptions >= 1 AND times_redeemed <= max_redemptions))",
            name=op.f("ck_coupons_redemptions_within_max"),
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_coupons_organization_id_organizations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_coupons")),
    )
    op.create_index("ix_coupons_organization_id_id", "coupons", ["organization_id", "id"])
    op.create_table(
        "promotion_codes",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("organization_id", BIG_ID, nullable=False),
        sa.Column("coupon_id", BIG_ID, nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("lookup", sa.String(length=64), nullable=False),
        sa.Column("max_redemptions", sa.Integer(), nullable=True),
        sa.Column("times_redeemed", sa.Integer(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("first_time_only", sa.Boolean(), nullable=False),
        sa.Column("minimum_amount", sa.BigInteger(), nullable=True),
        sa.Column("minimum_amount_currency", sa.String(length=3), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "times_redeemed >= 0 AND (max_redemptions IS NULL OR "
            "(max_redemptions >= 1 AND times_redeemed <= max_redemptions))",
            name=op.f("ck_promotion_codes_redemptions_within_max"),
        ),
        sa.CheckConstraint(
            "(minimum_amount IS NULL AND minimum_amount_currency IS NULL) OR "
            "(minimum_amount > 0 AND minimum_amount_currency IS NOT NULL)",
            name=op.f("ck_promotion_codes_minimum_with_currency"),
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_promotion_codes_organization_id_organizations"),
        ),
        sa.ForeignKeyConstraint(
            ["coupon_id"], ["coupons.id"], name=op.f("fk_promotion_codes_coupon_id_coupons")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_promotion_codes")),
        sa.UniqueConstraint(
            "organization_id", "lookup", name=op.f("uq_promotion_codes_organization_id_lookup")
        ),
    )
    op.create_index(
        "ix_promotion_codes_organization_id_id", "promotion_codes", ["organization_id", "id"]
    )
    op.create_index(op.f("ix_promotion_codes_coupon_id"), "promotion_codes", ["coupon_id"])
    op.create_table(
        "subscription_discounts",
        sa.Column("subscription_id", BIG_ID, nullable=False),
        sa.Column("organization_id", BIG_ID, nullable=False),
        sa.Column("coupon_id", BIG_ID, nullable=False),
        sa.Column("promotion_code_id", BIG_ID, nullable=True),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["subscriptions.id"],
            name=op.f("fk_subscription_discounts_subscription_id_subscriptions"),
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_subscription_discounts_organization_id_organizations"),
        ),
        sa.ForeignKeyConstraint(
            ["coupon_id"], ["coupons.id"], name=op.f("fk_subscription_discounts_coupon_id_coupons")
        ),
        sa.ForeignKeyConstraint(
            ["promotion_code_id"],
            ["promotion_codes.id"],
            name=op.f("fk_subscription_discounts_promotion_code_id_promotion_codes"),
        ),
        sa.PrimaryKeyConstraint("subscription_id", name=op.f("pk_subscription_discounts")),
    )
    _replace_invoice_check(OLD_NAME, OLD_CHECK, NEW_NAME, NEW_CHECK)


def downgrade() -> None:
    _replace_invoice_check(NEW_NAME, NEW_CHECK, OLD_NAME, OLD_CHECK)
    op.drop_table("subscription_discounts")
    op.drop_index(op.f("ix_promotion_codes_coupon_id"), table_name="promotion_codes")
    op.drop_index("ix_promotion_codes_organization_id_id", table_name="promotion_codes")
    op.drop_table("promotion_codes")
    op.drop_index("ix_coupons_organization_id_id", table_name="coupons")
    op.drop_table("coupons")


def _replace_invoice_check(old_name: str, old_check: str, new_name: str, new_check: str) -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        op.drop_constraint(op.f(old_name), "invoices", type_="check")
        op.create_check_constraint(op.f(new_name), "invoices", new_check)
        return
    definition = bind.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'invoices'"
    ).scalar_one()
    old_clause = f"CONSTRAINT {old_name} CHECK ({old_check})"
    if definition.count(old_clause) != 1:
        raise RuntimeError(f"invoices: constraint {old_name} not found as created")
    rewritten = definition.replace(old_clause, f"CONSTRAINT {new_name} CHECK ({new_check})")
    version = bind.exec_driver_sql("PRAGMA schema_version").scalar_one()
    bind.exec_driver_sql("PRAGMA writable_schema = ON")
    bind.exec_driver_sql(
        "UPDATE sqlite_master SET sql = ? WHERE type = 'table' AND name = 'invoices'",
        (rewritten,),
    )
    bind.exec_driver_sql(f"PRAGMA schema_version = {int(version) + 1}")
    bind.exec_driver_sql("PRAGMA writable_schema = OFF")
    problems = bind.exec_driver_sql("PRAGMA integrity_check").scalars().all()
    if problems != ["ok"]:
        raise RuntimeError(f"invoices: integrity check after the rewrite: {problems}")
