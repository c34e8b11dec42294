"""Prorated changes of plan through the graph, over HTTP, on SQLite and PostgreSQL, on a test
clock stopped mid-period: an upgrade paid by credit then the card, a downgrade credited to
the wallet, a declined charge going to dunning, a trial switching without an invoice, and
every refusal."""

from typing import Any

from billgraph.billing import dunning, proration, run
from billgraph.billing import payment_methods as methods
from billgraph.checkout.providers import Providers
from billgraph.core.unit import unit_of_work
from billgraph.db.engine import Database
from tests.billing.helpers import DECLINING_CARD, GOOD_CARD, Org, at
from tests.billing.test_coupons import create_code, create_coupon
from tests.billing.test_graph import (
    ERRORS,
    INVOICE,
    SUBSCRIPTION,
    VOID,
    advance,
    balance,
    create_clock,
    create_plan,
    db_id,
    detail,
    event_types,
    funded_customer,
    invoices_of,
    mutate,
    organization_db_id,
    subscribed,
)
from tests.conftest import assert_ledger_invariant
from tests.support.graph import Tenant

PRORATE = f"""mutation($input: ChangeSubscriptionPlanInput!) {{
  changeSubscriptionPlan(input: $input) {{ __typename
  ... on ChangeSubscriptionPlanSuccess {{ subscription {{ {SUBSCRIPTION} }}
    invoice {{ {INVOICE} }} }}
  ... on ConflictError {{ field }} {ERRORS} }} }}"""

ENTRIES = """query($id: ID!) { customer(id: $id) { wallets { currency
  ledgerEntries(first: 10) { edges { node { entryType amount reason } } } } } }"""

# The clock stops on 2030-04-11 08:00 in a period from 2030-04-01 to 2030-05-01: 1,699,200
# of its 2,592,000 seconds are left (59/90). 3000 * 59/90 = 1966.67 -> 1967; 4995 * 59/90 =
# 3274.5 -> 3275 (half up).
START, MIDDLE, RENEWAL = "2030-04-01T00:00:00Z", "2030-04-11T08:00:00Z", "2030-05-01T00:00:00Z"


async def prorate(tenant: Tenant, subscription_id: str, plan_id: str) -> dict[str, Any]:
    return await mutate(
        tenant,
        PRORATE,
        {"input": {"subscriptionId": subscription_id, "planId": plan_id, "prorate": True}},
    )


async def save_card(
    tenant: Tenant,
    database: Database,
    providers: Providers,
    customer: str,
    subscription: str,
    number: str,
) -> None:
    """The subscription checkout that collects a card is another part: the domain saves it."""
    organization = organization_db_id(tenant)
    async with unit_of_work(database) as unit:
        card = await methods.save_sandbox_card(unit, organization, db_id(customer), number)
    await run.attach_payment_method(database, providers, organization, db_id(subscription), card.id)


def lines(invoice: dict[str, Any]) -> list[tuple[str, int]]:
    return [(line["description"].split(" (")[0], line["amount"]) for line in invoice["lines"]]


async def test_an_upgrade_mid_period_invoices_the_difference_credit_first_then_the_card(
    tenant: Tenant, database: Database, providers: Providers
) -> None:
    clock = await create_clock(tenant, START)
    customer = await funded_customer(tenant, 3500, testClockId=clock["id"])
    basic = await create_plan(tenant, 3000, name="Basic")
    pro = await create_plan(tenant, 4995, name="Pro")
    subscription = await subscribed(tenant, customer, basic["id"])
    await save_card(tenant, database, providers, customer, subscription["id"], GOOD_CARD)
    await advance(tenant, clock["id"], MIDDLE)

    changed = await prorate(tenant, subscription["id"], pro["id"])
    assert changed["__typename"] == "ChangeSubscriptionPlanSuccess", changed
    assert changed["subscription"]["plan"]["id"] == pro["id"]  # now
    assert changed["subscription"]["status"] == "ACTIVE"
    assert changed["subscription"]["currentPeriodEnd"] == subscription["currentPeriodEnd"]
    invoice = changed["invoice"]
    assert lines(invoice) == [("Unused time on Basic", -1967), ("Remaining time on Pro", 3275)]
    assert {(line["periodStart"][:19], line["periodEnd"][:19]) for line in invoice["lines"]} == {
        ("2030-04-11T08:00:00", "2030-05-01T00:00:00")
    }
    assert (
        invoice["subtotal"],
        invoice["discount"],
        invoice["total"],
        invoice["walletCreditApplied"],
        invoice["amountDue"],
        invoice["amountPaid"],
        invoice["status"],
    ) == (1308, 0, 1308, 500, 808, 808, "PAID")
    assert await balance(tenant, customer) == 0
    seen = await detail(tenant, subscription["id"])
    assert event_types(seen)[:2] == ["payment_succeeded", "plan_changed"]
    changed_event = seen["events"]["edges"][1]["node"]
    assert changed_event["invoice"] == {"id": invoice["id"]}

    # A rerun of the same change finds it done: no second invoice.
    again = await prorate(tenant, subscription["id"], pro["id"])
    assert (again["__typename"], again["invoice"]) == ("ChangeSubscriptionPlanSuccess", None)
    # The renewal bills the new plan in full, on the same anchor.
    await advance(tenant, clock["id"], RENEWAL)
    seen = await detail(tenant, subscription["id"])
    assert [(i["total"], i["status"]) for i in reversed(invoices_of(seen))] == [
        (3000, "PAID"),
        (1308, "PAID"),
        (4995, "PAID"),
    ]
    await assert_ledger_invariant(database)


async def test_a_downgrade_mid_period_credits_the_difference_to_the_wallet(
    tenant: Tenant, database: Database
) -> None:
    clock = await create_clock(tenant, START)
    customer = await funded_customer(tenant, 10_000, testClockId=clock["id"])
    basic = await create_plan(tenant, 3000, name="Basic")
    pro = await create_plan(tenant, 4995, name="Pro")
    subscription = await subscribed(tenant, customer, pro["id"])
    await advance(tenant, clock["id"], MIDDLE)
    assert await balance(tenant, customer) == 10_000 - 4995

    changed = await prorate(tenant, subscription["id"], basic["id"])
    assert changed["__typename"] == "ChangeSubscriptionPlanSuccess", changed
    invoice = changed["invoice"]
    assert lines(invoice) == [("Unused time on Pro", -3275), ("Remaining time on Basic", 1967)]
    # amountDue = total - walletCreditApplied still holds: -13.08 went back to the wallet.
    assert (
        invoice["subtotal"],
        invoice["total"],
        invoice["walletCreditApplied"],
        invoice["amountDue"],
        invoice["amountPaid"],
        invoice["status"],
        invoice["attemptCount"],
    ) == (-1308, -1308, -1308, 0, 0, "PAID", 0)
    assert invoice["paidAt"] is not None
    assert await balance(tenant, customer) == 10_000 - 4995 + 1308
    wallets = (await tenant.data(ENTRIES, {"id": customer}))["customer"]["wallets"]
    latest = wallets[0]["ledgerEntries"]["edges"][0]["node"]
    assert latest == {
        "entryType": "CREDIT",
        "amount": 1308,
        "reason": f"Invoice {invoice['number']}: unused time credited",
    }
    page = await invoice_page(tenant, invoice)
    assert "Credited to the wallet" in page and "-13.08 USD" in page
    await advance(tenant, clock["id"], RENEWAL)
    seen = await detail(tenant, subscription["id"])
    assert invoices_of(seen)[0]["total"] == 3000
    assert await balance(tenant, customer) == 10_000 - 4995 + 1308 - 3000
    await assert_ledger_invariant(database)


async def test_a_discounted_subscription_prorates_what_its_period_costs(
    tenant: Tenant, database: Database
) -> None:
    """50% off for ever: Pro costs 2497 a period (4995 less 2498, half up), Basic 1500; the
    downgrade credits 59/90 of 2497 (1637) and charges 59/90 of 1500 (983), not list prices."""
    clock = await create_clock(tenant, START)
    customer = await funded_customer(tenant, 10_000, testClockId=clock["id"])
    basic = await create_plan(tenant, 3000, name="Basic")
    pro = await create_plan(tenant, 4995, name="Pro")
    code = await create_code(tenant, (await create_coupon(tenant, percentOff=50))["id"])
    subscription = await subscribed(tenant, customer, pro["id"], promotionCode=code["code"])
    await advance(tenant, clock["id"], MIDDLE)
    assert await balance(tenant, customer) == 10_000 - 2497

    changed = await prorate(tenant, subscription["id"], basic["id"])
    assert changed["__typename"] == "ChangeSubscriptionPlanSuccess", changed
    invoice = changed["invoice"]
    assert lines(invoice) == [("Unused time on Pro", -1637), ("Remaining time on Basic", 983)]
    assert (invoice["total"], invoice["walletCreditApplied"], invoice["status"]) == (
        -654,
        -654,
        "PAID",
    )
    assert await balance(tenant, customer) == 10_000 - 2497 + 654
    await assert_ledger_invariant(database)


async def test_a_period_whose_invoice_was_voided_credits_no_unused_time(
    tenant: Tenant, database: Database
) -> None:
    """The renewal failed (no payment method) and was voided: ACTIVE again, but the period
    was never paid, so a prorated upgrade charges the new plan's remaining time in full."""
    clock = await create_clock(tenant, START)
    customer = await funded_customer(tenant, 3000, testClockId=clock["id"])
    basic = await create_plan(tenant, 3000, name="Basic")
    pro = await create_plan(tenant, 4995, name="Pro")
    subscription = await subscribed(tenant, customer, basic["id"])
    await advance(tenant, clock["id"], RENEWAL)
    renewal = invoices_of(await detail(tenant, subscription["id"]))[0]
    assert renewal["status"] == "OPEN"
    voided = await mutate(tenant, VOID, {"id": renewal["id"]})
    assert voided["__typename"] == "VoidInvoiceSuccess", voided
    assert (await detail(tenant, subscription["id"]))["status"] == "ACTIVE"
    # 2030-05-11 08:00 in May's period: 1,785,600 of its 2,678,400 seconds are left (2/3).
    await advance(tenant, clock["id"], "2030-05-11T08:00:00Z")
    changed = await prorate(tenant, subscription["id"], pro["id"])
    assert changed["__typename"] == "ChangeSubscriptionPlanSuccess", changed
    assert lines(changed["invoice"]) == [
        ("Unused time on Basic", 0),
        ("Remaining time on Pro", 3330),
    ]
    assert await balance(tenant, customer) == 0
    await assert_ledger_invariant(database)


async def invoice_page(tenant: Tenant, invoice: dict[str, Any]) -> str:
    response = await tenant.client.get(invoice["hostedUrl"].split("billgraph.test", 1)[-1])
    assert response.status_code == 200
    return response.text


async def test_a_declined_proration_charge_goes_to_dunning(
    tenant: Tenant, database: Database, providers: Providers
) -> None:
    clock = await create_clock(tenant, START)
    customer = await funded_customer(tenant, 3000, testClockId=clock["id"])
    basic = await create_plan(tenant, 3000)
    pro = await create_plan(tenant, 4995)
    subscription = await subscribed(tenant, customer, basic["id"])
    await save_card(tenant, database, providers, customer, subscription["id"], DECLINING_CARD)
    await advance(tenant, clock["id"], MIDDLE)
    changed = await prorate(tenant, subscription["id"], pro["id"])
    assert changed["__typename"] == "ChangeSubscriptionPlanSuccess", changed
    assert changed["subscription"]["status"] == "PAST_DUE"
    invoice = changed["invoice"]
    assert (invoice["status"], invoice["amountDue"], invoice["attemptCount"]) == ("OPEN", 1308, 1)
    assert invoice["nextPaymentAttemptAt"].startswith("2030-04-14T08:00:00")
    # While it is owed, no further prorated change.
    back = await prorate(tenant, subscription["id"], basic["id"])
    assert (back["__typename"], back["field"]) == ("ConflictError", "subscriptionId")
    await assert_ledger_invariant(database)


async def test_a_trial_switches_now_without_an_invoice(tenant: Tenant) -> None:
    customer = await funded_customer(tenant, 0)
    trial = await create_plan(tenant, 1000, trialDays=14)
    other = await create_plan(tenant, 2000)
    subscription = await subscribed(tenant, customer, trial["id"])
    changed = await prorate(tenant, subscription["id"], other["id"])
    assert changed["__typename"] == "ChangeSubscriptionPlanSuccess", changed
    assert (changed["subscription"]["status"], changed["invoice"]) == ("TRIALING", None)
    assert changed["subscription"]["plan"]["id"] == other["id"]
    seen = await detail(tenant, subscription["id"])
    assert invoices_of(seen) == [] and event_types(seen)[0] == "plan_changed"


async def test_prorated_changes_that_cannot_be_made_are_refused_and_write_nothing(
    tenant: Tenant, database: Database
) -> None:
    clock = await create_clock(tenant, START)
    customer = await funded_customer(tenant, 100_000, testClockId=clock["id"])
    basic = await create_plan(tenant, 3000)
    pro = await create_plan(tenant, 4995)
    yearly = await create_plan(tenant, 30_000, interval="YEAR")
    euros = await create_plan(tenant, 3000, currency="EUR")
    archived = await create_plan(tenant, 2000)
    await mutate(
        tenant,
        "mutation($id: ID!) { archivePlan(id: $id) { __typename } }",
        {"id": archived["id"]},
    )
    subscription = await subscribed(tenant, customer, basic["id"])
    sid = subscription["id"]
    # At the very start of the period an invoice (the first one) starts at this instant.
    at_start = await prorate(tenant, sid, pro["id"])
    assert (at_start["__typename"], at_start["field"]) == ("ConflictError", "subscriptionId")
    await advance(tenant, clock["id"], MIDDLE)
    for plan, typename, field in (
        (yearly, "ValidationError", "planId"),
        (euros, "ValidationError", "planId"),
        (archived, "ValidationError", "planId"),
        ({"id": "bm9wZQ"}, "ValidationError", "planId"),
    ):
        refused = await prorate(tenant, sid, plan["id"])
        assert (refused["__typename"], refused.get("field")) == (typename, field), refused
    upgraded = await prorate(tenant, sid, pro["id"])
    assert upgraded["__typename"] == "ChangeSubscriptionPlanSuccess", upgraded
    # A second change at the same frozen instant would start a second invoice there.
    twice = await prorate(tenant, sid, basic["id"])
    assert (twice["__typename"], twice["field"]) == ("ConflictError", "subscriptionId")
    before = await detail(tenant, sid)
    assert before["plan"]["id"] == pro["id"]
    canceled = await mutate(
        tenant,
        "mutation($input: CancelSubscriptionInput!) { cancelSubscription(input: $input) { __typename } }",
        {"input": {"subscriptionId": sid, "atPeriodEnd": False}},
    )
    assert canceled["__typename"] == "CancelSubscriptionSuccess"
    late = await prorate(tenant, sid, basic["id"])
    assert (late["__typename"], late["field"]) == ("ConflictError", "subscriptionId")
    assert len(invoices_of(await detail(tenant, sid))) == 2
    await assert_ledger_invariant(database)


async def test_a_crash_between_the_switch_and_the_charge_charges_once(org: Org) -> None:
    clock = await org.clock(at(2030, 4, 1))
    customer = await org.customer(credit=3000, clock=clock)
    card = await org.card(customer)
    sub = (await org.subscribe(customer, await org.plan(3000), method=card)).subscription
    pro = await org.plan(4995)
    await org.advance(clock, at(2030, 4, 11, 8))
    # The change's unit commits, then the process dies before the provider is asked.
    async with unit_of_work(org.database) as unit:
        invoice, attempt_id = await proration._switch(
            unit, org.id, sub.id, pro, None, dunning.policy(org.providers.settings)
        )
    assert invoice is not None and attempt_id is not None
    # The change asked again: done already, nothing more is invoiced.
    again = await proration.change_now(org.database, org.providers, org.id, sub.id, pro)
    assert again.invoice is None and again.subscription.plan_id == pro
    # The next billing run finishes the charge, once.
    summary = await org.advance(clock, at(2030, 4, 11, 8))
    assert summary.charged == 1
    invoices = await org.invoices(sub.id)
    assert [(i.total, i.status) for i in invoices] == [(3000, "PAID"), (1308, "PAID")]
    [attempt] = await org.attempts(invoices[1].id)
    assert (attempt.outcome, attempt.amount) == ("SUCCEEDED", 1308)
    assert await org.balance(customer) == 0
    await assert_ledger_invariant(org.database)
