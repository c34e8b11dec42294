"""The hub of one process: order per wallet, reading back what arrives out of order or without
its entry, and bounded subscriber queues. Real database, real ledger entries."""

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import select

from billgraph.db.engine import Database
from billgraph.db.models import LedgerEntry, Wallet
from billgraph.graphql.node import from_global_id
from billgraph.live import hub as hub_module
from billgraph.live.events import BalanceChanged, decode, encode
from billgraph.live.hub import SLOW_SUBSCRIBER, Hub, Subscriber, SubscriptionEnded
from tests.conftest import assert_ledger_invariant
from tests.support.graph import Tenant


async def _wallet_events(database: Database, tenant: Tenant, count: int) -> list[BalanceChanged]:
    """`count` committed entries on a new wallet, as the events the ledger announced."""
    created = await tenant.create_customer()
    for i in range(count):
        await tenant.post(created["customer"]["id"], 10 + i)
    _, wallet_id = from_global_id(created["wallet"]["id"])
    async with database.sessions() as session:
        wallet = await session.get_one(Wallet, wallet_id)
        entries = await session.scalars(
            select(LedgerEntry)
            .where(LedgerEntry.wallet_id == wallet_id)
            .order_by(LedgerEntry.sequence)
        )
        return [BalanceChanged.of(wallet, entry) for entry in entries]


async def _drain(subscriber: Subscriber, count: int) -> list[BalanceChanged]:
    return [await asyncio.wait_for(subscriber.next(), 5) for _ in range(count)]


async def _nothing_more(subscriber: Subscriber) -> None:
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(subscriber.next(), 0.2)


@pytest.fixture
async def hub(database: Database) -> Hub:
    hub = Hub(database, queue_size=10)
    hub.start()
    yield hub  # type: ignore[misc]
    await hub.stop()


async def test_events_ahead_of_their_predecessors_are_read_back_in_order(
    database: Database, tenant: Tenant, hub: Hub
) -> None:
    events = await _wallet_events(database, tenant, 4)
    first = events[0]
    with hub.subscribe(first.organization_id, wallet_id=first.wallet_id) as subscriber:
        # Two replicas' notifications crossed: 1, then 4 before 2 and 3, then 2 and 3 late.
        for index in (0, 3, 1, 2):
            hub.receive(events[index])
        got = await _drain(subscriber, 4)
        assert [e.version for e in got] == [1, 2, 3, 4]
        assert [e.entry.id for e in got] == [e.entry.id for e in events]  # type: ignore[union-attr]
        assert [e.wallet.balance for e in got] == [10, 21, 33, 46]
        await _nothing_more(subscriber)  # the late 2 and 3 were dropped, not sent twice


async def test_an_event_without_its_entry_is_completed_from_the_ledger(
    database: Database, tenant: Tenant, hub: Hub
) -> None:
    (event,) = await _wallet_events(database, tenant, 1)
    slim = decode(encode(event, with_entry=False))  # what a too-large payload travels as
    assert slim.entry is None  # type: ignore[union-attr]
    with hub.subscribe(event.organization_id) as subscriber:
        hub.receive(slim)
        (got,) = await _drain(subscriber, 1)
    assert got.entry is not None and got.entry.id == event.entry.id  # type: ignore[union-attr]
    assert got.entry.reason == event.entry.reason  # type: ignore[union-attr]


async def test_events_go_only_to_matching_subscribers(
    database: Database, tenant: Tenant, other_tenant: Tenant, hub: Hub
) -> None:
    (mine,) = await _wallet_events(database, tenant, 1)
    (theirs,) = await _wallet_events(database, other_tenant, 1)
    with (
        hub.subscribe(mine.organization_id) as everything,
        hub.subscribe(mine.organization_id, customer_id=mine.wallet.customer_id) as customer,
        hub.subscribe(mine.organization_id, wallet_id=theirs.wallet_id) as foreign_wallet,
        hub.subscribe(mine.organization_id, low_balance_only=True) as low,
    ):
        hub.receive(theirs)
        hub.receive(mine)
        assert [e.entry.id for e in await _drain(everything, 1)] == [mine.entry.id]  # type: ignore[union-attr]
        assert [e.entry.id for e in await _drain(customer, 1)] == [mine.entry.id]  # type: ignore[union-attr]
        await _nothing_more(foreign_wallet)  # another organization's wallet: nothing
        await _nothing_more(low)  # a credit crosses no threshold


def _event(wallet_id: int, version: int) -> BalanceChanged:
    wallet = Wallet(
        id=wallet_id, organization_id=1, customer_id=1, version=version, balance=version
    )
    return BalanceChanged(wallet=wallet, entry=None)


async def test_a_full_queue_coalesces_to_each_wallets_latest_state() -> None:
    subscriber = Subscriber(1, wallet_id=None, customer_id=None, low_balance_only=False, capacity=3)
    for version in range(1, 6):
        subscriber.offer(_event(7, version))
    got = [await asyncio.wait_for(subscriber.next(), 1) for _ in range(3)]
    assert [e.version for e in got] == [3, 4, 5]  # 1 and 2 skipped: `version` shows the jump
    assert subscriber.skipped == 2


async def test_low_balance_alerts_never_coalesce() -> None:
    subscriber = Subscriber(1, wallet_id=None, customer_id=None, low_balance_only=True, capacity=2)
    for version in (1, 2, 3):  # three crossings of one wallet: none may be merged away
        subscriber.offer(_event(7, version))
    with pytest.raises(SubscriptionEnded) as ended:
        await asyncio.wait_for(subscriber.next(), 1)
    assert ended.value.code == SLOW_SUBSCRIBER


async def test_a_subscriber_behind_on_more_wallets_than_its_queue_holds_is_ended() -> None:
    subscriber = Subscriber(1, wallet_id=None, customer_id=None, low_balance_only=False, capacity=2)
    for wallet_id in (1, 2, 3):
        subscriber.offer(_event(wallet_id, 1))
    with pytest.raises(SubscriptionEnded) as ended:
        await asyncio.wait_for(subscriber.next(), 1)
    assert ended.value.code == SLOW_SUBSCRIBER


async def test_stopping_the_hub_ends_subscriptions_normally(database: Database) -> None:
    hub = Hub(database, queue_size=10)
    hub.start()
    with hub.subscribe(1) as subscriber:
        waiting = asyncio.create_task(subscriber.next())
        await asyncio.sleep(0.05)
        await hub.stop()
        with pytest.raises(SubscriptionEnded) as ended:
            await asyncio.wait_for(waiting, 1)
    assert ended.value.code is None


async def test_a_wallet_seen_first_gets_what_was_written_since_its_watchers_subscribed(
    database: Database, tenant: Tenant, hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hub_module, "CLOCK_SKEW", timedelta(0))  # one clock here
    created = await tenant.create_customer()
    customer_id = created["customer"]["id"]
    _, wallet_id = from_global_id(created["wallet"]["id"])
    organization_id = from_global_id(tenant.organization_id)[1]
    await tenant.post(customer_id, 1)  # before anyone watched: never sent
    with hub.subscribe(organization_id, wallet_id=wallet_id) as subscriber:
        for _ in range(3):
            await tenant.post(customer_id, 1)
        async with database.sessions() as session:
            wallet = await session.get_one(Wallet, wallet_id)
            latest = await session.scalar(
                select(LedgerEntry).where(
                    LedgerEntry.wallet_id == wallet_id, LedgerEntry.sequence == 4
                )
            )
        assert latest is not None
        # The newest notification overtook its predecessors, which arrive afterwards.
        hub.receive(BalanceChanged.of(wallet, latest))
        got = await _drain(subscriber, 3)
        assert [e.version for e in got] == [2, 3, 4]
        await _nothing_more(subscriber)


async def test_a_failing_announcement_never_fails_a_committed_posting(
    database: Database, tenant: Tenant
) -> None:
    customer_id = (await tenant.create_customer())["customer"]["id"]
    announced: list[object] = []

    def broken(event: object) -> None:
        announced.append(event)
        raise RuntimeError("broker down")

    database.events.attach(broken)
    try:
        first = await tenant.post(customer_id, 40, key="announce-1")
        replay = await tenant.post(customer_id, 40, key="announce-1")
    finally:
        database.events.attach(None)
    # The money moved once and the caller was told so; the retry is a replay, not a 2nd write.
    assert first["__typename"] == "CreateLedgerEntrySuccess" and first["replayed"] is False
    assert replay["replayed"] is True and replay["entry"]["id"] == first["entry"]["id"]
    assert len(announced) == 1  # announced after the commit, and only for the new entry
    await assert_ledger_invariant(database)
