"""What live billing events cost: the billing run over due sandbox subscriptions on PostgreSQL
with billing's ORM hooks removed ("off"), with them collecting and building the events but
nobody publishing ("hooks"), and with them publishing through NOTIFY as `billgraph bill` does
("notify"); then a gateway hub reading back what one run announced, for one subscriber.

Rounds alternate (off, hooks, notify, off, ...) on one server, each on its own test clock with
its own subscriptions: half renewed wholly by wallet credit, half partly (the rest charged to
a sandbox card). Run: `.venv/bin/python -m bench.billing_live [--subscriptions N] [--rounds R]`
(defaults 500 and 2: about 2 minutes). Prints a Markdown table.
"""

import argparse
import asyncio
import itertools
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import event

from bench.harness import postgres
from billgraph.billing import announcements, plans, run, subscriptions, test_clocks
from billgraph.billing import payment_methods as methods
from billgraph.checkout.providers import Providers
from billgraph.core.unit import unit_of_work
from billgraph.customers import service as customers
from billgraph.db.engine import Database, connect
from billgraph.db.migrate import upgrade
from billgraph.db.models import Invoice, Subscription, SubscriptionEvent
from billgraph.ledger import service as ledger
from billgraph.ledger.posting import EntryType
from billgraph.live.billing import Topic
from billgraph.live.brokers import PostgresBroker
from billgraph.live.events import BalanceChanged, InvoiceUpdated, SubscriptionStatusChanged
from billgraph.live.hub import Hub
from billgraph.organizations import service as organizations
from billgraph.settings import Settings

START = datetime(2025, 1, 15, 12, tzinfo=UTC)
RENEWAL = START + timedelta(days=32)
SEED_CONCURRENCY = 8
_keys = itertools.count(1)

HOOKS: list[tuple[Any, str, Any]] = [
    (Subscription, "before_update", announcements._subscription_updated),
    (Subscription, "after_insert", announcements._subscription_inserted),
    (SubscriptionEvent, "after_insert", announcements._event_recorded),
    (Invoice, "after_insert", announcements._invoice_inserted),
    (Invoice, "before_update", announcements._invoice_updated),
]


class HookClock:
    """Seconds spent inside billing's hooks and in building their events (timed wrappers
    swapped in for the hooks while a round runs)."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def timed(self, hook: Callable[..., None]) -> Callable[..., None]:
        def wrapper(*args: Any) -> None:
            started = time.perf_counter()
            try:
                hook(*args)
            finally:
                self.seconds += time.perf_counter() - started

        return wrapper


@contextmanager
def hooks_timed(clock: HookClock) -> Iterator[None]:
    wrappers = [(target, name, clock.timed(hook)) for target, name, hook in HOOKS]
    build = announcements._Changes.events
    with hooks_removed():
        for target, name, wrapper in wrappers:
            event.listen(target, name, wrapper)

        def timed_events(self: announcements._Changes) -> list[Any]:
            started = time.perf_counter()
            try:
                return build(self)
            finally:
                clock.seconds += time.perf_counter() - started

        announcements._Changes.events = timed_events  # type: ignore[method-assign]
        try:
            yield
        finally:
            announcements._Changes.events = build  # type: ignore[method-assign]
            for target, name, wrapper in wrappers:
                event.remove(target, name, wrapper)


@contextmanager
def hooks_removed() -> Iterator[None]:
    for target, name, hook in HOOKS:
        event.remove(target, name, hook)
    try:
        yield
    finally:
        for target, name, hook in HOOKS:
            event.listen(target, name, hook)


async def _seed_one(
    database: Database, providers: Providers, org: int, clock: int, plan: int, partly: bool
) -> None:
    async with unit_of_work(database) as unit:
        made = await customers.create(
            unit, org, email=f"bench{next(_keys)}@example.com", currency="USD"
        )
        customer = made.customer.id
        await test_clocks.attach_customer(unit, org, customer, clock)
        card = (await methods.save_sandbox_card(unit, org, customer, "4242 4242 4242 4242")).id
    await ledger.commit_entry(
        database,
        ledger.entry_request(
            org,
            customer_id=customer,
            currency="USD",
            entry_type=EntryType.CREDIT,
            amount=1500 if partly else 2000,
            reason="top-up",
            idempotency_key=f"bench-topup-{next(_keys)}",
        ),
    )
    request = subscriptions.subscription_request(
        org,
        customer_id=customer,
        plan_id=plan,
        payment_method_id=card if partly else None,
        idempotency_key=f"bench-sub-{next(_keys)}",
    )
    await subscriptions.create(database, providers, request)


async def _seed(database: Database, providers: Providers, org: int, plan: int, count: int) -> int:
    """A clock with `count` subscriptions started at START, moved to their renewal."""
    async with unit_of_work(database) as unit:
        clock = (await test_clocks.create(unit, org, frozen_time=START, name="bench")).id
    pending = [i % 2 == 1 for i in range(count)]
    for index in range(0, count, SEED_CONCURRENCY):
        batch = pending[index : index + SEED_CONCURRENCY]
        await asyncio.gather(
            *(_seed_one(database, providers, org, clock, plan, partly) for partly in batch)
        )
    async with unit_of_work(database) as unit:
        await test_clocks.move(unit, org, clock, RENEWAL)
    return clock


async def _hub_read_back(database: Database, org: int, events: list[object]) -> float:
    """Seconds for a hub with one subscriber per topic to dispatch the run's billing events
    (one read each)."""
    billing = [e for e in events if isinstance(e, SubscriptionStatusChanged | InvoiceUpdated)]
    hub = Hub(database, queue_size=len(billing) + 1)
    hub.start()
    try:
        with (
            hub.subscribe_billing(Topic.SUBSCRIPTION_STATUS, org) as statuses,
            hub.subscribe_billing(Topic.INVOICE, org) as invoices,
        ):
            started = time.perf_counter()
            for each in billing:
                hub.receive(each)
            wanted = {
                statuses: sum(isinstance(e, SubscriptionStatusChanged) for e in billing),
                invoices: sum(isinstance(e, InvoiceUpdated) for e in billing),
            }
            for subscriber, count in wanted.items():
                for _ in range(count):
                    await subscriber.next()
            return time.perf_counter() - started
    finally:
        await hub.stop()


def _recording(seen: list[object], publish: Callable[[Any], None]) -> Callable[[Any], None]:
    def announce(event: Any) -> None:
        seen.append(event)
        publish(event)

    return announce


async def main(count: int, rounds: int) -> None:
    server = postgres.start(durable=True)
    database = connect(server.url)
    settings = Settings(database_url=server.url)
    providers = Providers(database, settings)
    rows: list[list[str]] = []
    try:
        await upgrade(database)
        async with unit_of_work(database) as unit:
            org = (await organizations.create(unit, "Bench", "USD")).organization.id
        async with unit_of_work(database) as unit:
            plan = (
                await plans.create(
                    unit,
                    plans.plan_request(
                        org, name="Monthly", amount=1000, currency="USD", interval="MONTH"
                    ),
                )
            ).id
        for variant in ["off", "hooks", "notify"] * rounds:
            clock = await _seed(database, providers, org, plan, count)
            seen: list[object] = []
            broker = None
            if variant == "notify":
                broker = PostgresBroker(Hub(database, queue_size=1), server.url, listen=False)
                await broker.start()
                database.events.attach(_recording(seen, broker.publish))
            elif variant == "hooks":
                database.events.attach(seen.append)
            hook_clock = HookClock()
            started, cpu = time.perf_counter(), time.process_time()
            if variant == "off":
                with hooks_removed():
                    summary = await run.bill(database, providers, test_clock_id=clock)
            else:
                with hooks_timed(hook_clock):
                    summary = await run.bill(database, providers, test_clock_id=clock)
            elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
            per = 1e6 / max(summary.subscriptions, 1)
            database.events.attach(None)
            if broker is not None:
                await broker.stop()
            billing = [e for e in seen if not isinstance(e, BalanceChanged)]
            read_back = await _hub_read_back(database, org, seen) if billing else None
            rows.append(
                [
                    variant,
                    str(summary.subscriptions),
                    f"{summary.subscriptions / elapsed:,.1f}",
                    f"{elapsed:.2f}",
                    f"{cpu * per / 1000:.2f}",
                    "—" if variant == "off" else f"{hook_clock.seconds * per:.0f}",
                    str(len(seen) - len(billing)),
                    str(len(billing)),
                    "—" if read_back is None else f"{len(billing) / read_back:,.0f}",
                ]
            )
            print(" | ".join(rows[-1]), flush=True)
    finally:
        await providers.close()
        await database.dispose()
        server.stop()
    header = [
        "variant",
        "subscriptions",
        "billed/s",
        "run s",
        "bill CPU ms per subscription",
        "in hooks µs per subscription",
        "balance events",
        "billing events",
        "hub read-back events/s",
    ]
    print()
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--subscriptions", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    asyncio.run(main(args.subscriptions, args.rounds))
