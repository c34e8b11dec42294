"""`billgraph serve`'s billing job, on SQLite and PostgreSQL: an app whose settings say
BILLGRAPH_BILLING_INTERVAL_SECONDS=1 bills a due subscription by itself, with nobody calling
bill, goes on after a run that failed, and stops with the app; at 0 (the default) it never
starts; and a real `billgraph serve` started with the variable renews a due subscription."""

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest

from billgraph.app import create_app
from billgraph.billing import run
from billgraph.db.engine import connect
from billgraph.settings import Settings
from tests.billing.helpers import Org
from tests.support.server import live_server


async def _wait_for(predicate: Callable[[], Awaitable[bool]], seconds: float = 15) -> bool:
    deadline = asyncio.get_running_loop().time() + seconds
    while asyncio.get_running_loop().time() < deadline:
        if await predicate():
            return True
        await asyncio.sleep(0.1)
    return False


async def test_the_app_bills_a_due_subscription_on_its_interval(
    org: Org, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    customer = await org.customer(credit=3000)
    plan = await org.plan(amount=1000)
    started = datetime.now(UTC) - timedelta(days=40)
    created = await org.subscribe(customer, plan, now=started)
    subscription = created.subscription.id
    assert (await org.subscription(subscription)).next_billing_at < datetime.now(UTC)
    assert len(await org.invoices(subscription)) == 1

    # The first run fails: it is logged, and the next one, a second later, bills.
    real_bill = run.bill
    calls: list[str] = []

    async def failing_once(*args: object, **kwargs: object) -> run.BillingSummary:
        calls.append("run")
        if len(calls) == 1:
            raise RuntimeError("the database went away for a moment")
        return await real_bill(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(run, "bill", failing_once)
    app = create_app(
        settings.model_copy(update={"billing_interval_seconds": 1}),
        connect(settings.database_url),
    )

    async def renewed() -> bool:
        return len(await org.invoices(subscription)) == 2

    async with app.router.lifespan_context(app):
        assert await _wait_for(renewed), calls
    assert len(calls) >= 2
    first, second = await org.invoices(subscription)
    assert second.period_start == first.period_end
    assert (second.status, second.wallet_credit_applied) == ("PAID", 1000)
    assert await org.balance(customer) == 1000
    # Stopped with the app: no run after shutdown.
    runs = len(calls)
    await asyncio.sleep(1.5)
    assert len(calls) == runs


async def test_at_zero_the_app_runs_no_billing_job(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert Settings.model_fields["billing_interval_seconds"].default == 0
    assert settings.billing_interval_seconds == 0
    calls: list[object] = []

    async def never(*args: object, **kwargs: object) -> run.BillingSummary:
        calls.append(args)
        return run.BillingSummary()

    monkeypatch.setattr(run, "bill", never)
    app = create_app(settings, connect(settings.database_url))
    async with app.router.lifespan_context(app):
        await asyncio.sleep(0.5)
    assert calls == []


async def test_a_real_billgraph_serve_bills_on_its_interval(org: Org, database_url: str) -> None:
    customer = await org.customer(credit=2000)
    plan = await org.plan(amount=1000)
    created = await org.subscribe(customer, plan, now=datetime.now(UTC) - timedelta(days=35))
    subscription = created.subscription.id

    async def renewed() -> bool:
        return len(await org.invoices(subscription)) == 2

    with live_server(database_url, env={"BILLGRAPH_BILLING_INTERVAL_SECONDS": "1"}):
        assert await _wait_for(renewed)
    assert await org.balance(customer) == 0
