"""GraphQL over HTTP's two response media types: application/json (every answer to a
well-formed request a 200, as before) and application/graphql-response+json (a request error
is a 4xx or 5xx without `data`), chosen from the request's Accept."""

from typing import Any

import httpx
import pytest

from billgraph.graphql.media_types import GRAPHQL_RESPONSE_JSON, JSON, response_media_type
from tests.support.graph import Tenant

GRAPHQL_RESPONSE = "application/graphql-response+json; charset=utf-8"


@pytest.mark.parametrize(
    ("accept", "chosen"),
    [
        (None, JSON),
        ("", JSON),
        ("application/json", JSON),
        ("*/*", JSON),
        ("application/*", JSON),
        ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", JSON),
        ("application/graphql-response+json", GRAPHQL_RESPONSE_JSON),
        ("Application/GraphQL-Response+JSON; charset=utf-8", GRAPHQL_RESPONSE_JSON),
        # The spec's recommended header for clients: both, the new type first.
        (
            "application/graphql-response+json; charset=utf-8, application/json; charset=utf-8",
            GRAPHQL_RESPONSE_JSON,
        ),
        ("application/json, application/graphql-response+json", JSON),
        ("application/json;q=0.9, application/graphql-response+json", GRAPHQL_RESPONSE_JSON),
        ("application/graphql-response+json;q=0.5, application/json;q=0.8", JSON),
        ("application/graphql-response+json, */*", GRAPHQL_RESPONSE_JSON),
        ("*/*, application/graphql-response+json", GRAPHQL_RESPONSE_JSON),
        ("application/json;q=0, */*", GRAPHQL_RESPONSE_JSON),
        ("application/*, application/json;q=0", GRAPHQL_RESPONSE_JSON),
        # Neither acceptable, or nonsense: the Accept is disregarded, as legacy clients expect.
        ("text/plain", JSON),
        ("application/graphql-response+json;q=0", JSON),
        ("application/graphql-response+json;q=nope", JSON),
        ("garbage, ;;, /", JSON),
    ],
)
def test_negotiation(accept: str | None, chosen: str) -> None:
    assert response_media_type(accept) == chosen


async def _post(
    client: httpx.AsyncClient, body: dict[str, Any], accept: str | None, key: str | None
) -> httpx.Response:
    """POST with `accept` as the Accept header, or none at all (not httpx's default */*)."""
    request = client.build_request(
        "POST", "/graphql", json=body, headers={"authorization": f"Bearer {key}"} if key else {}
    )
    if accept is None:
        del request.headers["accept"]
    else:
        request.headers["accept"] = accept
    return await client.send(request)


# body, status in application/json (as ever: 200 but where billgraph refuses with its own),
# extensions.code
REQUEST_ERRORS = [
    pytest.param({"query": "{"}, 200, "BAD_USER_INPUT", id="parse"),
    pytest.param({"query": "{ noSuchField }"}, 200, "BAD_USER_INPUT", id="validation"),
    pytest.param(
        {"query": "query($id: ID!) { node(id: $id) { id } }", "variables": {"id": None}},
        200,
        "BAD_USER_INPUT",
        id="variables",
    ),
    pytest.param(
        {"query": "{ customers(first: 500) { edges { node { id } } } }"},
        200,
        "BAD_USER_INPUT",
        id="limit",
    ),
    pytest.param(
        {"query": "subscription { walletLowBalance { balance } }"},
        400,
        "BAD_USER_INPUT",
        id="subscription-over-http",
    ),
]


@pytest.mark.parametrize(("body", "legacy_status", "code"), REQUEST_ERRORS)
async def test_request_errors_are_400_without_data_in_graphql_response_json(
    tenant: Tenant, body: dict[str, Any], legacy_status: int, code: str
) -> None:
    response = await _post(tenant.client, body, GRAPHQL_RESPONSE_JSON, tenant.api_key)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == GRAPHQL_RESPONSE
    payload = response.json()
    assert "data" not in payload, payload
    assert [e["extensions"]["code"] for e in payload["errors"]] == [code] * len(payload["errors"])
    assert response.headers["x-request-id"] == payload["errors"][0]["extensions"]["requestId"]


@pytest.mark.parametrize(("body", "legacy_status", "code"), REQUEST_ERRORS)
@pytest.mark.parametrize("accept", [None, "application/json", "*/*"])
async def test_request_errors_keep_data_null_in_application_json(
    tenant: Tenant, body: dict[str, Any], legacy_status: int, code: str, accept: str | None
) -> None:
    response = await _post(tenant.client, body, accept, tenant.api_key)
    assert response.status_code == legacy_status, response.text
    assert response.headers["content-type"] == "application/json"
    payload = response.json()
    assert payload["data"] is None
    assert {e["extensions"]["code"] for e in payload["errors"]} == {code}


async def test_refusals_keep_their_status_in_both_types(tenant: Tenant) -> None:
    query = {"query": "{ viewer { id } }"}
    modern = await _post(tenant.client, query, GRAPHQL_RESPONSE_JSON, None)
    assert modern.status_code == 401
    assert modern.headers["content-type"] == GRAPHQL_RESPONSE
    assert "data" not in modern.json()
    assert modern.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    legacy = await _post(tenant.client, query, JSON, None)
    assert legacy.status_code == 401
    assert legacy.headers["content-type"] == "application/json"
    assert legacy.json()["data"] is None


async def test_field_errors_and_success_are_200_with_data(tenant: Tenant) -> None:
    ok = await _post(
        tenant.client, {"query": "{ viewer { id } }"}, GRAPHQL_RESPONSE_JSON, tenant.api_key
    )
    assert ok.status_code == 200
    assert ok.headers["content-type"] == GRAPHQL_RESPONSE
    assert ok.json()["data"]["viewer"]["id"] == tenant.organization_id
    # A field error is not a request error: the operation ran, data is there (partly null).
    partial = await _post(
        tenant.client,
        {"query": '{ viewer { id } node(id: "garbage") { id } }'},
        GRAPHQL_RESPONSE_JSON,
        tenant.api_key,
    )
    assert partial.status_code == 200, partial.text
    payload = partial.json()
    assert payload["data"] == {"viewer": {"id": tenant.organization_id}, "node": None}
    assert payload["errors"][0]["path"] == ["node"]


async def test_get_queries_negotiate_too(tenant: Tenant) -> None:
    headers = {"accept": GRAPHQL_RESPONSE_JSON, "authorization": f"Bearer {tenant.api_key}"}
    ok = await tenant.client.get("/graphql", params={"query": "{ viewer { id } }"}, headers=headers)
    assert ok.status_code == 200
    assert ok.headers["content-type"] == GRAPHQL_RESPONSE
    bad = await tenant.client.get("/graphql", params={"query": "{"}, headers=headers)
    assert bad.status_code == 400
    assert "data" not in bad.json()
