"""Migrations after 0005 keep the rows a database already holds, on SQLite and PostgreSQL.

A database of its own is brought to 0005, filled with related rows in every table, upgraded to
head, downgraded to 0005 and upgraded again: each time every row must be there with its
values, the foreign keys and constraints must still hold, and head's constraints must be
enforced. On SQLite, 0006 rewrites the stored definition of `invoices` and 0007 copies
`checkout_sessions` while refunds and the webhook inbox point at it.
"""

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import create_async_engine

from billgraph.db.engine import Database, connect
from billgraph.db.migrate import alembic_config, upgrade

BASE = "0005"
T0 = datetime(2026, 11, 1, 9, 30, tzinfo=UTC)


def at(days: int) -> datetime:
    return T0 + timedelta(days=days)


# Every table of revision 0005, parents before children, with rows that point at each other.
ROWS: dict[str, list[dict[str, Any]]] = {
    "organizations": [
        {"id": 1, "name": "Acme", "default_currency": "USD", "created_at": at(0)},
        {"id": 2, "name": "Globex", "default_currency": "KRW", "created_at": at(0)},
    ],
    "api_keys": [
        {
            "id": 1,
            "organization_id": 1,
            "name": "server",
            "prefix": "bg_live_abc",
            "secret_hash": "a" * 64,
            "scopes": "read,write",
            "created_at": at(0),
            "last_used_at": at(3),
            "revoked_at": None,
        }
    ],
    "customers": [
        {
            "id": 1,
            "organization_id": 1,
            "email": "Ada@Example.com",
            "email_normalized": "ada@example.com",
            "name": "Ada",
            "external_id": "cus-ext-1",
            "created_at": at(0),
            "updated_at": at(1),
            "deleted_at": None,
        },
        {
            "id": 2,
            "organization_id": 2,
            "email": None,
            "email_normalized": None,
            "name": "김민준",
            "external_id": None,
            "created_at": at(0),
            "updated_at": at(0),
            "deleted_at": None,
        },
    ],
    "wallets": [
        {
            "id": 1,
            "organization_id": 1,
            "customer_id": 1,
            "currency": "USD",
            "balance": 1200,
            "version": 3,
            "low_balance_threshold": 500,
            "created_at": at(0),
            "updated_at": at(2),
        },
        {
            "id": 2,
            "organization_id": 2,
            "customer_id": 2,
            "currency": "KRW",
            "balance": 0,
            "version": 0,
            "low_balance_threshold": None,
            "created_at": at(0),
            "updated_at": at(0),
        },
    ],
    "ledger_entries": [
        {
            "id": 1,
            "organization_id": 1,
            "wallet_id": 1,
            "sequence": 1,
            "entry_type": "CREDIT",
            "amount": 2000,
            "currency": "USD",
            "balance_after": 2000,
            "reason": "checkout cs_1",
            "idempotency_key": "checkout:1",
            "request_hash": "b" * 64,
            "created_at": at(1),
        },
        {
            "id": 2,
            "organization_id": 1,
            "wallet_id": 1,
            "sequence": 2,
            "entry_type": "DEBIT",
            "amount": 500,
            "currency": "USD",
            "balance_after": 1500,
            "reason": "refund re_1",
            "idempotency_key": "refund:1",
            "request_hash": "c" * 64,
            "created_at": at(2),
        },
        {
            "id": 3,
            "organization_id": 1,
            "wallet_id": 1,
            "sequence": 3,
            "entry_type": "DEBIT",
            "amount": 300,
            "currency": "USD",
            "balance_after": 1200,
            "reason": "invoice 1",
            "idempotency_key": "invoice:1:credit",
            "request_hash": "d" * 64,
            "created_at": at(2),
        },
    ],
    "checkout_sessions": [
        {
            "id": 1,
            "organization_id": 1,
            "customer_id": 1,
            "provider": "stripe",
            "mode": "TOP_UP",
            "status": "COMPLETE",
            "amount": 2000,
            "currency": "USD",
            "success_url": "https://shop.example/ok",
            "cancel_url": "https://shop.example/cancel",
            "url": "https://checkout.stripe.com/c/pay/cs_1",
            "provider_session_id": "cs_test_1",
            "idempotency_key": "top-up-1",
            "request_hash": "e" * 64,
            "ledger_entry_id": 1,
            "last_payment_error_code": None,
            "last_payment_error_message": None,
            "provider_payment_id": "pi_1",
            "expires_at": at(2),
            "created_at": at(1),
            "updated_at": at(1),
            "completed_at": at(1),
        },
        {
            "id": 2,
            "organization_id": 2,
            "customer_id": 2,
            "provider": "toss",
            "mode": "TOP_UP",
            "status": "FAILED",
            "amount": 10000,
            "currency": "KRW",
            "success_url": "https://shop.example/ok",
            "cancel_url": "https://shop.example/cancel",
            "url": "https://pay.toss.example/2",
            "provider_session_id": "toss_order_2",
            "idempotency_key": "top-up-2",
            "request_hash": "f" * 64,
            "ledger_entry_id": None,
            "last_payment_error_code": "card_declined",
            "last_payment_error_message": "The card was declined.",
            "provider_payment_id": None,
            "expires_at": at(2),
            "created_at": at(1),
            "updated_at": at(1),
            "completed_at": None,
        },
    ],
    "webhook_events": [
        {
            "id": 1,
            "provider": "stripe",
            "provider_event_id": "evt_1",
            "event_type": "checkout.session.completed",
            "checkout_session_id": 1,
            "outcome": "credited",
            "received_at": at(1),
        },
        {
            "id": 2,
            "provider": "stripe",
            "provider_event_id": "evt_2",
            "event_type": "charge.refunded",
            "checkout_session_id": 1,
            "outcome": "already_refunded",
            "received_at": at(2),
        },
        {
            "id": 3,
            "provider": "stripe",
            "provider_event_id": "evt_3",
            "event_type": "customer.created",
            "checkout_session_id": None,
            "outcome": "ignored",
            "received_at": at(2),
        },
    ],
    "generated_secrets": [
        {"name": "sandbox_webhook_secret", "value": "whsec_sandbox", "created_at": at(0)}
    ],
    "provider_customers": [
        {
            "id": 1,
            "organization_id": 1,
            "customer_id": 1,
            "provider": "stripe",
            "provider_customer_id": "cus_1",
            "created_at": at(1),
        }
    ],
    "refunds": [
        {
            "id": 1,
            "organization_id": 1,
            "checkout_session_id": 1,
            "amount": 500,
            "wallet_debited": 500,
            "shortfall": 0,
            "status": "SUCCEEDED",
            "source": "API",
            "reason": "requested_by_customer",
            "allow_shortfall": False,
            "idempotency_key": "refund-1",
            "request_hash": "1" * 64,
            "provider_refund_id": "re_1",
            "ledger_entry_id": 2,
            "failure_code": None,
            "failure_message": None,
            "created_at": at(2),
            "updated_at": at(2),
        }
    ],
    "invoice_counters": [{"organization_id": 1, "last_number": 1}],
    "plans": [
        {
            "id": 1,
            "organization_id": 1,
            "name": "Pro",
            "amount": 1000,
            "currency": "USD",
            "interval": "MONTH",
            "interval_count": 1,
            "trial_days": 0,
            "active": True,
            "created_at": at(0),
        },
        {
            "id": 2,
            "organization_id": 1,
            "name": "Pro yearly",
            "amount": 10000,
            "currency": "USD",
            "interval": "YEAR",
            "interval_count": 1,
            "trial_days": 14,
            "active": False,
            "created_at": at(0),
        },
    ],
    "test_clocks": [
        {
            "id": 1,
            "organization_id": 1,
            "name": "renewals",
            "frozen_time": at(2),
            "created_at": at(0),
            "updated_at": at(2),
        }
    ],
    "customer_test_clocks": [
        {"customer_id": 1, "organization_id": 1, "test_clock_id": 1, "created_at": at(0)}
    ],
    "payment_methods": [
        {
            "id": 1,
            "organization_id": 1,
            "customer_id": 1,
            "provider": "stripe",
            "kind": "card",
            "secret": "pm_card_visa",
            "provider_customer_key": "cus_1",
            "brand": "visa",
            "last4": "4242",
            "created_at": at(1),
        }
    ],
    "subscriptions": [
        {
            "id": 1,
            "organization_id": 1,
            "customer_id": 1,
            "plan_id": 1,
            "pending_plan_id": 2,
            "status": "ACTIVE",
            "provider": "sandbox",
            "payment_method_id": 1,
            "test_clock_id": 1,
            "current_period_start": at(1),
            "current_period_end": at(31),
            "billing_anchor": at(1),
            "trial_end": None,
            "cancel_at_period_end": False,
            "cancel_reason": None,
            "canceled_at": None,
            "next_billing_at": at(31),
            "reminded_for": None,
            "next_action_at": at(28),
            "idempotency_key": "subscribe-1",
            "request_hash": "2" * 64,
            "created_at": at(1),
            "updated_at": at(2),
        }
    ],
    "invoices": [
        {
            "id": 1,
            "organization_id": 1,
            "customer_id": 1,
            "subscription_id": 1,
            "number": 1,
            "status": "PAID",
            "currency": "USD",
            "subtotal": 1000,
            "discount": 0,
            "wallet_credit_applied": 300,
            "total": 1000,
            "amount_due": 700,
            "amount_paid": 700,
            "attempt_count": 2,
            "next_payment_attempt_at": None,
            "due_at": at(1),
            "paid_at": at(2),
            "period_start": at(1),
            "period_end": at(31),
            "hosted_token": "3" * 64,
            "ledger_entry_id": 3,
            "created_at": at(1),
            "updated_at": at(2),
        }
    ],
    "invoice_attempts": [
        {
            "id": 1,
            "invoice_id": 1,
            "number": 1,
            "amount": 700,
            "outcome": "FAILED",
            "failure_code": "card_declined",
            "failure_message": "Your card was declined.",
            "provider_charge_id": None,
            "idempotency_key": "invoice:1:attempt:1",
            "created_at": at(1),
            "updated_at": at(1),
        },
        {
            "id": 2,
            "invoice_id": 1,
            "number": 2,
            "amount": 700,
            "outcome": "SUCCEEDED",
            "failure_code": None,
            "failure_message": None,
            "provider_charge_id": "ch_2",
            "idempotency_key": "invoice:1:attempt:2",
            "created_at": at(2),
            "updated_at": at(2),
        },
    ],
    "invoice_lines": [
        {
            "id": 1,
            "invoice_id": 1,
            "description": "Pro (monthly)",
            "amount": 1000,
            "quantity": 1,
            "period_start": at(1),
            "period_end": at(31),
        }
    ],
    "subscription_events": [
        {
            "id": 1,
            "organization_id": 1,
            "subscription_id": 1,
            "type": "created",
            "message": "Subscription created",
            "invoice_id": None,
            "created_at": at(1),
        },
        {
            "id": 2,
            "organization_id": 1,
            "subscription_id": 1,
            "type": "payment_failed",
            "message": "Payment of invoice 1 failed",
            "invoice_id": 1,
            "created_at": at(1),
        },
        {
            "id": 3,
            "organization_id": 1,
            "subscription_id": 1,
            "type": "payment_succeeded",
            "message": "Invoice 1 paid",
            "invoice_id": 1,
            "created_at": at(2),
        },
    ],
}


@pytest.fixture
async def own_database(database_url: str, tmp_path: Path) -> AsyncIterator[Database]:
    """An empty database of this test's own, on the backend of `database_url`."""
    url = make_url(database_url)
    if url.drivername.startswith("sqlite"):
        database = connect(f"sqlite+aiosqlite:///{tmp_path / 'migrations.db'}")
        yield database
        await database.dispose()
        return
    name = f"billgraph_migrations_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(url, isolation_level="AUTOCOMMIT")
    async with admin.connect() as connection:
        await connection.execute(text(f'CREATE DATABASE "{name}"'))
    database = connect(url.set(database=name).render_as_string(hide_password=False))
    try:
        yield database
    finally:
        await database.dispose()
        async with admin.connect() as connection:
            await connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        await admin.dispose()


async def downgrade(database: Database, revision: str) -> None:
    def run(connection: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.downgrade(config, revision)

    async with database.engine.begin() as connection:
        await connection.run_sync(run)


async def populate(database: Database) -> None:
    async with database.engine.begin() as connection:
        for table, rows in ROWS.items():
            columns = list(rows[0])
            statement = text(
                f"INSERT INTO {table} ({', '.join(columns)}) "
                f"VALUES ({', '.join(':' + column for column in columns)})"
            )
            await connection.execute(statement, rows)


async def snapshot(database: Database) -> dict[str, list[dict[str, Any]]]:
    """Every row of every 0005 table, with the columns 0005 gave it, in key order."""
    contents: dict[str, list[dict[str, Any]]] = {}
    async with database.engine.connect() as connection:
        for table, rows in ROWS.items():
            columns = ", ".join(rows[0])
            result = await connection.execute(
                text(f"SELECT {columns} FROM {table} ORDER BY {next(iter(rows[0]))}")
            )
            contents[table] = [dict(row._mapping) for row in result]
    return contents


def _schema(connection: Connection) -> dict[str, dict[str, set[tuple[Any, ...]]]]:
    inspector = inspect(connection)
    schema: dict[str, dict[str, set[tuple[Any, ...]]]] = {}
    for table in inspector.get_table_names():
        if table == "alembic_version":
            continue
        schema[table] = {
            "columns": {
                (column["name"], column["nullable"]) for column in inspector.get_columns(table)
            },
            "foreign_keys": {
                (
                    key["name"],
                    tuple(key["constrained_columns"]),
                    key["referred_table"],
                    tuple(key["referred_columns"]),
                )
                for key in inspector.get_foreign_keys(table)
            },
            "checks": {(check["name"],) for check in inspector.get_check_constraints(table)},
            "uniques": {
                (unique["name"], tuple(unique["column_names"]))
                for unique in inspector.get_unique_constraints(table)
            },
            "indexes": {
                (index["name"], tuple(index["column_names"]), index["unique"])
                for index in inspector.get_indexes(table)
            },
            "primary_key": {
                tuple(inspector.get_pk_constraint(table)["constrained_columns"]),
            },
        }
    return schema


async def schema(database: Database) -> dict[str, dict[str, set[tuple[Any, ...]]]]:
    async with database.engine.connect() as connection:
        return await connection.run_sync(_schema)


async def assert_consistent(database: Database) -> None:
    """SQLite: no row points at a missing one and the file is sound. PostgreSQL validates
    every foreign key as rows are written; its constraints are compared in `schema`."""
    if not database.is_sqlite:
        return
    async with database.engine.connect() as connection:
        dangling = (await connection.exec_driver_sql("PRAGMA foreign_key_check")).all()
        integrity = (await connection.exec_driver_sql("PRAGMA integrity_check")).scalars().all()
    assert dangling == []
    assert integrity == ["ok"]


async def revision(database: Database) -> str:
    async with database.engine.connect() as connection:
        result = await connection.execute(text("SELECT version_num FROM alembic_version"))
        return str(result.scalar_one())


async def accepted(database: Database, statement: str, **values: Any) -> None:
    """The statement is accepted; rolled back, so the data stays as populated."""
    async with database.engine.connect() as connection:
        await connection.execute(text(statement), values)
        await connection.rollback()


async def refused(database: Database, statement: str, **values: Any) -> None:
    async with database.engine.connect() as connection:
        with pytest.raises(IntegrityError):
            await connection.execute(text(statement), values)
        await connection.rollback()


SESSION = (
    "INSERT INTO checkout_sessions (id, organization_id, customer_id, provider, mode, status, "
    "amount, currency, success_url, cancel_url, url, provider_session_id, idempotency_key, "
    "request_hash, subscription_id, payment_method_id, expires_at, created_at, updated_at) "
    "VALUES (10, 1, 1, 'sandbox', :mode, :status, :amount, 'USD', 'https://s.example/ok', "
    "'https://s.example/no', 'https://s.example/pay', 'sandbox_cs_10', 'probe', :hash, "
    ":subscription_id, 1, :at, :at, :at)"
)
INVOICE = (
    "INSERT INTO invoices (id, organization_id, customer_id, subscription_id, number, status, "
    "currency, subtotal, discount, wallet_credit_applied, total, amount_due, amount_paid, "
    "attempt_count, due_at, period_start, period_end, hosted_token, created_at, updated_at) "
    "VALUES (10, 1, 1, 1, 2, 'PAID', 'USD', :subtotal, 0, :credit, :total, 0, 0, 0, :at, :at, "
    ":at, :token, :at, :at)"
)
REFUND = (
    "INSERT INTO refunds (id, organization_id, checkout_session_id, amount, wallet_debited, "
    "shortfall, status, source, allow_shortfall, idempotency_key, request_hash, created_at, "
    "updated_at) VALUES (10, 1, :session, 100, 0, 0, 'PENDING', 'API', :no, 'probe', :hash, "
    ":at, :at)"
)


async def assert_head_constraints(database: Database) -> None:
    probe = {"hash": "9" * 64, "at": at(3)}
    # 0007: a subscription's checkout may owe nothing; a top-up must be of something.
    await accepted(
        database, SESSION, mode="SUBSCRIPTION", status="OPEN", amount=0, subscription_id=1, **probe
    )
    await refused(
        database, SESSION, mode="TOP_UP", status="OPEN", amount=0, subscription_id=None, **probe
    )
    # The copy kept the constraints it did not mean to change, and the new foreign keys hold.
    await refused(
        database, SESSION, mode="TOP_UP", status="LOST", amount=5, subscription_id=None, **probe
    )
    await refused(
        database, SESSION, mode="SUBSCRIPTION", status="OPEN", amount=0, subscription_id=99, **probe
    )
    # What points at the copied table still points at it.
    await accepted(database, REFUND, session=1, no=False, **probe)
    await refused(database, REFUND, session=99, no=False, **probe)
    await refused(
        database,
        "INSERT INTO webhook_events (id, provider, provider_event_id, event_type, "
        "checkout_session_id, outcome, received_at) "
        "VALUES (10, 'stripe', 'evt_10', 'x', 99, 'ignored', :at)",
        at=at(3),
    )
    # 0006: a prorated downgrade's invoice credits its negative total back to the wallet.
    invoice = {"token": "8" * 64, "at": at(3)}
    await accepted(database, INVOICE, subtotal=-400, credit=-400, total=-400, **invoice)
    await refused(database, INVOICE, subtotal=-400, credit=0, total=-400, **invoice)
    await refused(database, INVOICE, subtotal=400, credit=-1, total=400, **invoice)
    # 0008: one billgraph subscription per Stripe subscription.
    twin = {
        **ROWS["subscriptions"][0],
        "id": 10,
        "idempotency_key": "subscribe-10",
        "provider_subscription_id": "sub_1",
    }
    async with database.engine.connect() as connection:
        await connection.execute(
            text("UPDATE subscriptions SET provider_subscription_id = 'sub_1' WHERE id = 1")
        )
        with pytest.raises(IntegrityError):
            await connection.execute(
                text(
                    f"INSERT INTO subscriptions ({', '.join(twin)}) "
                    f"VALUES ({', '.join(':' + column for column in twin)})"
                ),
                twin,
            )
        await connection.rollback()
    # The ledger stays append-only.
    async with database.engine.connect() as connection:
        with pytest.raises(Exception, match="append-only"):
            await connection.execute(text("UPDATE ledger_entries SET amount = 1 WHERE id = 1"))
        await connection.rollback()


async def test_migrations_keep_populated_data(own_database: Database) -> None:
    database = own_database
    await upgrade(database, BASE)
    await populate(database)
    before = await snapshot(database)
    assert all(before[table] for table in ROWS), "every 0005 table holds rows"
    base_schema = await schema(database)
    assert set(base_schema) == set(ROWS), "ROWS covers every table of 0005"
    await assert_consistent(database)

    await upgrade(database)
    head = await revision(database)
    assert head != BASE
    assert await snapshot(database) == before
    await assert_consistent(database)
    head_schema = await schema(database)
    # Head keeps every column, key, index and constraint of 0005 but the two checks it
    # replaced (and only adds).
    for table, parts in base_schema.items():
        for kind, entries in parts.items():
            kept = entries
            if (table, kind) == ("invoices", "checks"):
                kept = entries - {("ck_invoices_amounts_not_negative",)}
                assert ("ck_invoices_amounts_in_range",) in head_schema[table][kind]
            if (table, kind) == ("checkout_sessions", "checks"):
                kept = entries - {("ck_checkout_sessions_amount_positive",)}
                assert ("ck_checkout_sessions_amount_by_mode",) in head_schema[table][kind]
            missing = kept - head_schema[table][kind]
            assert not missing, f"{table}: {kind} lost at head: {missing}"
    await assert_head_constraints(database)

    await downgrade(database, BASE)
    assert await revision(database) == BASE
    assert await snapshot(database) == before
    assert await schema(database) == base_schema
    await assert_consistent(database)

    await upgrade(database)
    assert await revision(database) == head
    assert await snapshot(database) == before
    assert await schema(database) == head_schema
    await assert_consistent(database)
    await assert_head_constraints(database)
