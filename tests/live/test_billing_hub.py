"""Billing's live events in one process: what a unit announces after its commit (and never
after a rollback), their wire form, one read per event for every subscriber of a process, and
bounded queues that coalesce per subscription or invoice. Real database, real billing."""

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest
from sqlalchemy import select

from billgraph.billing import subscriptions
from billgraph.checkout.providers import Providers
from billgraph.core.unit import unit_of_work
from billgraph.db.engine import Database
from billgraph.db.models import Invoice, Subscription, SubscriptionEvent
from billgraph.live.billing import (
    BillingEnded,
    BillingSubscriber,
    InvoiceDelivery,
    StatusDelivery,
    Topic,
)
from billgraph.live.events import (
    Event,
    InvoiceUpdated,
    SubscriptionStatusChanged,
    decode,
    encode,
)
from billgraph.live.hub import SLOW_SUBSCRIBER, Hub
from billgraph.settings import Settings
from tests.billing.helpers import Org, new_org


@pytest.fixture
async def org(database: Database, settings: Settings) -> AsyncIterator[Org]:
    providers = Providers(database, settings)
    yield await new_org(database, providers)
    await providers.close()


@pytest.fixture
def announced(database: Database) -> Iterator[list[Event]]:
    """What committed units announce while the test runs (balances left out)."""
    seen: list[Event] = []

    def record(event: object) -> None:
        if isinstance(event, SubscriptionStatusChanged | InvoiceUpdated):
            seen.append(event)

    database.events.attach(record)
    yield seen
    database.events.attach(None)


@pytest.fixture
async def hub(database: Database) -> AsyncIterator[Hub]:
    hub = Hub(database, queue_size=10)
    hub.start()
    yield hub
    await hub.stop()


async def _recorded(database: Database, subscription_id: int) -> dict[str, int]:
    """The subscription's events: type -> id (the latest of each type)."""
    async with database.sessions() as session:
        rows = await session.execute(
            select(SubscriptionEvent.type, SubscriptionEvent.id)
            .where(SubscriptionEvent.subscription_id == subscription_id)
            .order_by(SubscriptionEvent.id)
        )
        return {type_: id_ for type_, id_ in rows.all()}


async def test_a_unit_announces_its_status_changes_and_invoices_after_commit_only(
    org: Org, database: Database, announced: list[Event]
) -> None:
    customer = await org.customer(credit=1500)
    plan = await org.plan(amount=1000)
    created = await org.subscribe(customer, plan)
    subscription = created.subscription
    assert created.invoice is not None
    recorded = await _recorded(database, subscription.id)
    common = {
        "organization_id": org.id,
        "customer_id": customer,
        "subscription_id": subscription.id,
    }
    assert announced == [
        SubscriptionStatusChanged(
            **common, previous_status=None, status="INCOMPLETE", event_id=recorded["created"]
        ),
        SubscriptionStatusChanged(
            **common,
            previous_status="INCOMPLETE",
            status="ACTIVE",
            event_id=recorded["activated"],
        ),
        InvoiceUpdated(
            organization_id=org.id,
            customer_id=customer,
            invoice_id=created.invoice.id,
            status="PAID",
        ),
    ]

    # A change rolled back is never announced.
    announced.clear()
    with pytest.raises(RuntimeError):
        async with unit_of_work(database) as unit:
            await subscriptions.cancel(unit, org.id, subscription.id, at_period_end=False)
            raise RuntimeError("the request failed after the cancel")
    assert announced == []
    assert (await org.subscription(subscription.id)).status == "ACTIVE"

    # One without a recording event links none; plain writes that change nothing shown
    # announce nothing.
    async with unit_of_work(database) as unit:
        row = await subscriptions.cancel(unit, org.id, subscription.id, at_period_end=True)
    assert row.cancel_at_period_end and announced == []
    async with unit_of_work(database) as unit:
        await subscriptions.cancel(unit, org.id, subscription.id, at_period_end=False)
    (canceled,) = announced
    assert isinstance(canceled, SubscriptionStatusChanged)
    assert (canceled.previous_status, canceled.status) == ("ACTIVE", "CANCELED")
    assert canceled.event_id == (await _recorded(database, subscription.id))["canceled"]


def test_billing_events_cross_the_wire_as_ids_and_statuses() -> None:
    change = SubscriptionStatusChanged(
        organization_id=3,
        customer_id=4,
        subscription_id=5,
        previous_status=None,
        status="TRIALING",
        event_id=None,
    )
    update = InvoiceUpdated(organization_id=3, customer_id=4, invoice_id=6, status="OPEN")
    for event in (change, update, _change(7, "ACTIVE", "PAST_DUE", 8)):
        assert decode(encode(event)) == event
        assert len(encode(event)) < 200
    with pytest.raises(KeyError):
        decode('{"type": "invoice", "org": 1}')


async def test_one_read_per_event_serves_every_subscriber_of_the_process(
    org: Org, hub: Hub, database: Database
) -> None:
    customer, neighbour = await org.customer(credit=1000), await org.customer(credit=1000)
    plan = await org.plan(amount=1000)
    created = await org.subscribe(customer, plan)
    change = _change(created.subscription.id, "INCOMPLETE", "ACTIVE", None, org.id, customer)
    with (
        hub.subscribe_billing(Topic.SUBSCRIPTION_STATUS, org.id) as everyone,
        hub.subscribe_billing(Topic.SUBSCRIPTION_STATUS, org.id, customer_id=customer) as own,
        hub.subscribe_billing(Topic.SUBSCRIPTION_STATUS, org.id, customer_id=neighbour) as other,
        hub.subscribe_billing(Topic.INVOICE, org.id) as invoices,
    ):
        assert hub.watches_billing(org.id) and not hub.watches(org.id)
        hub.receive(change)
        first = await asyncio.wait_for(everyone.next(), 5)
        second = await asyncio.wait_for(own.next(), 5)
        assert first is second  # the rows were read once, for both
        assert isinstance(first, StatusDelivery)
        assert first.subscription.id == created.subscription.id
        assert first.subscription.status == "ACTIVE" and first.event is None
        for idle in (other, invoices):
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(idle.next(), 0.2)
    assert not hub.watches_billing(org.id)


def _change(
    subscription_id: int,
    previous: str | None,
    status: str,
    event_id: int | None,
    organization_id: int = 1,
    customer_id: int = 1,
) -> SubscriptionStatusChanged:
    return SubscriptionStatusChanged(
        organization_id=organization_id,
        customer_id=customer_id,
        subscription_id=subscription_id,
        previous_status=previous,
        status=status,
        event_id=event_id,
    )


def _delivery(subscription_id: int, previous: str, status: str) -> StatusDelivery:
    row = Subscription(id=subscription_id, organization_id=1, customer_id=1, status=status)
    return StatusDelivery(_change(subscription_id, previous, status, None), row, None)


async def test_a_full_queue_coalesces_each_subscriptions_changes_into_one() -> None:
    subscriber = BillingSubscriber(Topic.SUBSCRIPTION_STATUS, 1, customer_id=None, capacity=3)
    for delivery in (
        _delivery(7, "ACTIVE", "PAST_DUE"),
        _delivery(7, "PAST_DUE", "SUSPENDED"),
        _delivery(8, "INCOMPLETE", "ACTIVE"),
        _delivery(7, "SUSPENDED", "ACTIVE"),  # the queue is full: it coalesces first
    ):
        subscriber.offer(delivery, too_slow=SLOW_SUBSCRIBER)
    got = [await asyncio.wait_for(subscriber.next(), 1) for _ in range(3)]
    assert [(d.key, d.change.previous_status, d.change.status) for d in got] == [  # type: ignore[union-attr]
        (7, "ACTIVE", "SUSPENDED"),  # one change spanning the two it merged
        (8, "INCOMPLETE", "ACTIVE"),
        (7, "SUSPENDED", "ACTIVE"),
    ]
    assert got[0].subscription.status == "SUSPENDED"  # type: ignore[union-attr]
    assert subscriber.skipped == 1


async def test_a_billing_subscriber_behind_on_more_than_its_queue_holds_is_ended() -> None:
    subscriber = BillingSubscriber(Topic.INVOICE, 1, customer_id=None, capacity=2)
    for invoice_id in (1, 2, 3):
        update = InvoiceUpdated(
            organization_id=1, customer_id=1, invoice_id=invoice_id, status="OPEN"
        )
        invoice = Invoice(id=invoice_id, organization_id=1, customer_id=1, status="OPEN")
        subscriber.offer(InvoiceDelivery(update, invoice), too_slow=SLOW_SUBSCRIBER)
    with pytest.raises(BillingEnded) as ended:
        await asyncio.wait_for(subscriber.next(), 1)
    assert ended.value.code == SLOW_SUBSCRIBER
