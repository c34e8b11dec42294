"""A posting inside a caller's unit of work (what a webhook or a billing run does): it commits
with the caller's other writes or not at all, and it is announced only once committed."""

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import func, select

from billgraph.core.errors import IdempotencyConflictError, InsufficientBalanceError, NotFoundError
from billgraph.core.unit import unit_of_work
from billgraph.customers import service as customers
from billgraph.db.engine import Database
from billgraph.db.models import Customer, LedgerEntry, Wallet
from billgraph.graphql.node import from_global_id, to_global_id
from billgraph.ledger import service as ledger
from billgraph.ledger.service import EntryType
from billgraph.live.events import BalanceChanged
from tests.conftest import assert_ledger_invariant
from tests.support.graph import Tenant


class Failure(Exception):
    """Raised by a test inside a unit of work, to roll it back."""


@contextmanager
def announcements(database: Database) -> Iterator[list[object]]:
    """What the writers announce while the block runs (no broker is attached in these tests)."""
    heard: list[object] = []
    database.events.attach(heard.append)
    try:
        yield heard
    finally:
        database.events.attach(None)


async def customer_in(tenant: Tenant) -> tuple[int, int]:
    """(organization id, customer id) in the database, of a new customer of the tenant."""
    created = await tenant.create_customer()
    _, customer_id = from_global_id(created["customer"]["id"])
    _, organization_id = from_global_id(tenant.organization_id)
    return organization_id, customer_id


def request(
    organization_id: int, customer_id: int, amount: int, key: str, kind: str = "CREDIT"
) -> ledger.EntryRequest:
    return ledger.entry_request(
        organization_id,
        customer_id=customer_id,
        currency="USD",
        entry_type=EntryType(kind),
        amount=amount,
        reason=None,
        idempotency_key=key,
    )


async def entries_with_key(database: Database, organization_id: int, key: str) -> int:
    async with database.sessions() as session:
        return int(
            await session.scalar(
                select(func.count())
                .select_from(LedgerEntry)
                .where(
                    LedgerEntry.organization_id == organization_id,
                    LedgerEntry.idempotency_key == key,
                )
            )
            or 0
        )


async def balance(database: Database, customer_id: int) -> int:
    async with database.sessions() as session:
        wallet = await session.scalar(
            select(Wallet).where(Wallet.customer_id == customer_id, Wallet.currency == "USD")
        )
    assert wallet is not None
    return wallet.balance


async def test_committed_unit_writes_one_entry_and_announces_it_after_the_commit(
    tenant: Tenant, database: Database
) -> None:
    org, customer = await customer_in(tenant)
    with announcements(database) as heard:
        async with unit_of_work(database) as unit:
            posting = await ledger.post_entry(unit, request(org, customer, 500, "unit-commit"))
            assert heard == []  # not before the commit
        assert not posting.replayed
    assert [type(e) for e in heard] == [BalanceChanged]
    event = heard[0]
    assert isinstance(event, BalanceChanged)
    assert event.entry is not None and event.entry.id == posting.entry.id
    assert event.wallet.balance == 500 and event.version == posting.entry.sequence
    assert await entries_with_key(database, org, "unit-commit") == 1
    assert await balance(database, customer) == 500
    await assert_ledger_invariant(database)


async def test_rolled_back_unit_writes_no_entry_and_announces_nothing(
    tenant: Tenant, database: Database
) -> None:
    org, customer = await customer_in(tenant)
    with announcements(database) as heard, pytest.raises(Failure):
        async with unit_of_work(database) as unit:
            await ledger.post_entry(unit, request(org, customer, 500, "unit-rollback"))
            raise Failure
    assert heard == []
    assert await entries_with_key(database, org, "unit-rollback") == 0
    assert await balance(database, customer) == 0
    await assert_ledger_invariant(database)


async def test_posting_commits_or_rolls_back_with_the_callers_other_writes(
    tenant: Tenant, database: Database
) -> None:
    org, customer = await customer_in(tenant)
    with pytest.raises(Failure):
        async with unit_of_work(database) as unit:
            await customers.update(unit, org, customer, name="Rolled back")
            await ledger.post_entry(unit, request(org, customer, 300, "with-update-1"))
            raise Failure
    async with unit_of_work(database) as unit:
        await customers.update(unit, org, customer, name="Committed")
        await ledger.post_entry(unit, request(org, customer, 300, "with-update-2"))
    async with database.sessions() as session:
        row = await session.get_one(Customer, customer)
    assert row.name == "Committed"
    assert await entries_with_key(database, org, "with-update-1") == 0
    assert await entries_with_key(database, org, "with-update-2") == 1
    assert await balance(database, customer) == 300


async def test_refused_posting_leaves_the_callers_transaction_usable(
    tenant: Tenant, database: Database
) -> None:
    org, customer = await customer_in(tenant)
    await tenant.post(to_global_id("Customer", customer), 100)
    with announcements(database) as heard:
        async with unit_of_work(database) as unit:
            with pytest.raises(InsufficientBalanceError) as refused:
                await ledger.post_entry(unit, request(org, customer, 101, "too-much", "DEBIT"))
            assert refused.value.balance == 100
            kept = await ledger.post_entry(unit, request(org, customer, 40, "enough", "DEBIT"))
    assert kept.wallet.balance == 60
    assert len(heard) == 1
    assert await entries_with_key(database, org, "too-much") == 0
    assert await balance(database, customer) == 60
    await assert_ledger_invariant(database)


async def test_replay_and_conflict_inside_a_unit(tenant: Tenant, database: Database) -> None:
    org, customer = await customer_in(tenant)
    async with unit_of_work(database) as unit:
        first = await ledger.post_entry(unit, request(org, customer, 70, "unit-replay"))
    with announcements(database) as heard:
        async with unit_of_work(database) as unit:
            again = await ledger.post_entry(unit, request(org, customer, 70, "unit-replay"))
            with pytest.raises(IdempotencyConflictError):
                await ledger.post_entry(unit, request(org, customer, 71, "unit-replay"))
    assert again.replayed and again.entry.id == first.entry.id
    assert heard == []  # a replay moves nothing and announces nothing
    assert await entries_with_key(database, org, "unit-replay") == 1
    assert await balance(database, customer) == 70


async def test_unknown_or_other_organizations_customer_is_not_found_in_a_unit(
    tenant: Tenant, other_tenant: Tenant, database: Database
) -> None:
    org, _ = await customer_in(tenant)
    _, foreign = await customer_in(other_tenant)
    for customer_id in (foreign, 2**40):
        async with unit_of_work(database) as unit:
            with pytest.raises(NotFoundError):
                await ledger.post_entry(unit, request(org, customer_id, 5, f"nf-{customer_id}"))
    assert await entries_with_key(database, org, f"nf-{foreign}") == 0


async def test_credit_in_a_unit_opens_a_missing_wallet(tenant: Tenant, database: Database) -> None:
    org, customer = await customer_in(tenant)
    inr = ledger.entry_request(
        org,
        customer_id=customer,
        currency="INR",
        entry_type=EntryType.CREDIT,
        amount=900,
        reason=None,
        idempotency_key="unit-inr",
    )
    async with unit_of_work(database) as unit:
        posting = await ledger.post_entry(unit, inr)
    assert posting.wallet.currency == "INR" and posting.wallet.balance == 900
    await assert_ledger_invariant(database)


async def test_concurrent_units_never_overdraw_and_one_key_writes_once(
    tenant: Tenant, database: Database
) -> None:
    org, customer = await customer_in(tenant)
    async with unit_of_work(database) as unit:
        await ledger.post_entry(unit, request(org, customer, 30, "concurrent-fund"))

    async def debit(i: int) -> str:
        try:
            async with unit_of_work(database) as unit:
                await ledger.post_entry(unit, request(org, customer, 1, f"c-{i}", "DEBIT"))
        except InsufficientBalanceError:
            return "refused"
        return "ok"

    async def same_key() -> bool:
        async with unit_of_work(database) as unit:
            posting = await ledger.post_entry(unit, request(org, customer, 2, "c-same"))
        return posting.replayed

    with announcements(database) as heard:
        outcomes = await asyncio.gather(*(debit(i) for i in range(50)))
        replays = await asyncio.gather(*(same_key() for _ in range(10)))
    assert outcomes.count("ok") == 30 and outcomes.count("refused") == 20
    assert replays.count(False) == 1
    assert len(heard) == 31  # one announcement per committed entry
    assert await entries_with_key(database, org, "c-same") == 1
    assert await balance(database, customer) == 2
    await assert_ledger_invariant(database)
