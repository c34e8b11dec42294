"""Coupons and promotion codes through the graph, over HTTP, on SQLite and PostgreSQL: the
inputs refused, validatePromotionCode's answers, each duration over renewals on a test clock
(amounts exact), and two customers racing for the last redemption."""

import asyncio
import itertools
from typing import Any

from billgraph.db.engine import Database
from tests.billing.test_graph import (
    ERRORS,
    advance,
    balance,
    create_clock,
    create_plan,
    detail,
    funded_customer,
    invoices_of,
    mutate,
    subscribe,
    subscribed,
)
from tests.conftest import assert_ledger_invariant
from tests.support.graph import Tenant

_keys = itertools.count(1)

COUPON = """id name percentOff amountOff currency duration durationInMonths maxRedemptions
  timesRedeemed redeemBy description"""

CREATE_COUPON = f"""mutation($input: CreateCouponInput!) {{ createCoupon(input: $input) {{
  __typename ... on CreateCouponSuccess {{ coupon {{ {COUPON} }} }} {ERRORS} }} }}"""

CREATE_CODE = f"""mutation($input: CreatePromotionCodeInput!) {{
  createPromotionCode(input: $input) {{ __typename
  ... on CreatePromotionCodeSuccess {{ promotionCode {{ id code maxRedemptions timesRedeemed
    expiresAt firstTimeOnly minimumAmount minimumAmountCurrency coupon {{ id }} }} }}
  ... on ConflictError {{ field }} {ERRORS} }} }}"""

VALIDATE = """query($code: String!, $planId: ID!, $customerId: ID) {
  validatePromotionCode(code: $code, planId: $planId, customerId: $customerId) {
    valid reason description
    coupon { id name percentOff amountOff currency duration durationInMonths } } }"""

DISCOUNT = """query($id: ID!) { node(id: $id) { ... on Subscription {
  discount { startsAt endsAt coupon { id } promotionCode { id code } } } } }"""

COUNTS = """query($id: ID!) { node(id: $id) { ... on Coupon { timesRedeemed } } }"""

CODE_COUNT = """query($id: ID!) { node(id: $id) { ... on PromotionCode { timesRedeemed } } }"""

SUBSCRIPTIONS = """query($id: ID!) { customer(id: $id) {
  subscriptions(first: 10) { edges { node { id } } } } }"""


async def create_coupon(tenant: Tenant, **fields: Any) -> dict[str, Any]:
    fields = {"name": f"Coupon {next(_keys)}", "duration": "FOREVER", **fields}
    result = await mutate(tenant, CREATE_COUPON, {"input": fields})
    assert result["__typename"] == "CreateCouponSuccess", result
    return result["coupon"]  # type: ignore[no-any-return]


async def create_code(tenant: Tenant, coupon_id: str, **fields: Any) -> dict[str, Any]:
    fields = {"couponId": coupon_id, "code": f"CODE{next(_keys)}", **fields}
    result = await mutate(tenant, CREATE_CODE, {"input": fields})
    assert result["__typename"] == "CreatePromotionCodeSuccess", result
    return result["promotionCode"]  # type: ignore[no-any-return]


async def validate(
    tenant: Tenant, code: str, plan_id: str, customer_id: str | None = None
) -> dict[str, Any]:
    data = await tenant.data(VALIDATE, {"code": code, "planId": plan_id, "customerId": customer_id})
    return data["validatePromotionCode"]  # type: ignore[no-any-return]


async def times_redeemed(tenant: Tenant, node_id: str, query: str = COUNTS) -> int:
    return (await tenant.data(query, {"id": node_id}))["node"]["timesRedeemed"]  # type: ignore[no-any-return]


async def coupon_count(tenant: Tenant) -> int:
    data = await tenant.data("{ viewer { coupons(first: 100) { edges { node { id } } } } }")
    return len(data["viewer"]["coupons"]["edges"])


def totals(subscription: dict[str, Any]) -> list[tuple[int, int, int]]:
    """(subtotal, discount, total) of each invoice, oldest first."""
    return [(i["subtotal"], i["discount"], i["total"]) for i in reversed(invoices_of(subscription))]


# --- refused inputs -----------------------------------------------------------------------


async def test_bad_coupons_are_refused_naming_the_field_and_write_nothing(tenant: Tenant) -> None:
    for fields, field in (
        ({"percentOff": 10, "amountOff": 500, "currency": "USD"}, "percentOff"),
        ({}, "percentOff"),
        ({"percentOff": 0}, "percentOff"),
        ({"percentOff": 101}, "percentOff"),
        ({"percentOff": 10, "currency": "USD"}, "currency"),
        ({"amountOff": 500}, "currency"),
        ({"amountOff": 0, "currency": "USD"}, "amountOff"),
        ({"amountOff": -5, "currency": "USD"}, "amountOff"),
        ({"percentOff": 10, "duration": "REPEATING"}, "durationInMonths"),
        ({"percentOff": 10, "duration": "REPEATING", "durationInMonths": 0}, "durationInMonths"),
        ({"percentOff": 10, "duration": "REPEATING", "durationInMonths": 121}, "durationInMonths"),
        ({"percentOff": 10, "duration": "ONCE", "durationInMonths": 3}, "durationInMonths"),
        ({"percentOff": 10, "maxRedemptions": 0}, "maxRedemptions"),
        ({"percentOff": 10, "redeemBy": "2020-01-01T00:00:00Z"}, "redeemBy"),
        ({"percentOff": 10, "redeemBy": "2099-01-01T00:00:00"}, "redeemBy"),
        ({"percentOff": 10, "redeemBy": "9999-12-31T23:59:59-05:00"}, "redeemBy"),
        ({"percentOff": 10, "redeemBy": "0001-01-01T00:00:00+05:00"}, "redeemBy"),
        ({"percentOff": 10, "name": "  "}, "name"),
    ):
        variables = {"name": "Bad", "duration": "FOREVER", **fields}
        result = await mutate(tenant, CREATE_COUPON, {"input": variables})
        assert (result["__typename"], result["field"]) == ("ValidationError", field), (
            fields,
            result,
        )
    # A fraction of a percent is not an Int: the document is refused before it runs.
    body = await tenant.gql(
        CREATE_COUPON, {"input": {"name": "x", "duration": "ONCE", "percentOff": 12.5}}
    )
    assert body.get("data") is None
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert await coupon_count(tenant) == 0


async def test_bad_promotion_codes_are_refused_naming_the_field(
    tenant: Tenant, other_tenant: Tenant
) -> None:
    dollars = await create_coupon(tenant, amountOff=500, currency="USD", duration="ONCE")
    percent = await create_coupon(tenant, percentOff=20)
    await create_code(tenant, percent["id"], code="Welcome_20-x")
    for fields, typename, field in (
        ({"code": "NO SPACES"}, "ValidationError", "code"),
        ({"code": ""}, "ValidationError", "code"),
        ({"code": "x" * 65}, "ValidationError", "code"),
        ({"code": "ÉTÉ"}, "ValidationError", "code"),
        ({"code": "welcome_20-X"}, "ConflictError", "code"),  # taken, whatever the case
        ({"maxRedemptions": 0}, "ValidationError", "maxRedemptions"),
        ({"expiresAt": "2020-01-01T00:00:00Z"}, "ValidationError", "expiresAt"),
        ({"expiresAt": "9999-12-31T23:59:59-05:00"}, "ValidationError", "expiresAt"),
        ({"minimumAmount": 1000}, "ValidationError", "minimumAmountCurrency"),
        ({"minimumAmountCurrency": "USD"}, "ValidationError", "minimumAmountCurrency"),
        ({"minimumAmount": 0, "minimumAmountCurrency": "USD"}, "ValidationError", "minimumAmount"),
        ({"couponId": "bm9wZQ"}, "ValidationError", "couponId"),
    ):
        variables = {"couponId": percent["id"], "code": f"OK{next(_keys)}", **fields}
        result = await mutate(tenant, CREATE_CODE, {"input": variables})
        assert (result["__typename"], result.get("field")) == (typename, field), (fields, result)
    # An amountOff coupon's minimum is in its own currency.
    mismatch = await mutate(
        tenant,
        CREATE_CODE,
        {
            "input": {
                "couponId": dollars["id"],
                "code": "EUROS",
                "minimumAmount": 1000,
                "minimumAmountCurrency": "EUR",
            }
        },
    )
    assert (mismatch["__typename"], mismatch["field"]) == (
        "ValidationError",
        "minimumAmountCurrency",
    )
    # Another organization's coupon is not found; its codes are its own.
    theirs = await mutate(
        other_tenant, CREATE_CODE, {"input": {"couponId": percent["id"], "code": "MINE"}}
    )
    assert theirs["__typename"] == "NotFoundError", theirs
    their_coupon = await create_coupon(other_tenant, percentOff=5)
    same_code = await create_code(other_tenant, their_coupon["id"], code="WELCOME_20-X")
    assert same_code["code"] == "WELCOME_20-X"
    listed = await tenant.data(
        "{ viewer { coupons(first: 100) { edges { node { id description } } } } }"
    )
    assert [e["node"] for e in listed["viewer"]["coupons"]["edges"]] == [
        {"id": dollars["id"], "description": "5.00 USD off once"},
        {"id": percent["id"], "description": "20% off forever"},
    ]


# --- validatePromotionCode ----------------------------------------------------------------


async def test_validate_promotion_code_answers(tenant: Tenant, database: Database) -> None:
    clock = await create_clock(tenant, "2031-06-01T00:00:00Z")
    plan = await create_plan(tenant, 2000)
    euro_plan = await create_plan(tenant, 2000, currency="EUR")
    cheap_plan = await create_plan(tenant, 900)
    repeating = await create_coupon(
        tenant, name="Spring", percentOff=20, duration="REPEATING", durationInMonths=3
    )
    once = await create_coupon(tenant, name="Fiver", amountOff=500, currency="USD", duration="ONCE")
    code = await create_code(
        tenant, repeating["id"], code="SPRING20", minimumAmount=1000, minimumAmountCurrency="USD"
    )
    await create_code(tenant, once["id"], code="FIVER")

    valid = await validate(tenant, "spring20", plan["id"])
    assert (valid["valid"], valid["reason"], valid["description"]) == (
        True,
        None,
        "20% off for 3 months",
    )
    assert valid["coupon"] == {
        "id": repeating["id"],
        "name": "Spring",
        "percentOff": 20,
        "amountOff": None,
        "currency": None,
        "duration": "REPEATING",
        "durationInMonths": 3,
    }
    fiver = await validate(tenant, "Fiver", plan["id"])
    assert (fiver["valid"], fiver["description"]) == (True, "5.00 USD off once")

    # An amountOff coupon in another currency than the plan's; a minimum in another currency.
    wrong_currency = await validate(tenant, "FIVER", euro_plan["id"])
    assert (wrong_currency["valid"], wrong_currency["description"]) == (False, "5.00 USD off once")
    assert "USD" in wrong_currency["reason"] and "EUR" in wrong_currency["reason"]
    assert (await validate(tenant, "SPRING20", euro_plan["id"]))["valid"] is False
    too_cheap = await validate(tenant, "SPRING20", cheap_plan["id"])
    assert (too_cheap["valid"], too_cheap["reason"]) == (
        False,
        "The promotion code needs a plan of at least 10.00 USD.",
    )
    unknown = await validate(tenant, "NOPE", plan["id"])
    assert (unknown["valid"], unknown["reason"], unknown["coupon"]) == (
        False,
        "No such promotion code.",
        None,
    )
    assert (await validate(tenant, "not a code!", plan["id"]))["valid"] is False

    # Expired at the customer's time (a test clock past the expiry).
    expiring = await create_code(
        tenant, repeating["id"], code="SUMMER", expiresAt="2031-01-01T00:00:00Z"
    )
    later = await funded_customer(tenant, 0, testClockId=clock["id"])
    assert (await validate(tenant, "SUMMER", plan["id"]))["valid"] is True
    expired = await validate(tenant, "SUMMER", plan["id"], later)
    assert (expired["valid"], expired["reason"]) == (
        False,
        "The promotion code expired on 2031-01-01.",
    )
    refused = await subscribe(tenant, later, plan["id"], promotionCode="summer")
    assert (refused["__typename"], refused["field"]) == ("ValidationError", "promotionCode")
    assert await times_redeemed(tenant, expiring["id"], CODE_COUNT) == 0

    # First-time only: a customer who had a subscription is refused.
    first = await create_code(tenant, once["id"], code="FIRST", firstTimeOnly=True)
    assert first["firstTimeOnly"] is True
    newcomer = await funded_customer(tenant, 10_000)
    assert (await validate(tenant, "FIRST", plan["id"], newcomer))["valid"] is True
    await subscribed(tenant, newcomer, plan["id"])
    returning = await validate(tenant, "FIRST", plan["id"], newcomer)
    assert (returning["valid"], returning["reason"]) == (
        False,
        "The promotion code is for customers who never subscribed before.",
    )
    again = await subscribe(tenant, newcomer, plan["id"], promotionCode="FIRST")
    assert (again["__typename"], again["field"]) == ("ValidationError", "promotionCode")

    # Used up: the last redemption taken.
    last = await create_code(tenant, once["id"], code="LAST", maxRedemptions=1)
    taker = await funded_customer(tenant, 10_000)
    await subscribed(tenant, taker, plan["id"], promotionCode="last")
    exhausted = await validate(tenant, "LAST", plan["id"])
    assert (exhausted["valid"], exhausted["reason"]) == (
        False,
        "The promotion code has been used up.",
    )
    assert await times_redeemed(tenant, last["id"], CODE_COUNT) == 1
    assert code["timesRedeemed"] == 0
    await assert_ledger_invariant(database)


async def test_a_code_that_cannot_be_redeemed_writes_nothing(tenant: Tenant) -> None:
    plan = await create_plan(tenant, 2000)
    coupon = await create_coupon(tenant, percentOff=50, maxRedemptions=5)
    await create_code(
        tenant, coupon["id"], code="HALF", minimumAmount=5000, minimumAmountCurrency="USD"
    )
    customer = await funded_customer(tenant, 3000)
    for code in ("HALF", "UNKNOWN", "bad code"):
        refused = await subscribe(tenant, customer, plan["id"], promotionCode=code)
        assert (refused["__typename"], refused["field"]) == ("ValidationError", "promotionCode")
    data = await tenant.data(SUBSCRIPTIONS, {"id": customer})
    assert data["customer"]["subscriptions"]["edges"] == []
    assert await balance(tenant, customer) == 3000
    assert await times_redeemed(tenant, coupon["id"]) == 0


# --- durations over renewals --------------------------------------------------------------


async def test_once_discounts_the_first_invoice_only(tenant: Tenant, database: Database) -> None:
    clock = await create_clock(tenant, "2030-01-31T10:00:00Z")
    customer = await funded_customer(tenant, 10_000, testClockId=clock["id"])
    plan = await create_plan(tenant, 2000)
    coupon = await create_coupon(tenant, amountOff=500, currency="USD", duration="ONCE")
    code = await create_code(tenant, coupon["id"], code="FIVEOFF")
    key = f"once-{next(_keys)}"
    subscription = await subscribed(
        tenant, customer, plan["id"], promotionCode="fiveoff", idempotencyKey=key
    )
    # A replay counts nothing more; the same key with another code is a conflict.
    replay = await subscribe(
        tenant, customer, plan["id"], promotionCode="FIVEOFF", idempotencyKey=key
    )
    assert replay["replayed"] is True
    other = await subscribe(tenant, customer, plan["id"], idempotencyKey=key)
    assert other["__typename"] == "IdempotencyConflictError", other
    assert await times_redeemed(tenant, coupon["id"]) == 1
    assert await times_redeemed(tenant, code["id"], CODE_COUNT) == 1
    found = (await tenant.data(DISCOUNT, {"id": subscription["id"]}))["node"]["discount"]
    assert found["coupon"] == {"id": coupon["id"]}
    assert found["promotionCode"] == {"id": code["id"], "code": "FIVEOFF"}
    assert found["endsAt"] == subscription["currentPeriodEnd"]

    for moment in ("2030-02-28T10:00:00Z", "2030-03-31T10:00:00Z"):
        assert (await advance(tenant, clock["id"], moment))["billingRun"]["billed"] == 1
    seen = await detail(tenant, subscription["id"])
    assert totals(seen) == [(2000, 500, 1500), (2000, 0, 2000), (2000, 0, 2000)]
    first = invoices_of(seen)[-1]
    assert (first["walletCreditApplied"], first["amountDue"], first["status"]) == (1500, 0, "PAID")
    assert await balance(tenant, customer) == 10_000 - 1500 - 2000 - 2000
    # The hosted page names the coupon next to the discount.
    page = await tenant.client.get(first["hostedUrl"].split("billgraph.test", 1)[-1])
    assert f"Discount ({coupon['name']})" in page.text and "-5.00 USD" in page.text
    await assert_ledger_invariant(database)


async def test_repeating_discounts_the_months_from_the_start_rounding_half_up(
    tenant: Tenant, database: Database
) -> None:
    clock = await create_clock(tenant, "2030-01-15T00:00:00Z")
    customer = await funded_customer(tenant, 100_000, testClockId=clock["id"])
    plan = await create_plan(tenant, 1002)
    coupon = await create_coupon(tenant, percentOff=25, duration="REPEATING", durationInMonths=3)
    await create_code(tenant, coupon["id"], code="QUARTER")
    subscription = await subscribed(tenant, customer, plan["id"], promotionCode="QUARTER")
    for moment in ("2030-02-15", "2030-03-15", "2030-04-15", "2030-05-15"):
        await advance(tenant, clock["id"], f"{moment}T00:00:00Z")
    seen = await detail(tenant, subscription["id"])
    # 25% of 10.02 is 2.505: half up, 2.51 off.
    assert totals(seen) == [(1002, 251, 751)] * 3 + [(1002, 0, 1002)] * 2
    found = (await tenant.data(DISCOUNT, {"id": subscription["id"]}))["node"]["discount"]
    assert found["endsAt"].startswith("2030-04-15T00:00:00")
    assert await balance(tenant, customer) == 100_000 - 3 * 751 - 2 * 1002
    await assert_ledger_invariant(database)


async def test_forever_discounts_every_invoice_and_amount_off_stops_at_the_subtotal(
    tenant: Tenant, database: Database
) -> None:
    clock = await create_clock(tenant, "2030-03-01T00:00:00Z")
    customer = await funded_customer(tenant, 5000, testClockId=clock["id"])
    plan = await create_plan(tenant, 1000)
    tenth = await create_coupon(tenant, percentOff=10, duration="FOREVER")
    await create_code(tenant, tenth["id"], code="TENTH")
    subscription = await subscribed(tenant, customer, plan["id"], promotionCode="TENTH")
    for month in (4, 5, 6):
        await advance(tenant, clock["id"], f"2030-{month:02d}-01T00:00:00Z")
    assert totals(await detail(tenant, subscription["id"])) == [(1000, 100, 900)] * 4
    found = (await tenant.data(DISCOUNT, {"id": subscription["id"]}))["node"]["discount"]
    assert found["endsAt"] is None

    # 50.00 off a 10.00 plan takes 10.00: nothing is due, nothing is debited.
    big = await create_coupon(tenant, amountOff=5000, currency="USD", duration="FOREVER")
    await create_code(tenant, big["id"], code="FREE")
    free_customer = await funded_customer(tenant, 0, testClockId=clock["id"])
    free = await subscribed(tenant, free_customer, plan["id"], promotionCode="FREE")
    assert free["status"] == "ACTIVE"
    await advance(tenant, clock["id"], "2030-07-01T00:00:00Z")
    seen = await detail(tenant, free["id"])
    assert totals(seen) == [(1000, 1000, 0)] * 2
    assert {(i["status"], i["amountDue"], i["walletCreditApplied"]) for i in invoices_of(seen)} == {
        ("PAID", 0, 0)
    }
    assert await balance(tenant, customer) == 5000 - 5 * 900
    await assert_ledger_invariant(database)


async def test_after_a_trial_once_discounts_the_first_paid_invoice(
    tenant: Tenant, database: Database
) -> None:
    clock = await create_clock(tenant, "2030-05-01T00:00:00Z")
    customer = await funded_customer(tenant, 10_000, testClockId=clock["id"])
    plan = await create_plan(tenant, 3000, trialDays=14)
    coupon = await create_coupon(tenant, percentOff=50, duration="ONCE")
    await create_code(tenant, coupon["id"], code="HALFFIRST")
    subscription = await subscribed(tenant, customer, plan["id"], promotionCode="HALFFIRST")
    assert subscription["status"] == "TRIALING"
    found = (await tenant.data(DISCOUNT, {"id": subscription["id"]}))["node"]["discount"]
    assert found["endsAt"].startswith("2030-06-15T00:00:00")  # the first billed period's end
    for moment in ("2030-05-15", "2030-06-15", "2030-07-15"):
        await advance(tenant, clock["id"], f"{moment}T00:00:00Z")
    assert totals(await detail(tenant, subscription["id"])) == [
        (3000, 1500, 1500),
        (3000, 0, 3000),
        (3000, 0, 3000),
    ]
    await assert_ledger_invariant(database)


# --- the last redemption ------------------------------------------------------------------


async def _race(tenant: Tenant, plan_id: str, codes: tuple[str, str]) -> list[dict[str, Any]]:
    customers = [await funded_customer(tenant, 5000) for _ in codes]
    results = await asyncio.gather(
        *(
            subscribe(tenant, customer, plan_id, promotionCode=code)
            for customer, code in zip(customers, codes, strict=True)
        )
    )
    won = [r for r in results if r["__typename"] == "CreateSubscriptionSuccess"]
    lost = [r for r in results if r["__typename"] != "CreateSubscriptionSuccess"]
    assert len(won) == 1 and len(lost) == 1, results
    assert (lost[0]["__typename"], lost[0]["field"]) == ("ValidationError", "promotionCode")
    loser = customers[results.index(lost[0])]
    data = await tenant.data(SUBSCRIPTIONS, {"id": loser})
    assert data["customer"]["subscriptions"]["edges"] == []
    assert await balance(tenant, loser) == 5000
    return results


async def test_two_customers_racing_for_the_last_redemption_of_a_code(
    tenant: Tenant, database: Database
) -> None:
    plan = await create_plan(tenant, 1000)
    coupon = await create_coupon(tenant, percentOff=30)
    code = await create_code(tenant, coupon["id"], code="LASTONE", maxRedemptions=1)
    await _race(tenant, plan["id"], ("LASTONE", "lastone"))
    assert await times_redeemed(tenant, code["id"], CODE_COUNT) == 1
    assert await times_redeemed(tenant, coupon["id"]) == 1
    await assert_ledger_invariant(database)


async def test_two_codes_racing_for_the_last_redemption_of_their_coupon(
    tenant: Tenant, database: Database
) -> None:
    plan = await create_plan(tenant, 1000)
    coupon = await create_coupon(tenant, percentOff=30, maxRedemptions=1)
    one = await create_code(tenant, coupon["id"], code="ONE")
    two = await create_code(tenant, coupon["id"], code="TWO")
    await _race(tenant, plan["id"], ("ONE", "TWO"))
    assert await times_redeemed(tenant, coupon["id"]) == 1
    counts = [await times_redeemed(tenant, c["id"], CODE_COUNT) for c in (one, two)]
    assert sorted(counts) == [0, 1]  # the loser's count was rolled back with it
    await assert_ledger_invariant(database)


ARCHIVE_CODE = f"""mutation($id: ID!) {{ archivePromotionCode(id: $id) {{ __typename
  ... on ArchivePromotionCodeSuccess {{ promotionCode {{ id active }} }} {ERRORS} }} }}"""


async def test_an_archived_code_takes_no_new_redemptions_and_its_discounts_go_on(
    tenant: Tenant, other_tenant: Tenant, database: Database
) -> None:
    clock = await create_clock(tenant, "2030-08-01T00:00:00Z")
    plan = await create_plan(tenant, 1000)
    coupon = await create_coupon(tenant, percentOff=20)
    code = await create_code(tenant, coupon["id"], code="GONE")
    taker = await funded_customer(tenant, 10_000, testClockId=clock["id"])
    subscription = await subscribed(tenant, taker, plan["id"], promotionCode="GONE")
    assert (await mutate(other_tenant, ARCHIVE_CODE, {"id": code["id"]}))["__typename"] == (
        "NotFoundError"
    )
    archived = await mutate(tenant, ARCHIVE_CODE, {"id": code["id"]})
    assert archived["promotionCode"] == {"id": code["id"], "active": False}
    assert (await mutate(tenant, ARCHIVE_CODE, {"id": code["id"]}))["promotionCode"]["active"] is (
        False
    )
    answer = await validate(tenant, "GONE", plan["id"])
    assert (answer["valid"], answer["reason"]) == (False, "The promotion code is archived.")
    late = await subscribe(
        tenant, await funded_customer(tenant, 5000), plan["id"], promotionCode="GONE"
    )
    assert (late["__typename"], late["field"]) == ("ValidationError", "promotionCode")
    await advance(tenant, clock["id"], "2030-09-01T00:00:00Z")
    assert totals(await detail(tenant, subscription["id"])) == [(1000, 200, 800)] * 2
    assert await times_redeemed(tenant, coupon["id"]) == 1
    await assert_ledger_invariant(database)
