"""API keys over HTTP: creation (secret shown once, stored hashed), scopes, authentication,
revocation, lastUsedAt, and the request id every error carries."""

import hashlib
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from billgraph.api_keys import service as api_keys
from billgraph.db.engine import Database
from billgraph.graphql.node import to_global_id
from tests.support.graph import Tenant

KEY_FIELDS = "id name prefix scopes createdAt lastUsedAt revokedAt"

CREATE_KEY = f"""
mutation($input: CreateApiKeyInput!) {{
  createApiKey(input: $input) {{
    __typename
    ... on CreateApiKeySuccess {{ secret apiKey {{ {KEY_FIELDS} }} }}
    ... on ValidationError {{ code message field }}
  }}
}}
"""

REVOKE_KEY = f"""
mutation($id: ID!) {{
  revokeApiKey(id: $id) {{
    __typename
    ... on RevokeApiKeySuccess {{ apiKey {{ {KEY_FIELDS} }} }}
    ... on NotFoundError {{ code message }}
    ... on ValidationError {{ code message field }}
  }}
}}
"""

VIEWER_KEYS = f"{{ viewer {{ id apiKeys {{ {KEY_FIELDS} }} }} }}"

VIEWER = "{ viewer { id name } }"

CREATE_CUSTOMER = """
mutation($input: CreateCustomerInput!) {
  createCustomer(input: $input) { __typename ... on CreateCustomerSuccess { customer { id } } }
}
"""

CUSTOMERS = """
query($email: String) { customers(first: 100, email: $email) { edges { node { id email } } } }
"""


async def send(
    client: httpx.AsyncClient,
    query: str,
    variables: dict[str, Any] | None = None,
    *,
    key: str | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """POST an operation with exactly the headers given (plus `Bearer <key>` if a key is)."""
    sent = dict(headers or {})
    if key is not None:
        sent["authorization"] = f"Bearer {key}"
    return await client.post(
        "/graphql", json={"query": query, "variables": variables or {}}, headers=sent
    )


async def create_key(
    tenant: Tenant, name: str = "partner", scopes: list[str] | None = None
) -> dict[str, Any]:
    data = await tenant.data(
        CREATE_KEY, {"input": {"name": name, "scopes": scopes or ["READ", "WRITE"]}}
    )
    result = data["createApiKey"]
    assert result["__typename"] == "CreateApiKeySuccess", result
    return result  # type: ignore[no-any-return]


async def revoke(tenant: Tenant, key_id: str, *, key: str | None = None) -> dict[str, Any]:
    body = await tenant.gql(REVOKE_KEY, {"id": key_id}, key=key)
    assert "errors" not in body, body
    return body["data"]["revokeApiKey"]  # type: ignore[no-any-return]


async def keys_of(tenant: Tenant) -> dict[str, dict[str, Any]]:
    """The organization's keys by id, as its default key sees them."""
    return {k["id"]: k for k in (await tenant.data(VIEWER_KEYS))["viewer"]["apiKeys"]}


async def key_names(tenant: Tenant) -> dict[str, str]:
    """The organization's keys: id -> name (what a refused createApiKey must leave as it was)."""
    return {key_id: k["name"] for key_id, k in (await keys_of(tenant)).items()}


def error_codes(response: httpx.Response) -> list[str]:
    return [e["extensions"]["code"] for e in response.json()["errors"]]


def assert_refused(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body.get("data") is None, body
    assert error_codes(response) == [code]


# --- createApiKey ------------------------------------------------------------------------


class TestCreateApiKey:
    async def test_returns_the_secret_and_the_key(self, tenant: Tenant) -> None:
        result = await create_key(tenant, name="billing-sync", scopes=["READ"])
        secret, key = result["secret"], result["apiKey"]
        assert key["name"] == "billing-sync"
        assert key["scopes"] == ["READ"]
        assert key["revokedAt"] is None
        assert key["lastUsedAt"] is None
        assert key["createdAt"]
        assert secret.startswith(key["prefix"])
        assert len(secret) > len(key["prefix"]) + 16  # the prefix tells keys apart, it is no secret

    async def test_the_new_secret_authenticates_for_the_same_organization(
        self, tenant: Tenant, client: httpx.AsyncClient
    ) -> None:
        secret = (await create_key(tenant, scopes=["READ"]))["secret"]
        response = await send(client, VIEWER, key=secret)
        assert response.status_code == 200
        assert response.json()["data"]["viewer"]["id"] == tenant.organization_id

    async def test_each_key_gets_its_own_secret(self, tenant: Tenant) -> None:
        first = await create_key(tenant, name="one")
        second = await create_key(tenant, name="two")
        assert first["secret"] != second["secret"]
        assert first["apiKey"]["id"] != second["apiKey"]["id"]

    @pytest.mark.parametrize(
        ("scopes", "expected"),
        [
            (["READ"], ["READ"]),
            (["WRITE"], ["WRITE"]),
            (["READ", "WRITE"], ["READ", "WRITE"]),
            (["WRITE", "READ"], ["READ", "WRITE"]),
        ],
    )
    async def test_scopes_are_echoed(
        self, tenant: Tenant, scopes: list[str], expected: list[str]
    ) -> None:
        key = (await create_key(tenant, scopes=scopes))["apiKey"]
        assert sorted(key["scopes"]) == expected
        listed = (await keys_of(tenant))[key["id"]]
        assert sorted(listed["scopes"]) == expected

    @pytest.mark.parametrize(
        ("input", "field"),
        [
            pytest.param({"name": "no scopes", "scopes": []}, "scopes", id="empty-scopes"),
            pytest.param({"name": "", "scopes": ["READ"]}, "name", id="empty-name"),
            pytest.param({"name": "   ", "scopes": ["READ"]}, "name", id="blank-name"),
            pytest.param({"name": "n" * 201, "scopes": ["READ"]}, "name", id="name-201-chars"),
        ],
    )
    async def test_invalid_input_is_a_validation_error_and_writes_nothing(
        self, tenant: Tenant, input: dict[str, Any], field: str
    ) -> None:
        before = await key_names(tenant)
        result = (await tenant.data(CREATE_KEY, {"input": input}))["createApiKey"]
        assert result["__typename"] == "ValidationError", result
        assert result["code"] == "VALIDATION_ERROR"
        assert result["field"] == field
        assert await key_names(tenant) == before


# --- secrets are never shown again, nor stored ------------------------------------------


class TestSecretStorage:
    async def test_viewer_api_keys_lists_keys_without_secrets(
        self, tenant: Tenant, client: httpx.AsyncClient
    ) -> None:
        created = await create_key(tenant, name="listed")
        response = await send(client, VIEWER_KEYS, key=tenant.api_key)
        assert response.status_code == 200
        keys = {k["id"]: k for k in response.json()["data"]["viewer"]["apiKeys"]}
        assert len(keys) == 2  # the tenant's default key and the new one
        assert keys[created["apiKey"]["id"]]["name"] == "listed"
        assert keys[created["apiKey"]["id"]]["prefix"] == created["apiKey"]["prefix"]
        assert created["secret"] not in response.text
        assert tenant.api_key not in response.text

    async def test_api_key_type_has_no_secret_field(self, tenant: Tenant) -> None:
        data = await tenant.data('{ __type(name: "ApiKey") { fields { name } } }')
        names = {f["name"] for f in data["__type"]["fields"]}
        assert names == {"id", "name", "prefix", "scopes", "createdAt", "lastUsedAt", "revokedAt"}
        body = await tenant.gql("{ viewer { apiKeys { id secret } } }")
        assert body.get("data") is None
        assert "errors" in body

    async def test_node_lookup_of_a_key_shows_no_secret(
        self, tenant: Tenant, client: httpx.AsyncClient
    ) -> None:
        created = await create_key(tenant, name="by-node")
        response = await send(
            client,
            "query($id: ID!) { node(id: $id) { id ... on ApiKey { name prefix } } }",
            {"id": created["apiKey"]["id"]},
            key=tenant.api_key,
        )
        assert response.json()["data"]["node"] == {
            "id": created["apiKey"]["id"],
            "name": "by-node",
            "prefix": created["apiKey"]["prefix"],
        }
        assert created["secret"] not in response.text

    async def test_database_stores_only_a_sha256_of_the_secret(
        self, tenant: Tenant, database: Database
    ) -> None:
        secret = (await create_key(tenant, name="hashed"))["secret"]
        async with database.engine.connect() as connection:
            rows = (await connection.execute(text("SELECT * FROM api_keys"))).all()
        assert rows
        for row in rows:
            for value in row:
                assert value != secret
                assert secret not in str(value)
        digest = hashlib.sha256(secret.encode()).hexdigest()
        assert sum(1 for row in rows if digest in row) == 1


# --- scopes ------------------------------------------------------------------------------


class TestReadOnlyKey:
    async def test_can_query(self, tenant: Tenant, client: httpx.AsyncClient) -> None:
        customer_id = (await tenant.create_customer("visible@example.com"))["customer"]["id"]
        reader = (await create_key(tenant, scopes=["READ"]))["secret"]
        response = await send(client, CUSTOMERS, key=reader)
        assert response.status_code == 200
        body = response.json()
        assert "errors" not in body, body
        assert body["data"]["customers"]["edges"] == [
            {"node": {"id": customer_id, "email": "visible@example.com"}}
        ]

    async def test_create_customer_is_forbidden_and_writes_nothing(
        self, tenant: Tenant, client: httpx.AsyncClient
    ) -> None:
        reader = (await create_key(tenant, scopes=["READ"]))["secret"]
        response = await send(
            client, CREATE_CUSTOMER, {"input": {"email": "nope@example.com"}}, key=reader
        )
        assert_refused(response, 403, "FORBIDDEN")
        assert (await tenant.data(CUSTOMERS, {"email": "nope@example.com"}))["customers"][
            "edges"
        ] == []
        assert (await tenant.data(CUSTOMERS))["customers"]["edges"] == []

    async def test_ledger_entry_is_forbidden_and_writes_nothing(
        self, tenant: Tenant, client: httpx.AsyncClient
    ) -> None:
        created = await tenant.create_customer()
        reader = (await create_key(tenant, scopes=["READ"]))["secret"]
        response = await send(
            client,
            """mutation($input: CreateLedgerEntryInput!) { createLedgerEntry(input: $input) { __typename } }""",
            {
                "input": {
                    "customerId": created["customer"]["id"],
                    "amount": 500,
                    "currency": "USD",
                    "entryType": "CREDIT",
                    "idempotencyKey": "read-only-credit",
                }
            },
            key=reader,
        )
        assert_refused(response, 403, "FORBIDDEN")
        data = await tenant.data(
            "query($id: ID!) { wallet(id: $id) { balance version } }",
            {"id": created["wallet"]["id"]},
        )
        assert data["wallet"] == {"balance": 0, "version": 0}

    async def test_delete_customer_is_forbidden_and_writes_nothing(
        self, tenant: Tenant, client: httpx.AsyncClient
    ) -> None:
        customer_id = (await tenant.create_customer("stays@example.com"))["customer"]["id"]
        reader = (await create_key(tenant, scopes=["READ"]))["secret"]
        response = await send(
            client,
            "mutation($id: ID!) { deleteCustomer(id: $id) { __typename } }",
            {"id": customer_id},
            key=reader,
        )
        assert_refused(response, 403, "FORBIDDEN")
        data = await tenant.data(
            "query($id: ID!) { customer(id: $id) { email } }", {"id": customer_id}
        )
        assert data["customer"] == {"email": "stays@example.com"}

    async def test_create_api_key_is_forbidden_and_writes_nothing(
        self, tenant: Tenant, client: httpx.AsyncClient
    ) -> None:
        reader = (await create_key(tenant, scopes=["READ"]))["secret"]
        before = await key_names(tenant)
        assert len(before) == 2
        response = await send(
            client,
            CREATE_KEY,
            {"input": {"name": "escalate", "scopes": ["READ", "WRITE"]}},
            key=reader,
        )
        assert_refused(response, 403, "FORBIDDEN")
        assert await key_names(tenant) == before

    async def test_revoking_itself_is_forbidden_and_the_key_still_works(
        self, tenant: Tenant, client: httpx.AsyncClient
    ) -> None:
        created = await create_key(tenant, scopes=["READ"])
        reader, key_id = created["secret"], created["apiKey"]["id"]
        response = await send(client, REVOKE_KEY, {"id": key_id}, key=reader)
        assert_refused(response, 403, "FORBIDDEN")
        assert (await keys_of(tenant))[key_id]["revokedAt"] is None
        assert (await send(client, VIEWER, key=reader)).status_code == 200


class TestWriteKey:
    async def test_read_write_key_can_mutate(
        self, tenant: Tenant, client: httpx.AsyncClient
    ) -> None:
        writer = (await create_key(tenant, scopes=["READ", "WRITE"]))["secret"]
        response = await send(
            client, CREATE_CUSTOMER, {"input": {"email": "made@example.com"}}, key=writer
        )
        assert response.status_code == 200
        assert response.json()["data"]["createCustomer"]["__typename"] == "CreateCustomerSuccess"


# --- authentication ----------------------------------------------------------------------


class TestAuthentication:
    @pytest.mark.parametrize(
        "headers",
        [
            pytest.param({}, id="no-header"),
            pytest.param({"authorization": "Bearer bgk_" + "x" * 43}, id="unknown-key"),
            pytest.param({"authorization": "Bearer not-a-billgraph-key"}, id="foreign-token"),
            pytest.param({"authorization": "Basic xyz"}, id="basic-scheme"),
            pytest.param({"authorization": "Bearer "}, id="bearer-without-token"),
            pytest.param({"authorization": "Bearer"}, id="bearer-alone"),
            pytest.param({"authorization": ""}, id="empty-header"),
        ],
    )
    async def test_query_without_a_valid_key_is_unauthenticated(
        self, client: httpx.AsyncClient, headers: dict[str, str]
    ) -> None:
        response = await send(client, VIEWER, headers=headers)
        assert_refused(response, 401, "UNAUTHENTICATED")

    async def test_mutation_without_a_key_is_unauthenticated(
        self, client: httpx.AsyncClient
    ) -> None:
        response = await send(client, CREATE_CUSTOMER, {"input": {"email": "anon@example.com"}})
        assert_refused(response, 401, "UNAUTHENTICATED")

    async def test_basic_scheme_with_a_valid_secret_is_unauthenticated(
        self, tenant: Tenant, client: httpx.AsyncClient
    ) -> None:
        response = await send(client, VIEWER, headers={"authorization": f"Basic {tenant.api_key}"})
        assert_refused(response, 401, "UNAUTHENTICATED")

    async def test_bearer_scheme_is_case_insensitive(
        self, tenant: Tenant, client: httpx.AsyncClient
    ) -> None:
        response = await send(client, VIEWER, headers={"authorization": f"bearer {tenant.api_key}"})
        assert response.status_code == 200
        assert response.json()["data"]["viewer"]["id"] == tenant.organization_id

    async def test_introspection_works_without_a_key(self, client: httpx.AsyncClient) -> None:
        response = await send(client, "{ __schema { queryType { name } } }")
        assert response.status_code == 200
        body = response.json()
        assert "errors" not in body, body
        assert body["data"] == {"__schema": {"queryType": {"name": "Query"}}}

    async def test_introspection_next_to_data_needs_a_key(self, client: httpx.AsyncClient) -> None:
        response = await send(client, "{ __typename viewer { id } }")
        assert_refused(response, 401, "UNAUTHENTICATED")


class TestRevokeApiKey:
    async def test_revoked_key_is_refused_on_the_very_next_request(
        self, tenant: Tenant, client: httpx.AsyncClient
    ) -> None:
        created = await create_key(tenant, scopes=["READ"])
        secret, key_id = created["secret"], created["apiKey"]["id"]
        assert (await send(client, VIEWER, key=secret)).status_code == 200

        result = await revoke(tenant, key_id)
        assert result["__typename"] == "RevokeApiKeySuccess", result
        assert result["apiKey"]["id"] == key_id
        assert result["apiKey"]["revokedAt"] is not None

        assert_refused(await send(client, VIEWER, key=secret), 401, "UNAUTHENTICATED")
        assert (await keys_of(tenant))[key_id]["revokedAt"] == result["apiKey"]["revokedAt"]

    async def test_a_key_can_revoke_itself(self, tenant: Tenant, client: httpx.AsyncClient) -> None:
        created = await create_key(tenant, scopes=["READ", "WRITE"])
        secret, key_id = created["secret"], created["apiKey"]["id"]
        result = await revoke(tenant, key_id, key=secret)
        assert result["__typename"] == "RevokeApiKeySuccess", result
        assert_refused(await send(client, VIEWER, key=secret), 401, "UNAUTHENTICATED")

    async def test_revoking_one_key_leaves_the_others_working(
        self, tenant: Tenant, client: httpx.AsyncClient
    ) -> None:
        doomed = await create_key(tenant, name="doomed")
        kept = await create_key(tenant, name="kept")
        await revoke(tenant, doomed["apiKey"]["id"])
        assert (await send(client, VIEWER, key=kept["secret"])).status_code == 200
        assert (await send(client, VIEWER, key=tenant.api_key)).status_code == 200

    async def test_revoking_twice_keeps_the_first_revocation(self, tenant: Tenant) -> None:
        key_id = (await create_key(tenant))["apiKey"]["id"]
        first = await revoke(tenant, key_id)
        second = await revoke(tenant, key_id)
        assert second["__typename"] == "RevokeApiKeySuccess", second
        assert second["apiKey"]["revokedAt"] == first["apiKey"]["revokedAt"]

    async def test_another_organizations_key_is_not_found_and_keeps_working(
        self, tenant: Tenant, other_tenant: Tenant, client: httpx.AsyncClient
    ) -> None:
        theirs = await create_key(other_tenant, name="theirs", scopes=["READ"])
        result = await revoke(tenant, theirs["apiKey"]["id"])
        assert result["__typename"] == "NotFoundError", result
        assert result["code"] == "NOT_FOUND"
        response = await send(client, VIEWER, key=theirs["secret"])
        assert response.status_code == 200
        assert response.json()["data"]["viewer"]["id"] == other_tenant.organization_id
        assert (await keys_of(other_tenant))[theirs["apiKey"]["id"]]["revokedAt"] is None

    async def test_another_organizations_default_key_is_not_found(
        self, tenant: Tenant, other_tenant: Tenant, client: httpx.AsyncClient
    ) -> None:
        (their_default_id,) = list(await keys_of(other_tenant))
        result = await revoke(tenant, their_default_id)
        assert result["__typename"] == "NotFoundError", result
        assert (await send(client, VIEWER, key=other_tenant.api_key)).status_code == 200

    async def test_unknown_id_is_not_found(self, tenant: Tenant) -> None:
        result = await revoke(tenant, to_global_id("ApiKey", 2**40))
        assert result["__typename"] == "NotFoundError", result

    async def test_id_of_another_type_is_not_found(self, tenant: Tenant) -> None:
        customer_id = (await tenant.create_customer())["customer"]["id"]
        result = await revoke(tenant, customer_id)
        assert result["__typename"] == "NotFoundError", result

    async def test_malformed_id_is_a_validation_error(self, tenant: Tenant) -> None:
        result = await revoke(tenant, "not an id")
        assert result["__typename"] == "ValidationError", result
        assert result["field"] == "id"


# --- lastUsedAt --------------------------------------------------------------------------


class TestLastUsedAt:
    async def test_null_before_first_use_and_set_after(
        self, tenant: Tenant, client: httpx.AsyncClient
    ) -> None:
        created = await create_key(tenant, scopes=["READ"])
        key_id = created["apiKey"]["id"]
        assert created["apiKey"]["lastUsedAt"] is None
        assert (await keys_of(tenant))[key_id]["lastUsedAt"] is None  # listed by another key

        assert (await send(client, VIEWER, key=created["secret"])).status_code == 200

        listed = (await keys_of(tenant))[key_id]
        assert listed["lastUsedAt"] is not None
        assert listed["lastUsedAt"] >= listed["createdAt"]

    async def test_visible_in_the_request_that_uses_the_key(
        self, tenant: Tenant, client: httpx.AsyncClient
    ) -> None:
        created = await create_key(tenant, scopes=["READ"])
        response = await send(client, VIEWER_KEYS, key=created["secret"])
        keys = {k["id"]: k for k in response.json()["data"]["viewer"]["apiKeys"]}
        assert keys[created["apiKey"]["id"]]["lastUsedAt"] is not None

    async def test_a_refused_key_is_not_marked_used(
        self, tenant: Tenant, client: httpx.AsyncClient
    ) -> None:
        created = await create_key(tenant, scopes=["READ"])
        await revoke(tenant, created["apiKey"]["id"])
        assert_refused(await send(client, VIEWER, key=created["secret"]), 401, "UNAUTHENTICATED")
        assert (await keys_of(tenant))[created["apiKey"]["id"]]["lastUsedAt"] is None


# --- request ids -------------------------------------------------------------------------


async def _unauthenticated(tenant: Tenant) -> httpx.Response:
    return await send(tenant.client, VIEWER)


async def _forbidden(tenant: Tenant) -> httpx.Response:
    reader = (await create_key(tenant, scopes=["READ"]))["secret"]
    return await send(
        tenant.client, CREATE_CUSTOMER, {"input": {"email": "x@example.com"}}, key=reader
    )


async def _bad_cursor(tenant: Tenant) -> httpx.Response:
    return await send(
        tenant.client, '{ customers(after: "nonsense") { edges { cursor } } }', key=tenant.api_key
    )


async def _page_too_large(tenant: Tenant) -> httpx.Response:
    return await send(
        tenant.client, "{ customers(first: 101) { edges { cursor } } }", key=tenant.api_key
    )


async def _unknown_field(tenant: Tenant) -> httpx.Response:
    return await send(tenant.client, "{ viewer { noSuchField } }", key=tenant.api_key)


async def _syntax_error(tenant: Tenant) -> httpx.Response:
    return await send(tenant.client, "{ viewer { id ", key=tenant.api_key)


async def _too_many_tokens(tenant: Tenant) -> httpx.Response:
    return await send(tenant.client, "{ viewer { " + "id " * 16_000 + "} }", key=tenant.api_key)


async def _bad_variable(tenant: Tenant) -> httpx.Response:
    return await send(
        tenant.client,
        "query($first: Int) { customers(first: $first) { edges { cursor } } }",
        {"first": "many"},
        key=tenant.api_key,
    )


async def _malformed_node_id(tenant: Tenant) -> httpx.Response:
    return await send(tenant.client, '{ node(id: "!!!") { id } }', key=tenant.api_key)


async def _too_costly(tenant: Tenant) -> httpx.Response:
    page = "customers(first: 100) { edges { node { wallets { ledgerEntries(first: 100) { edges { node { id } } } } } } }"
    return await send(tenant.client, f"{{ a: {page} b: {page} }}", key=tenant.api_key)


async def _too_many_mutations(tenant: Tenant) -> httpx.Response:
    fields = " ".join(f'm{i}: deleteCustomer(id: "x") {{ __typename }}' for i in range(5))
    return await send(tenant.client, f"mutation {{ {fields} }}", key=tenant.api_key)


async def _body_too_large(tenant: Tenant) -> httpx.Response:
    padding = " " * (2 * 1024 * 1024 + 1)
    return await send(tenant.client, "{ viewer { id } }" + padding, key=tenant.api_key)


# name -> (make the response, expected extensions.code, expected HTTP status or None)
ERROR_RESPONSES: dict[str, tuple[Any, str, int | None]] = {
    "unauthenticated": (_unauthenticated, "UNAUTHENTICATED", 401),
    "forbidden": (_forbidden, "FORBIDDEN", 403),
    "bad-cursor": (_bad_cursor, "BAD_USER_INPUT", None),
    "page-too-large": (_page_too_large, "BAD_USER_INPUT", None),
    "unknown-field": (_unknown_field, "BAD_USER_INPUT", None),
    "syntax-error": (_syntax_error, "BAD_USER_INPUT", None),
    "too-many-tokens": (_too_many_tokens, "BAD_USER_INPUT", None),
    "bad-variable": (_bad_variable, "BAD_USER_INPUT", None),
    "malformed-node-id": (_malformed_node_id, "BAD_USER_INPUT", None),
    "query-too-costly": (_too_costly, "QUERY_TOO_COSTLY", None),
    "too-many-mutations": (_too_many_mutations, "BAD_USER_INPUT", None),
    "body-too-large": (_body_too_large, "PAYLOAD_TOO_LARGE", 413),
}


class TestRequestId:
    @pytest.mark.parametrize(
        ("make_error", "code", "status"), ERROR_RESPONSES.values(), ids=ERROR_RESPONSES.keys()
    )
    async def test_every_error_carries_the_request_id(
        self, tenant: Tenant, make_error: Any, code: str, status: int | None
    ) -> None:
        response = await make_error(tenant)
        if status is not None:
            assert response.status_code == status, response.text
        request_id = response.headers.get("x-request-id")
        assert request_id
        errors = response.json()["errors"]
        assert errors
        for error in errors:
            assert error.get("extensions", {}).get("requestId") == request_id, error
            assert error["extensions"]["code"] == code, error

    async def test_successful_response_has_a_request_id_header(self, tenant: Tenant) -> None:
        response = await send(tenant.client, VIEWER, key=tenant.api_key)
        assert response.status_code == 200
        assert response.headers.get("x-request-id")

    async def test_each_request_gets_its_own_id(self, tenant: Tenant) -> None:
        first = await send(tenant.client, VIEWER, key=tenant.api_key)
        second = await send(tenant.client, VIEWER, key=tenant.api_key)
        assert first.headers["x-request-id"] != second.headers["x-request-id"]

    async def test_a_sane_client_request_id_is_echoed(self, client: httpx.AsyncClient) -> None:
        response = await send(client, VIEWER, headers={"x-request-id": "client-req.42"})
        assert response.headers["x-request-id"] == "client-req.42"
        assert response.json()["errors"][0]["extensions"]["requestId"] == "client-req.42"

    async def test_an_unsafe_client_request_id_is_replaced(self, client: httpx.AsyncClient) -> None:
        response = await send(client, VIEWER, headers={"x-request-id": "bad id with spaces"})
        request_id = response.headers["x-request-id"]
        assert request_id != "bad id with spaces"
        assert response.json()["errors"][0]["extensions"]["requestId"] == request_id


async def test_write_only_key_can_mutate_but_not_query(tenant: Tenant) -> None:
    created = await tenant.data(
        'mutation { createApiKey(input: {name: "writer", scopes: [WRITE]}) '
        "{ ... on CreateApiKeySuccess { secret } } }"
    )
    secret = created["createApiKey"]["secret"]
    query = await tenant.client.post(
        "/graphql",
        json={"query": "{ viewer { name } }"},
        headers={"authorization": f"Bearer {secret}"},
    )
    assert query.status_code == 403
    assert query.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    mutation = await tenant.gql(
        'mutation { createCustomer(input: {email: "w@example.com"}) { __typename } }', key=secret
    )
    assert mutation["data"]["createCustomer"]["__typename"] == "CreateCustomerSuccess"


async def test_unreadable_body_gets_a_json_error(tenant: Tenant) -> None:
    response = await tenant.client.post(
        "/graphql",
        content=b"{not json",
        headers={"authorization": f"Bearer {tenant.api_key}", "content-type": "application/json"},
    )
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert error["extensions"] == {
        "code": "BAD_REQUEST",
        "requestId": response.headers["x-request-id"],
    }


@pytest.mark.parametrize(
    "secret",
    ["bgk_\ud800", "bgk_\udfff", "bgk_caf\u00e9", "bgk_\x00"],
    ids=["d800", "dfff", "e-acute", "nul"],
)
async def test_a_secret_that_is_not_ascii_is_unknown(database: Database, secret: str) -> None:
    """Secrets are ASCII. A socket's connection_init may offer any JSON string as its key, a
    lone surrogate too, which hashing the secret could not encode: unknown, not a failure."""
    assert await api_keys.principal_of(database, secret) is None
