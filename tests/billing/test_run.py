"""The billing run under races and crashes: one invoice per period, one wallet debit, at most
one charge, invoice numbers without gaps."""

import asyncio
import signal
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, select

from billgraph.adapters.base import ChargeRequest, ChargeResult
from billgraph.adapters.sandbox import SandboxProvider
from billgraph.billing import repository, run
from billgraph.core.unit import unit_of_work
from billgraph.db.models import LedgerEntry
from tests.billing.helpers import Org, at
from tests.conftest import assert_ledger_invariant, postgresql_only
from tests.support.server import cli


async def _debits(org: Org) -> int:
    async with org.database.sessions() as session:
        value = await session.scalar(
            select(func.count())
            .select_from(LedgerEntry)
            .where(LedgerEntry.organization_id == org.id, LedgerEntry.entry_type == "DEBIT")
        )
        return int(value or 0)


async def _era_subscriptions(org: Org, year: int, count: int) -> list[int]:
    """`count` subscriptions started on Jan 1 of `year` (an era no later test bills in: each
    test's era is earlier than the previous one's, so a run bills its own test's only), half
    paid by credit, half partly by credit and partly by card."""
    plan = await org.plan(1000)
    made = []
    for n in range(count):
        customer = await org.customer(credit=3000 if n % 2 else 1400)
        card = await org.card(customer)
        created = await org.subscribe(customer, plan, method=card, now=at(year, 1, 1))
        assert created.subscription.status == "ACTIVE"
        made.append(created.subscription.id)
    return made


async def test_two_runs_at_once_invoice_each_period_once(org: Org) -> None:
    subscriptions = await _era_subscriptions(org, 1995, 6)
    summaries = await asyncio.gather(
        run.bill(org.database, org.providers, at(1995, 2, 1)),
        run.bill(org.database, org.providers, at(1995, 2, 1)),
    )
    assert sum(s.billed for s in summaries) == 6
    for subscription_id in subscriptions:
        invoices = await org.invoices(subscription_id)
        assert [i.status for i in invoices] == ["PAID", "PAID"]
        assert len({i.period_start for i in invoices}) == 2
        for invoice in invoices:
            assert sum(a.outcome == "SUCCEEDED" for a in await org.attempts(invoice.id)) <= 1
    assert await _debits(org) == 12  # one per invoice: each customer had some credit left
    await assert_ledger_invariant(org.database)


@pytest.fixture
def crash_after_charge(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The first charge reaches the sandbox, then the process 'dies' before recording it."""
    real = SandboxProvider.charge
    calls: list[str] = []

    async def charge(self: SandboxProvider, request: ChargeRequest) -> ChargeResult:
        result = await real(self, request)
        calls.append(result.provider_charge_id)
        if len(calls) == 1:
            raise RuntimeError("killed between the charge and its record")
        return result

    monkeypatch.setattr(SandboxProvider, "charge", charge)
    yield calls


async def test_a_crash_between_charge_and_record_then_a_rerun_charges_once(
    org: Org, crash_after_charge: list[str]
) -> None:
    clock = await org.clock(at(2028, 1, 10))
    customer = await org.customer(credit=400, clock=clock)
    card = await org.card(customer)
    plan = await org.plan(1000)
    with pytest.raises(RuntimeError):
        await org.subscribe(customer, plan, method=card, key="crashy")
    again = await org.subscribe(customer, plan, method=card, key="crashy")
    assert again.replayed and again.subscription.status == "ACTIVE"
    [invoice] = await org.invoices(again.subscription.id)
    assert (invoice.status, invoice.wallet_credit_applied, invoice.amount_paid) == (
        "PAID",
        400,
        600,
    )
    [attempt] = await org.attempts(invoice.id)
    assert attempt.outcome == "SUCCEEDED"
    assert len(set(crash_after_charge)) == 1  # asked twice with one key: one charge
    assert await _debits(org) == 1
    await assert_ledger_invariant(org.database)


async def test_a_crash_in_a_renewal_then_a_rerun(org: Org, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = await org.clock(at(2028, 3, 5))
    customer = await org.customer(credit=1500, clock=clock)
    card = await org.card(customer)
    sub = (await org.subscribe(customer, await org.plan(1000), method=card)).subscription
    real = run.charges.charge

    async def crash(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("killed after the invoice was issued")

    monkeypatch.setattr(run.charges, "charge", crash)
    with pytest.raises(RuntimeError):
        await org.advance(clock, at(2028, 4, 5))
    monkeypatch.setattr(run.charges, "charge", real)
    await run.bill(org.database, org.providers, test_clock_id=clock)
    invoices = await org.invoices(sub.id)
    assert [(i.status, i.wallet_credit_applied, i.amount_paid) for i in invoices] == [
        ("PAID", 1000, 0),
        ("PAID", 500, 500),
    ]
    assert await _debits(org) == 2
    await assert_ledger_invariant(org.database)


async def test_invoice_numbers_have_no_gaps_after_a_rollback(org: Org) -> None:
    customer = await org.customer(credit=10_000)
    plan = await org.plan(1000)
    first = (await org.subscribe(customer, plan)).invoice
    assert first is not None
    with pytest.raises(RuntimeError):
        async with unit_of_work(org.database) as unit:
            assert await repository.next_invoice_number(unit, org.id) == first.number + 1
            raise RuntimeError("rolled back")
    second = (await org.subscribe(customer, plan)).invoice
    assert second is not None and second.number == first.number + 1
    await assert_ledger_invariant(org.database)


async def test_billgraph_bill_prints_a_summary(org: Org, database_url: str) -> None:
    subscriptions = await _era_subscriptions(org, 1993, 2)
    done = await asyncio.to_thread(
        cli, "bill", "--now", "1993-02-01T00:00:00+00:00", "--database-url", database_url
    )
    assert done.returncode == 0, done.stderr
    # The database is shared with the other tests: at least this test's two renewals.
    assert done.stdout.startswith("billgraph: ") and " billed, " in done.stdout, done.stdout
    assert " paid by credit, " in done.stdout and " suspended" in done.stdout
    for subscription_id in subscriptions:
        assert len(await org.invoices(subscription_id)) == 2
    await assert_ledger_invariant(org.database)


@postgresql_only  # several billing processes at once is a PostgreSQL deployment
async def test_two_billgraph_bill_processes_at_once(org: Org, database_url: str) -> None:
    subscriptions = await _era_subscriptions(org, 1991, 8)
    command = [sys.executable, "-m", "billgraph", "bill", "--now", "1991-03-01T00:00:00Z"]
    processes = [
        subprocess.Popen(
            [*command, "--database-url", database_url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [await asyncio.to_thread(p.communicate, timeout=120) for p in processes]
    assert [p.returncode for p in processes] == [0, 0], outputs
    for subscription_id in subscriptions:
        invoices = await org.invoices(subscription_id)
        assert len(invoices) == 3 and len({i.period_start for i in invoices}) == 3
        assert all(i.status == "PAID" for i in invoices)
    await assert_ledger_invariant(org.database)


@postgresql_only  # kill -9 mid-transaction is exercised on PostgreSQL
async def test_a_billgraph_bill_killed_mid_run_then_rerun(org: Org, database_url: str) -> None:
    subscriptions = await _era_subscriptions(org, 1990, 30)
    before = await org.invoice_count()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "billgraph",
            "bill",
            "--now",
            "1990-02-01T00:00:00Z",
            "--database-url",
            database_url,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(1500):  # kill it in the middle of the run
            if await org.invoice_count() > before + 10 or process.poll() is not None:
                break
            await asyncio.sleep(0.01)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    rerun = await asyncio.to_thread(
        cli, "bill", "--now", "1990-02-01T00:00:00Z", "--database-url", database_url
    )
    assert rerun.returncode == 0, rerun.stderr
    for subscription_id in subscriptions:
        invoices = await org.invoices(subscription_id)
        assert [i.status for i in invoices] == ["PAID", "PAID"]
        for invoice in invoices:
            succeeded = [a for a in await org.attempts(invoice.id) if a.outcome == "SUCCEEDED"]
            assert len(succeeded) <= 1
    assert await _debits(org) == 60
    await assert_ledger_invariant(org.database)


async def test_bill_every_runs_until_stopped(org: Org, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[object] = []

    async def bill(*args: Any, **kwargs: Any) -> run.BillingSummary:
        calls.append(args)
        if len(calls) == 2:
            raise RuntimeError("a failed run does not stop the loop")
        return run.BillingSummary()

    # The real run would bill every other test's subscriptions up to today.
    monkeypatch.setattr(run, "bill", bill)
    stop = asyncio.Event()
    task = asyncio.create_task(run.bill_every(org.database, org.providers, 0.02, stop))
    while len(calls) < 3:
        await asyncio.sleep(0.01)
    stop.set()
    await asyncio.wait_for(task, 5)
