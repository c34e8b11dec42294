"""The ledger through the API: postings, refusals, idempotency, races, paging, append-only rows.

Every test works in an organization of its own (the `tenant` fixture) and runs on SQLite and
on PostgreSQL; every test that writes entries ends by checking the ledger invariant.
"""

import asyncio
import base64
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy.exc
from sqlalchemy import text

from billgraph.db.engine import Database
from billgraph.graphql.node import from_global_id, to_global_id
from tests.conftest import assert_ledger_invariant, postgresql_only
from tests.support.graph import CREATE_ENTRY, Tenant

MAX_AMOUNT = 2**53 - 1

WALLET = """
query($id: ID!, $currency: Currency!) { customer(id: $id) {
  wallets { id currency balance version }
  wallet(currency: $currency) { id currency balance version
    ledgerEntries(first: 100) { edges { node { id sequence amount entryType balanceAfter idempotencyKey } } } }
} }
"""

ENTRIES = """
query($id: ID!, $first: Int, $after: String, $entryType: EntryType) { wallet(id: $id) {
  ledgerEntries(first: $first, after: $after, entryType: $entryType) {
    edges { cursor node { id sequence amount entryType balanceAfter } }
    pageInfo { hasNextPage endCursor }
  }
} }
"""


def org_db_id(tenant: Tenant) -> int:
    return from_global_id(tenant.organization_id)[1]


async def count_rows(database: Database, table: str, tenant: Tenant) -> int:
    """Rows of `table` that belong to the tenant's organization, read in the database."""
    assert table in {"ledger_entries", "wallets"}
    async with database.engine.connect() as connection:
        result = await connection.execute(
            text(f"SELECT COUNT(*) FROM {table} WHERE organization_id = :org"),
            {"org": org_db_id(tenant)},
        )
        return int(result.scalar_one())


async def wallet_of(tenant: Tenant, customer_id: str, currency: str = "USD") -> dict[str, Any]:
    """The customer's wallets and its wallet in `currency` with all of its entries."""
    data = await tenant.data(WALLET, {"id": customer_id, "currency": currency})
    customer = data["customer"]
    assert customer is not None
    return customer  # type: ignore[no-any-return]


def entry_input(
    customer_id: str,
    amount: int,
    entry_type: str = "CREDIT",
    currency: str = "USD",
    key: str = "key",
    reason: str | None = None,
) -> dict[str, Any]:
    return {
        "input": {
            "customerId": customer_id,
            "amount": amount,
            "currency": currency,
            "entryType": entry_type,
            "idempotencyKey": key,
            "reason": reason,
        }
    }


def parse_utc(value: str) -> datetime:
    """An ISO 8601 timestamp that states its offset, and the offset is UTC."""
    parsed = datetime.fromisoformat(value)
    assert parsed.tzinfo is not None, f"createdAt without an offset: {value!r}"
    assert parsed.utcoffset() == timedelta(0), f"createdAt not in UTC: {value!r}"
    return parsed


async def page(
    tenant: Tenant,
    wallet_id: str,
    first: int | None = None,
    after: str | None = None,
    entry_type: str | None = None,
) -> dict[str, Any]:
    data = await tenant.data(
        ENTRIES, {"id": wallet_id, "first": first, "after": after, "entryType": entry_type}
    )
    assert data["wallet"] is not None
    return data["wallet"]["ledgerEntries"]  # type: ignore[no-any-return]


def sequences(connection: dict[str, Any]) -> list[int]:
    return [edge["node"]["sequence"] for edge in connection["edges"]]


# --- postings -------------------------------------------------------------------------------


async def test_credit_then_debit_records_entries_and_moves_the_wallet(
    tenant: Tenant, database: Database
) -> None:
    created = await tenant.create_customer()
    customer_id = created["customer"]["id"]
    wallet_id = created["wallet"]["id"]
    assert created["wallet"] == {"id": wallet_id, "currency": "USD", "balance": 0}

    credit = await tenant.post(customer_id, 1000, "CREDIT", key="top-up-1", reason="Top-up")
    assert credit["__typename"] == "CreateLedgerEntrySuccess", credit
    assert credit["replayed"] is False
    entry = credit["entry"]
    assert {k: v for k, v in entry.items() if k not in ("id", "createdAt")} == {
        "entryType": "CREDIT",
        "amount": 1000,
        "currency": "USD",
        "balanceAfter": 1000,
        "sequence": 1,
        "reason": "Top-up",
        "idempotencyKey": "top-up-1",
    }
    assert from_global_id(entry["id"])[0] == "LedgerEntry"
    credit_created_at = parse_utc(entry["createdAt"])
    assert credit["wallet"] == {"id": wallet_id, "currency": "USD", "balance": 1000, "version": 1}

    debit = await tenant.post(customer_id, 300, "DEBIT", key="usage-1", reason="API calls")
    assert debit["__typename"] == "CreateLedgerEntrySuccess", debit
    assert debit["replayed"] is False
    assert {k: v for k, v in debit["entry"].items() if k not in ("id", "createdAt")} == {
        "entryType": "DEBIT",
        "amount": 300,
        "currency": "USD",
        "balanceAfter": 700,
        "sequence": 2,
        "reason": "API calls",
        "idempotencyKey": "usage-1",
    }
    assert debit["entry"]["id"] != entry["id"]
    parse_utc(debit["entry"]["createdAt"])
    assert debit["wallet"] == {"id": wallet_id, "currency": "USD", "balance": 700, "version": 2}

    # A third posting without a reason: reason is null, the sequence goes on.
    third = await tenant.post(customer_id, 50, "CREDIT", key="top-up-2")
    assert third["entry"]["reason"] is None
    assert third["entry"]["sequence"] == 3
    assert third["wallet"]["version"] == 3
    assert third["wallet"]["balance"] == 750

    # Read back: the same state, and createdAt is the same UTC instant once stored.
    customer = await wallet_of(tenant, customer_id)
    assert customer["wallets"] == [
        {"id": wallet_id, "currency": "USD", "balance": 750, "version": 3}
    ]
    nodes = [e["node"] for e in customer["wallet"]["ledgerEntries"]["edges"]]
    assert [(n["sequence"], n["entryType"], n["amount"], n["balanceAfter"]) for n in nodes] == [
        (3, "CREDIT", 50, 750),
        (2, "DEBIT", 300, 700),
        (1, "CREDIT", 1000, 1000),
    ]
    stored = await tenant.data(
        "query($id: ID!) { node(id: $id) { ... on LedgerEntry { createdAt reason idempotencyKey } } }",
        {"id": entry["id"]},
    )
    assert parse_utc(stored["node"]["createdAt"]) == credit_created_at
    assert stored["node"]["reason"] == "Top-up"
    assert stored["node"]["idempotencyKey"] == "top-up-1"
    assert await count_rows(database, "ledger_entries", tenant) == 3
    await assert_ledger_invariant(database)


async def test_debit_larger_than_the_balance_is_refused_and_writes_nothing(
    tenant: Tenant, database: Database
) -> None:
    customer_id = (await tenant.create_customer())["customer"]["id"]
    assert (await tenant.post(customer_id, 500))["__typename"] == "CreateLedgerEntrySuccess"

    refused = await tenant.post(customer_id, 501, "DEBIT", key="too-much")
    assert refused["__typename"] == "InsufficientBalanceError", refused
    assert refused["code"] == "INSUFFICIENT_BALANCE"
    assert refused["balance"] == 500
    assert refused["requested"] == 501
    assert refused["currency"] == "USD"
    assert refused["message"]

    customer = await wallet_of(tenant, customer_id)
    assert customer["wallet"]["balance"] == 500
    assert customer["wallet"]["version"] == 1
    assert sequences(customer["wallet"]["ledgerEntries"]) == [1]
    assert await count_rows(database, "ledger_entries", tenant) == 1

    # Nothing was recorded for the refused key either: it is free for another request.
    exact = await tenant.post(customer_id, 500, "DEBIT", key="too-much")
    assert exact["__typename"] == "CreateLedgerEntrySuccess", exact
    assert exact["replayed"] is False
    assert exact["entry"]["balanceAfter"] == 0
    assert exact["entry"]["sequence"] == 2
    assert exact["wallet"]["balance"] == 0
    assert exact["wallet"]["version"] == 2

    # An empty wallet refuses even the smallest debit.
    empty = await tenant.post(customer_id, 1, "DEBIT")
    assert empty["__typename"] == "InsufficientBalanceError", empty
    assert (empty["balance"], empty["requested"]) == (0, 1)
    assert await count_rows(database, "ledger_entries", tenant) == 2
    await assert_ledger_invariant(database)


async def test_debit_in_a_currency_without_a_wallet_is_refused_and_opens_nothing(
    tenant: Tenant, database: Database
) -> None:
    customer_id = (await tenant.create_customer())["customer"]["id"]
    await tenant.post(customer_id, 100)
    wallets_before = await count_rows(database, "wallets", tenant)

    refused = await tenant.post(customer_id, 10, "DEBIT", currency="EUR")
    assert refused["__typename"] == "InsufficientBalanceError", refused
    assert refused["code"] == "INSUFFICIENT_BALANCE"
    assert (refused["balance"], refused["requested"], refused["currency"]) == (0, 10, "EUR")

    customer = await wallet_of(tenant, customer_id, "EUR")
    assert customer["wallet"] is None
    assert [w["currency"] for w in customer["wallets"]] == ["USD"]
    assert customer["wallets"][0]["balance"] == 100
    assert await count_rows(database, "wallets", tenant) == wallets_before == 1
    assert await count_rows(database, "ledger_entries", tenant) == 1
    await assert_ledger_invariant(database)


async def test_credit_in_a_new_currency_opens_that_wallet(
    tenant: Tenant, database: Database
) -> None:
    created = await tenant.create_customer()
    customer_id = created["customer"]["id"]
    usd_wallet_id = created["wallet"]["id"]

    krw = await tenant.post(customer_id, 5000, currency="KRW")
    assert krw["__typename"] == "CreateLedgerEntrySuccess", krw
    assert krw["entry"]["currency"] == "KRW"
    assert krw["entry"]["sequence"] == 1
    assert krw["entry"]["balanceAfter"] == 5000
    assert krw["wallet"]["currency"] == "KRW"
    assert (krw["wallet"]["balance"], krw["wallet"]["version"]) == (5000, 1)
    assert krw["wallet"]["id"] != usd_wallet_id

    inr = await tenant.post(customer_id, 250, currency="INR")
    assert inr["__typename"] == "CreateLedgerEntrySuccess", inr
    assert (inr["wallet"]["currency"], inr["wallet"]["balance"], inr["wallet"]["version"]) == (
        "INR",
        250,
        1,
    )

    # A second KRW credit goes to the same wallet, not a new one.
    again = await tenant.post(customer_id, 1000, currency="KRW")
    assert again["wallet"]["id"] == krw["wallet"]["id"]
    assert (again["wallet"]["balance"], again["entry"]["sequence"]) == (6000, 2)

    customer = await wallet_of(tenant, customer_id, "KRW")
    assert customer["wallets"] == [
        {"id": usd_wallet_id, "currency": "USD", "balance": 0, "version": 0},
        {"id": krw["wallet"]["id"], "currency": "KRW", "balance": 6000, "version": 2},
        {"id": inr["wallet"]["id"], "currency": "INR", "balance": 250, "version": 1},
    ]
    assert customer["wallet"]["id"] == krw["wallet"]["id"]
    assert sequences(customer["wallet"]["ledgerEntries"]) == [2, 1]
    assert await count_rows(database, "wallets", tenant) == 3
    await assert_ledger_invariant(database)


# --- idempotency ----------------------------------------------------------------------------


async def test_same_key_and_input_replays_the_original_entry(
    tenant: Tenant, database: Database
) -> None:
    customer_id = (await tenant.create_customer())["customer"]["id"]
    first = await tenant.post(customer_id, 700, key="order-42", reason="Order 42")
    assert first["__typename"] == "CreateLedgerEntrySuccess"
    assert first["replayed"] is False

    for _ in range(2):
        replay = await tenant.post(customer_id, 700, key="order-42", reason="Order 42")
        assert replay["__typename"] == "CreateLedgerEntrySuccess", replay
        assert replay["replayed"] is True
        assert replay["entry"]["id"] == first["entry"]["id"]
        assert {k: v for k, v in replay["entry"].items() if k != "createdAt"} == {
            k: v for k, v in first["entry"].items() if k != "createdAt"
        }
        assert parse_utc(replay["entry"]["createdAt"]) == parse_utc(first["entry"]["createdAt"])
        assert replay["wallet"]["id"] == first["wallet"]["id"]
        assert (replay["wallet"]["balance"], replay["wallet"]["version"]) == (700, 1)

    assert await count_rows(database, "ledger_entries", tenant) == 1
    customer = await wallet_of(tenant, customer_id)
    assert (customer["wallet"]["balance"], customer["wallet"]["version"]) == (700, 1)
    await assert_ledger_invariant(database)


@pytest.mark.parametrize(
    "change", ["amount", "entryType", "currency", "reason", "no reason", "customer"]
)
async def test_same_key_with_other_input_is_a_conflict_and_writes_nothing(
    tenant: Tenant, database: Database, change: str
) -> None:
    customer_id = (await tenant.create_customer())["customer"]["id"]
    other_customer_id = (await tenant.create_customer())["customer"]["id"]
    original = await tenant.post(customer_id, 700, "CREDIT", "USD", key="k-1", reason="Top-up")
    assert original["__typename"] == "CreateLedgerEntrySuccess"

    variables = entry_input(customer_id, 700, "CREDIT", "USD", key="k-1", reason="Top-up")
    changed = {
        "amount": {"amount": 701},
        "entryType": {"entryType": "DEBIT"},  # a debit the balance would allow
        "currency": {"currency": "EUR"},  # a credit that would open a wallet
        "reason": {"reason": "Another reason"},
        "no reason": {"reason": None},
        "customer": {"customerId": other_customer_id},
    }[change]
    variables["input"].update(changed)
    result = (await tenant.data(CREATE_ENTRY, variables))["createLedgerEntry"]

    assert result == {
        "__typename": "IdempotencyConflictError",
        "code": "IDEMPOTENCY_CONFLICT",
        "message": result["message"],
        "idempotencyKey": "k-1",
    }
    assert "k-1" in result["message"]
    assert await count_rows(database, "ledger_entries", tenant) == 1
    assert await count_rows(database, "wallets", tenant) == 2  # no EUR wallet was opened
    customer = await wallet_of(tenant, customer_id)
    assert customer["wallets"] == [
        {"id": original["wallet"]["id"], "currency": "USD", "balance": 700, "version": 1}
    ]
    other = await wallet_of(tenant, other_customer_id)
    assert [(w["balance"], w["version"]) for w in other["wallets"]] == [(0, 0)]

    # The original request still replays.
    replay = await tenant.post(customer_id, 700, "CREDIT", "USD", key="k-1", reason="Top-up")
    assert replay["replayed"] is True
    assert replay["entry"]["id"] == original["entry"]["id"]
    await assert_ledger_invariant(database)


async def test_idempotency_keys_are_per_organization(
    tenant: Tenant, other_tenant: Tenant, database: Database
) -> None:
    mine = (await tenant.create_customer())["customer"]["id"]
    theirs = (await other_tenant.create_customer())["customer"]["id"]

    first = await tenant.post(mine, 100, key="shared-key")
    assert (first["__typename"], first["replayed"]) == ("CreateLedgerEntrySuccess", False)
    # The same key in another organization, with other input: independent, not a conflict.
    other = await other_tenant.post(theirs, 999, key="shared-key")
    assert other["__typename"] == "CreateLedgerEntrySuccess", other
    assert other["replayed"] is False
    assert other["entry"]["id"] != first["entry"]["id"]
    assert (other["entry"]["amount"], other["wallet"]["balance"]) == (999, 999)
    # Each organization replays its own entry for the key.
    their_replay = await other_tenant.post(theirs, 999, key="shared-key")
    assert (their_replay["replayed"], their_replay["entry"]["id"]) == (True, other["entry"]["id"])
    # A tenant's own key still conflicts within the tenant.
    assert (await tenant.post(mine, 999, key="shared-key"))[
        "__typename"
    ] == "IdempotencyConflictError"

    replay = await tenant.post(mine, 100, key="shared-key")
    assert replay["replayed"] is True
    assert replay["entry"]["id"] == first["entry"]["id"]
    assert await count_rows(database, "ledger_entries", tenant) == 1
    assert await count_rows(database, "ledger_entries", other_tenant) == 1
    await assert_ledger_invariant(database)


async def test_replayed_debit_after_the_balance_was_drained_returns_the_original(
    tenant: Tenant, database: Database
) -> None:
    customer_id = (await tenant.create_customer())["customer"]["id"]
    await tenant.post(customer_id, 100, key="fund")
    debit = await tenant.post(customer_id, 60, "DEBIT", key="debit-60")
    assert debit["__typename"] == "CreateLedgerEntrySuccess"
    drain = await tenant.post(customer_id, 40, "DEBIT", key="drain")
    assert drain["wallet"]["balance"] == 0

    replay = await tenant.post(customer_id, 60, "DEBIT", key="debit-60")
    assert replay["__typename"] == "CreateLedgerEntrySuccess", replay
    assert replay["replayed"] is True
    assert replay["entry"]["id"] == debit["entry"]["id"]
    assert (replay["entry"]["sequence"], replay["entry"]["balanceAfter"]) == (2, 40)
    assert replay["wallet"]["id"] == debit["wallet"]["id"]

    customer = await wallet_of(tenant, customer_id)
    assert (customer["wallet"]["balance"], customer["wallet"]["version"]) == (0, 3)
    assert await count_rows(database, "ledger_entries", tenant) == 3
    await assert_ledger_invariant(database)


# --- races ----------------------------------------------------------------------------------


async def test_50_concurrent_requests_with_one_key_write_one_entry(
    tenant: Tenant, database: Database
) -> None:
    customer_id = (await tenant.create_customer())["customer"]["id"]
    try:
        results = await asyncio.gather(
            *(
                tenant.post(customer_id, 250, "CREDIT", key="concurrent-key", reason="Race")
                for _ in range(50)
            )
        )
        assert [r["__typename"] for r in results] == ["CreateLedgerEntrySuccess"] * 50, results
        assert len({r["entry"]["id"] for r in results}) == 1
        assert sum(1 for r in results if r["replayed"] is False) == 1
        assert sum(1 for r in results if r["replayed"] is True) == 49
        assert {(r["entry"]["sequence"], r["entry"]["balanceAfter"]) for r in results} == {(1, 250)}
        assert await count_rows(database, "ledger_entries", tenant) == 1
        customer = await wallet_of(tenant, customer_id)
        assert (customer["wallet"]["balance"], customer["wallet"]["version"]) == (250, 1)
    finally:
        await assert_ledger_invariant(database)


@postgresql_only
async def test_a_key_taken_on_another_wallet_while_the_posting_waited_writes_nothing(
    tenant: Tenant, database: Database
) -> None:
    """The same key for two currencies, the USD posting held on its wallet's row lock while
    the INR one commits: the USD statement then breaks the entries' unique key. It is a
    conflict, its wallet does not move, and the key has one entry."""
    created = await tenant.create_customer()
    customer_id = created["customer"]["id"]
    _, usd_wallet = from_global_id(created["wallet"]["id"])
    await tenant.post(customer_id, 5, key="fund-usd")
    await tenant.post(customer_id, 7, currency="INR", key="fund-inr")
    try:
        async with database.engine.begin() as holder:
            await holder.execute(
                text("SELECT id FROM wallets WHERE id = :id FOR UPDATE"), {"id": usd_wallet}
            )
            usd = asyncio.create_task(tenant.post(customer_id, 10, key="taken-meanwhile"))
            await _until_waiting_on_a_lock(database)
            inr = await tenant.post(customer_id, 10, currency="INR", key="taken-meanwhile")
        assert inr["__typename"] == "CreateLedgerEntrySuccess" and inr["replayed"] is False
        refused = await usd
        assert refused["__typename"] == "IdempotencyConflictError", refused
        usd_after = await tenant.post(customer_id, 1, key="after")
        assert (usd_after["wallet"]["balance"], usd_after["wallet"]["version"]) == (6, 2)
        assert await count_rows(database, "ledger_entries", tenant) == 4
    finally:
        await assert_ledger_invariant(database)


async def _until_waiting_on_a_lock(database: Database) -> None:
    async with database.engine.connect() as watcher:
        for _ in range(500):
            waiting = await watcher.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE application_name = 'billgraph' AND wait_event_type = 'Lock'"
                )
            )
            if waiting:
                return
            await asyncio.sleep(0.01)
    raise AssertionError("the posting never waited on the wallet's lock")


async def test_200_concurrent_debits_of_1_on_150_never_overdraw(
    tenant: Tenant, database: Database
) -> None:
    customer_id = (await tenant.create_customer())["customer"]["id"]
    await tenant.post(customer_id, 150, key="fund")
    try:
        results = await asyncio.gather(
            *(tenant.post(customer_id, 1, "DEBIT", key=f"debit-{i}") for i in range(200))
        )
        kinds = [r["__typename"] for r in results]
        assert kinds.count("CreateLedgerEntrySuccess") == 150
        assert kinds.count("InsufficientBalanceError") == 50
        refusals = [r for r in results if r["__typename"] == "InsufficientBalanceError"]
        assert {(r["balance"], r["requested"], r["currency"]) for r in refusals} == {(0, 1, "USD")}
        successes = [r for r in results if r["__typename"] == "CreateLedgerEntrySuccess"]
        # Every successful debit saw a distinct balance and took the next sequence: no lost update.
        assert sorted(r["entry"]["balanceAfter"] for r in successes) == list(range(150))
        assert sorted(r["entry"]["sequence"] for r in successes) == list(range(2, 152))
        assert all(r["replayed"] is False for r in successes)
        customer = await wallet_of(tenant, customer_id)
        assert (customer["wallet"]["balance"], customer["wallet"]["version"]) == (0, 151)
        assert await count_rows(database, "ledger_entries", tenant) == 151
    finally:
        await assert_ledger_invariant(database)


# --- amount bounds --------------------------------------------------------------------------


async def test_amount_of_2_pow_53_minus_1_on_an_empty_wallet_works(
    tenant: Tenant, database: Database
) -> None:
    customer_id = (await tenant.create_customer())["customer"]["id"]
    result = await tenant.post(customer_id, MAX_AMOUNT)
    assert result["__typename"] == "CreateLedgerEntrySuccess", result
    assert result["entry"]["amount"] == MAX_AMOUNT
    assert result["entry"]["balanceAfter"] == MAX_AMOUNT
    assert result["wallet"]["balance"] == MAX_AMOUNT
    customer = await wallet_of(tenant, customer_id)
    assert customer["wallet"]["balance"] == MAX_AMOUNT

    debit = await tenant.post(customer_id, MAX_AMOUNT, "DEBIT")
    assert debit["__typename"] == "CreateLedgerEntrySuccess", debit
    assert debit["wallet"]["balance"] == 0
    await assert_ledger_invariant(database)


async def test_credit_that_would_pass_2_pow_53_minus_1_is_a_validation_error(
    tenant: Tenant, database: Database
) -> None:
    customer_id = (await tenant.create_customer())["customer"]["id"]
    assert (await tenant.post(customer_id, MAX_AMOUNT - 5))[
        "__typename"
    ] == "CreateLedgerEntrySuccess"

    refused = await tenant.post(customer_id, 6, key="one-too-many")
    assert refused["__typename"] == "ValidationError", refused
    assert refused["code"] == "VALIDATION_ERROR"
    assert refused["field"] == "amount"
    customer = await wallet_of(tenant, customer_id)
    assert (customer["wallet"]["balance"], customer["wallet"]["version"]) == (MAX_AMOUNT - 5, 1)
    assert await count_rows(database, "ledger_entries", tenant) == 1

    exact = await tenant.post(customer_id, 5, key="one-too-many")
    assert exact["__typename"] == "CreateLedgerEntrySuccess", exact
    assert exact["wallet"]["balance"] == MAX_AMOUNT
    beyond = await tenant.post(customer_id, 1)
    assert beyond["__typename"] == "ValidationError", beyond
    assert beyond["field"] == "amount"
    assert await count_rows(database, "ledger_entries", tenant) == 2
    await assert_ledger_invariant(database)


@pytest.mark.parametrize("amount", [0, -1, -100])
async def test_amount_must_be_positive(tenant: Tenant, database: Database, amount: int) -> None:
    customer_id = (await tenant.create_customer())["customer"]["id"]
    for entry_type in ("CREDIT", "DEBIT"):
        result = await tenant.post(customer_id, amount, entry_type)
        assert result["__typename"] == "ValidationError", result
        assert (result["code"], result["field"]) == ("VALIDATION_ERROR", "amount")
    assert await count_rows(database, "ledger_entries", tenant) == 0
    await assert_ledger_invariant(database)


async def test_amount_beyond_the_bigint_range_is_bad_user_input(
    tenant: Tenant, database: Database
) -> None:
    customer_id = (await tenant.create_customer())["customer"]["id"]
    body = await tenant.gql(CREATE_ENTRY, entry_input(customer_id, MAX_AMOUNT + 1))
    assert body.get("data") is None
    assert [e["extensions"]["code"] for e in body["errors"]] == ["BAD_USER_INPUT"]
    assert await count_rows(database, "ledger_entries", tenant) == 0


# --- ledgerEntries connection ----------------------------------------------------------------


async def _wallet_with_credits(tenant: Tenant, count: int) -> tuple[str, str]:
    created = await tenant.create_customer()
    customer_id = created["customer"]["id"]
    for amount in range(1, count + 1):
        result = await tenant.post(customer_id, amount)
        assert result["entry"]["sequence"] == amount
    return customer_id, created["wallet"]["id"]


async def test_ledger_entries_page_newest_first_by_keyset(
    tenant: Tenant, database: Database
) -> None:
    _, wallet_id = await _wallet_with_credits(tenant, 25)

    default = await page(tenant, wallet_id)
    assert sequences(default) == list(range(25, 5, -1))  # 20 by default, newest first
    assert default["pageInfo"]["hasNextPage"] is True

    seen: list[int] = []
    ids: list[str] = []
    after = None
    pages = []
    for _ in range(3):
        connection = await page(tenant, wallet_id, first=10, after=after)
        pages.append(connection)
        seen += sequences(connection)
        ids += [e["node"]["id"] for e in connection["edges"]]
        assert connection["pageInfo"]["endCursor"] == connection["edges"][-1]["cursor"]
        after = connection["pageInfo"]["endCursor"]
    assert [sequences(p) for p in pages] == [
        list(range(25, 15, -1)),
        list(range(15, 5, -1)),
        list(range(5, 0, -1)),
    ]
    assert [p["pageInfo"]["hasNextPage"] for p in pages] == [True, True, False]
    assert seen == list(range(25, 0, -1))
    assert len(set(ids)) == 25
    # Entries show amounts and running balances of their own row.
    node = pages[0]["edges"][0]["node"]
    assert (node["amount"], node["balanceAfter"]) == (25, 25 * 26 // 2)

    # Past the end: an empty page.
    end = await page(tenant, wallet_id, first=10, after=after)
    assert end["edges"] == []
    assert end["pageInfo"] == {"hasNextPage": False, "endCursor": None}
    await assert_ledger_invariant(database)


async def test_entries_posted_while_paging_do_not_shift_later_pages(
    tenant: Tenant, database: Database
) -> None:
    customer_id, wallet_id = await _wallet_with_credits(tenant, 25)

    first = await page(tenant, wallet_id, first=10)
    assert sequences(first) == list(range(25, 15, -1))
    for _ in range(5):  # new entries land in front of what was read
        await tenant.post(customer_id, 1000)
    second = await page(tenant, wallet_id, first=10, after=first["pageInfo"]["endCursor"])
    assert sequences(second) == list(range(15, 5, -1))
    await tenant.post(customer_id, 7, "DEBIT")
    third = await page(tenant, wallet_id, first=10, after=second["pageInfo"]["endCursor"])
    assert sequences(third) == list(range(5, 0, -1))
    assert third["pageInfo"]["hasNextPage"] is False

    fresh = await page(tenant, wallet_id, first=10)
    assert sequences(fresh) == list(range(31, 21, -1))
    await assert_ledger_invariant(database)


async def test_ledger_entries_filter_by_entry_type(tenant: Tenant, database: Database) -> None:
    created = await tenant.create_customer()
    customer_id, wallet_id = created["customer"]["id"], created["wallet"]["id"]
    plan = [
        ("CREDIT", 100),
        ("DEBIT", 10),
        ("CREDIT", 50),
        ("DEBIT", 20),
        ("DEBIT", 30),
        ("CREDIT", 5),
    ]
    for entry_type, amount in plan:
        assert (await tenant.post(customer_id, amount, entry_type))[
            "__typename"
        ] == "CreateLedgerEntrySuccess"

    debits = await page(tenant, wallet_id, first=10, entry_type="DEBIT")
    assert [(e["node"]["sequence"], e["node"]["amount"]) for e in debits["edges"]] == [
        (5, 30),
        (4, 20),
        (2, 10),
    ]
    assert {e["node"]["entryType"] for e in debits["edges"]} == {"DEBIT"}
    assert debits["pageInfo"]["hasNextPage"] is False

    credits = await page(tenant, wallet_id, first=10, entry_type="CREDIT")
    assert sequences(credits) == [6, 3, 1]

    # Paging within the filter.
    head = await page(tenant, wallet_id, first=2, entry_type="DEBIT")
    assert sequences(head) == [5, 4]
    assert head["pageInfo"]["hasNextPage"] is True
    tail = await page(
        tenant, wallet_id, first=2, after=head["pageInfo"]["endCursor"], entry_type="DEBIT"
    )
    assert sequences(tail) == [2]
    assert tail["pageInfo"]["hasNextPage"] is False
    await assert_ledger_invariant(database)


def _raw_cursor(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "after",
    [
        "not a cursor!",
        "%%%",
        _raw_cursor("entry:abc"),
        _raw_cursor("entry:-1"),
        _raw_cursor("entry:"),
        _raw_cursor("entry:99999999999999999999999"),
        _raw_cursor("LedgerEntry:1"),
        "x" * 200,
    ],
)
async def test_invalid_after_cursor_is_bad_user_input(
    tenant: Tenant, database: Database, after: str
) -> None:
    _, wallet_id = await _wallet_with_credits(tenant, 2)
    body = await tenant.gql(ENTRIES, {"id": wallet_id, "first": 10, "after": after})
    assert body["errors"], body
    assert [e["extensions"]["code"] for e in body["errors"]] == ["BAD_USER_INPUT"]
    assert body["errors"][0]["path"] == ["wallet", "ledgerEntries"]
    assert body["data"] == {"wallet": None}
    await assert_ledger_invariant(database)


async def test_customer_cursor_is_refused_by_ledger_entries(
    tenant: Tenant, database: Database
) -> None:
    _, wallet_id = await _wallet_with_credits(tenant, 3)
    await tenant.create_customer()
    customers = await tenant.data(
        "{ customers(first: 1) { edges { cursor } pageInfo { endCursor hasNextPage } } }"
    )
    customer_cursor = customers["customers"]["pageInfo"]["endCursor"]
    assert customer_cursor == customers["customers"]["edges"][0]["cursor"]
    assert customers["customers"]["pageInfo"]["hasNextPage"] is True

    body = await tenant.gql(ENTRIES, {"id": wallet_id, "first": 10, "after": customer_cursor})
    assert [e["extensions"]["code"] for e in body["errors"]] == ["BAD_USER_INPUT"]
    assert body["data"] == {"wallet": None}

    # And the other way round: an entry cursor does not page customers.
    entry_cursor = (await page(tenant, wallet_id, first=1))["pageInfo"]["endCursor"]
    body = await tenant.gql(
        "query($after: String) { customers(first: 5, after: $after) { edges { cursor } } }",
        {"after": entry_cursor},
    )
    assert [e["extensions"]["code"] for e in body["errors"]] == ["BAD_USER_INPUT"]
    await assert_ledger_invariant(database)


@pytest.mark.parametrize("first", [-1, 101])
async def test_page_size_out_of_range_is_bad_user_input(
    tenant: Tenant, database: Database, first: int
) -> None:
    _, wallet_id = await _wallet_with_credits(tenant, 1)
    body = await tenant.gql(ENTRIES, {"id": wallet_id, "first": first})
    assert [e["extensions"]["code"] for e in body["errors"]] == ["BAD_USER_INPUT"]
    await assert_ledger_invariant(database)


# --- append-only ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE ledger_entries SET amount = 1 WHERE organization_id = :org",
        "UPDATE ledger_entries SET reason = 'rewritten' WHERE organization_id = :org",
        "DELETE FROM ledger_entries WHERE organization_id = :org",
    ],
)
async def test_ledger_entries_refuse_update_and_delete_in_the_database(
    tenant: Tenant, database: Database, statement: str
) -> None:
    customer_id = (await tenant.create_customer())["customer"]["id"]
    entry = (await tenant.post(customer_id, 500, reason="Original"))["entry"]
    await tenant.post(customer_id, 200, "DEBIT")

    with pytest.raises(sqlalchemy.exc.DBAPIError):
        async with database.engine.begin() as connection:
            await connection.execute(text(statement), {"org": org_db_id(tenant)})

    assert await count_rows(database, "ledger_entries", tenant) == 2
    stored = await tenant.data(
        "query($id: ID!) { node(id: $id) { ... on LedgerEntry { amount reason balanceAfter } } }",
        {"id": entry["id"]},
    )
    assert stored["node"] == {"amount": 500, "reason": "Original", "balanceAfter": 500}
    await assert_ledger_invariant(database)


# --- node and edges between types -----------------------------------------------------------


NODE = """
query($id: ID!) { node(id: $id) {
  __typename id
  ... on LedgerEntry { amount sequence wallet { id currency balance customer { id email } } }
  ... on Wallet { currency balance customer { id email } }
  ... on Customer { email wallets { id } }
  ... on Organization { name defaultCurrency }
} }
"""


async def test_node_resolves_every_type_and_the_links_between_them(
    tenant: Tenant, database: Database
) -> None:
    created = await tenant.create_customer("node-test@example.com")
    customer_id, wallet_id = created["customer"]["id"], created["wallet"]["id"]
    entry = (await tenant.post(customer_id, 321))["entry"]

    as_entry = (await tenant.data(NODE, {"id": entry["id"]}))["node"]
    assert as_entry == {
        "__typename": "LedgerEntry",
        "id": entry["id"],
        "amount": 321,
        "sequence": 1,
        "wallet": {
            "id": wallet_id,
            "currency": "USD",
            "balance": 321,
            "customer": {"id": customer_id, "email": "node-test@example.com"},
        },
    }
    as_wallet = (await tenant.data(NODE, {"id": wallet_id}))["node"]
    assert as_wallet == {
        "__typename": "Wallet",
        "id": wallet_id,
        "currency": "USD",
        "balance": 321,
        "customer": {"id": customer_id, "email": "node-test@example.com"},
    }
    as_customer = (await tenant.data(NODE, {"id": customer_id}))["node"]
    assert as_customer == {
        "__typename": "Customer",
        "id": customer_id,
        "email": "node-test@example.com",
        "wallets": [{"id": wallet_id}],
    }
    as_org = (await tenant.data(NODE, {"id": tenant.organization_id}))["node"]
    assert as_org["__typename"] == "Organization"
    assert as_org["id"] == tenant.organization_id
    assert as_org["defaultCurrency"] == "USD"

    # The root fields agree with node.
    roots = await tenant.data(
        "query($c: ID!, $w: ID!) { customer(id: $c) { id } wallet(id: $w) { id customer { id } } }",
        {"c": customer_id, "w": wallet_id},
    )
    assert roots == {
        "customer": {"id": customer_id},
        "wallet": {"id": wallet_id, "customer": {"id": customer_id}},
    }

    # An id of one type read as another is simply not found.
    wrong = await tenant.data(
        "query($id: ID!) { customer(id: $id) { id } wallet(id: $id) { id } }", {"id": entry["id"]}
    )
    assert wrong == {"customer": None, "wallet": None}
    await assert_ledger_invariant(database)


async def test_node_of_an_unknown_or_malformed_id(tenant: Tenant) -> None:
    missing = await tenant.gql(NODE, {"id": to_global_id("LedgerEntry", 999_999_999)})
    assert "errors" not in missing
    assert missing["data"] == {"node": None}
    unknown_type = await tenant.gql(NODE, {"id": to_global_id("Invoice", 1)})
    assert "errors" not in unknown_type
    assert unknown_type["data"] == {"node": None}
    malformed = await tenant.gql(NODE, {"id": "definitely not an id"})
    assert [e["extensions"]["code"] for e in malformed["errors"]] == ["BAD_USER_INPUT"]


async def test_created_at_follows_the_sequence_under_concurrent_postings(
    tenant: Tenant, database: Database
) -> None:
    customer_id = (await tenant.create_customer())["customer"]["id"]
    await asyncio.gather(*(tenant.post(customer_id, 1 + i) for i in range(40)))
    data = await tenant.data(
        """query($id: ID!) { customer(id: $id) { wallet(currency: USD) {
            ledgerEntries(first: 50) { edges { node { sequence createdAt } } } } } }""",
        {"id": customer_id},
    )
    nodes = [e["node"] for e in data["customer"]["wallet"]["ledgerEntries"]["edges"]]
    assert [n["sequence"] for n in nodes] == list(range(40, 0, -1))
    times = [datetime.fromisoformat(n["createdAt"]) for n in nodes]
    assert times == sorted(times, reverse=True)
    await assert_ledger_invariant(database)
