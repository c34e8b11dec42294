"""Plans, subscriptions, invoices and test clocks through the graph, over HTTP, on SQLite and
PostgreSQL: credit first, trials, renewals on a test clock, dunning and its recovery with
payInvoice, cancellation, isolation between organizations, and the connections."""

import itertools
from datetime import UTC, datetime
from typing import Any

import pytest

from billgraph.billing import payment_methods as methods
from billgraph.billing import run, subscriptions
from billgraph.checkout.providers import Providers
from billgraph.core.unit import unit_of_work
from billgraph.db.engine import Database
from billgraph.graphql.node import from_global_id, to_global_id
from billgraph.settings import Settings
from tests.billing.helpers import DECLINING_CARD, GOOD_CARD
from tests.conftest import assert_ledger_invariant
from tests.support.graph import Tenant
from tests.support.ledger import count_statements

_keys = itertools.count(1)

ERRORS = "... on UserError { code message } ... on ValidationError { field }"

SUBSCRIPTION = """id status provider currentPeriodStart currentPeriodEnd trialEnd
  cancelAtPeriodEnd canceledAt nextBillingAt createdAt customer { id } plan { id name }"""

INVOICE = """id number status currency subtotal discount walletCreditApplied total amountDue
  amountPaid attemptCount nextPaymentAttemptAt dueAt paidAt createdAt hostedUrl
  customer { id } subscription { id }
  lines { description amount quantity periodStart periodEnd }"""

CREATE_PLAN = f"""mutation($input: CreatePlanInput!) {{ createPlan(input: $input) {{ __typename
  ... on CreatePlanSuccess {{ plan {{ id name amount currency interval intervalCount trialDays
  active createdAt }} }} {ERRORS} }} }}"""

CREATE_SUBSCRIPTION = f"""mutation($input: CreateSubscriptionInput!) {{
  createSubscription(input: $input) {{ __typename
  ... on CreateSubscriptionSuccess {{ replayed checkoutSession {{ id }}
    subscription {{ {SUBSCRIPTION} }} }}
  ... on IdempotencyConflictError {{ idempotencyKey }} {ERRORS} }} }}"""

SUBSCRIPTION_DETAIL = f"""query($id: ID!) {{ node(id: $id) {{ ... on Subscription {{ {SUBSCRIPTION}
  invoices(first: 10) {{ edges {{ node {{ {INVOICE} }} }} }}
  events(first: 50) {{ edges {{ node {{ id type message createdAt invoice {{ id }} }} }} }}
}} }} }}"""

CREATE_CLOCK = f"""mutation($input: CreateTestClockInput!) {{ createTestClock(input: $input) {{
  __typename ... on CreateTestClockSuccess {{ testClock {{ id name frozenTime }} }} {ERRORS} }} }}"""

ADVANCE_CLOCK = f"""mutation($input: AdvanceTestClockInput!) {{ advanceTestClock(input: $input) {{
  __typename ... on AdvanceTestClockSuccess {{ testClock {{ id frozenTime }}
    billingRun {{ subscriptions billed paidByCredit charged failed suspended canceled reminders }} }}
  {ERRORS} }} }}"""

CREATE_CUSTOMER = f"""mutation($input: CreateCustomerInput!) {{ createCustomer(input: $input) {{
  __typename ... on CreateCustomerSuccess {{ customer {{ id }} }} {ERRORS} }} }}"""

PAY_INVOICE = f"""mutation($input: PayInvoiceInput!) {{ payInvoice(input: $input) {{ __typename
  ... on PayInvoiceSuccess {{ replayed paymentError {{ code message }}
    invoice {{ {INVOICE} }} subscription {{ id status }} }} {ERRORS} }} }}"""

CANCEL = f"""mutation($input: CancelSubscriptionInput!) {{ cancelSubscription(input: $input) {{
  __typename ... on CancelSubscriptionSuccess {{ subscription {{ {SUBSCRIPTION} }} }} {ERRORS} }} }}"""

RESUME = f"""mutation($id: ID!) {{ resumeSubscription(id: $id) {{ __typename
  ... on ResumeSubscriptionSuccess {{ subscription {{ {SUBSCRIPTION} }} }} {ERRORS} }} }}"""

CHANGE_PLAN = f"""mutation($input: ChangeSubscriptionPlanInput!) {{
  changeSubscriptionPlan(input: $input) {{ __typename
  ... on ChangeSubscriptionPlanSuccess {{ subscription {{ {SUBSCRIPTION} }} }} {ERRORS} }} }}"""

VOID = f"""mutation($id: ID!) {{ voidInvoice(id: $id) {{ __typename
  ... on VoidInvoiceSuccess {{ invoice {{ {INVOICE} }} }} {ERRORS} }} }}"""

ARCHIVE = f"""mutation($id: ID!) {{ archivePlan(id: $id) {{ __typename
  ... on ArchivePlanSuccess {{ plan {{ id active }} }} {ERRORS} }} }}"""


def db_id(global_id: str) -> int:
    return from_global_id(global_id)[1]


def organization_db_id(tenant: Tenant) -> int:
    return db_id(tenant.organization_id)


async def mutate(tenant: Tenant, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    data = await tenant.data(query, variables)
    (result,) = data.values()
    return result  # type: ignore[no-any-return]


async def create_plan(tenant: Tenant, amount: int = 1000, **fields: Any) -> dict[str, Any]:
    fields = {"name": f"Plan {next(_keys)}", "currency": "USD", "interval": "MONTH", **fields}
    result = await mutate(tenant, CREATE_PLAN, {"input": {"amount": amount, **fields}})
    assert result["__typename"] == "CreatePlanSuccess", result
    return result["plan"]  # type: ignore[no-any-return]


async def subscribe(
    tenant: Tenant, customer_id: str, plan_id: str, **fields: Any
) -> dict[str, Any]:
    fields.setdefault("idempotencyKey", f"sub-{next(_keys)}")
    fields.setdefault("successUrl", "https://shop.example/subscribed")
    fields.setdefault("cancelUrl", "https://shop.example/cancelled")
    return await mutate(
        tenant,
        CREATE_SUBSCRIPTION,
        {"input": {"customerId": customer_id, "planId": plan_id, **fields}},
    )


async def subscribed(
    tenant: Tenant, customer_id: str, plan_id: str, **fields: Any
) -> dict[str, Any]:
    result = await subscribe(tenant, customer_id, plan_id, **fields)
    assert result["__typename"] == "CreateSubscriptionSuccess", result
    return result["subscription"]  # type: ignore[no-any-return]


async def detail(tenant: Tenant, subscription_id: str) -> dict[str, Any]:
    return (await tenant.data(SUBSCRIPTION_DETAIL, {"id": subscription_id}))["node"]  # type: ignore[no-any-return]


def invoices_of(subscription: dict[str, Any]) -> list[dict[str, Any]]:
    return [e["node"] for e in subscription["invoices"]["edges"]]


def event_types(subscription: dict[str, Any]) -> list[str]:
    return [e["node"]["type"] for e in subscription["events"]["edges"]]


async def balance(tenant: Tenant, customer_id: str, currency: str = "USD") -> int:
    data = await tenant.data(
        "query($id: ID!) { customer(id: $id) { wallets { currency balance } } }",
        {"id": customer_id},
    )
    wallets = {w["currency"]: w["balance"] for w in data["customer"]["wallets"]}
    return wallets.get(currency, 0)  # type: ignore[no-any-return]


async def funded_customer(tenant: Tenant, credit: int, **fields: Any) -> str:
    result = await mutate(
        tenant,
        CREATE_CUSTOMER,
        {"input": {"email": f"billing-graph{next(_keys)}@example.com", **fields}},
    )
    assert result["__typename"] == "CreateCustomerSuccess", result
    customer_id: str = result["customer"]["id"]
    if credit:
        posted = await tenant.post(customer_id, credit)
        assert posted["__typename"] == "CreateLedgerEntrySuccess", posted
    return customer_id


async def create_clock(tenant: Tenant, frozen: str, name: str | None = "test") -> dict[str, Any]:
    result = await mutate(tenant, CREATE_CLOCK, {"input": {"frozenTime": frozen, "name": name}})
    assert result["__typename"] == "CreateTestClockSuccess", result
    return result["testClock"]  # type: ignore[no-any-return]


async def advance(tenant: Tenant, clock_id: str, frozen: str) -> dict[str, Any]:
    return await mutate(
        tenant, ADVANCE_CLOCK, {"input": {"testClockId": clock_id, "frozenTime": frozen}}
    )


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


# --- credit first --------------------------------------------------------------------------


async def test_a_subscription_paid_by_wallet_credit_is_active_with_a_paid_invoice(
    tenant: Tenant, database: Database, settings: Settings
) -> None:
    customer = await funded_customer(tenant, 1500)
    plan = await create_plan(tenant, 1000, name="Pro")
    assert (plan["amount"], plan["interval"], plan["intervalCount"], plan["active"]) == (
        1000,
        "MONTH",
        1,
        True,
    )
    key = f"pro-{next(_keys)}"
    result = await subscribe(tenant, customer, plan["id"], idempotencyKey=key)
    assert result["__typename"] == "CreateSubscriptionSuccess", result
    assert (result["replayed"], result["checkoutSession"]) == (False, None)
    subscription = result["subscription"]
    assert subscription["status"] == "ACTIVE"
    assert subscription["provider"] == "SANDBOX"
    assert subscription["customer"]["id"] == customer
    assert subscription["plan"] == {"id": plan["id"], "name": "Pro"}
    assert subscription["nextBillingAt"] == subscription["currentPeriodEnd"]

    seen = await detail(tenant, subscription["id"])
    [invoice] = invoices_of(seen)
    assert invoice["status"] == "PAID"
    assert invoice["number"].startswith("INV-") and len(invoice["number"]) == 10
    assert (
        invoice["subtotal"],
        invoice["discount"],
        invoice["total"],
        invoice["walletCreditApplied"],
        invoice["amountDue"],
        invoice["amountPaid"],
        invoice["attemptCount"],
    ) == (1000, 0, 1000, 1000, 0, 0, 0)
    assert invoice["walletCreditApplied"] == invoice["total"]
    assert invoice["paidAt"] and invoice["nextPaymentAttemptAt"] is None
    assert invoice["customer"]["id"] == customer
    assert invoice["subscription"]["id"] == subscription["id"]
    [line] = invoice["lines"]
    assert (line["amount"], line["quantity"]) == (1000, 1)
    assert "Pro" in line["description"]
    assert line["periodStart"] == subscription["currentPeriodStart"]
    assert line["periodEnd"] == subscription["currentPeriodEnd"]
    prefix = f"{settings.public_url.rstrip('/')}/invoices/"
    assert invoice["hostedUrl"].startswith(prefix)
    assert len(invoice["hostedUrl"]) > len(prefix) + 30
    # Newest first.
    assert event_types(seen) == ["activated", "payment_succeeded", "created"]
    events = [e["node"] for e in seen["events"]["edges"]]
    assert events[1]["invoice"] == {"id": invoice["id"]}
    assert events[0]["invoice"] is None
    assert await balance(tenant, customer) == 500

    # node(id:) finds each of them.
    for node_id, typename in (
        (plan["id"], "Plan"),
        (subscription["id"], "Subscription"),
        (invoice["id"], "Invoice"),
    ):
        found = await tenant.data(
            "query($id: ID!) { node(id: $id) { __typename id } }", {"id": node_id}
        )
        assert found["node"] == {"__typename": typename, "id": node_id}
    await assert_ledger_invariant(database)


async def test_a_replayed_create_subscription_returns_the_same_subscription(
    tenant: Tenant, database: Database
) -> None:
    customer = await funded_customer(tenant, 5000)
    plan = await create_plan(tenant, 1000)
    key = f"replay-{next(_keys)}"
    first = await subscribe(tenant, customer, plan["id"], idempotencyKey=key)
    again = await subscribe(tenant, customer, plan["id"], idempotencyKey=key)
    assert again["__typename"] == "CreateSubscriptionSuccess", again
    assert again["replayed"] is True
    assert again["subscription"]["id"] == first["subscription"]["id"]
    assert len(invoices_of(await detail(tenant, first["subscription"]["id"]))) == 1
    assert await balance(tenant, customer) == 4000  # debited once
    other_plan = await create_plan(tenant, 2000)
    conflict = await subscribe(tenant, customer, other_plan["id"], idempotencyKey=key)
    assert conflict["__typename"] == "IdempotencyConflictError", conflict
    assert conflict["idempotencyKey"] == key
    await assert_ledger_invariant(database)


async def test_without_credit_or_payment_method_the_subscription_is_incomplete(
    tenant: Tenant, database: Database
) -> None:
    customer = await funded_customer(tenant, 0)
    plan = await create_plan(tenant, 1000)
    subscription = await subscribed(tenant, customer, plan["id"])
    assert subscription["status"] == "INCOMPLETE"
    [invoice] = invoices_of(await detail(tenant, subscription["id"]))
    assert (invoice["status"], invoice["amountDue"], invoice["walletCreditApplied"]) == (
        "OPEN",
        1000,
        0,
    )
    # Not payable without a method or enough credit: nothing written.
    refused = await mutate(
        tenant, PAY_INVOICE, {"input": {"invoiceId": invoice["id"], "idempotencyKey": "p-1"}}
    )
    assert (refused["__typename"], refused["field"]) == ("ValidationError", "invoiceId")
    # Credit topped up through the graph pays it.
    await tenant.post(customer, 1000)
    paid = await mutate(
        tenant, PAY_INVOICE, {"input": {"invoiceId": invoice["id"], "idempotencyKey": "p-2"}}
    )
    assert paid["__typename"] == "PayInvoiceSuccess", paid
    assert (paid["invoice"]["status"], paid["invoice"]["walletCreditApplied"]) == ("PAID", 1000)
    assert paid["subscription"]["status"] == "ACTIVE"
    assert paid["paymentError"] is None
    await assert_ledger_invariant(database)


async def test_a_trial_starts_trialing_without_an_invoice(tenant: Tenant) -> None:
    customer = await funded_customer(tenant, 0)
    plan = await create_plan(tenant, 1000, trialDays=14)
    assert plan["trialDays"] == 14
    subscription = await subscribed(tenant, customer, plan["id"])
    assert subscription["status"] == "TRIALING"
    assert subscription["trialEnd"] is not None
    assert subscription["nextBillingAt"] == subscription["trialEnd"]
    start, end = moment(subscription["currentPeriodStart"]), moment(subscription["trialEnd"])
    assert (end - start).days == 14
    seen = await detail(tenant, subscription["id"])
    assert invoices_of(seen) == []
    assert event_types(seen) == ["created"]
    # trialDays overrides the plan's: none at all here.
    customer_two = await funded_customer(tenant, 1000)
    no_trial = await subscribed(tenant, customer_two, plan["id"], trialDays=0)
    assert (no_trial["status"], no_trial["trialEnd"]) == ("ACTIVE", None)


# --- test clocks ---------------------------------------------------------------------------


async def test_a_test_clock_advanced_a_month_renews_and_invoices(
    tenant: Tenant, database: Database
) -> None:
    clock = await create_clock(tenant, "2024-01-31T12:00:00+00:00", name="leap")
    assert clock["name"] == "leap"
    assert moment(clock["frozenTime"]) == datetime(2024, 1, 31, 12, tzinfo=UTC)
    customer = await funded_customer(tenant, 2500, testClockId=clock["id"])
    plan = await create_plan(tenant, 1000)
    subscription = await subscribed(tenant, customer, plan["id"])
    assert subscription["status"] == "ACTIVE"
    assert moment(subscription["currentPeriodStart"]) == datetime(2024, 1, 31, 12, tzinfo=UTC)
    assert moment(subscription["currentPeriodEnd"]) == datetime(2024, 2, 29, 12, tzinfo=UTC)

    reminded = await advance(tenant, clock["id"], "2024-02-26T12:00:00Z")
    assert reminded["__typename"] == "AdvanceTestClockSuccess", reminded
    assert (reminded["billingRun"]["reminders"], reminded["billingRun"]["billed"]) == (1, 0)
    advanced = await advance(tenant, clock["id"], "2024-02-29T12:00:00Z")
    assert advanced["__typename"] == "AdvanceTestClockSuccess", advanced
    assert moment(advanced["testClock"]["frozenTime"]) == datetime(2024, 2, 29, 12, tzinfo=UTC)
    assert advanced["billingRun"]["billed"] == 1
    assert advanced["billingRun"]["paidByCredit"] == 1
    seen = await detail(tenant, subscription["id"])
    assert seen["status"] == "ACTIVE"
    assert moment(seen["currentPeriodStart"]) == datetime(2024, 2, 29, 12, tzinfo=UTC)
    assert moment(seen["currentPeriodEnd"]) == datetime(2024, 3, 31, 12, tzinfo=UTC)
    renewal, first = invoices_of(seen)
    assert (renewal["status"], renewal["walletCreditApplied"]) == ("PAID", 1000)
    assert moment(renewal["lines"][0]["periodStart"]) == datetime(2024, 2, 29, 12, tzinfo=UTC)
    assert moment(renewal["createdAt"]) == datetime(2024, 2, 29, 12, tzinfo=UTC)
    assert first["status"] == "PAID"
    assert "renewal_upcoming" in event_types(seen)
    assert await balance(tenant, customer) == 500

    # Never backwards; the same time is fine and bills nothing more.
    back = await advance(tenant, clock["id"], "2024-02-01T00:00:00Z")
    assert (back["__typename"], back["field"]) == ("ValidationError", "frozenTime")
    same = await advance(tenant, clock["id"], "2024-02-29T12:00:00Z")
    assert same["billingRun"]["billed"] == 0
    found = await tenant.data(
        "query($id: ID!) { node(id: $id) { ... on TestClock { id name frozenTime } } }",
        {"id": clock["id"]},
    )
    assert found["node"]["id"] == clock["id"]
    await assert_ledger_invariant(database)


async def test_a_test_clock_needs_a_timezone_and_a_customer_lives_on_one_clock(
    tenant: Tenant,
) -> None:
    naive = await mutate(tenant, CREATE_CLOCK, {"input": {"frozenTime": "2024-01-01T00:00:00"}})
    assert (naive["__typename"], naive["field"]) == ("ValidationError", "frozenTime")
    # Times billing could not count periods from (a date overflow) are refused, not a 500.
    for far in ("9999-12-31T23:59:59+00:00", "0001-01-01T00:00:00+05:00", "1969-12-31T23:59:59Z"):
        refused = await mutate(tenant, CREATE_CLOCK, {"input": {"frozenTime": far}})
        assert (refused["__typename"], refused["field"]) == ("ValidationError", "frozenTime")
    clock = await create_clock(tenant, "2999-12-01T00:00:00Z")
    beyond = await advance(tenant, clock["id"], "3000-01-01T00:00:00Z")
    assert (beyond["__typename"], beyond["field"]) == ("ValidationError", "frozenTime")
    # Two years at a time at most: advancing bills every period in between first.
    clock = await create_clock(tenant, "2030-01-31T00:00:00Z")
    far = await advance(tenant, clock["id"], "2032-01-31T00:00:01Z")
    assert (far["__typename"], far["field"]) == ("ValidationError", "frozenTime")
    two_years = await advance(tenant, clock["id"], "2032-01-31T00:00:00Z")
    assert two_years["__typename"] == "AdvanceTestClockSuccess", two_years
    unknown = await mutate(
        tenant,
        CREATE_CUSTOMER,
        {
            "input": {
                "email": f"clockless{next(_keys)}@example.com",
                "testClockId": to_global_id("TestClock", 2**40),
            }
        },
    )
    assert unknown["__typename"] == "NotFoundError", unknown


async def test_a_trial_on_a_test_clock_ends_with_its_first_invoice(
    tenant: Tenant, database: Database
) -> None:
    clock = await create_clock(tenant, "2026-05-01T08:00:00Z")
    paying = await funded_customer(tenant, 1000, testClockId=clock["id"])
    broke = await funded_customer(tenant, 0, testClockId=clock["id"])
    plan = await create_plan(tenant, 1000, trialDays=7)
    covered = await subscribed(tenant, paying, plan["id"])
    uncovered = await subscribed(tenant, broke, plan["id"])
    assert moment(covered["trialEnd"]) == datetime(2026, 5, 8, 8, tzinfo=UTC)
    reminded = await advance(tenant, clock["id"], "2026-05-05T08:00:00Z")
    assert reminded["billingRun"]["reminders"] == 2
    ended = await advance(tenant, clock["id"], "2026-05-08T08:00:00Z")
    assert ended["billingRun"]["billed"] == 2
    seen = await detail(tenant, covered["id"])
    assert seen["status"] == "ACTIVE"
    assert moment(seen["currentPeriodEnd"]) == datetime(2026, 6, 8, 8, tzinfo=UTC)
    assert [i["status"] for i in invoices_of(seen)] == ["PAID"]
    assert "trial_will_end" in event_types(seen)
    # No credit and no payment method when the trial ends: INCOMPLETE, its invoice OPEN.
    left = await detail(tenant, uncovered["id"])
    assert (left["status"], left["nextBillingAt"]) == ("INCOMPLETE", None)
    assert [i["status"] for i in invoices_of(left)] == ["OPEN"]
    await assert_ledger_invariant(database)


# --- dunning -------------------------------------------------------------------------------


async def test_dunning_with_a_declining_card_then_recovery_with_pay_invoice(
    tenant: Tenant, database: Database, providers: Providers
) -> None:
    organization = organization_db_id(tenant)
    clock = await create_clock(tenant, "2025-03-10T09:00:00Z")
    customer = await funded_customer(tenant, 1000, testClockId=clock["id"])
    plan = await create_plan(tenant, 1000)
    subscription = await subscribed(tenant, customer, plan["id"])
    assert subscription["status"] == "ACTIVE"
    # The subscription checkout that collects a card is not built: the domain saves it.
    async with unit_of_work(database) as unit:
        declining = await methods.save_sandbox_card(
            unit, organization, db_id(customer), DECLINING_CARD
        )
    await run.attach_payment_method(
        database, providers, organization, db_id(subscription["id"]), declining.id
    )

    advanced = await advance(tenant, clock["id"], "2025-04-10T09:00:00Z")
    assert advanced["__typename"] == "AdvanceTestClockSuccess", advanced
    assert advanced["billingRun"]["failed"] == 1
    seen = await detail(tenant, subscription["id"])
    assert seen["status"] == "PAST_DUE"
    renewal = invoices_of(seen)[0]
    assert (renewal["status"], renewal["attemptCount"], renewal["amountDue"]) == ("OPEN", 1, 1000)
    assert moment(renewal["nextPaymentAttemptAt"]) == datetime(2025, 4, 13, 9, tzinfo=UTC)
    assert event_types(seen)[:2] == ["past_due", "payment_failed"]

    # A customer-initiated retry with the same card: declined, no error.
    declined = await mutate(
        tenant, PAY_INVOICE, {"input": {"invoiceId": renewal["id"], "idempotencyKey": "retry-1"}}
    )
    assert declined["__typename"] == "PayInvoiceSuccess", declined
    assert declined["paymentError"]["code"] == "card_declined"
    assert (declined["invoice"]["status"], declined["invoice"]["attemptCount"]) == ("OPEN", 2)
    assert declined["subscription"]["status"] == "PAST_DUE"
    replayed = await mutate(
        tenant, PAY_INVOICE, {"input": {"invoiceId": renewal["id"], "idempotencyKey": "retry-1"}}
    )
    assert (replayed["replayed"], replayed["paymentError"]) == (True, declined["paymentError"])
    assert replayed["invoice"]["attemptCount"] == 2

    async with unit_of_work(database) as unit:
        good = await methods.save_sandbox_card(unit, organization, db_id(customer), GOOD_CARD)
        await subscriptions.set_payment_method(
            unit, organization, db_id(subscription["id"]), good.id
        )
    paid = await mutate(
        tenant, PAY_INVOICE, {"input": {"invoiceId": renewal["id"], "idempotencyKey": "retry-2"}}
    )
    assert paid["__typename"] == "PayInvoiceSuccess", paid
    assert paid["paymentError"] is None and paid["replayed"] is False
    invoice = paid["invoice"]
    assert (invoice["status"], invoice["amountPaid"], invoice["amountDue"]) == ("PAID", 1000, 1000)
    assert invoice["nextPaymentAttemptAt"] is None and invoice["attemptCount"] == 3
    assert paid["subscription"]["status"] == "ACTIVE"
    again = await mutate(
        tenant, PAY_INVOICE, {"input": {"invoiceId": renewal["id"], "idempotencyKey": "retry-2"}}
    )
    assert again["replayed"] is True and again["invoice"]["attemptCount"] == 3
    seen = await detail(tenant, subscription["id"])
    assert event_types(seen)[:2] == ["activated", "payment_succeeded"]
    await assert_ledger_invariant(database)


# --- cancel, resume, change of plan, void --------------------------------------------------


async def test_cancel_resume_and_change_plan(tenant: Tenant) -> None:
    customer = await funded_customer(tenant, 5000)
    plan = await create_plan(tenant, 1000)
    subscription = await subscribed(tenant, customer, plan["id"])
    sid = subscription["id"]
    later = await mutate(tenant, CANCEL, {"input": {"subscriptionId": sid, "reason": "too dear"}})
    assert later["__typename"] == "CancelSubscriptionSuccess", later
    assert (later["subscription"]["status"], later["subscription"]["cancelAtPeriodEnd"]) == (
        "ACTIVE",
        True,
    )
    resumed = await mutate(tenant, RESUME, {"id": sid})
    assert resumed["subscription"]["cancelAtPeriodEnd"] is False
    again = await mutate(tenant, RESUME, {"id": sid})
    assert again["__typename"] == "ConflictError", again

    bigger = await create_plan(tenant, 2000)
    euros = await create_plan(tenant, 1000, currency="EUR")
    other_currency = await mutate(
        tenant, CHANGE_PLAN, {"input": {"subscriptionId": sid, "planId": euros["id"]}}
    )
    assert (other_currency["__typename"], other_currency["field"]) == ("ValidationError", "planId")
    changed = await mutate(
        tenant, CHANGE_PLAN, {"input": {"subscriptionId": sid, "planId": bigger["id"]}}
    )
    assert changed["__typename"] == "ChangeSubscriptionPlanSuccess", changed
    assert changed["subscription"]["plan"]["id"] == plan["id"]  # from the next period
    assert event_types(await detail(tenant, sid))[0] == "plan_changed"

    now = await mutate(tenant, CANCEL, {"input": {"subscriptionId": sid, "atPeriodEnd": False}})
    assert now["subscription"]["status"] == "CANCELED"
    assert now["subscription"]["canceledAt"] is not None
    assert now["subscription"]["nextBillingAt"] is None
    assert (await mutate(tenant, RESUME, {"id": sid}))["__typename"] == "ConflictError"
    twice = await mutate(tenant, CANCEL, {"input": {"subscriptionId": sid}})
    assert twice["__typename"] == "ConflictError", twice


async def test_void_an_open_invoice_and_archive_a_plan(tenant: Tenant, database: Database) -> None:
    customer = await funded_customer(tenant, 400)
    plan = await create_plan(tenant, 1000)
    subscription = await subscribed(tenant, customer, plan["id"])
    assert subscription["status"] == "INCOMPLETE"
    [invoice] = invoices_of(await detail(tenant, subscription["id"]))
    assert (invoice["walletCreditApplied"], invoice["amountDue"]) == (400, 600)
    assert await balance(tenant, customer) == 0
    voided = await mutate(tenant, VOID, {"id": invoice["id"]})
    assert voided["__typename"] == "VoidInvoiceSuccess", voided
    assert voided["invoice"]["status"] == "VOID"
    assert await balance(tenant, customer) == 400  # the credit it took, given back
    assert (await mutate(tenant, VOID, {"id": invoice["id"]}))["invoice"]["status"] == "VOID"
    paid_customer = await funded_customer(tenant, 1000)
    paid = invoices_of(
        await detail(tenant, (await subscribed(tenant, paid_customer, plan["id"]))["id"])
    )
    refused = await mutate(tenant, VOID, {"id": paid[0]["id"]})
    assert refused["__typename"] == "ConflictError", refused

    archived = await mutate(tenant, ARCHIVE, {"id": plan["id"]})
    assert archived["plan"] == {"id": plan["id"], "active": False}
    late = await subscribe(tenant, paid_customer, plan["id"])
    assert (late["__typename"], late["field"]) == ("ValidationError", "planId")
    await assert_ledger_invariant(database)


async def test_bad_inputs_are_validation_errors_and_change_nothing(tenant: Tenant) -> None:
    customer = await funded_customer(tenant, 1000)
    plan = await create_plan(tenant, 1000)
    for fields, field in (
        ({"promotionCode": "WELCOME20"}, "promotionCode"),  # no such code
        ({"provider": "STRIPE", "successUrl": None}, "successUrl"),  # Stripe's checkout returns
        ({"provider": "STRIPE", "promotionCode": "WELCOME20"}, "promotionCode"),  # billgraph's
        ({"provider": "TOSS"}, "provider"),  # USD: Toss bills KRW only
        ({"successUrl": "not a url"}, "successUrl"),
        ({"cancelUrl": "ftp://shop.example"}, "cancelUrl"),
        ({"trialDays": -1}, "trialDays"),
        ({"idempotencyKey": "billgraph:mine"}, "idempotencyKey"),
    ):
        result = await subscribe(tenant, customer, plan["id"], **fields)
        assert (result["__typename"], result["field"]) == ("ValidationError", field), result
    assert await balance(tenant, customer) == 1000
    for fields, field in (
        ({"amount": 0}, "amount"),
        ({"intervalCount": 37}, "intervalCount"),
        ({"interval": "YEAR", "intervalCount": 4}, "intervalCount"),
        ({"trialDays": 731}, "trialDays"),
        ({"name": ""}, "name"),
    ):
        variables = {"name": "x", "amount": 100, "currency": "USD", "interval": "MONTH", **fields}
        result = await mutate(tenant, CREATE_PLAN, {"input": variables})
        assert (result["__typename"], result["field"]) == ("ValidationError", field), result


# --- isolation -----------------------------------------------------------------------------


async def test_another_organizations_ids_are_not_found(
    tenant: Tenant, other_tenant: Tenant
) -> None:
    clock = await create_clock(other_tenant, "2025-01-01T00:00:00Z")
    theirs = await funded_customer(other_tenant, 1000, testClockId=clock["id"])
    their_plan = await create_plan(other_tenant, 1000)
    their_subscription = await subscribed(other_tenant, theirs, their_plan["id"])
    [their_invoice] = invoices_of(await detail(other_tenant, their_subscription["id"]))
    mine = await funded_customer(tenant, 1000)
    my_plan = await create_plan(tenant, 1000)

    cases = [
        (
            CREATE_SUBSCRIPTION,
            {"input": {"customerId": theirs, "planId": my_plan["id"], "idempotencyKey": "x1"}},
        ),
        (
            CREATE_SUBSCRIPTION,
            {"input": {"customerId": mine, "planId": their_plan["id"], "idempotencyKey": "x2"}},
        ),
        (ARCHIVE, {"id": their_plan["id"]}),
        (CANCEL, {"input": {"subscriptionId": their_subscription["id"]}}),
        (RESUME, {"id": their_subscription["id"]}),
        (
            CHANGE_PLAN,
            {"input": {"subscriptionId": their_subscription["id"], "planId": my_plan["id"]}},
        ),
        (PAY_INVOICE, {"input": {"invoiceId": their_invoice["id"], "idempotencyKey": "x3"}}),
        (VOID, {"id": their_invoice["id"]}),
        (
            ADVANCE_CLOCK,
            {"input": {"testClockId": clock["id"], "frozenTime": "2026-01-01T00:00:00Z"}},
        ),
        (
            CREATE_CUSTOMER,
            {"input": {"email": f"mine{next(_keys)}@example.com", "testClockId": clock["id"]}},
        ),
    ]
    for query, variables in cases:
        result = await mutate(tenant, query, variables)
        assert result["__typename"] == "NotFoundError", (query, result)
    for node_id in (clock["id"], their_plan["id"], their_subscription["id"], their_invoice["id"]):
        found = await tenant.data("query($id: ID!) { node(id: $id) { id } }", {"id": node_id})
        assert found["node"] is None
    # Theirs are as they were.
    seen = await detail(other_tenant, their_subscription["id"])
    assert (seen["status"], seen["cancelAtPeriodEnd"]) == ("ACTIVE", False)
    clock_now = await other_tenant.data(
        "query($id: ID!) { node(id: $id) { ... on TestClock { frozenTime } } }", {"id": clock["id"]}
    )
    assert moment(clock_now["node"]["frozenTime"]) == datetime(2025, 1, 1, tzinfo=UTC)
    plans = await tenant.data("{ viewer { plans(first: 100) { edges { node { id } } } } }")
    assert their_plan["id"] not in {e["node"]["id"] for e in plans["viewer"]["plans"]["edges"]}


# --- connections ---------------------------------------------------------------------------

CUSTOMER_PAGES = """query($id: ID!, $first: Int, $after: String, $status: SubscriptionStatus,
    $invoiceStatus: InvoiceStatus) { customer(id: $id) {
  subscriptions(first: $first, after: $after, status: $status) {
    edges { cursor node { id status } } pageInfo { hasNextPage endCursor } }
  invoices(first: $first, status: $invoiceStatus) {
    edges { node { id status } } pageInfo { hasNextPage endCursor } } } }"""


async def test_customer_subscriptions_and_invoices_pages(tenant: Tenant) -> None:
    customer = await funded_customer(tenant, 2000)
    plan = await create_plan(tenant, 1000)
    made = [await subscribed(tenant, customer, plan["id"]) for _ in range(3)]
    assert [s["status"] for s in made] == ["ACTIVE", "ACTIVE", "INCOMPLETE"]
    newest_first = [s["id"] for s in reversed(made)]
    first = (await tenant.data(CUSTOMER_PAGES, {"id": customer, "first": 2}))["customer"]
    assert [e["node"]["id"] for e in first["subscriptions"]["edges"]] == newest_first[:2]
    assert first["subscriptions"]["pageInfo"]["hasNextPage"] is True
    assert [e["node"]["status"] for e in first["invoices"]["edges"]] == ["OPEN", "PAID"]
    rest = (
        await tenant.data(
            CUSTOMER_PAGES,
            {"id": customer, "first": 2, "after": first["subscriptions"]["pageInfo"]["endCursor"]},
        )
    )["customer"]
    assert [e["node"]["id"] for e in rest["subscriptions"]["edges"]] == newest_first[2:]
    assert rest["subscriptions"]["pageInfo"]["hasNextPage"] is False
    filtered = (
        await tenant.data(
            CUSTOMER_PAGES, {"id": customer, "status": "INCOMPLETE", "invoiceStatus": "PAID"}
        )
    )["customer"]
    assert [e["node"]["id"] for e in filtered["subscriptions"]["edges"]] == [made[2]["id"]]
    assert [e["node"]["status"] for e in filtered["invoices"]["edges"]] == ["PAID", "PAID"]
    bad = await tenant.gql(CUSTOMER_PAGES, {"id": customer, "after": "bm9wZQ"})
    assert bad["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"

    plans = await tenant.data(
        """query($active: Boolean) { viewer { plans(first: 100, active: $active) {
          edges { node { id active } } } } }""",
        {"active": True},
    )
    assert plan["id"] in {e["node"]["id"] for e in plans["viewer"]["plans"]["edges"]}


MANY = """query($first: Int!) { customers(first: $first) { edges { node { id
  subscriptions(first: 3) { edges { node { id plan { id }
    invoices(first: 2) { edges { node { id lines { amount } } } }
    events(first: 2) { edges { node { type } } } } } }
  invoices(first: 3) { edges { node { id subscription { id } } } } } } } }"""


async def test_a_page_of_customers_with_their_billing_is_a_constant_number_of_statements(
    tenant: Tenant, database: Database
) -> None:
    plan = await create_plan(tenant, 100)
    for number in range(5):
        customer = await funded_customer(tenant, 1000)
        for _ in range(number):
            await subscribed(tenant, customer, plan["id"])
    await tenant.data(MANY, {"first": 1})
    with count_statements(database) as small:
        await tenant.data(MANY, {"first": 2})
    with count_statements(database) as large:
        page = await tenant.data(MANY, {"first": 5})
    assert len(large) == len(small), large
    counts = [len(e["node"]["subscriptions"]["edges"]) for e in page["customers"]["edges"]]
    assert counts == [0, 1, 2, 3, 3]


@pytest.mark.parametrize("mutation", ["createPlan", "createTestClock"])
async def test_a_read_key_cannot_bill(tenant: Tenant, database: Database, mutation: str) -> None:
    from billgraph.api_keys import service as api_keys
    from billgraph.api_keys.service import Scope

    async with unit_of_work(database) as unit:
        made = await api_keys.create(unit, organization_db_id(tenant), "read", [Scope.READ])
    query = {
        "createPlan": CREATE_PLAN,
        "createTestClock": CREATE_CLOCK,
    }[mutation]
    variables = {
        "createPlan": {"input": {"name": "x", "amount": 1, "currency": "USD", "interval": "MONTH"}},
        "createTestClock": {"input": {"frozenTime": "2025-01-01T00:00:00Z"}},
    }[mutation]
    body = await tenant.gql(query, variables, key=made.secret)
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
