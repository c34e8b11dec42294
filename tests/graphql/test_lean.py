"""The lean path (billgraph/graphql/lean.py) answers exactly as Strawberry's view and
extensions do: each request below is sent with the lean path on and off, and the status, the
headers and the body must be the same bytes. Which requests the lean path answers itself
(rather than handing them to Strawberry's path) is checked too, so that the comparison is not
between Strawberry's path and itself."""

import json
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Route

from billgraph.app import create_app
from billgraph.db.engine import Database
from billgraph.graphql.view import GraphQLApp
from billgraph.settings import Settings
from tests.api_keys.test_api_keys import create_key
from tests.conftest import assert_ledger_invariant
from tests.support.graph import CREATE_ENTRY, entry_input, new_tenant

WALLET = (
    "query Wallet($id: ID!) { wallet(id: $id) { id balance ledgerEntries(first: 20) "
    "{ edges { node { id amount idempotencyKey createdAt } } } } }"
)
CUSTOMERS = (
    "query Customers($first: Int) { customers(first: $first) { edges { node { id email "
    "wallets { id balance ledgerEntries(first: 5) { edges { node { id amount } } } } } } } }"
)
TWO = "query A { __typename } query B { viewer { id name } }"

JSON = "application/json"
STRICT = "application/graphql-response+json"


def _view(app: Starlette) -> GraphQLApp:
    for route in app.routes:
        if isinstance(route, Route) and isinstance(route.endpoint, GraphQLApp):
            return route.endpoint
    raise AssertionError("no GraphQL route")


class Sender:
    """Sends one request through the lean path and through Strawberry's, and compares."""

    def __init__(self, app: Starlette, client: httpx.AsyncClient) -> None:
        self.view = _view(app)
        self.client = client
        self.lean = self.view.lean
        assert self.lean is not None, "the test settings must allow the lean path"
        self.strawberry_runs = 0
        run = self.view.run

        async def counted(*args: Any, **kwargs: Any) -> Any:
            self.strawberry_runs += 1
            return await run(*args, **kwargs)

        self.view.run = counted  # type: ignore[method-assign]
        self.sent = 0

    async def same(self, body: bytes, headers: dict[str, str]) -> tuple[httpx.Response, bool]:
        """The response (the same both ways) and whether the lean path answered it."""
        self.sent += 1
        headers = {"x-request-id": f"lean-test-{self.sent}", **headers}
        answers = []
        lean_answered = False
        for lean in (self.lean, None):
            self.view.lean = lean
            before = self.strawberry_runs
            response = await self.client.post("/graphql", content=body, headers=headers)
            if lean is not None:
                lean_answered = self.strawberry_runs == before
            answers.append(response)
        self.view.lean = self.lean
        on, off = answers
        assert (on.status_code, on.content) == (off.status_code, off.content), body
        assert sorted(on.headers.multi_items()) == sorted(off.headers.multi_items()), body
        return on, lean_answered


@pytest.fixture
async def sender(settings: Settings, database: Database) -> Any:
    app = create_app(settings, database)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://billgraph.test"
    ) as client:
        yield Sender(app, client)


def _body(query: object, variables: object = None, name: object = None, **more: object) -> bytes:
    data: dict[str, object] = {"query": query}
    if variables is not None:
        data["variables"] = variables
    if name is not None:
        data["operationName"] = name
    data.update(more)
    return json.dumps(data).encode()


async def test_each_request_gets_the_same_answer_either_way(
    sender: Sender, database: Database
) -> None:
    tenant = await new_tenant(database, sender.client)
    other = await new_tenant(database, sender.client)
    customer = await tenant.create_customer()
    customer_id = customer["customer"]["id"]
    wallet_id = customer["wallet"]["id"]
    await tenant.post(customer_id, 500)
    await tenant.post(customer_id, 200, "DEBIT")
    read_only = (await create_key(tenant, name="reader", scopes=["READ"]))["secret"]
    key = {"authorization": f"Bearer {tenant.api_key}", "content-type": JSON}
    reader = {**key, "authorization": f"Bearer {read_only}"}
    anonymous = {"content-type": JSON}
    refused_debit = entry_input(customer_id, 10_000, "DEBIT", "lean-refused", "USD", None)

    # (body, headers, whether the lean path answers it)
    cases: list[tuple[bytes, dict[str, str], bool]] = [
        (_body(WALLET, {"id": wallet_id}, "Wallet"), key, True),
        (_body(WALLET, {"id": wallet_id}), key, True),  # the one operation, unnamed
        (_body(WALLET, {"id": wallet_id}), {**key, "accept": STRICT}, True),
        (_body(WALLET, {"id": wallet_id}), {**key, "content-type": f"{JSON}; charset=utf-8"}, True),
        (_body(CUSTOMERS, {"first": 2}), key, True),
        (_body(CUSTOMERS, {"first": 3}), key, True),  # another page size: costed anew
        (_body(CUSTOMERS, {"first": None}), key, True),
        (_body(CUSTOMERS), key, True),
        # Errors while executing: a malformed id, another organization's wallet, bad types.
        (_body(WALLET, {"id": "not-an-id"}), key, True),
        (_body(WALLET, {"id": other.organization_id}), key, True),
        (_body(WALLET, {"id": 5}), key, True),  # an ID may be sent as an integer
        (
            _body(WALLET, {"id": wallet_id}),
            {**key, "authorization": f"Bearer {other.api_key}"},
            True,
        ),
        # A mutation: a debit past the balance is refused, nothing written.
        (_body(CREATE_ENTRY, refused_debit), key, True),
        (_body(CREATE_ENTRY, refused_debit), {**key, "accept": STRICT}, True),
        # Refusals of Authentication: no key, a bad key, a READ key on a mutation.
        (_body(WALLET, {"id": wallet_id}), anonymous, True),
        (_body(WALLET, {"id": wallet_id}), {**anonymous, "accept": STRICT}, True),
        (_body(WALLET, {"id": wallet_id}), {**key, "authorization": "Bearer bg_nope"}, True),
        (_body(CREATE_ENTRY, refused_debit), reader, True),
        (_body(CREATE_ENTRY, refused_debit), {**reader, "accept": STRICT}, True),
        (_body("{ __typename }"), anonymous, True),  # introspection needs no key
        (_body("{ __schema { queryType { name } } }"), anonymous, True),
        (_body(TWO, name="A"), anonymous, True),
        (_body(TWO, name="B"), key, True),
        # Variables that do not coerce, where the cost is known (it reads none of them):
        # execution reports them.
        (_body(WALLET, {"id": [5]}), key, True),
        (_body(WALLET, {}), key, True),
        (_body(WALLET, {}), {**key, "accept": STRICT}, True),
        # Strawberry's path: variables a cost reads that do not coerce, limits, documents
        # that fail...
        (_body(CUSTOMERS, {"first": 5000}), key, False),
        (_body(CUSTOMERS, {"first": "5"}), key, False),
        (
            _body(
                "{ customers(first: 100) { edges { node { wallets { ledgerEntries(first: 100) "
                "{ edges { node { id amount createdAt reason } } } } } } } }"
            ),
            key,
            False,
        ),
        (_body("{ wallet(id: "), key, False),
        (_body("{ nope }"), key, False),
        (_body("{ nope }"), {**key, "accept": STRICT}, False),
        (_body("{ " + "a: __typename " * 200 + "}"), key, False),
        (_body(TWO), key, False),
        (_body(TWO, name="C"), key, False),
        (_body(TWO, name=7), key, False),
        (_body('subscription { walletBalanceChanged(walletId: "x") { balance } }'), key, False),
        (_body(""), key, False),
        (_body(None), key, False),
        (_body(7), key, False),
        (_body(WALLET, [1]), key, False),
        (_body(WALLET, {"id": wallet_id}, extensions=[1]), key, False),
        # ... and bodies or headers it leaves alone.
        (b"[]", key, False),
        (b"{", key, False),
        (b'"query"', key, False),
        (_body("{ __typename }"), {**key, "content-type": "text/plain"}, False),
        (_body("{ __typename }"), {**key, "content-type": f"{JSON}; charset=latin-1"}, False),
        # No HTTP streaming transport is enabled: a streaming Accept gets plain JSON.
        (_body("{ __typename }"), {**key, "accept": "multipart/mixed"}, True),
        (_body("{ __typename }"), {**key, "accept": "text/event-stream"}, True),
    ]
    for body, headers, lean in cases:
        response, answered = await sender.same(body, headers)
        assert answered == lean, (body, headers, response.status_code, response.text[:300])
    # Both ways were taken, and the lean answers include successes, refusals and errors.
    assert sender.strawberry_runs > len(cases)


async def test_postings_through_the_lean_path_keep_the_ledger_s_rules(
    sender: Sender, database: Database
) -> None:
    """Writes answered by the lean path: a credit, its replay, a conflicting reuse of its key,
    a debit past the balance and another organization's write each do what the ledger says,
    and the read after them is the ledger's."""
    tenant = await new_tenant(database, sender.client)
    other = await new_tenant(database, sender.client)
    customer = await tenant.create_customer()
    customer_id = customer["customer"]["id"]
    before = sender.strawberry_runs

    posted = await tenant.post(customer_id, 700, key="lean-credit")
    replay = await tenant.post(customer_id, 700, key="lean-credit")
    conflict = await tenant.post(customer_id, 701, key="lean-credit")
    too_much = await tenant.post(customer_id, 701, "DEBIT", key="lean-debit")
    theirs = await other.post(customer_id, 5, key="lean-theirs")
    read = await tenant.data(WALLET, {"id": customer["wallet"]["id"]})

    assert sender.strawberry_runs == before  # every one answered by the lean path
    assert posted["__typename"] == "CreateLedgerEntrySuccess"
    assert posted["replayed"] is False and posted["wallet"]["balance"] == 700
    assert replay["replayed"] is True and replay["entry"]["id"] == posted["entry"]["id"]
    assert conflict["__typename"] == "IdempotencyConflictError"
    assert too_much["__typename"] == "InsufficientBalanceError"
    assert theirs["__typename"] == "NotFoundError"
    assert read["wallet"]["balance"] == 700
    entries = read["wallet"]["ledgerEntries"]["edges"]
    assert [e["node"]["amount"] for e in entries] == [700]
    await assert_ledger_invariant(database)
