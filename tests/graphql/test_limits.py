"""Abusive operations are refused before they run: depth, aliases, tokens, mutations per
document, query cost, page size, batching, body size and the per-key rate limit."""

import itertools
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from billgraph.app import create_app
from billgraph.db.engine import Database
from billgraph.settings import Settings
from tests.support.graph import Tenant, customer_count, snapshot

_keys = itertools.count(1)

MAX_DEPTH = 12
MAX_ALIASES = 100
MAX_TOKENS = 15_000
MAX_COST = 50_000
MAX_MUTATIONS = 4
MAX_BODY = 2 * 1024 * 1024


def _auth(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def assert_refused(body: dict[str, Any], code: str = "BAD_USER_INPUT") -> None:
    """Not run: no data, every error with `code` and a request id."""
    errors = body.get("errors")
    assert errors, body
    assert body.get("data") is None, body
    for error in errors:
        extensions = error.get("extensions") or {}
        assert extensions.get("code") == code, body
        assert isinstance(extensions.get("requestId"), str) and extensions["requestId"], body
    text = json.dumps(body)
    for marker in ("Traceback", 'File "', "sqlalchemy", "SELECT ", "INTERNAL_SERVER_ERROR"):
        assert marker not in text, body


@pytest.fixture
async def funded(tenant: Tenant) -> dict[str, str]:
    """A customer whose USD wallet holds 1000 after one credit: its ids."""
    created = await tenant.create_customer()
    customer_id = created["customer"]["id"]
    assert (await tenant.post(customer_id, 1000))["__typename"] == "CreateLedgerEntrySuccess"
    assert await snapshot(tenant, customer_id) == [("USD", 1000, 1, 1)]
    return {"customer": customer_id, "wallet": created["wallet"]["id"]}


# --- depth -------------------------------------------------------------------------------

# wallet -> customer -> wallets -> ledgerEntries -> edges -> node -> wallet -> customer -> ...
_CYCLE = ["customer", "wallets", "ledgerEntries(first: 1)", "edges", "node", "wallet"]


def deep_wallet_query(depth: int) -> str:
    """`wallet(id: $id)` at depth 0 and a chain of fields whose leaf sits at `depth`."""
    chain = ["wallet(id: $id)"] + [_CYCLE[i % len(_CYCLE)] for i in range(depth - 1)]
    leaf = "cursor" if chain[-1] == "edges" else "id"
    body = leaf
    for field in reversed(chain):
        body = f"{field} {{ {body} }}"
    return f"query($id: ID!) {{ {body} }}"


async def test_query_at_the_depth_limit_runs(tenant: Tenant, funded: dict[str, str]) -> None:
    body = await tenant.gql(deep_wallet_query(MAX_DEPTH), {"id": funded["wallet"]})
    assert "errors" not in body, body
    assert body["data"]["wallet"]["customer"]["wallets"][0]["ledgerEntries"]["edges"][0]["node"]


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, MAX_DEPTH + 8, 200])
async def test_query_beyond_the_depth_limit_is_refused(
    tenant: Tenant, funded: dict[str, str], depth: int
) -> None:
    body = await tenant.gql(deep_wallet_query(depth), {"id": funded["wallet"]})
    assert_refused(body)
    message = body["errors"][0]["message"]
    assert "depth" in message or "nested too deeply" in message, message
    assert "cost" not in (body.get("extensions") or {}), (
        body
    )  # refused at validation, never executed


async def test_a_repeated_document_gets_the_same_verdict_each_time(
    tenant: Tenant, funded: dict[str, str]
) -> None:
    # Passing documents are remembered (the parser cache hands the same one out again);
    # refused ones never are.
    for _ in range(3):
        refused = await tenant.gql(deep_wallet_query(MAX_DEPTH + 1), {"id": funded["wallet"]})
        assert_refused(refused)
        ran = await tenant.gql(deep_wallet_query(MAX_DEPTH), {"id": funded["wallet"]})
        assert "errors" not in ran, ran


async def test_deep_query_through_fragments_is_refused(
    tenant: Tenant, funded: dict[str, str]
) -> None:
    """Distinct fragments, no cycle: the nesting they build up still counts."""
    fragments = []
    for i in range(10):
        fragments.append(f"fragment W{i} on Wallet {{ customer {{ ...C{i} }} }}")
        inner = f"...W{i + 1}" if i < 9 else "id"
        fragments.append(f"fragment C{i} on Customer {{ wallets {{ {inner} }} }}")
    query = "query($id: ID!) { wallet(id: $id) { ...W0 } } " + " ".join(fragments)
    body = await tenant.gql(query, {"id": funded["wallet"]})
    assert_refused(body)


async def test_deep_query_through_inline_fragments_is_refused(
    tenant: Tenant, funded: dict[str, str]
) -> None:
    body_text = "id"
    for _ in range(10):
        body_text = (
            f"... on Wallet {{ customer {{ ... on Customer {{ wallets {{ {body_text} }} }} }} }}"
        )
    query = f"query($id: ID!) {{ node(id: $id) {{ {body_text} }} }}"
    body = await tenant.gql(query, {"id": funded["wallet"]})
    assert_refused(body)


@pytest.mark.parametrize(
    "query",
    [
        "fragment A on Customer { wallets { customer { ...A } } } "
        "query($id: ID!) { customer(id: $id) { ...A } }",
        "fragment A on Customer { wallets { ...B } } fragment B on Wallet { customer { ...A } } "
        "query($id: ID!) { customer(id: $id) { ...A } }",
        "fragment A on Customer { ...A } query($id: ID!) { customer(id: $id) { ...A } }",
        "fragment A on Customer { wallets { customer { ...A } } } "
        "query($id: ID!) { customer(id: $id) { id } }",
    ],
    ids=["self-through-fields", "mutual", "self-direct", "unused-cycle"],
)
async def test_circular_fragments_are_refused(
    tenant: Tenant, funded: dict[str, str], query: str
) -> None:
    body = await tenant.gql(query, {"id": funded["customer"]})
    assert_refused(body)


async def test_deep_mutation_is_not_executed(tenant: Tenant) -> None:
    """A mutation refused for its depth creates nothing: validation comes before execution."""
    selection = "id"
    for _ in range(8):
        selection = f"wallets {{ customer {{ {selection} }} }}"
    query = (
        'mutation { createCustomer(input: {email: "deep@example.com"}) {'
        f" ... on CreateCustomerSuccess {{ customer {{ {selection} }} }} }} }}"
    )
    before = await customer_count(tenant)
    body = await tenant.gql(query)
    assert_refused(body)
    assert await customer_count(tenant) == before


async def test_circular_fragment_in_a_mutation_is_not_executed(tenant: Tenant) -> None:
    query = (
        "fragment A on Customer { wallets { customer { ...A } } } "
        'mutation { createCustomer(input: {email: "cycle@example.com"}) {'
        " ... on CreateCustomerSuccess { customer { ...A } } } }"
    )
    before = await customer_count(tenant)
    body = await tenant.gql(query)
    assert_refused(body)
    assert await customer_count(tenant) == before


# --- aliases -----------------------------------------------------------------------------


def aliased_viewers(count: int) -> str:
    return "{ " + " ".join(f"v{i}: viewer {{ name }}" for i in range(count)) + " }"


@pytest.mark.parametrize("count", [5, MAX_ALIASES])
async def test_aliases_up_to_the_limit_run(tenant: Tenant, count: int) -> None:
    data = await tenant.data(aliased_viewers(count))
    assert len(data) == count
    assert len({v["name"] for v in data.values()}) == 1


@pytest.mark.parametrize("count", [MAX_ALIASES + 1, 1000])
async def test_too_many_aliases_are_refused(tenant: Tenant, count: int) -> None:
    body = await tenant.gql(aliased_viewers(count))
    assert_refused(body)


async def test_too_many_aliased_mutations_are_refused_before_running(tenant: Tenant) -> None:
    fields = " ".join(
        f'c{i}: createCustomer(input: {{email: "alias{i}-{next(_keys)}@example.com"}}) {{ __typename }}'
        for i in range(MAX_ALIASES + 1)
    )
    before = await customer_count(tenant)
    body = await tenant.gql(f"mutation {{ {fields} }}")
    assert_refused(body)
    assert await customer_count(tenant) == before


# --- tokens ------------------------------------------------------------------------------


@pytest.mark.parametrize("tokens", [MAX_TOKENS + 1, 100_000])
async def test_query_beyond_the_token_limit_is_refused(tenant: Tenant, tokens: int) -> None:
    body = await tenant.gql("{ viewer { " + "name " * tokens + "} }")
    assert_refused(body)
    assert "tokens" in body["errors"][0]["message"]


async def test_mutation_beyond_the_token_limit_is_not_executed(tenant: Tenant) -> None:
    query = (
        'mutation { createCustomer(input: {email: "tokens@example.com"}) {'
        " __typename " + "... on UserError { code } " * (MAX_TOKENS // 5) + "} }"
    )
    before = await customer_count(tenant)
    body = await tenant.gql(query)
    assert_refused(body)
    assert await customer_count(tenant) == before


# --- mutations per document --------------------------------------------------------------


def entries_mutation(customer_id: str, count: int) -> str:
    fields = " ".join(
        f'e{i}: createLedgerEntry(input: {{customerId: "{customer_id}", amount: 10, currency: USD,'
        f' entryType: CREDIT, idempotencyKey: "batch-{next(_keys)}"}}) {{ __typename }}'
        for i in range(count)
    )
    return f"mutation {{ {fields} }}"


async def test_four_mutations_in_one_document_run(tenant: Tenant, funded: dict[str, str]) -> None:
    data = await tenant.data(entries_mutation(funded["customer"], MAX_MUTATIONS))
    assert [r["__typename"] for r in data.values()] == ["CreateLedgerEntrySuccess"] * MAX_MUTATIONS
    assert await snapshot(tenant, funded["customer"]) == [("USD", 1040, 5, 5)]


@pytest.mark.parametrize("count", [MAX_MUTATIONS + 1, 50])
async def test_too_many_mutations_in_one_document_write_nothing(
    tenant: Tenant, funded: dict[str, str], count: int
) -> None:
    body = await tenant.gql(entries_mutation(funded["customer"], count))
    assert_refused(body)
    assert await snapshot(tenant, funded["customer"]) == [("USD", 1000, 1, 1)]


async def test_mutations_hidden_in_fragments_are_counted(
    tenant: Tenant, funded: dict[str, str]
) -> None:
    fields = entries_mutation(funded["customer"], MAX_MUTATIONS + 1)[len("mutation { ") : -2]
    query = f"mutation {{ ...M }} fragment M on Mutation {{ {fields} }}"
    body = await tenant.gql(query)
    assert_refused(body)
    assert await snapshot(tenant, funded["customer"]) == [("USD", 1000, 1, 1)]


async def test_mutations_split_between_inline_fragments_are_counted(
    tenant: Tenant, funded: dict[str, str]
) -> None:
    one = entries_mutation(funded["customer"], 3)[len("mutation { ") : -2]
    two = (
        entries_mutation(funded["customer"], 3)[len("mutation { ") : -2]
        .replace("e0:", "f0:")
        .replace("e1:", "f1:")
        .replace("e2:", "f2:")
    )
    query = f"mutation {{ ... on Mutation {{ {one} }} ... on Mutation {{ {two} }} }}"
    body = await tenant.gql(query)
    assert_refused(body)
    assert await snapshot(tenant, funded["customer"]) == [("USD", 1000, 1, 1)]


async def test_too_many_mixed_mutations_write_nothing(
    tenant: Tenant, funded: dict[str, str]
) -> None:
    entries = entries_mutation(funded["customer"], 2)[len("mutation { ") : -2]
    customers = " ".join(
        f'c{i}: createCustomer(input: {{email: "mixed{i}-{next(_keys)}@example.com"}}) {{ __typename }}'
        for i in range(3)
    )
    before = await customer_count(tenant)
    body = await tenant.gql(f"mutation {{ {entries} {customers} }}")
    assert_refused(body)
    assert await customer_count(tenant) == before
    assert await snapshot(tenant, funded["customer"]) == [("USD", 1000, 1, 1)]


# --- cost --------------------------------------------------------------------------------

ENTRY_PAGE = "ledgerEntries(first: 100) { edges { node { id amount balanceAfter createdAt } } }"
HEAVY = f"customers(first: 100) {{ edges {{ node {{ wallets {{ {ENTRY_PAGE} }} }} }} }}"
# Every field costs 1 and a connection multiplies what it selects by `first`:
# node of an entry 1+4, edges 1+5, ledgerEntries 1+100*6, wallets 1+601, node 1+602,
# edges 1+603, customers 1+100*604.
HEAVY_COST = 1 + 100 * (1 + 1 + 1 + (1 + 100 * (1 + 1 + 4)))


async def test_heavy_query_is_too_costly(tenant: Tenant, funded: dict[str, str]) -> None:
    body = await tenant.gql(f"{{ {HEAVY} }}")
    assert_refused(body, "QUERY_TOO_COSTLY")
    assert HEAVY_COST > MAX_COST
    # The refusal says what the query would have cost.
    assert body["extensions"]["cost"] == {
        "requestedQueryCost": HEAVY_COST,
        "maximumAvailable": MAX_COST,
    }


@pytest.mark.parametrize(
    ("query", "variables"),
    [
        (
            "{ "
            + " ".join(f"a{i}: {HEAVY.replace('first: 100', 'first: 40', 1)}" for i in range(3))
            + " }",
            {},
        ),
        ("{ viewer { " + HEAVY + " } }", {}),
        (
            "query($n: Int!, $m: Int!) { customers(first: $n) { edges { node { wallets {"
            " ledgerEntries(first: $m) { edges { node { id amount balanceAfter createdAt } } } } } } } }",
            {"n": 100, "m": 100},
        ),
        (
            f"fragment E on Wallet {{ {ENTRY_PAGE} }} "
            "fragment C on Customer { wallets { ...E } } "
            "{ customers(first: 100) { edges { node { ...C } } } }",
            {},
        ),
        (
            "{ customers(first: 100) { edges { node { ... on Customer { wallets { ... on Wallet {"
            f" {ENTRY_PAGE} }} }} }} }} }} }} }}",
            {},
        ),
        (
            "query($id: ID!) { "
            + " ".join(
                f"n{i}: node(id: $id) {{ ... on Organization {{ customers(first: 100) {{ edges {{ node {{"
                f" wallets {{ ledgerEntries(first: 100) {{ edges {{ node {{ id }} }} }} }} }} }} }} }} }}"
                for i in range(2)
            )
            + " }",
            {"id": "ORG"},
        ),
    ],
    ids=["aliased", "through-viewer", "variables", "fragments", "inline-fragments", "through-node"],
)
async def test_heavy_queries_in_other_shapes_are_too_costly(
    tenant: Tenant, query: str, variables: dict[str, Any]
) -> None:
    if variables.get("id") == "ORG":
        variables = {"id": tenant.organization_id}
    body = await tenant.gql(query, variables)
    assert_refused(body, "QUERY_TOO_COSTLY")


async def test_too_costly_mutation_writes_nothing(tenant: Tenant, funded: dict[str, str]) -> None:
    query = (
        "mutation { createLedgerEntry(input: {"
        f' customerId: "{funded["customer"]}", amount: 5, currency: USD, entryType: CREDIT,'
        ' idempotencyKey: "costly"}) { ... on CreateLedgerEntrySuccess { wallet { customer {'
        " organization { customers(first: 100) { edges { node { wallets {"
        f" {ENTRY_PAGE} }} }} }} }} }} }} }} }} }} }}"
    )
    body = await tenant.gql(query)
    assert_refused(body, "QUERY_TOO_COSTLY")
    assert await snapshot(tenant, funded["customer"]) == [("USD", 1000, 1, 1)]


DASHBOARD = """
query($first: Int) {
  viewer {
    name
    customers(first: $first) { edges { node { id email wallets { balance currency } } } }
  }
}
"""


def dashboard_cost(first: int) -> int:
    # viewer 1 + (name 1 + customers (1 + first * edges (1 + node (1 + id 1 + email 1 + wallets (1 + 2)))))
    return 1 + 1 + 1 + first * (1 + 1 + 1 + 1 + (1 + 2))


async def reported_cost(tenant: Tenant, query: str, variables: dict[str, Any] | None = None) -> int:
    body = await tenant.gql(query, variables)
    assert "errors" not in body, body
    cost = body["extensions"]["cost"]
    assert cost["maximumAvailable"] == MAX_COST, cost
    assert isinstance(cost["requestedQueryCost"], int) and cost["requestedQueryCost"] > 0, cost
    return cost["requestedQueryCost"]  # type: ignore[no-any-return]


async def test_dashboard_query_reports_its_cost(tenant: Tenant, funded: dict[str, str]) -> None:
    assert await reported_cost(tenant, DASHBOARD, {"first": 10}) == dashboard_cost(10)


async def test_cost_grows_with_the_page_size(tenant: Tenant, funded: dict[str, str]) -> None:
    small = await reported_cost(tenant, DASHBOARD, {"first": 10})
    large = await reported_cost(tenant, DASHBOARD, {"first": 100})
    assert small < large
    assert (small, large) == (dashboard_cost(10), dashboard_cost(100))
    inline_small = await reported_cost(
        tenant, DASHBOARD.replace("($first: Int)", "").replace("$first", "10")
    )
    assert inline_small == small


async def test_cost_of_the_default_page_is_that_of_twenty(
    tenant: Tenant, funded: dict[str, str]
) -> None:
    omitted = await reported_cost(
        tenant, DASHBOARD.replace("(first: $first)", "").replace("($first: Int)", "")
    )
    assert omitted == dashboard_cost(20)


async def test_cost_with_an_omitted_page_size_variable_is_that_of_the_default(
    tenant: Tenant, funded: dict[str, str]
) -> None:
    """`$first` left out means `first` is absent: the default page, not a refusal."""
    assert await reported_cost(tenant, DASHBOARD, {}) == dashboard_cost(20)
    assert await reported_cost(tenant, DASHBOARD, {"first": None}) == dashboard_cost(20)


async def test_cost_with_a_variable_default_uses_the_default(
    tenant: Tenant, funded: dict[str, str]
) -> None:
    query = DASHBOARD.replace("($first: Int)", "($first: Int = 5)")
    assert await reported_cost(tenant, query, {}) == dashboard_cost(5)


async def test_a_repeated_document_is_costed_by_the_page_sizes_it_is_sent_with(
    tenant: Tenant, funded: dict[str, str]
) -> None:
    """The same document again and again (its cost cached by page size): each answer costs
    what its own variables ask for; absent and null differ where a default applies, and a
    value that only equals a valid one (true is 1 to Python) is still refused."""
    query = DASHBOARD.replace("($first: Int)", "($first: Int = 5)")
    sent: list[tuple[dict[str, Any], int]] = [
        ({}, 5),
        ({"first": 10}, 10),
        ({}, 5),
        ({"first": None}, 20),
        ({"first": 10}, 10),
        ({"first": 1}, 1),
        ({"first": None}, 20),
    ]
    for variables, first in sent:
        assert await reported_cost(tenant, query, variables) == dashboard_cost(first), variables
    refused = await tenant.gql(query, {"first": True})
    assert refused["errors"] and "cost" not in refused.get("extensions", {}), refused
    assert await reported_cost(tenant, query, {"first": 1}) == dashboard_cost(1)


async def test_cost_of_a_tiny_query(tenant: Tenant) -> None:
    """`viewer { name }`: two fields, no connection."""
    cost = await reported_cost(tenant, "{ viewer { name } }")
    assert cost == 2


# --- page size ---------------------------------------------------------------------------


@pytest.mark.parametrize("first", [101, -1, 1000, 2**31])
@pytest.mark.parametrize("where", ["customers", "viewer", "ledgerEntries"])
async def test_page_size_out_of_range_literal_is_refused(
    tenant: Tenant, funded: dict[str, str], first: int, where: str
) -> None:
    queries = {
        "customers": f"{{ customers(first: {first}) {{ edges {{ node {{ id }} }} }} }}",
        "viewer": f"{{ viewer {{ customers(first: {first}) {{ edges {{ node {{ id }} }} }} }} }}",
        "ledgerEntries": (
            f'{{ customer(id: "{funded["customer"]}") {{ wallets {{ ledgerEntries(first: {first})'
            " { edges { node { id } } } } } }"
        ),
    }
    body = await tenant.gql(queries[where])
    assert_refused(body)


@pytest.mark.parametrize("first", [101, -1, 2**31, "10", 1.5])
@pytest.mark.parametrize("where", ["customers", "ledgerEntries"])
async def test_page_size_out_of_range_variable_is_refused(
    tenant: Tenant, funded: dict[str, str], first: Any, where: str
) -> None:
    queries = {
        "customers": "query($first: Int) { customers(first: $first) { edges { node { id } } } }",
        "ledgerEntries": (
            "query($id: ID!, $first: Int) { customer(id: $id) { wallets {"
            " ledgerEntries(first: $first) { edges { node { id } } } } } }"
        ),
    }
    body = await tenant.gql(queries[where], {"first": first, "id": funded["customer"]})
    assert_refused(body)


async def test_connections_without_arguments_run(tenant: Tenant, funded: dict[str, str]) -> None:
    """`first` is optional: left out, a connection returns the default page."""
    data = await tenant.data(
        "{ customers { edges { node { id wallets { ledgerEntries { edges { node { amount } } } } } } }"
        " viewer { customers { edges { node { id } } } } }"
    )
    [edge] = data["customers"]["edges"]
    assert edge["node"]["id"] == funded["customer"]
    assert edge["node"]["wallets"][0]["ledgerEntries"]["edges"] == [{"node": {"amount": 1000}}]
    assert [e["node"]["id"] for e in data["viewer"]["customers"]["edges"]] == [funded["customer"]]


@pytest.mark.parametrize("first", [0, 1, 100])
async def test_page_sizes_in_range_run(tenant: Tenant, funded: dict[str, str], first: int) -> None:
    data = await tenant.data(
        "query($first: Int) { customers(first: $first) { edges { node { id } } pageInfo { hasNextPage } } }",
        {"first": first},
    )
    assert len(data["customers"]["edges"]) == min(first, 1)


# --- batching and body size --------------------------------------------------------------


@pytest.mark.parametrize("batch_size", [0, 1, 2])
async def test_batched_bodies_are_refused(
    client: httpx.AsyncClient, tenant: Tenant, funded: dict[str, str], batch_size: int
) -> None:
    operation = {
        "query": entries_mutation(funded["customer"], 1),
    }
    response = await client.post(
        "/graphql", json=[operation] * batch_size, headers=_auth(tenant.api_key)
    )
    assert response.status_code == 400, response.text
    assert "Traceback" not in response.text
    assert await snapshot(tenant, funded["customer"]) == [("USD", 1000, 1, 1)]


def _padded_entry_body(customer_id: str, size: int) -> bytes:
    """A createLedgerEntry request padded (with an unused variable) to exactly `size` bytes."""
    payload = {
        "query": entries_mutation(customer_id, 1),
        "variables": {"pad": ""},
    }
    bare = len(json.dumps(payload).encode())
    payload["variables"] = {"pad": "x" * (size - bare)}
    body = json.dumps(payload).encode()
    assert len(body) == size
    return body


def _assert_payload_too_large(response: httpx.Response) -> None:
    assert response.status_code == 413, response.text[:500]
    assert response.headers["content-type"].startswith("application/json")
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == "PAYLOAD_TOO_LARGE"
    assert error["extensions"]["requestId"] == response.headers["x-request-id"]


@pytest.mark.parametrize("size", [MAX_BODY + 1, 3 * MAX_BODY])
async def test_body_over_the_limit_is_413(
    client: httpx.AsyncClient, tenant: Tenant, funded: dict[str, str], size: int
) -> None:
    response = await client.post(
        "/graphql",
        content=_padded_entry_body(funded["customer"], size),
        headers={**_auth(tenant.api_key), "content-type": "application/json"},
    )
    _assert_payload_too_large(response)
    assert await snapshot(tenant, funded["customer"]) == [("USD", 1000, 1, 1)]


async def test_chunked_body_over_the_limit_is_413(
    client: httpx.AsyncClient, tenant: Tenant, funded: dict[str, str]
) -> None:
    """Without a Content-Length the limit is enforced while the body streams in."""
    body = _padded_entry_body(funded["customer"], MAX_BODY + 64 * 1024)

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 64 * 1024):
            yield body[start : start + 64 * 1024]

    response = await client.post(
        "/graphql",
        content=chunks(),
        headers={**_auth(tenant.api_key), "content-type": "application/json"},
    )
    assert "content-length" not in response.request.headers
    _assert_payload_too_large(response)
    assert await snapshot(tenant, funded["customer"]) == [("USD", 1000, 1, 1)]


async def test_body_at_the_limit_is_accepted(
    client: httpx.AsyncClient, tenant: Tenant, funded: dict[str, str]
) -> None:
    response = await client.post(
        "/graphql",
        content=_padded_entry_body(funded["customer"], MAX_BODY),
        headers={**_auth(tenant.api_key), "content-type": "application/json"},
    )
    assert response.status_code == 200, response.text[:500]
    assert "errors" not in response.json(), response.text[:500]
    assert await snapshot(tenant, funded["customer"]) == [("USD", 1010, 2, 2)]


# --- rate limit --------------------------------------------------------------------------


@pytest.fixture
async def limited_client(
    database: Database, settings: Settings
) -> AsyncIterator[httpx.AsyncClient]:
    """A separate app with 1 request/second per key and bursts of 3."""
    limited = settings.model_copy(update={"rate_limit_per_second": 1, "rate_limit_burst": 3})
    app = create_app(limited, database)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://billgraph.test") as client:
        yield client


VIEWER = {"query": "{ viewer { name } }"}


def _assert_rate_limited(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    retry_after = response.headers["retry-after"]
    assert retry_after.isdigit() and int(retry_after) >= 1, retry_after
    assert response.headers["content-type"].startswith("application/json")
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == "RATE_LIMITED"
    assert error["extensions"]["requestId"] == response.headers["x-request-id"]


async def _exhaust(client: httpx.AsyncClient, headers: dict[str, str]) -> None:
    for _ in range(3):
        response = await client.post("/graphql", json=VIEWER, headers=headers)
        assert response.status_code == 200, response.text
        assert "errors" not in response.json(), response.text


async def test_fourth_quick_request_is_rate_limited(
    limited_client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    await _exhaust(limited_client, _auth(tenant.api_key))
    _assert_rate_limited(
        await limited_client.post("/graphql", json=VIEWER, headers=_auth(tenant.api_key))
    )
    # Another key has its own bucket.
    response = await limited_client.post(
        "/graphql", json=VIEWER, headers=_auth(other_tenant.api_key)
    )
    assert response.status_code == 200, response.text
    assert "errors" not in response.json()


async def test_rate_limited_mutation_writes_nothing(
    limited_client: httpx.AsyncClient, tenant: Tenant, funded: dict[str, str]
) -> None:
    await _exhaust(limited_client, _auth(tenant.api_key))
    response = await limited_client.post(
        "/graphql",
        json={"query": entries_mutation(funded["customer"], 1)},
        headers=_auth(tenant.api_key),
    )
    _assert_rate_limited(response)
    assert await snapshot(tenant, funded["customer"]) == [("USD", 1000, 1, 1)]


@pytest.mark.parametrize(
    "spelling",
    ["bearer {key}", "BEARER {key}", "Bearer  {key}", "Bearer {key} "],
    ids=["lowercase-scheme", "uppercase-scheme", "two-spaces", "trailing-space"],
)
async def test_rate_limit_is_per_key_not_per_header_spelling(
    limited_client: httpx.AsyncClient, tenant: Tenant, spelling: str
) -> None:
    """Each spelling authenticates as the same API key (the scheme is case-insensitive and the
    secret is trimmed), so it draws from the same, exhausted bucket."""
    header = {"authorization": spelling.format(key=tenant.api_key)}
    await _exhaust(limited_client, _auth(tenant.api_key))
    _assert_rate_limited(await limited_client.post("/graphql", json=VIEWER, headers=header))


async def test_other_spellings_of_a_key_authenticate(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    """The premise of the test above: these spellings are the same key to the API."""
    for spelling in ["bearer {key}", "BEARER {key}", "Bearer  {key}", "Bearer {key} "]:
        response = await client.post(
            "/graphql", json=VIEWER, headers={"authorization": spelling.format(key=tenant.api_key)}
        )
        assert response.status_code == 200, (spelling, response.text)
        assert "errors" not in response.json(), (spelling, response.text)
