"""createCheckoutSession and expireCheckoutSession over HTTP: idempotent creation, the bad
input family (each a typed error, nothing written), tenancy, providers without keys, the
customer's sessions newest first, node(id:)."""

import asyncio
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy import update

from billgraph.db.engine import Database
from billgraph.db.models import CheckoutSession, utcnow
from tests.conftest import assert_ledger_invariant
from tests.support.checkout import (
    CREATE_SESSION,
    EXPIRE_SESSION,
    SESSIONS,
    create_session,
    session_input,
    session_of,
    sessions_of,
)
from tests.support.graph import Tenant, snapshot
from tests.support.ledger import count_statements


async def test_a_session_opens_at_the_sandbox_with_a_hosted_page(tenant: Tenant) -> None:
    customer = (await tenant.create_customer())["customer"]["id"]
    session = await create_session(tenant, customer, 2000)
    assert session["provider"] == "SANDBOX" and session["mode"] == "TOP_UP"
    assert session["status"] == "OPEN"
    assert (session["amount"], session["currency"]) == (2000, "USD")
    assert session["providerSessionId"].startswith("cs_sandbox_")
    assert urlsplit(session["url"]).path == f"/sandbox/checkout/{session['providerSessionId']}"
    assert session["ledgerEntry"] is None and session["completedAt"] is None
    assert session["lastPaymentError"] is None and session["refunds"] == []
    assert session["customer"]["id"] == customer
    created = datetime.fromisoformat(session["createdAt"])
    expires = datetime.fromisoformat(session["expiresAt"])
    assert abs(expires - created - timedelta(minutes=1440)) < timedelta(seconds=5)
    assert await session_of(tenant, session["id"]) == session
    assert await sessions_of(tenant, customer) == [
        {"id": session["id"], "status": "OPEN", "amount": 2000}
    ]


async def test_the_same_key_and_input_replay_the_session_and_other_input_conflicts(
    tenant: Tenant, database: Database
) -> None:
    customer = (await tenant.create_customer())["customer"]["id"]
    variables = session_input(customer, 1500)
    first = (await tenant.data(CREATE_SESSION, variables))["createCheckoutSession"]
    again = (await tenant.data(CREATE_SESSION, variables))["createCheckoutSession"]
    assert first["replayed"] is False and again["replayed"] is True
    assert again["checkoutSession"] == first["checkoutSession"]  # same providerSessionId too
    for change in ({"amount": 1501}, {"currency": "EUR"}, {"cancelUrl": "https://shop.example/x"}):
        other = {"input": {**variables["input"], **change}}
        conflict = (await tenant.data(CREATE_SESSION, other))["createCheckoutSession"]
        assert conflict["__typename"] == "IdempotencyConflictError", conflict
        assert conflict["idempotencyKey"] == variables["input"]["idempotencyKey"]
    assert len(await sessions_of(tenant, customer)) == 1
    await assert_ledger_invariant(database)


async def test_concurrent_creations_with_one_key_open_one_session(tenant: Tenant) -> None:
    customer = (await tenant.create_customer())["customer"]["id"]
    variables = session_input(customer, 700)
    results = await asyncio.gather(*(tenant.data(CREATE_SESSION, variables) for _ in range(8)))
    ids = {r["createCheckoutSession"]["checkoutSession"]["id"] for r in results}
    replays = [r["createCheckoutSession"]["replayed"] for r in results]
    assert len(ids) == 1 and replays.count(False) == 1, results
    assert len(await sessions_of(tenant, customer)) == 1


BAD_INPUT: list[tuple[dict[str, Any], str]] = [
    ({"amount": 0}, "amount"),
    ({"amount": -100}, "amount"),
    ({"successUrl": "not a url"}, "successUrl"),
    ({"successUrl": "javascript:alert(1)"}, "successUrl"),
    ({"successUrl": "/relative/path"}, "successUrl"),
    ({"successUrl": ""}, "successUrl"),
    ({"cancelUrl": "ftp://files.example/x"}, "cancelUrl"),
    ({"cancelUrl": "https://shop.example/" + "x" * 2000}, "cancelUrl"),
    ({"cancelUrl": "https://shop.example/\x00"}, "cancelUrl"),
    ({"idempotencyKey": "  "}, "idempotencyKey"),
    ({"mode": "SUBSCRIPTION"}, "subscriptionId"),  # SUBSCRIPTION names its subscription
    ({"subscriptionId": "U3Vic2NyaXB0aW9uOjE"}, "subscriptionId"),  # TOP_UP names none
    ({"amount": None}, "amount"),
    ({"idempotencyKey": "billgraph:subscription:1:checkout"}, "idempotencyKey"),
    ({"currency": None}, "currency"),
]


@pytest.mark.parametrize(("change", "field"), BAD_INPUT)
async def test_bad_input_is_a_validation_error_and_writes_nothing(
    tenant: Tenant, change: dict[str, Any], field: str
) -> None:
    customer = (await tenant.create_customer())["customer"]["id"]
    variables = session_input(customer)
    variables["input"].update(change)
    result = (await tenant.data(CREATE_SESSION, variables))["createCheckoutSession"]
    assert result["__typename"] == "ValidationError", result
    assert result["field"] == field
    assert await sessions_of(tenant, customer) == []


@pytest.mark.parametrize(
    "change", [{"amount": 2**53}, {"amount": 10**30}, {"currency": "XXX"}, {"amount": "20"}]
)
async def test_values_outside_the_types_are_refused_as_bad_user_input(
    tenant: Tenant, change: dict[str, Any]
) -> None:
    customer = (await tenant.create_customer())["customer"]["id"]
    variables = session_input(customer)
    variables["input"].update(change)
    body = await tenant.gql(CREATE_SESSION, variables)
    assert body["data"] is None and body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert await sessions_of(tenant, customer) == []


async def test_the_largest_amount_is_accepted(tenant: Tenant) -> None:
    customer = (await tenant.create_customer())["customer"]["id"]
    session = await create_session(tenant, customer, 2**53 - 1)
    assert session["amount"] == 2**53 - 1


async def test_another_organizations_customer_is_not_found(
    tenant: Tenant, other_tenant: Tenant
) -> None:
    theirs = (await other_tenant.create_customer())["customer"]["id"]
    result = (await tenant.data(CREATE_SESSION, session_input(theirs)))["createCheckoutSession"]
    assert result["__typename"] == "NotFoundError", result
    assert await sessions_of(other_tenant, theirs) == []
    wrong_type = await tenant.data(CREATE_SESSION, session_input(tenant.organization_id))
    assert wrong_type["createCheckoutSession"]["__typename"] == "NotFoundError"
    malformed = await tenant.data(CREATE_SESSION, session_input("nope!"))
    assert malformed["createCheckoutSession"]["field"] == "customerId"


@pytest.mark.parametrize("provider", ["STRIPE", "TOSS"])
async def test_a_provider_without_keys_is_not_configured_and_nothing_is_written(
    tenant: Tenant, provider: str
) -> None:
    customer = (await tenant.create_customer())["customer"]["id"]
    variables = session_input(customer, provider=provider)
    result = (await tenant.data(CREATE_SESSION, variables))["createCheckoutSession"]
    assert result == {
        "__typename": "ProviderError",
        "code": "provider_not_configured",
        "message": f"{provider} is not configured on this gateway.",
        "provider": provider,
        "declineCode": None,
    }
    assert await sessions_of(tenant, customer) == []
    # The key is still free: the same key with the sandbox opens a session.
    variables["input"]["provider"] = "SANDBOX"
    done = (await tenant.data(CREATE_SESSION, variables))["createCheckoutSession"]
    assert done["replayed"] is False


async def test_a_customers_sessions_come_newest_first_by_keyset_and_filter_by_status(
    tenant: Tenant,
) -> None:
    customer = (await tenant.create_customer())["customer"]["id"]
    made = [await create_session(tenant, customer, 100 + i) for i in range(5)]
    expired = (await tenant.data(EXPIRE_SESSION, {"id": made[1]["id"]}))["expireCheckoutSession"]
    assert expired["checkoutSession"]["status"] == "EXPIRED"
    seen: list[str] = []
    after = None
    while True:
        page = await tenant.data(SESSIONS, {"id": customer, "first": 2, "after": after})
        connection = page["customer"]["checkoutSessions"]
        seen += [e["node"]["id"] for e in connection["edges"]]
        if len(seen) == 2:  # one opened meanwhile comes on no later page
            await create_session(tenant, customer, 999)
        if not connection["pageInfo"]["hasNextPage"]:
            break
        after = connection["pageInfo"]["endCursor"]
    assert seen == [m["id"] for m in reversed(made)]
    only = await tenant.data(SESSIONS, {"id": customer, "status": "EXPIRED"})
    assert [e["node"]["id"] for e in only["customer"]["checkoutSessions"]["edges"]] == [
        made[1]["id"]
    ]
    bad = await tenant.gql(SESSIONS, {"id": customer, "after": "bm9wZTox"})
    assert bad["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_expire_stops_an_open_session_and_is_confined_to_the_organization(
    tenant: Tenant, other_tenant: Tenant, database: Database
) -> None:
    customer = (await tenant.create_customer())["customer"]["id"]
    session = await create_session(tenant, customer)
    theirs = await other_tenant.data(EXPIRE_SESSION, {"id": session["id"]})
    assert theirs["expireCheckoutSession"]["__typename"] == "NotFoundError"
    assert (
        await other_tenant.data("query($id: ID!) { node(id: $id) { id } }", {"id": session["id"]})
    )["node"] is None
    assert (await session_of(tenant, session["id"]))["status"] == "OPEN"
    before = await snapshot(tenant, customer)
    for _ in range(2):  # expiring an expired session changes nothing
        done = (await tenant.data(EXPIRE_SESSION, {"id": session["id"]}))["expireCheckoutSession"]
        assert done["__typename"] == "ExpireCheckoutSessionSuccess", done
        assert done["checkoutSession"]["status"] == "EXPIRED"
    assert await snapshot(tenant, customer) == before
    malformed = (await tenant.data(EXPIRE_SESSION, {"id": "%%%"}))["expireCheckoutSession"]
    assert malformed["__typename"] == "ValidationError"
    await assert_ledger_invariant(database)


async def test_an_open_session_past_its_expiry_reads_and_filters_as_expired(
    tenant: Tenant, database: Database
) -> None:
    customer = (await tenant.create_customer())["customer"]["id"]
    lapsed, live = await create_session(tenant, customer), await create_session(tenant, customer)
    async with database.transactions.begin() as session:
        await session.execute(
            update(CheckoutSession)
            .where(CheckoutSession.provider_session_id == lapsed["providerSessionId"])
            .values(expires_at=utcnow() - timedelta(minutes=1))
        )
    assert (await session_of(tenant, lapsed["id"]))["status"] == "EXPIRED"

    async def having(status: str) -> list[str]:
        data = await tenant.data(SESSIONS, {"id": customer, "status": status})
        return [e["node"]["id"] for e in data["customer"]["checkoutSessions"]["edges"]]

    assert await having("OPEN") == [live["id"]]
    assert await having("EXPIRED") == [lapsed["id"]]


MANY = """query($first: Int!) { customers(first: $first) { edges { node { id
  checkoutSessions(first: 3) { edges { node { id amount } } pageInfo { hasNextPage } } } } } }"""


async def test_many_customers_sessions_cost_one_statement(
    tenant: Tenant, database: Database
) -> None:
    customers = [(await tenant.create_customer())["customer"]["id"] for _ in range(6)]
    made: dict[str, list[str]] = {}
    for number, customer in enumerate(customers):
        made[customer] = [
            (await create_session(tenant, customer, 10 + i))["id"] for i in range(number)
        ]
    await tenant.data(MANY, {"first": 1})
    with count_statements(database) as small:
        await tenant.data(MANY, {"first": 2})
    with count_statements(database) as large:
        page = await tenant.data(MANY, {"first": 6})
    assert len(large) == len(small), large
    for edge in page["customers"]["edges"]:
        sessions = edge["node"]["checkoutSessions"]
        expected = list(reversed(made[edge["node"]["id"]]))
        assert [e["node"]["id"] for e in sessions["edges"]] == expected[:3]
        assert sessions["pageInfo"]["hasNextPage"] == (len(expected) > 3)
    # Two pages of one customer in one document (aliases) are each right.
    last = customers[-1]
    both = await tenant.data(
        """query($id: ID!, $after: String) { customer(id: $id) {
          a: checkoutSessions(first: 2) { edges { node { id } } }
          b: checkoutSessions(first: 2, after: $after) { edges { node { id } } } } }""",
        {
            "id": last,
            "after": (await tenant.data(SESSIONS, {"id": last, "first": 2}))["customer"][
                "checkoutSessions"
            ]["pageInfo"]["endCursor"],
        },
    )
    newest = list(reversed(made[last]))
    assert [e["node"]["id"] for e in both["customer"]["a"]["edges"]] == newest[:2]
    assert [e["node"]["id"] for e in both["customer"]["b"]["edges"]] == newest[2:4]
