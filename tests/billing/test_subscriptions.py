"""Subscriptions through the billing domain: starting one, credit first, trials, dunning,
cancellation, on SQLite and PostgreSQL."""

import pytest

from billgraph.adapters.base import Provider
from billgraph.billing import plans, repository, run, subscriptions
from billgraph.checkout.providers import Providers
from billgraph.core.errors import (
    ConflictError,
    IdempotencyConflictError,
    NotFoundError,
    ValidationError,
)
from billgraph.core.unit import unit_of_work
from billgraph.db.engine import Database
from billgraph.settings import Settings
from tests.billing.helpers import DECLINING_CARD, Org, at, new_org
from tests.conftest import assert_ledger_invariant


async def test_credit_covering_all_of_the_first_invoice_activates_with_no_charge(org: Org) -> None:
    customer = await org.customer(credit=1500)
    created = await org.subscribe(customer, await org.plan(1000))
    sub, invoice = created.subscription, created.invoice
    assert invoice is not None and sub.status == "ACTIVE"
    assert (
        invoice.status,
        invoice.wallet_credit_applied,
        invoice.amount_due,
        invoice.amount_paid,
    ) == ("PAID", 1000, 0, 0)
    assert invoice.ledger_entry_id is not None and invoice.number >= 1
    assert await org.attempts(invoice.id) == []
    assert await org.balance(customer) == 500
    assert await org.events(sub.id) == ["created", "payment_succeeded", "activated"]
    await assert_ledger_invariant(org.database)


async def test_part_credit_and_the_rest_charged_to_the_card(org: Org) -> None:
    customer = await org.customer(credit=300)
    card = await org.card(customer)
    created = await org.subscribe(customer, await org.plan(1000), method=card)
    invoice = created.invoice
    assert invoice is not None and created.subscription.status == "ACTIVE"
    assert (
        invoice.status,
        invoice.wallet_credit_applied,
        invoice.amount_due,
        invoice.amount_paid,
    ) == ("PAID", 300, 700, 700)
    [attempt] = await org.attempts(invoice.id)
    assert (attempt.outcome, attempt.amount) == ("SUCCEEDED", 700)
    assert attempt.provider_charge_id and attempt.provider_charge_id.startswith("ch_sandbox_")
    assert await org.balance(customer) == 0
    await assert_ledger_invariant(org.database)


async def test_no_credit_and_no_payment_method_is_incomplete_until_one_is_attached(
    org: Org,
) -> None:
    customer = await org.customer()
    created = await org.subscribe(customer, await org.plan(1000))
    assert created.subscription.status == "INCOMPLETE"
    assert created.invoice is not None and created.invoice.status == "OPEN"
    card = await org.card(customer)
    sub = await run.attach_payment_method(
        org.database, org.providers, org.id, created.subscription.id, card
    )
    assert sub.status == "ACTIVE"
    [invoice] = await org.invoices(sub.id)
    assert (invoice.status, invoice.amount_paid) == ("PAID", 1000)
    await assert_ledger_invariant(org.database)


async def test_a_replayed_create_returns_the_same_subscription(org: Org) -> None:
    customer = await org.customer(credit=5000)
    plan = await org.plan(1000)
    first = await org.subscribe(customer, plan, key="same")
    again = await org.subscribe(customer, plan, key="same")
    assert again.replayed and again.subscription.id == first.subscription.id
    assert len(await org.invoices(first.subscription.id)) == 1
    assert await org.balance(customer) == 4000
    with pytest.raises(IdempotencyConflictError):
        await org.subscribe(customer, plan, key="same", trial_days=3)
    await assert_ledger_invariant(org.database)


async def test_another_organizations_ids_are_unknown(org: Org, other_org: Org) -> None:
    customer = await org.customer()
    plan = await org.plan()
    with pytest.raises(NotFoundError):
        await other_org.subscribe(customer, await other_org.plan())
    with pytest.raises(NotFoundError):
        await other_org.subscribe(await other_org.customer(), plan)
    created = await org.subscribe(customer, plan)
    async with unit_of_work(org.database) as unit:
        with pytest.raises(NotFoundError):
            await subscriptions.cancel(unit, other_org.id, created.subscription.id)
    with pytest.raises(NotFoundError):
        await run.pay_invoice(org.database, org.providers, other_org.id, created.invoice.id, "k")  # type: ignore[union-attr]


async def test_validation_names_the_field(org: Org) -> None:
    clock = await org.clock(at(2028, 1, 31))
    customer = await org.customer(clock=clock)
    with pytest.raises(ValidationError) as error:
        await org.subscribe(customer, await org.plan(1000, currency="KRW"), provider=Provider.TOSS)
    assert error.value.field == "provider"
    with pytest.raises(ValidationError) as error:
        await org.plan(0)
    assert error.value.field == "amount"


async def test_trial_reminder_then_first_invoice_and_renewals_across_month_ends(org: Org) -> None:
    clock = await org.clock(at(2028, 1, 21, 12))
    customer = await org.customer(clock=clock)
    card = await org.card(customer)
    created = await org.subscribe(customer, await org.plan(1000, trial_days=10), method=card)
    sub = created.subscription
    assert (sub.status, sub.next_billing_at, created.invoice) == (
        "TRIALING",
        at(2028, 1, 31, 12),
        None,
    )
    await org.advance(clock, at(2028, 1, 28, 12))
    assert await org.events(sub.id) == ["created", "trial_will_end"]
    summary = await org.advance(clock, at(2028, 1, 31, 12))
    assert (summary.billed, summary.charged) == (1, 1)
    sub = await org.subscription(sub.id)
    assert (sub.status, sub.current_period_end) == ("ACTIVE", at(2028, 2, 29, 12))
    await org.advance(clock, at(2029, 3, 31, 12))
    ends = [(i.period_end.month, i.period_end.day) for i in await org.invoices(sub.id)]
    assert ends[:4] == [(2, 29), (3, 31), (4, 30), (5, 31)] and ends[-3:] == [
        (2, 28),
        (3, 31),
        (4, 30),
    ]
    assert len(ends) == 15
    numbers = [i.number for i in await org.invoices(sub.id)]
    assert numbers == list(range(numbers[0], numbers[0] + 15))
    # A jump past a renewal bills it; stopping within 3 days of the next one reminds.
    assert "renewal_upcoming" not in await org.events(sub.id)
    await org.advance(clock, at(2029, 4, 27, 12))
    assert (await org.events(sub.id))[-1] == "renewal_upcoming"
    await assert_ledger_invariant(org.database)


async def test_trial_ending_without_a_payment_method_is_incomplete(org: Org) -> None:
    clock = await org.clock(at(2028, 3, 1))
    customer = await org.customer(clock=clock)
    sub = (await org.subscribe(customer, await org.plan(1000, trial_days=7))).subscription
    await org.advance(clock, at(2028, 3, 9))
    sub = await org.subscription(sub.id)
    assert sub.status == "INCOMPLETE"
    [invoice] = await org.invoices(sub.id)
    assert invoice.status == "OPEN"


async def test_dunning_to_suspension_then_recovery_with_pay_invoice(org: Org) -> None:
    clock = await org.clock(at(2028, 1, 1))
    customer = await org.customer(credit=1000, clock=clock)
    card = await org.card(customer, DECLINING_CARD)
    sub = (await org.subscribe(customer, await org.plan(1000), method=card)).subscription
    assert sub.status == "ACTIVE"  # the first invoice was paid by credit
    await org.advance(clock, at(2028, 2, 1))
    sub = await org.subscription(sub.id)
    renewal = (await org.invoices(sub.id))[-1]
    assert (sub.status, renewal.status, renewal.attempt_count) == ("PAST_DUE", "OPEN", 1)
    assert renewal.next_payment_attempt_at == at(2028, 2, 4)
    await org.advance(clock, at(2028, 2, 4))
    renewal = (await org.invoices(sub.id))[-1]
    assert (renewal.attempt_count, renewal.next_payment_attempt_at) == (2, at(2028, 2, 7))
    summary = await org.advance(clock, at(2028, 2, 7))
    assert summary.suspended == 1
    sub = await org.subscription(sub.id)
    renewal = (await org.invoices(sub.id))[-1]
    assert (sub.status, renewal.status, renewal.next_payment_attempt_at) == (
        "SUSPENDED",
        "OPEN",
        None,
    )
    assert [a.failure_code for a in await org.attempts(renewal.id)] == ["card_declined"] * 3
    await org.advance(clock, at(2028, 4, 1))  # suspended: nothing more is billed
    assert len(await org.invoices(sub.id)) == 2

    good = await org.card(customer)
    async with unit_of_work(org.database) as unit:  # the checkout seam, without paying yet
        await subscriptions.set_payment_method(unit, org.id, sub.id, good)
    paid = await run.pay_invoice(org.database, org.providers, org.id, renewal.id, "pay-1")
    assert (paid.invoice.status, paid.replayed) == ("PAID", False)
    assert (await org.subscription(sub.id)).status == "ACTIVE"
    again = await run.pay_invoice(org.database, org.providers, org.id, renewal.id, "pay-1")
    assert again.replayed and len(await org.attempts(renewal.id)) == 4
    # The suspended months are not billed: the next period starts at the recovery.
    await org.advance(clock, at(2028, 4, 1))
    latest = (await org.invoices(sub.id))[-1]
    assert (latest.period_start, latest.period_end, latest.status) == (
        at(2028, 4, 1),
        at(2028, 5, 1),
        "PAID",
    )
    events = await org.events(sub.id)
    assert events.count("payment_failed") == 3 and "past_due" in events and "suspended" in events
    assert events[-3:] == ["payment_succeeded", "activated", "payment_succeeded"]
    await assert_ledger_invariant(org.database)


async def test_cancel_at_period_end_now_and_resume(org: Org) -> None:
    clock = await org.clock(at(2028, 5, 10))
    customer = await org.customer(credit=10_000, clock=clock)
    plan = await org.plan(1000)
    sub = (await org.subscribe(customer, plan)).subscription
    async with unit_of_work(org.database) as unit:
        await subscriptions.cancel(unit, org.id, sub.id, at_period_end=True)
    async with unit_of_work(org.database) as unit:
        await subscriptions.resume(unit, org.id, sub.id)
    async with unit_of_work(org.database) as unit:
        await subscriptions.cancel(unit, org.id, sub.id, at_period_end=True, reason="too dear")
    await org.advance(clock, at(2028, 6, 10))
    sub = await org.subscription(sub.id)
    assert (sub.status, sub.canceled_at) == ("CANCELED", at(2028, 6, 10))
    assert len(await org.invoices(sub.id)) == 1
    assert (await org.events(sub.id))[-4:] == [
        "cancel_scheduled",
        "resumed",
        "cancel_scheduled",
        "canceled",
    ]

    other = (await org.subscribe(customer, plan)).subscription
    async with unit_of_work(org.database) as unit:
        now = await subscriptions.cancel(unit, org.id, other.id, at_period_end=False)
    assert now.status == "CANCELED"
    async with unit_of_work(org.database) as unit:
        with pytest.raises(ConflictError):
            await subscriptions.resume(unit, org.id, other.id)
    await assert_ledger_invariant(org.database)


async def test_a_plan_change_applies_from_the_next_period(org: Org) -> None:
    clock = await org.clock(at(2028, 1, 15))
    customer = await org.customer(credit=10_000, clock=clock)
    sub = (await org.subscribe(customer, await org.plan(1000))).subscription
    bigger = await org.plan(2500)
    async with unit_of_work(org.database) as unit:
        await subscriptions.change_plan(unit, org.id, sub.id, bigger)
    await org.advance(clock, at(2028, 2, 15))
    assert [i.total for i in await org.invoices(sub.id)] == [1000, 2500]
    assert (await org.subscription(sub.id)).plan_id == bigger
    await assert_ledger_invariant(org.database)


async def test_a_trial_ending_without_a_method_cancels_when_configured(
    database: Database, settings: Settings
) -> None:
    configured = settings.model_copy(update={"trial_end_without_payment_method": "cancel"})
    providers = Providers(database, configured)
    org = await new_org(database, providers)
    clock = await org.clock(at(2028, 3, 1))
    customer = await org.customer(clock=clock)
    sub = (await org.subscribe(customer, await org.plan(1000, trial_days=7))).subscription
    await org.advance(clock, at(2028, 3, 9))
    sub = await org.subscription(sub.id)
    assert (sub.status, sub.canceled_at) == ("CANCELED", at(2028, 3, 8))
    assert await org.invoices(sub.id) == []
    assert (await org.events(sub.id))[-1] == "canceled"


async def test_clocks_move_forward_only_and_archived_plans_take_no_subscriptions(
    org: Org,
) -> None:
    clock = await org.clock(at(2028, 3, 1))
    with pytest.raises(ValidationError) as error:
        await org.advance(clock, at(2028, 2, 1))
    assert error.value.field == "frozenTime"
    plan = await org.plan(1000)
    async with unit_of_work(org.database) as unit:
        archived = await plans.archive(unit, org.id, plan)
    assert archived.active is False
    with pytest.raises(ValidationError) as error:
        await org.subscribe(await org.customer(), plan)
    assert error.value.field == "planId"
    async with org.database.sessions() as session:
        listed = await plans.page(session, org.id, limit=10, active=False)
    assert [p.id for p in listed] == [plan]


async def test_a_successful_retry_ends_past_due(org: Org) -> None:
    clock = await org.clock(at(2028, 6, 1))
    customer = await org.customer(credit=1000, clock=clock)
    card = await org.card(customer, DECLINING_CARD)
    sub = (await org.subscribe(customer, await org.plan(1000), method=card)).subscription
    await org.advance(clock, at(2028, 7, 1))
    assert (await org.subscription(sub.id)).status == "PAST_DUE"
    good = await org.card(customer)
    async with unit_of_work(org.database) as unit:  # a new card, without paying at once
        await subscriptions.set_payment_method(unit, org.id, sub.id, good)
    await org.advance(clock, at(2028, 7, 4))
    sub = await org.subscription(sub.id)
    renewal = (await org.invoices(sub.id))[-1]
    assert (sub.status, renewal.status, renewal.attempt_count) == ("ACTIVE", "PAID", 2)
    assert [a.outcome for a in await org.attempts(renewal.id)] == ["FAILED", "SUCCEEDED"]
    await assert_ledger_invariant(org.database)


async def test_a_renewal_neither_credit_nor_a_method_can_pay_goes_to_dunning(org: Org) -> None:
    clock = await org.clock(at(2028, 8, 1))
    customer = await org.customer(credit=1200, clock=clock)
    sub = (await org.subscribe(customer, await org.plan(1000))).subscription
    assert sub.status == "ACTIVE"
    await org.advance(clock, at(2028, 9, 1))
    renewal = (await org.invoices(sub.id))[-1]
    assert (renewal.wallet_credit_applied, renewal.amount_due) == (200, 800)
    assert (await org.subscription(sub.id)).status == "PAST_DUE"
    [attempt] = await org.attempts(renewal.id)
    assert attempt.failure_code == "no_payment_method"
    assert await org.balance(customer) == 0
    async with unit_of_work(org.database) as unit:  # forgiven: the credit it took comes back
        voided = await run.void_invoice(unit, org.id, renewal.id)
    assert (voided.status, voided.next_payment_attempt_at) == ("VOID", None)
    assert await org.balance(customer) == 200
    assert (await org.subscription(sub.id)).status == "ACTIVE"
    async with unit_of_work(org.database) as unit:
        await run.void_invoice(unit, org.id, renewal.id)  # twice: nothing more
    assert await org.balance(customer) == 200
    with pytest.raises(ConflictError):
        async with unit_of_work(org.database) as unit:
            await run.void_invoice(unit, org.id, (await org.invoices(sub.id))[0].id)
    await assert_ledger_invariant(org.database)


async def test_pages_for_the_graph_are_newest_first_and_confined(org: Org, other_org: Org) -> None:
    customer = await org.customer()
    plan = await org.plan(1000)
    first = (await org.subscribe(customer, plan)).subscription
    second = (await org.subscribe(customer, plan)).subscription
    async with unit_of_work(org.database) as unit:  # an INCOMPLETE one cancels at once
        canceled = await subscriptions.cancel(unit, org.id, first.id, at_period_end=True)
    assert canceled.status == "CANCELED"
    async with org.database.sessions() as session:
        subs = await repository.subscriptions_page(session, org.id, customer, limit=10)
        assert [s.id for s in subs] == [second.id, first.id]
        active = await repository.subscriptions_page(
            session, org.id, customer, limit=10, status="CANCELED"
        )
        assert [s.id for s in active] == [first.id]
        invoices = await repository.invoices_page(session, org.id, customer_id=customer, limit=1)
        assert [i.subscription_id for i in invoices] == [second.id]
        lines = await repository.invoice_lines(session, [invoices[0].id])
        assert [(line.amount, line.quantity) for line in lines] == [(1000, 1)]
        events = await repository.events_page(session, org.id, first.id, limit=10)
        assert [e.type for e in events] == ["canceled", "created"]
        assert await repository.subscriptions_page(session, other_org.id, customer, limit=10) == []
        assert await repository.events_page(session, other_org.id, first.id, limit=10) == []
        token = invoices[0].hosted_token
        assert len(token) >= 40
        found = await repository.invoice_by_hosted_token(session, token)
        assert found is not None and found.id == invoices[0].id


async def test_a_stripe_like_retry_schedule_makes_five_attempts(
    database: Database, settings: Settings
) -> None:
    providers = Providers(database, settings.model_copy(update={"dunning_retry_days": "1,3,5,7"}))
    org = await new_org(database, providers)
    clock = await org.clock(at(2028, 10, 1))
    customer = await org.customer(credit=1000, clock=clock)
    card = await org.card(customer, DECLINING_CARD)
    sub = (await org.subscribe(customer, await org.plan(1000), method=card)).subscription
    seen = []
    for moment in (at(2028, 11, 1), at(2028, 11, 2), at(2028, 11, 5), at(2028, 11, 10)):
        await org.advance(clock, moment)
        renewal = (await org.invoices(sub.id))[-1]
        seen.append((renewal.attempt_count, renewal.next_payment_attempt_at))
    assert seen == [
        (1, at(2028, 11, 2)),
        (2, at(2028, 11, 5)),
        (3, at(2028, 11, 10)),
        (4, at(2028, 11, 17)),
    ]
    assert (await org.subscription(sub.id)).status == "PAST_DUE"
    await org.advance(clock, at(2028, 11, 17))
    assert (await org.subscription(sub.id)).status == "SUSPENDED"
    assert len(await org.attempts((await org.invoices(sub.id))[-1].id)) == 5
