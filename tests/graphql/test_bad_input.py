"""Bad input never crashes, never leaks internals, never writes.

Every case goes over HTTP and ends in one of two answers: an HTTP 4xx, or a GraphQL answer
with either a typed error in the mutation's result union or an error whose
`extensions.code` is BAD_USER_INPUT. After each case the customer's wallets (balance,
version, number of ledger entries) are exactly what they were, or no customer was created.
"""

import base64
import itertools
import json
from typing import Any

import pytest

from billgraph.graphql.node import to_global_id
from tests.support.graph import CREATE_ENTRY, Tenant, customer_count, snapshot
from tests.support.leaks import assert_no_leak

_keys = itertools.count(1)


def _auth(tenant: Tenant) -> dict[str, str]:
    return {"authorization": f"Bearer {tenant.api_key}"}


async def send(
    tenant: Tenant, query: str, variables: dict[str, Any] | None = None
) -> dict[str, Any]:
    """POST an operation; the response must be JSON, leak nothing and not be a 5xx."""
    response = await tenant.client.post(
        "/graphql", json={"query": query, "variables": variables or {}}, headers=_auth(tenant)
    )
    assert_no_leak(response.text)
    assert response.status_code in (200, 400), (response.status_code, response.text[:2000])
    assert response.headers["content-type"].startswith("application/json"), response.text[:2000]
    return response.json()  # type: ignore[no-any-return]


def assert_bad_user_input(body: dict[str, Any]) -> None:
    """Refused as a whole: no data, every error coded BAD_USER_INPUT with a request id."""
    errors = body.get("errors")
    assert errors, body
    assert body.get("data") is None, body
    for error in errors:
        extensions = error.get("extensions") or {}
        assert extensions.get("code") == "BAD_USER_INPUT", body
        assert isinstance(extensions.get("requestId"), str) and extensions["requestId"], body


def typed_error(
    body: dict[str, Any], typename: str, mutation: str = "createLedgerEntry"
) -> dict[str, Any]:
    assert "errors" not in body, body
    result = body["data"][mutation]
    assert result["__typename"] == typename, result
    return result  # type: ignore[no-any-return]


def assert_validation_error(
    body: dict[str, Any], field: str, mutation: str = "createLedgerEntry"
) -> None:
    result = typed_error(body, "ValidationError", mutation)
    assert result["code"] == "VALIDATION_ERROR", result
    assert result["field"] == field, result
    assert_no_leak(result["message"])


class Funded:
    """A customer with a USD wallet holding 1000 after one credit."""

    def __init__(self, tenant: Tenant, customer_id: str, wallet_id: str) -> None:
        self.tenant = tenant
        self.customer_id = customer_id
        self.wallet_id = wallet_id
        self.before: list[tuple[str, int, int, int]] = []

    def entry_input(self, **overrides: Any) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "customerId": self.customer_id,
            "amount": 100,
            "currency": "USD",
            "entryType": "CREDIT",
            "idempotencyKey": f"bad-input-{next(_keys)}",
        }
        fields.update(overrides)
        return fields

    async def assert_unchanged(self) -> None:
        assert await snapshot(self.tenant, self.customer_id) == self.before


@pytest.fixture
async def funded(tenant: Tenant) -> Funded:
    created = await tenant.create_customer()
    customer = Funded(tenant, created["customer"]["id"], created["wallet"]["id"])
    credit = await tenant.post(customer.customer_id, 1000)
    assert credit["__typename"] == "CreateLedgerEntrySuccess", credit
    customer.before = await snapshot(tenant, customer.customer_id)
    assert customer.before == [("USD", 1000, 1, 1)]
    return customer


def inline_entry(
    customer_id: str, *, amount: str = "100", currency: str = "USD", extra: str = ""
) -> str:
    """A createLedgerEntry with its input written as literals; `amount` and `currency` verbatim."""
    return (
        "mutation { createLedgerEntry(input: {"
        f' customerId: "{customer_id}", amount: {amount}, currency: {currency},'
        f' entryType: CREDIT, idempotencyKey: "inline-{next(_keys)}"{extra}'
        " }) { __typename ... on UserError { code message } ... on ValidationError { field } } }"
    )


# --- amounts -----------------------------------------------------------------------------


@pytest.mark.parametrize("amount", [0, -5])
async def test_non_positive_amount_variable_is_a_validation_error(
    funded: Funded, amount: int
) -> None:
    body = await send(funded.tenant, CREATE_ENTRY, {"input": funded.entry_input(amount=amount)})
    assert_validation_error(body, "amount")
    await funded.assert_unchanged()


@pytest.mark.parametrize("amount", ["0", "-5"])
async def test_non_positive_amount_literal_is_a_validation_error(
    funded: Funded, amount: str
) -> None:
    body = await send(funded.tenant, inline_entry(funded.customer_id, amount=amount))
    assert_validation_error(body, "amount")
    await funded.assert_unchanged()


@pytest.mark.parametrize("entry_type", ["CREDIT", "DEBIT"])
@pytest.mark.parametrize(
    "amount",
    [1.5, 100.0, "100", True, None, 2**53, -(2**53), 10**20, [100], {"value": 100}],
    ids=["1.5", "100.0", "string", "true", "null", "2^53", "-2^53", "1e20", "list", "object"],
)
async def test_malformed_amount_variable_is_bad_user_input(
    funded: Funded, amount: Any, entry_type: str
) -> None:
    body = await send(
        funded.tenant,
        CREATE_ENTRY,
        {"input": funded.entry_input(amount=amount, entryType=entry_type)},
    )
    assert_bad_user_input(body)
    await funded.assert_unchanged()


@pytest.mark.parametrize(
    "literal",
    [
        "1.5",
        "100.0",
        "1e3",
        '"100"',
        "true",
        "null",
        str(2**53),
        str(-(2**53)),
        str(10**20),
        "[100]",
        "{value: 100}",
        "USD",
    ],
)
async def test_malformed_amount_literal_is_bad_user_input(funded: Funded, literal: str) -> None:
    body = await send(funded.tenant, inline_entry(funded.customer_id, amount=literal))
    assert_bad_user_input(body)
    await funded.assert_unchanged()


async def test_amount_variable_of_undeclared_type_is_bad_user_input(funded: Funded) -> None:
    """An Int variable where a BigInt is expected does not validate."""
    query = (
        "mutation($amount: Int!) { createLedgerEntry(input: {"
        f' customerId: "{funded.customer_id}", amount: $amount, currency: USD,'
        ' entryType: CREDIT, idempotencyKey: "typed-variable"'
        " }) { __typename } }"
    )
    body = await send(funded.tenant, query, {"amount": 100})
    assert_bad_user_input(body)
    await funded.assert_unchanged()


# --- enums -------------------------------------------------------------------------------


@pytest.mark.parametrize("currency", ["XYZ", "usd", "", "US D", 840, None])
async def test_unknown_currency_variable_is_bad_user_input(funded: Funded, currency: Any) -> None:
    body = await send(funded.tenant, CREATE_ENTRY, {"input": funded.entry_input(currency=currency)})
    assert_bad_user_input(body)
    await funded.assert_unchanged()


@pytest.mark.parametrize("literal", ["XYZ", "usd", '"USD"', "null", "1"])
async def test_unknown_currency_literal_is_bad_user_input(funded: Funded, literal: str) -> None:
    body = await send(funded.tenant, inline_entry(funded.customer_id, currency=literal))
    assert_bad_user_input(body)
    await funded.assert_unchanged()


@pytest.mark.parametrize("entry_type", ["credit", "REFUND", "", None, 1])
async def test_unknown_entry_type_is_bad_user_input(funded: Funded, entry_type: Any) -> None:
    body = await send(
        funded.tenant, CREATE_ENTRY, {"input": funded.entry_input(entryType=entry_type)}
    )
    assert_bad_user_input(body)
    await funded.assert_unchanged()


# --- ids ---------------------------------------------------------------------------------


def _raw_id(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "customer_id",
    [
        "not-an-id",
        "",
        "%%%",
        "x" * 10_240,
        "Customer:1",  # the raw form, not base64
        _raw_id("Customer:abc"),
        _raw_id("Customer:0"),
        _raw_id("Customer:-1"),
        _raw_id("Customer:01"),
        _raw_id(f"Customer:{2**63}"),
        _raw_id("Customer:1; DROP TABLE customers"),
        _raw_id("Cust omer:1"),
        base64.urlsafe_b64encode(b"\xff\xfe:1").decode(),
    ],
    ids=[
        "not-an-id",
        "empty",
        "percent",
        "10kB",
        "raw",
        "non-numeric",
        "zero",
        "negative",
        "leading-zero",
        "2^63",
        "sql",
        "space-in-type",
        "not-utf8",
    ],
)
async def test_malformed_customer_id_is_refused(funded: Funded, customer_id: str) -> None:
    body = await send(
        funded.tenant, CREATE_ENTRY, {"input": funded.entry_input(customerId=customer_id)}
    )
    if "errors" in body:
        assert_bad_user_input(body)
    else:
        assert_validation_error(body, "customerId")
    await funded.assert_unchanged()


async def test_customer_id_as_an_int_variable_is_refused(funded: Funded) -> None:
    """ID accepts an integer input and makes it "1": not an id billgraph issued."""
    body = await send(funded.tenant, CREATE_ENTRY, {"input": funded.entry_input(customerId=1)})
    if "errors" in body:
        assert_bad_user_input(body)
    else:
        assert_validation_error(body, "customerId")
    await funded.assert_unchanged()


async def test_wallet_id_as_customer_id_is_not_found(funded: Funded) -> None:
    body = await send(
        funded.tenant, CREATE_ENTRY, {"input": funded.entry_input(customerId=funded.wallet_id)}
    )
    result = typed_error(body, "NotFoundError")
    assert result["code"] == "NOT_FOUND"
    await funded.assert_unchanged()


async def test_well_formed_unknown_customer_id_is_not_found(funded: Funded) -> None:
    body = await send(
        funded.tenant,
        CREATE_ENTRY,
        {"input": funded.entry_input(customerId=to_global_id("Customer", 2**62))},
    )
    assert typed_error(body, "NotFoundError")["code"] == "NOT_FOUND"
    await funded.assert_unchanged()


async def test_another_organizations_customer_is_not_found(
    funded: Funded, other_tenant: Tenant
) -> None:
    theirs = await other_tenant.create_customer()
    their_id = theirs["customer"]["id"]
    their_before = await snapshot(other_tenant, their_id)
    body = await send(
        funded.tenant, CREATE_ENTRY, {"input": funded.entry_input(customerId=their_id)}
    )
    assert typed_error(body, "NotFoundError")["code"] == "NOT_FOUND"
    assert await snapshot(other_tenant, their_id) == their_before
    await funded.assert_unchanged()


# --- strings -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"reason": "r" * 501}, "reason"),
        ({"reason": "a\x00b"}, "reason"),
        ({"reason": "\x00"}, "reason"),
        ({"reason": "bell\x07"}, "reason"),
        ({"reason": "\x1b[31mred"}, "reason"),
        ({"reason": "two\nlines"}, "reason"),
        ({"idempotencyKey": "k" * 256}, "idempotencyKey"),
        ({"idempotencyKey": ""}, "idempotencyKey"),
        ({"idempotencyKey": "   "}, "idempotencyKey"),
        ({"idempotencyKey": "key\x00"}, "idempotencyKey"),
        ({"idempotencyKey": "key\ttab"}, "idempotencyKey"),
        # billgraph's own postings' keys (a checkout session's credit) cannot be taken first.
        ({"idempotencyKey": "billgraph:checkout-session:1"}, "idempotencyKey"),
    ],
    ids=[
        "reason-501",
        "reason-nul-inside",
        "reason-nul",
        "reason-bell",
        "reason-escape",
        "reason-newline",
        "key-256",
        "key-empty",
        "key-blank",
        "key-nul",
        "key-tab",
        "key-reserved",
    ],
)
async def test_bad_strings_are_validation_errors(
    funded: Funded, overrides: dict[str, str], field: str
) -> None:
    body = await send(funded.tenant, CREATE_ENTRY, {"input": funded.entry_input(**overrides)})
    assert_validation_error(body, field)
    await funded.assert_unchanged()


async def test_longest_allowed_strings_pass(funded: Funded) -> None:
    """The limits above are the limits: 500 and 255 characters are accepted."""
    body = await send(
        funded.tenant,
        CREATE_ENTRY,
        {"input": funded.entry_input(reason="r" * 500, idempotencyKey="k" * 255)},
    )
    assert "errors" not in body, body
    result = body["data"]["createLedgerEntry"]
    assert result["__typename"] == "CreateLedgerEntrySuccess", result
    assert result["wallet"]["balance"] == 1100


# --- unknown, missing and mistyped fields -------------------------------------------------


async def test_unknown_input_field_literal_is_bad_user_input(funded: Funded) -> None:
    body = await send(funded.tenant, inline_entry(funded.customer_id, extra=", bogus: 1"))
    assert_bad_user_input(body)
    await funded.assert_unchanged()


async def test_unknown_input_field_variable_is_bad_user_input(funded: Funded) -> None:
    body = await send(funded.tenant, CREATE_ENTRY, {"input": funded.entry_input(bogus=1)})
    assert_bad_user_input(body)
    await funded.assert_unchanged()


@pytest.mark.parametrize(
    "missing", ["customerId", "amount", "currency", "entryType", "idempotencyKey"]
)
async def test_missing_required_field_variable_is_bad_user_input(
    funded: Funded, missing: str
) -> None:
    fields = funded.entry_input()
    del fields[missing]
    body = await send(funded.tenant, CREATE_ENTRY, {"input": fields})
    assert_bad_user_input(body)
    await funded.assert_unchanged()


async def test_missing_required_field_literal_is_bad_user_input(funded: Funded) -> None:
    query = (
        "mutation { createLedgerEntry(input: {"
        f' customerId: "{funded.customer_id}", amount: 100, currency: USD, entryType: CREDIT'
        " }) { __typename } }"
    )
    body = await send(funded.tenant, query)
    assert_bad_user_input(body)
    await funded.assert_unchanged()


@pytest.mark.parametrize(
    "variables",
    [{}, {"input": None}, {"input": "x"}, {"input": [1]}],
    ids=["absent", "null", "string", "list"],
)
async def test_missing_or_mistyped_input_variable_is_bad_user_input(
    funded: Funded, variables: dict[str, Any]
) -> None:
    body = await send(funded.tenant, CREATE_ENTRY, variables)
    assert_bad_user_input(body)
    await funded.assert_unchanged()


async def test_missing_input_argument_is_bad_user_input(funded: Funded) -> None:
    body = await send(funded.tenant, "mutation { createLedgerEntry { __typename } }")
    assert_bad_user_input(body)
    await funded.assert_unchanged()


async def test_unknown_argument_is_bad_user_input(funded: Funded) -> None:
    query = inline_entry(funded.customer_id).replace("}) {", "}, force: true) {", 1)
    body = await send(funded.tenant, query)
    assert_bad_user_input(body)
    await funded.assert_unchanged()


@pytest.mark.parametrize(
    "query",
    [
        "{ bogus }",
        "{ viewer { bogus } }",
        "{ viewer { name(upper: true) } }",
        "{ viewer }",
        "{ viewer { name { length } } }",
        "{ viewer { ... on Bogus { name } } }",
        "{ viewer { name @bogus } }",
        "{ customer(id: $nope) { id } }",
        "query($id: ID!) { customer(id: $id) { id } }",
        "{ viewer { ...Missing } }",
        "{ viewer { name }",
        "{ viewer { name } } }",
        "query { viewer { name } } query { viewer { id } }",
        "subscription { viewer { name } }",
        "}{",
    ],
    ids=[
        "unknown-root-field",
        "unknown-field",
        "unknown-argument",
        "missing-selection",
        "selection-on-scalar",
        "unknown-type-condition",
        "unknown-directive",
        "undefined-variable",
        "missing-variable-value",
        "unknown-fragment",
        "unclosed",
        "extra-brace",
        "two-anonymous-operations",
        "no-subscriptions",
        "garbage",
    ],
)
async def test_malformed_queries_are_bad_user_input(tenant: Tenant, query: str) -> None:
    before = await customer_count(tenant)
    body = await send(tenant, query)
    assert_bad_user_input(body)
    assert await customer_count(tenant) == before


async def test_unknown_field_in_a_mutation_writes_nothing(funded: Funded) -> None:
    """Validation refuses the whole document: the valid mutation beside the bad field is not run."""
    query = (
        "mutation { createLedgerEntry(input: {"
        f' customerId: "{funded.customer_id}", amount: 100, currency: USD,'
        ' entryType: CREDIT, idempotencyKey: "beside-a-bad-field"'
        " }) { __typename ... on CreateLedgerEntrySuccess { entry { bogus } } } }"
    )
    body = await send(funded.tenant, query)
    assert_bad_user_input(body)
    await funded.assert_unchanged()


# --- createCustomer: nothing created -----------------------------------------------------


CREATE_CUSTOMER = """
mutation($input: CreateCustomerInput!) {
  createCustomer(input: $input) { __typename ... on UserError { code message } ... on ValidationError { field } }
}
"""


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"email": "not-an-email"}, "email"),
        ({"email": ""}, "email"),
        ({"email": "a@b"}, "email"),
        ({"email": "two words@example.com"}, "email"),
        ({"email": "x" * 250 + "@example.com"}, "email"),
        ({"email": "nul\x00@example.com"}, "email"),
        ({"name": "n" * 201}, "name"),
        ({"name": "bad\x00name"}, "name"),
        ({"externalId": "e" * 201}, "externalId"),
        ({"externalId": "ext\x00"}, "externalId"),
    ],
    ids=[
        "email-junk",
        "email-empty",
        "email-no-dot",
        "email-space",
        "email-too-long",
        "email-nul",
        "name-too-long",
        "name-nul",
        "external-id-too-long",
        "external-id-nul",
    ],
)
async def test_create_customer_bad_fields_are_validation_errors(
    tenant: Tenant, fields: dict[str, str], field: str
) -> None:
    before = await customer_count(tenant)
    body = await send(tenant, CREATE_CUSTOMER, {"input": {"email": "ok@example.com", **fields}})
    assert_validation_error(body, field, "createCustomer")
    assert await customer_count(tenant) == before


@pytest.mark.parametrize(
    "fields",
    [
        {"email": "ok@example.com", "currency": "XYZ"},
        {"email": "ok@example.com", "currency": "usd"},
        {"email": "ok@example.com", "bogus": 1},
        {"email": None},
        {"name": "no email"},
        {"email": 42},
        {"email": ["ok@example.com"]},
    ],
    ids=[
        "currency-unknown",
        "currency-lowercase",
        "unknown-field",
        "email-null",
        "email-missing",
        "email-int",
        "email-list",
    ],
)
async def test_create_customer_malformed_input_is_bad_user_input(
    tenant: Tenant, fields: dict[str, Any]
) -> None:
    before = await customer_count(tenant)
    body = await send(tenant, CREATE_CUSTOMER, {"input": fields})
    assert_bad_user_input(body)
    assert await customer_count(tenant) == before


# --- HTTP-level garbage ------------------------------------------------------------------


def _mutation_body(funded: Funded) -> str:
    return json.dumps({"query": CREATE_ENTRY, "variables": {"input": funded.entry_input()}})


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        ("{not json", "application/json"),
        ("TRUNCATED", "application/json"),
        ('"a JSON string"', "application/json"),
        ("42", "application/json"),
        ("null", "application/json"),
        ("true", "application/json"),
        ("", "application/json"),
        ("\xff\xfe", "application/json"),
        ("VALID", "text/plain"),
        ("VALID", "application/x-www-form-urlencoded"),
        ("VALID", "application/xml"),
        ("VALID", None),
        ('{"query": 5}', "application/json"),
        ('{"query": "{ viewer { name } }", "variables": "x"}', "application/json"),
        ('{"query": "{ viewer { name } }", "variables": [1]}', "application/json"),
        ('{"query": ""}', "application/json"),
        ('{"nothing": "here"}', "application/json"),
        ('{"query": "query A { viewer { name } }", "operationName": "B"}', "application/json"),
        ('{"query": "{ viewer { name } }", "operationName": 7}', "application/json"),
        ('{"query": "fragment F on Organization { name }"}', "application/json"),
    ],
    ids=[
        "malformed-json",
        "truncated-json",
        "json-string",
        "json-number",
        "json-null",
        "json-true",
        "empty-body",
        "not-utf8",
        "text-plain",
        "form",
        "xml",
        "no-content-type",
        "query-not-a-string",
        "variables-string",
        "variables-list",
        "empty-query",
        "no-query",
        "unknown-operation-name",
        "operation-name-number",
        "no-operation",
    ],
)
async def test_malformed_http_bodies_are_4xx(
    funded: Funded, content: str, content_type: str | None
) -> None:
    if content == "VALID":  # a well-formed mutation, sent with the wrong content type
        payload = _mutation_body(funded).encode()
    elif content == "TRUNCATED":
        payload = _mutation_body(funded).encode()[:-20]
    else:
        payload = content.encode("latin-1")
    headers = _auth(funded.tenant)
    if content_type is not None:
        headers["content-type"] = content_type
    try:
        response = await funded.tenant.client.post("/graphql", content=payload, headers=headers)
    except Exception as exc:  # noqa: BLE001 - the test transport re-raises what a real server turns into a 500
        pytest.fail(f"the app crashed (a server answers 500 Internal Server Error): {exc!r}")
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:2000])
    assert_no_leak(response.text)
    await funded.assert_unchanged()


async def test_mutation_over_get_is_refused(funded: Funded) -> None:
    response = await funded.tenant.client.get(
        "/graphql",
        params={"query": CREATE_ENTRY, "variables": json.dumps({"input": funded.entry_input()})},
        headers=_auth(funded.tenant),
    )
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:2000])
    assert_no_leak(response.text)
    await funded.assert_unchanged()


# --- billing: plans, subscriptions, test clocks -----------------------------------------

CREATE_PLAN = """mutation($input: CreatePlanInput!) { createPlan(input: $input) {
  __typename ... on UserError { code message } ... on ValidationError { field } } }"""
CREATE_CLOCK = """mutation($input: CreateTestClockInput!) { createTestClock(input: $input) {
  __typename ... on UserError { code message } ... on ValidationError { field } } }"""
PLANS = "{ viewer { plans(first: 100) { edges { node { id } } } } }"


def _plan_input(**overrides: Any) -> dict[str, Any]:
    return {
        "input": {"name": "Pro", "amount": 100, "currency": "USD", "interval": "MONTH", **overrides}
    }


@pytest.mark.parametrize(
    "overrides",
    [
        {"amount": 1.5},
        {"amount": "100"},
        {"amount": 2**53},
        {"interval": "WEEK"},
        {"interval": "month"},
        {"intervalCount": 2**31},
        {"intervalCount": "1"},
        {"trialDays": 1.5},
        {"currency": "XYZ"},
    ],
    ids=[
        "amount-float",
        "amount-string",
        "amount-2^53",
        "interval-week",
        "interval-lowercase",
        "interval-count-2^31",
        "interval-count-string",
        "trial-days-float",
        "currency",
    ],
)
async def test_malformed_plan_input_is_bad_user_input(
    tenant: Tenant, overrides: dict[str, Any]
) -> None:
    before = await tenant.data(PLANS)
    assert_bad_user_input(await send(tenant, CREATE_PLAN, _plan_input(**overrides)))
    assert await tenant.data(PLANS) == before


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"amount": 0}, "amount"),
        ({"amount": -1}, "amount"),
        ({"intervalCount": 0}, "intervalCount"),
        ({"intervalCount": 37}, "intervalCount"),
        ({"interval": "YEAR", "intervalCount": 4}, "intervalCount"),
        ({"trialDays": -1}, "trialDays"),
        ({"trialDays": 731}, "trialDays"),
        ({"name": ""}, "name"),
        ({"name": "n" * 201}, "name"),
    ],
    ids=[
        "amount-zero",
        "amount-negative",
        "interval-count-zero",
        "interval-count-37-months",
        "interval-count-4-years",
        "trial-days-negative",
        "trial-days-731",
        "name-empty",
        "name-201",
    ],
)
async def test_out_of_range_plan_input_is_a_validation_error(
    tenant: Tenant, overrides: dict[str, Any], field: str
) -> None:
    before = await tenant.data(PLANS)
    body = await send(tenant, CREATE_PLAN, _plan_input(**overrides))
    assert_validation_error(body, field, "createPlan")
    assert await tenant.data(PLANS) == before


@pytest.mark.parametrize(
    "frozen_time",
    ["", "tomorrow", "2024-13-01T00:00:00Z", "2024-02-30T00:00:00Z", 1700000000, None],
    ids=["empty", "words", "month-13", "february-30", "unix-seconds", "null"],
)
async def test_malformed_frozen_time_is_bad_user_input(tenant: Tenant, frozen_time: Any) -> None:
    assert_bad_user_input(await send(tenant, CREATE_CLOCK, {"input": {"frozenTime": frozen_time}}))


@pytest.mark.parametrize(
    "frozen_time",
    ["2024-01-01T00:00:00", "9999-12-31T23:59:59Z", "0001-01-01T00:00:00+14:00"],
    ids=["naive", "year-9999", "year-1"],
)
async def test_unusable_frozen_time_is_a_validation_error(tenant: Tenant, frozen_time: str) -> None:
    body = await send(tenant, CREATE_CLOCK, {"input": {"frozenTime": frozen_time}})
    assert_validation_error(body, "frozenTime", "createTestClock")


# Masking of unexpected errors is tested in test_errors.py, on a really broken database.
