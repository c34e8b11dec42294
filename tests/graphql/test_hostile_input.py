"""Input that once reached the error mask or a RecursionError is a coded answer, and writes
nothing: malformed ids given to query fields, text no database can store, integer literals
past Python's int-string limit, fragments nested without end or spread without end.

Each family is tested whole, found from the schema where it can be: every id argument of
every query field, every string argument and input field."""

import asyncio
import base64
import itertools
import json
from typing import Any

import graphql
import pytest

from billgraph.graphql.extensions.limits import MAX_FRAGMENT_NESTING
from billgraph.graphql.node import to_global_id
from billgraph.graphql.schema import build_schema
from billgraph.http.bodies import MAX_INTEGER_DIGITS
from billgraph.settings import Settings
from tests.graphql.test_bad_input import (
    Funded,
    assert_bad_user_input,
    assert_validation_error,
)
from tests.support.graph import CREATE_ENTRY, Tenant, customer_count, snapshot
from tests.support.leaks import assert_no_leak

_keys = itertools.count(1)

DIGITS = "9" * 5_000  # Python's int() refuses more than 4,300
SCHEMA = build_schema(Settings())._schema


@pytest.fixture
async def funded(tenant: Tenant) -> Funded:
    created = await tenant.create_customer()
    customer = Funded(tenant, created["customer"]["id"], created["wallet"]["id"])
    credit = await tenant.post(customer.customer_id, 1000)
    assert credit["__typename"] == "CreateLedgerEntrySuccess", credit
    customer.before = await snapshot(tenant, customer.customer_id)
    assert customer.before == [("USD", 1000, 1, 1)]
    return customer


async def send(
    tenant: Tenant, query: str, variables: dict[str, Any] | None = None
) -> dict[str, Any]:
    """POST an operation as ASCII JSON (lone surrogates escaped, as a JSON client sends
    them); the answer must be a 200 with coded errors only, leaking nothing."""
    response = await tenant.client.post(
        "/graphql",
        content=json.dumps({"query": query, "variables": variables or {}}).encode(),
        headers={
            "authorization": f"Bearer {tenant.api_key}",
            "content-type": "application/json",
        },
    )
    assert_no_leak(response.text)
    assert response.status_code == 200, (response.status_code, response.text[:2000])
    body: dict[str, Any] = response.json()
    for error in body.get("errors", ()):
        assert error["extensions"]["requestId"] == response.headers["x-request-id"], body
    return body


async def nothing_written(funded: Funded, customers: int) -> None:
    await funded.assert_unchanged()
    assert await customer_count(funded.tenant) == customers


# --- 5. malformed ids given to query fields ------------------------------------------------


def _id_arguments(root: graphql.GraphQLObjectType) -> list[tuple[str, str]]:
    """(field, argument) for every argument of type ID or ID! of the root's fields."""
    return [
        (name, argument_name)
        for name, field in root.fields.items()
        for argument_name, argument in field.args.items()
        if graphql.get_named_type(argument.type) is graphql.GraphQLID
    ]


QUERY_ID_ARGUMENTS = _id_arguments(SCHEMA.query_type)  # type: ignore[arg-type]


def _call(field: str, argument: str) -> str:
    """`field(argument: $v, ...)` with the field's other required arguments given well-formed
    values (a string; the id of nothing), so only `argument` is at fault."""
    others = [
        f'{name}: "{"X" if graphql.get_named_type(arg.type) is graphql.GraphQLString else NOTHING}"'
        for name, arg in SCHEMA.query_type.fields[field].args.items()  # type: ignore[union-attr]
        if name != argument and graphql.is_non_null_type(arg.type)
    ]
    return f"{field}({', '.join([f'{argument}: $v', *others])})"


def _failed(field: str) -> dict[str, None] | None:
    """What `data` is when the field fails: the field null, or all of it for a non-null one."""
    kind = SCHEMA.query_type.fields[field].type  # type: ignore[union-attr]
    return None if graphql.is_non_null_type(kind) else {field: None}


NOTHING = to_global_id("Nothing", 1)


def test_the_query_id_arguments_are_all_found() -> None:
    assert {"node", "customer", "wallet"} <= {field for field, _ in QUERY_ID_ARGUMENTS}


def _raw_id(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


MALFORMED_IDS = {
    "empty": "",
    "blank": "   ",
    "not-an-id": "not-an-id",
    "percent": "%%%",
    "10kB": "x" * 10_240,
    "raw-form": "Customer:1",
    "non-numeric": _raw_id("Customer:abc"),
    "zero": _raw_id("Wallet:0"),
    "2^63": _raw_id(f"Wallet:{2**63}"),
    "5000-digits": _raw_id(f"Customer:{DIGITS}"),
    "not-utf8": base64.urlsafe_b64encode(b"\xff\xfe:1").decode(),
    "lone-surrogate": "Q3\ud800",
    "nul": "Q3\x00",
}


@pytest.mark.parametrize(("field", "argument"), QUERY_ID_ARGUMENTS)
@pytest.mark.parametrize("malformed", list(MALFORMED_IDS))
async def test_malformed_id_in_a_query_field_is_bad_user_input(
    funded: Funded, field: str, argument: str, malformed: str
) -> None:
    """`{ customer(id: "") { id } }` and the like: BAD_USER_INPUT on the field, as node(id:)
    answers, instead of a masked failure."""
    customers = await customer_count(funded.tenant)
    body = await send(
        funded.tenant,
        f"query($v: ID!) {{ {_call(field, argument)} {{ __typename }} }}",
        {"v": MALFORMED_IDS[malformed]},
    )
    assert body.get("data") == _failed(field), body
    assert [e["extensions"]["code"] for e in body["errors"]] == ["BAD_USER_INPUT"], body
    assert body["errors"][0]["path"] == [field], body
    await nothing_written(funded, customers)


@pytest.mark.parametrize(("field", "argument"), QUERY_ID_ARGUMENTS)
async def test_empty_id_literal_in_a_query_field_is_bad_user_input(
    funded: Funded, field: str, argument: str
) -> None:
    call = _call(field, argument).replace("$v", '""')
    body = await send(funded.tenant, f"{{ {call} {{ __typename }} }}")
    assert body.get("data") == _failed(field), body
    assert [e["extensions"]["code"] for e in body["errors"]] == ["BAD_USER_INPUT"], body


CREATE_CHECKOUT = (
    "mutation($input: CreateCheckoutSessionInput!) { createCheckoutSession(input: $input) { "
    "__typename ... on ValidationError { code message field } } }"
)
EXPIRE_CHECKOUT = (
    "mutation($v: ID!) { expireCheckoutSession(id: $v) { __typename "
    "... on ValidationError { code message field } } }"
)


REFUND_CHECKOUT = (
    "mutation($input: RefundCheckoutSessionInput!) { refundCheckoutSession(input: $input) { "
    "__typename ... on ValidationError { code message field } } }"
)


def _refund(f: Any, **overrides: Any) -> dict[str, Any]:
    # A well-formed id of no session: the input is refused before anything is looked up.
    fields = {
        "checkoutSessionId": to_global_id("CheckoutSession", 2**40),
        "amount": 100,
        "idempotencyKey": f"refund-{next(_keys)}",
    }
    return {"input": {**fields, **overrides}}


def _checkout(f: Any, **overrides: Any) -> dict[str, Any]:
    fields = {
        "customerId": f.customer_id,
        "amount": 100,
        "currency": "USD",
        "successUrl": "https://shop.example/paid",
        "cancelUrl": "https://shop.example/cart",
        "idempotencyKey": f"checkout-{next(_keys)}",
    }
    return {"input": {**fields, **overrides}}


def _refused(mutation: str, argument: str) -> str:
    return (
        f"mutation($v: {argument}) {{ {mutation}(input: $v) {{ __typename "
        "... on ValidationError { code message field } } }"
    )


def _by_id(mutation: str) -> str:
    return (
        f"mutation($v: ID!) {{ {mutation}(id: $v) {{ __typename "
        "... on ValidationError { code message field } } }"
    )


CREATE_PLAN = _refused("createPlan", "CreatePlanInput!")
CREATE_SUBSCRIPTION = _refused("createSubscription", "CreateSubscriptionInput!")
CANCEL_SUBSCRIPTION = _refused("cancelSubscription", "CancelSubscriptionInput!")
CHANGE_PLAN = _refused("changeSubscriptionPlan", "ChangeSubscriptionPlanInput!")
PAY_INVOICE = _refused("payInvoice", "PayInvoiceInput!")
CREATE_TEST_CLOCK = _refused("createTestClock", "CreateTestClockInput!")
ADVANCE_TEST_CLOCK = _refused("advanceTestClock", "AdvanceTestClockInput!")
CREATE_COUPON = _refused("createCoupon", "CreateCouponInput!")
CREATE_PROMOTION_CODE = _refused("createPromotionCode", "CreatePromotionCodeInput!")
CREATE_PORTAL = _refused("createBillingPortalSession", "CreateBillingPortalSessionInput!")
# Well-formed ids of nothing: the input is refused before anything is looked up.
NO_PLAN = to_global_id("Plan", 2**40)
NO_SUBSCRIPTION = to_global_id("Subscription", 2**40)


def _subscription(f: Any, **overrides: Any) -> dict[str, Any]:
    fields = {
        "customerId": f.customer_id,
        "planId": NO_PLAN,
        "idempotencyKey": f"subscription-{next(_keys)}",
    }
    return {"v": {**fields, **overrides}}


def _plan(**overrides: Any) -> dict[str, Any]:
    return {
        "v": {"name": "Pro", "amount": 100, "currency": "USD", "interval": "MONTH", **overrides}
    }


# Mutations keep answering a malformed id with the ValidationError of their union.
MUTATION_IDS = {
    "deleteCustomer": (
        "mutation($v: ID!) { deleteCustomer(id: $v) { __typename "
        "... on ValidationError { code message field } } }",
        lambda funded, v: {"v": v},
        "id",
    ),
    "revokeApiKey": (
        "mutation($v: ID!) { revokeApiKey(id: $v) { __typename "
        "... on ValidationError { code message field } } }",
        lambda funded, v: {"v": v},
        "id",
    ),
    "updateCustomer": (
        "mutation($input: UpdateCustomerInput!) { updateCustomer(input: $input) { __typename "
        "... on ValidationError { code message field } } }",
        lambda funded, v: {"input": {"customerId": v, "name": "New"}},
        "customerId",
    ),
    "updateWallet": (
        "mutation($input: UpdateWalletInput!) { updateWallet(input: $input) { __typename "
        "... on ValidationError { code message field } } }",
        lambda funded, v: {"input": {"walletId": v, "lowBalanceThreshold": 5}},
        "walletId",
    ),
    "createLedgerEntry": (
        CREATE_ENTRY,
        lambda funded, v: {"input": funded.entry_input(customerId=v)},
        "customerId",
    ),
    "createCheckoutSession": (
        CREATE_CHECKOUT,
        lambda funded, v: _checkout(funded, customerId=v),
        "customerId",
    ),
    "expireCheckoutSession": (EXPIRE_CHECKOUT, lambda funded, v: {"v": v}, "id"),
    "refundCheckoutSession": (
        REFUND_CHECKOUT,
        lambda funded, v: _refund(funded, checkoutSessionId=v),
        "checkoutSessionId",
    ),
    "createCustomer": (
        _refused("createCustomer", "CreateCustomerInput!"),
        lambda funded, v: {"v": {"email": f"clock{next(_keys)}@example.com", "testClockId": v}},
        "testClockId",
    ),
    "archivePlan": (_by_id("archivePlan"), lambda funded, v: {"v": v}, "id"),
    "createSubscription": (
        CREATE_SUBSCRIPTION,
        lambda funded, v: _subscription(funded, planId=v),
        "planId",
    ),
    "cancelSubscription": (
        CANCEL_SUBSCRIPTION,
        lambda funded, v: {"v": {"subscriptionId": v}},
        "subscriptionId",
    ),
    "resumeSubscription": (_by_id("resumeSubscription"), lambda funded, v: {"v": v}, "id"),
    "changeSubscriptionPlan": (
        CHANGE_PLAN,
        lambda funded, v: {"v": {"subscriptionId": NO_SUBSCRIPTION, "planId": v}},
        "planId",
    ),
    "payInvoice": (
        PAY_INVOICE,
        lambda funded, v: {"v": {"invoiceId": v, "idempotencyKey": "pay"}},
        "invoiceId",
    ),
    "voidInvoice": (_by_id("voidInvoice"), lambda funded, v: {"v": v}, "id"),
    "advanceTestClock": (
        ADVANCE_TEST_CLOCK,
        lambda funded, v: {"v": {"testClockId": v, "frozenTime": "2030-01-01T00:00:00Z"}},
        "testClockId",
    ),
}


@pytest.mark.parametrize("mutation", list(MUTATION_IDS))
@pytest.mark.parametrize("malformed", ["empty", "percent", "5000-digits", "lone-surrogate"])
async def test_malformed_id_in_a_mutation_is_a_validation_error(
    funded: Funded, mutation: str, malformed: str
) -> None:
    query, variables, field = MUTATION_IDS[mutation]
    customers = await customer_count(funded.tenant)
    body = await send(funded.tenant, query, variables(funded, MALFORMED_IDS[malformed]))
    assert_validation_error(body, field, mutation)
    await nothing_written(funded, customers)


# --- 6. text no database can store ---------------------------------------------------------

UNSTORABLE = {
    "surrogate-d800": "a\ud800b",
    "surrogate-dfff": "\udfff",
    "reversed-pair": "\udc00\ud800",  # two lone surrogates, not a pair
    "nul": "a\x00b",
}

CREATE_CUSTOMER = (
    "mutation($input: CreateCustomerInput!) { createCustomer(input: $input) { __typename "
    "... on ValidationError { code message field } } }"
)
UPDATE_CUSTOMER = (
    "mutation($input: UpdateCustomerInput!) { updateCustomer(input: $input) { __typename "
    "... on ValidationError { code message field } } }"
)
CREATE_API_KEY = (
    "mutation($input: CreateApiKeyInput!) { createApiKey(input: $input) { __typename "
    "... on ValidationError { code message field } } }"
)


# What a refused mutation must leave as it was, beyond the wallets and the customer count.
EVERYTHING = """query($id: ID!) {
  viewer { apiKeys { id name scopes } }
  customer(id: $id) { email name externalId updatedAt }
}"""


def _email(text: str) -> str:
    return f"ada{text}@example.com"


# Every string a mutation stores: (mutation, variables for the text, the field named).
STORED_STRINGS = {
    "createCustomer.email": (
        CREATE_CUSTOMER,
        lambda f, t: {"input": {"email": _email(t)}},
        "email",
    ),
    "createCustomer.name": (
        CREATE_CUSTOMER,
        lambda f, t: {"input": {"email": f"n{next(_keys)}@example.com", "name": t}},
        "name",
    ),
    "createCustomer.externalId": (
        CREATE_CUSTOMER,
        lambda f, t: {"input": {"email": f"x{next(_keys)}@example.com", "externalId": t}},
        "externalId",
    ),
    "updateCustomer.email": (
        UPDATE_CUSTOMER,
        lambda f, t: {"input": {"customerId": f.customer_id, "email": _email(t)}},
        "email",
    ),
    "updateCustomer.name": (
        UPDATE_CUSTOMER,
        lambda f, t: {"input": {"customerId": f.customer_id, "name": t}},
        "name",
    ),
    "updateCustomer.externalId": (
        UPDATE_CUSTOMER,
        lambda f, t: {"input": {"customerId": f.customer_id, "externalId": t}},
        "externalId",
    ),
    "createLedgerEntry.reason": (
        CREATE_ENTRY,
        lambda f, t: {"input": f.entry_input(reason=t)},
        "reason",
    ),
    "createLedgerEntry.idempotencyKey": (
        CREATE_ENTRY,
        lambda f, t: {"input": f.entry_input(idempotencyKey=f"key-{t}")},
        "idempotencyKey",
    ),
    "createCheckoutSession.successUrl": (
        CREATE_CHECKOUT,
        lambda f, t: _checkout(f, successUrl=f"https://shop.example/{t}"),
        "successUrl",
    ),
    "createCheckoutSession.cancelUrl": (
        CREATE_CHECKOUT,
        lambda f, t: _checkout(f, cancelUrl=f"https://shop.example/{t}"),
        "cancelUrl",
    ),
    "createCheckoutSession.idempotencyKey": (
        CREATE_CHECKOUT,
        lambda f, t: _checkout(f, idempotencyKey=f"key-{t}"),
        "idempotencyKey",
    ),
    "refundCheckoutSession.reason": (
        REFUND_CHECKOUT,
        lambda f, t: _refund(f, reason=t),
        "reason",
    ),
    "refundCheckoutSession.idempotencyKey": (
        REFUND_CHECKOUT,
        lambda f, t: _refund(f, idempotencyKey=f"key-{t}"),
        "idempotencyKey",
    ),
    "createApiKey.name": (
        CREATE_API_KEY,
        lambda f, t: {"input": {"name": t, "scopes": ["READ"]}},
        "name",
    ),
    "createPlan.name": (CREATE_PLAN, lambda f, t: _plan(name=t), "name"),
    "createSubscription.idempotencyKey": (
        CREATE_SUBSCRIPTION,
        lambda f, t: _subscription(f, idempotencyKey=f"key-{t}"),
        "idempotencyKey",
    ),
    "createSubscription.promotionCode": (
        CREATE_SUBSCRIPTION,
        lambda f, t: _subscription(f, promotionCode=t),
        "promotionCode",
    ),
    "createSubscription.successUrl": (
        CREATE_SUBSCRIPTION,
        lambda f, t: _subscription(f, successUrl=f"https://shop.example/{t}"),
        "successUrl",
    ),
    "createSubscription.cancelUrl": (
        CREATE_SUBSCRIPTION,
        lambda f, t: _subscription(f, cancelUrl=f"https://shop.example/{t}"),
        "cancelUrl",
    ),
    "createBillingPortalSession.returnUrl": (
        CREATE_PORTAL,
        lambda f, t: {"v": {"customerId": f.customer_id, "returnUrl": f"https://shop.example/{t}"}},
        "returnUrl",
    ),
    "cancelSubscription.reason": (
        CANCEL_SUBSCRIPTION,
        lambda f, t: {"v": {"subscriptionId": NO_SUBSCRIPTION, "reason": t}},
        "reason",
    ),
    "payInvoice.idempotencyKey": (
        PAY_INVOICE,
        lambda f, t: {"v": {"invoiceId": to_global_id("Invoice", 2**40), "idempotencyKey": t}},
        "idempotencyKey",
    ),
    "createCoupon.name": (
        CREATE_COUPON,
        lambda f, t: {"v": {"name": t, "percentOff": 10, "duration": "ONCE"}},
        "name",
    ),
    "createPromotionCode.code": (
        CREATE_PROMOTION_CODE,
        lambda f, t: {"v": {"couponId": to_global_id("Coupon", 2**40), "code": t}},
        "code",
    ),
    "createTestClock.name": (
        CREATE_TEST_CLOCK,
        lambda f, t: {"v": {"frozenTime": "2030-01-01T00:00:00Z", "name": t}},
        "name",
    ),
}


def _string_inputs() -> set[str]:
    """`Mutation.input field` for every String field of every mutation's input."""
    found = set()
    for name, field in SCHEMA.mutation_type.fields.items():  # type: ignore[union-attr]
        for argument_name, argument in field.args.items():
            named = graphql.get_named_type(argument.type)
            if isinstance(named, graphql.GraphQLInputObjectType):
                found |= {
                    f"{name}.{inner}"
                    for inner, input_field in named.fields.items()
                    if graphql.get_named_type(input_field.type) is graphql.GraphQLString
                }
            elif named is graphql.GraphQLString:
                found.add(f"{name}.{argument_name}")
    return found


def test_every_string_a_mutation_takes_is_tested() -> None:
    assert _string_inputs() == set(STORED_STRINGS)


@pytest.mark.parametrize("place", list(STORED_STRINGS))
@pytest.mark.parametrize("text", list(UNSTORABLE))
async def test_unstorable_text_is_a_validation_error_naming_the_field(
    funded: Funded, place: str, text: str
) -> None:
    query, variables, field = STORED_STRINGS[place]
    mutation = place.split(".")[0]
    customers = await customer_count(funded.tenant)
    before = await funded.tenant.data(EVERYTHING, {"id": funded.customer_id})
    body = await send(funded.tenant, query, variables(funded, UNSTORABLE[text]))
    assert_validation_error(body, field, mutation)
    await nothing_written(funded, customers)
    assert await funded.tenant.data(EVERYTHING, {"id": funded.customer_id}) == before


# Every string argument of a query field: (query, the value for its text).
QUERY_STRINGS = {
    "Query.customers.email": (
        "query($v: String) { customers(email: $v) { edges { node { id } } } }",
        _email,
    ),
    "Organization.customers.email": (
        "query($v: String) { viewer { customers(email: $v) { edges { node { id } } } } }",
        _email,
    ),
    "Query.customers.after": (
        "query($v: String) { customers(after: $v) { edges { node { id } } } }",
        lambda t: f"Y3{t}",
    ),
    "Organization.customers.after": (
        "query($v: String) { viewer { customers(after: $v) { edges { node { id } } } } }",
        lambda t: f"Y3{t}",
    ),
    "Customer.checkoutSessions.after": (
        "query($w: ID!, $v: String) { wallet(id: $w) { customer { checkoutSessions(after: $v) "
        "{ edges { cursor } } } } }",
        lambda t: f"Y2{t}",
    ),
    "Wallet.ledgerEntries.after": (
        "query($w: ID!, $v: String) { wallet(id: $w) { ledgerEntries(after: $v) "
        "{ edges { cursor } } } }",
        lambda t: f"bG{t}",
    ),
    "Organization.coupons.after": (
        "query($v: String) { viewer { coupons(after: $v) { edges { cursor } } } }",
        lambda t: f"Y2{t}",
    ),
    "Query.validatePromotionCode.code": (
        f'query($v: String!) {{ validatePromotionCode(code: $v, planId: "{NOTHING}") '
        "{ valid } }",
        lambda t: t,
    ),
    "Organization.plans.after": (
        "query($v: String) { viewer { plans(after: $v) { edges { cursor } } } }",
        lambda t: f"cG{t}",
    ),
    "Customer.subscriptions.after": (
        "query($w: ID!, $v: String) { wallet(id: $w) { customer { subscriptions(after: $v) "
        "{ edges { cursor } } } } }",
        lambda t: f"c3{t}",
    ),
    "Customer.invoices.after": (
        "query($w: ID!, $v: String) { wallet(id: $w) { customer { invoices(after: $v) "
        "{ edges { cursor } } } } }",
        lambda t: f"aW{t}",
    ),
    # The funded customer is given a subscription first (see the test).
    "Subscription.invoices.after": (
        "query($w: ID!, $v: String) { wallet(id: $w) { customer { subscriptions { edges { "
        "node { invoices(after: $v) { edges { cursor } } } } } } } }",
        lambda t: f"aW{t}",
    ),
    "Subscription.events.after": (
        "query($w: ID!, $v: String) { wallet(id: $w) { customer { subscriptions { edges { "
        "node { events(after: $v) { edges { cursor } } } } } } } }",
        lambda t: f"c3{t}",
    ),
}


async def _on_trial(funded: Funded) -> None:
    """A subscription of the funded customer that touches no wallet (a trial)."""
    plan = await funded.tenant.data(
        'mutation { createPlan(input: {name: "Trial", amount: 100, currency: USD, '
        "interval: MONTH, trialDays: 30}) { ... on CreatePlanSuccess { plan { id } } } }"
    )
    made = await funded.tenant.data(
        "mutation($c: ID!, $p: ID!, $k: String!) { createSubscription(input: "
        "{customerId: $c, planId: $p, idempotencyKey: $k}) { __typename } }",
        {
            "c": funded.customer_id,
            "p": plan["createPlan"]["plan"]["id"],
            "k": f"trial-{next(_keys)}",
        },
    )
    assert made["createSubscription"]["__typename"] == "CreateSubscriptionSuccess", made


def test_every_string_argument_of_a_query_field_is_tested() -> None:
    found = {
        f"{type_name}.{field_name}.{argument_name}"
        for type_name, named in SCHEMA.type_map.items()
        if isinstance(named, graphql.GraphQLObjectType)
        and named is not SCHEMA.mutation_type
        and not type_name.startswith("__")
        for field_name, field in named.fields.items()
        for argument_name, argument in field.args.items()
        if graphql.get_named_type(argument.type) is graphql.GraphQLString
    }
    assert found == set(QUERY_STRINGS)


@pytest.mark.parametrize("place", list(QUERY_STRINGS))
@pytest.mark.parametrize("text", list(UNSTORABLE))
async def test_unstorable_text_in_a_query_argument_is_bad_user_input(
    funded: Funded, place: str, text: str
) -> None:
    query, value = QUERY_STRINGS[place]
    if place.startswith("Subscription."):
        await _on_trial(funded)
    body = await send(funded.tenant, query, {"v": value(UNSTORABLE[text]), "w": funded.wallet_id})
    errors = body["errors"]
    assert [e["extensions"]["code"] for e in errors] == ["BAD_USER_INPUT"], body
    assert place.split(".")[-1] in errors[0]["message"] or "cursor" in errors[0]["message"]


@pytest.mark.parametrize("escape", ["\\ud800", "\\udfff", "\\u{d800}"])
async def test_a_lone_surrogate_escape_in_a_string_literal_is_bad_user_input(
    funded: Funded, escape: str
) -> None:
    customers = await customer_count(funded.tenant)
    query = (
        "mutation { createCustomer(input: {"
        f'email: "ada{escape}@example.com"}}) {{ __typename }} }}'
    )
    assert_bad_user_input(await send(funded.tenant, query))
    await nothing_written(funded, customers)


async def test_storable_text_still_passes(funded: Funded) -> None:
    """Astral characters (a surrogate pair in JSON) and accents are text like any other."""
    created = await funded.tenant.create_customer(_email("\U0001f600"), name="Zo\u00e9 \U0001f600")
    assert created["customer"]["email"] == _email("\U0001f600")


# --- 7. integer literals past int()'s limit ------------------------------------------------


def _literal_places(funded: Funded, number: str) -> dict[str, str]:
    key = f"literal-{next(_keys)}"
    return {
        "amount": (
            "mutation { createLedgerEntry(input: {"
            f'customerId: "{funded.customer_id}", amount: {number}, currency: USD, '
            f'entryType: CREDIT, idempotencyKey: "{key}"}}) {{ __typename }} }}'
        ),
        "lowBalanceThreshold": (
            f'mutation {{ updateWallet(input: {{walletId: "{funded.wallet_id}", '
            f"lowBalanceThreshold: {number}}}) {{ __typename }} }}"
        ),
        "Query.customers.first": f"{{ customers(first: {number}) {{ edges {{ cursor }} }} }}",
        "Organization.customers.first": (
            f"{{ viewer {{ customers(first: {number}) {{ edges {{ cursor }} }} }} }}"
        ),
        "Wallet.ledgerEntries.first": (
            f'{{ wallet(id: "{funded.wallet_id}") {{ ledgerEntries(first: {number}) '
            "{ edges { cursor } } } }"
        ),
        "variable-default": (
            f"query($f: Int = {number}) {{ customers(first: $f) {{ edges {{ cursor }} }} }}"
        ),
        "unknown-argument": f"{{ viewer {{ name(x: {number}) }} }}",
        "list-literal": f"{{ customers(email: [{number}]) {{ edges {{ cursor }} }} }}",
    }


LITERAL_PLACES = list(_literal_places(Funded(None, "", ""), "1"))  # type: ignore[arg-type]


@pytest.mark.parametrize("place", LITERAL_PLACES)
@pytest.mark.parametrize(
    "number",
    [DIGITS, "-" + DIGITS, "9" * (MAX_INTEGER_DIGITS + 1)],
    ids=["5000-digits", "negative-5000-digits", "101-digits"],
)
async def test_huge_integer_literal_is_bad_user_input(
    funded: Funded, place: str, number: str
) -> None:
    customers = await customer_count(funded.tenant)
    before = await funded.tenant.data(
        "query($id: ID!) { wallet(id: $id) { lowBalanceThreshold } }", {"id": funded.wallet_id}
    )
    body = await send(funded.tenant, _literal_places(funded, number)[place])
    assert_bad_user_input(body)
    await nothing_written(funded, customers)
    after = await funded.tenant.data(
        "query($id: ID!) { wallet(id: $id) { lowBalanceThreshold } }", {"id": funded.wallet_id}
    )
    assert after == before


@pytest.mark.parametrize("place", LITERAL_PLACES)
async def test_an_integer_literal_of_the_longest_length_is_judged_by_its_type(
    funded: Funded, place: str
) -> None:
    """100 digits pass the document's limit; Int and BigInt then refuse them as out of range."""
    customers = await customer_count(funded.tenant)
    body = await send(funded.tenant, _literal_places(funded, "9" * MAX_INTEGER_DIGITS)[place])
    assert_bad_user_input(body)
    await nothing_written(funded, customers)


# --- 8. fragments nested or spread without end --------------------------------------------


def _chain(length: int, on: str = "Query", leaf: str = "viewer { id }") -> str:
    """`...F0`'s fragments: F0 spreads F1, ..., the last selects `leaf`."""
    return (
        " ".join(f"fragment F{i} on {on} {{ ...F{i + 1} }}" for i in range(length - 1))
        + f" fragment F{length - 1} on {on} {{ {leaf} }}"
    )


def _doubling(length: int, on: str = "Query", leaf: str = "viewer { id }") -> str:
    """Each fragment spreads the next twice: 2^length expansions of `leaf`."""
    return (
        " ".join(f"fragment F{i} on {on} {{ ...F{i + 1} ...F{i + 1} }}" for i in range(length))
        + f" fragment F{length} on {on} {{ {leaf} }}"
    )


NESTED = {
    "chain-500": "{ ...F0 } " + _chain(500),
    "chain-500-on-organization": "{ viewer { ...F0 } } " + _chain(500, "Organization", "name"),
    "cycle-500": "{ ...F0 } "
    + " ".join(f"fragment F{i} on Query {{ ...F{(i + 1) % 500} }}" for i in range(500)),
    "chain-unused": "{ viewer { id } } " + _chain(500),
    "inline-40": "{ " + "... on Query { " * 40 + "viewer { id }" + " }" * 41,
    "one-too-many": "{ ...F0 } " + _chain(MAX_FRAGMENT_NESTING + 1),
    "mutation-chain-500": "mutation { ...F0 } "
    + _chain(500, "Mutation", 'deleteCustomer(id: "x") { __typename }'),
}


@pytest.mark.parametrize("name", list(NESTED))
async def test_fragments_nested_without_end_are_refused_before_validation(
    funded: Funded, name: str
) -> None:
    customers = await customer_count(funded.tenant)
    body = await send(funded.tenant, NESTED[name])
    assert_bad_user_input(body)
    assert "nested" in body["errors"][0]["message"], body
    await nothing_written(funded, customers)


async def test_fragments_nested_up_to_the_limit_run(funded: Funded) -> None:
    body = await send(funded.tenant, "{ ...F0 } " + _chain(MAX_FRAGMENT_NESTING))
    assert "errors" not in body, body
    assert body["data"]["viewer"]["id"]


SPREAD = {
    "doubling-fields": ("{ ...F0 } " + _doubling(30), "QUERY_TOO_COSTLY"),
    "doubling-aliases": (
        "{ ...F0 } " + _doubling(30, leaf="a: viewer { id } b: viewer { id }"),
        "BAD_USER_INPUT",
    ),
    "doubling-mutations": (
        "mutation { ...F0 } " + _doubling(30, "Mutation", 'deleteCustomer(id: "x") { __typename }'),
        "BAD_USER_INPUT",
    ),
    "doubling-deep": (
        "{ ...F0 } "
        + " ".join(f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} }}" for i in range(30))
        + " fragment F30 on Query { viewer { customers(first: 100) { edges { node { id } } } } }",
        "QUERY_TOO_COSTLY",
    ),
}


@pytest.mark.parametrize("name", list(SPREAD))
async def test_fragments_spread_without_end_are_refused_in_linear_time(
    funded: Funded, name: str
) -> None:
    """A billion expansions in a small document: once minutes of CPU in the depth, alias and
    cost walks, each of which expanded every spread anew."""
    query, code = SPREAD[name]
    customers = await customer_count(funded.tenant)
    # A liveness guard, not a measurement: the exponential walk took minutes of CPU, the
    # linear one answers at once; hanging past the guard fails the test instead of the run.
    body = await asyncio.wait_for(send(funded.tenant, query), timeout=120)
    assert body.get("data") is None, body
    assert [e["extensions"]["code"] for e in body["errors"]] == [code], body
    await nothing_written(funded, customers)


async def test_the_standard_introspection_query_runs(tenant: Tenant) -> None:
    """Introspection adds no depth, as before: GraphiQL's and code generators' query runs."""
    body = await send(tenant, graphql.get_introspection_query(descriptions=True))
    assert "errors" not in body, body
    assert body["data"]["__schema"]["queryType"]["name"] == "Query"
