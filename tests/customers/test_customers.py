"""Customers over HTTP: createCustomer, updateCustomer, deleteCustomer (soft) and the
`customers` connection. Every test runs on SQLite and on PostgreSQL, inside its own tenant."""

import base64
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from billgraph.db.engine import Database
from billgraph.graphql.node import to_global_id
from tests.support.graph import Tenant, new_tenant

CUSTOMER_FIELDS = "id email name externalId wallets { id currency balance version }"

CREATE = f"""
mutation($input: CreateCustomerInput!) {{
  createCustomer(input: $input) {{
    __typename
    ... on CreateCustomerSuccess {{ customer {{ {CUSTOMER_FIELDS} }} wallet {{ id currency balance version }} }}
    ... on ValidationError {{ code message field }}
    ... on ConflictError {{ code message field }}
  }}
}}
"""

UPDATE = f"""
mutation($input: UpdateCustomerInput!) {{
  updateCustomer(input: $input) {{
    __typename
    ... on UpdateCustomerSuccess {{ customer {{ {CUSTOMER_FIELDS} }} }}
    ... on ValidationError {{ code message field }}
    ... on ConflictError {{ code message field }}
    ... on NotFoundError {{ code message }}
  }}
}}
"""

DELETE = """
mutation($id: ID!) {
  deleteCustomer(id: $id) {
    __typename
    ... on DeleteCustomerSuccess { deletedCustomerId }
    ... on ValidationError { code message field }
    ... on NotFoundError { code message }
  }
}
"""

CUSTOMER = f"query($id: ID!) {{ customer(id: $id) {{ {CUSTOMER_FIELDS} }} }}"

PAGE = """
query($first: Int, $after: String, $email: String) {
  customers(first: $first, after: $after, email: $email) {
    edges { cursor node { id email } }
    pageInfo { hasNextPage endCursor }
  }
}
"""

VIEWER_PAGE = """
query($first: Int, $after: String, $email: String) {
  viewer {
    customers(first: $first, after: $after, email: $email) {
      edges { cursor node { id email } }
      pageInfo { hasNextPage endCursor }
    }
  }
}
"""


def database_id(global_id: str) -> int:
    raw = base64.urlsafe_b64decode(global_id + "=" * (-len(global_id) % 4)).decode()
    type_name, _, number = raw.partition(":")
    assert type_name == "Customer", raw
    return int(number)


async def create(tenant: Tenant, **fields: Any) -> dict[str, Any]:
    return (await tenant.data(CREATE, {"input": fields}))["createCustomer"]  # type: ignore[no-any-return]


async def update(tenant: Tenant, customer_id: str, **fields: Any) -> dict[str, Any]:
    data = await tenant.data(UPDATE, {"input": {"customerId": customer_id, **fields}})
    return data["updateCustomer"]  # type: ignore[no-any-return]


async def delete(tenant: Tenant, customer_id: str) -> dict[str, Any]:
    return (await tenant.data(DELETE, {"id": customer_id}))["deleteCustomer"]  # type: ignore[no-any-return]


async def fetch(tenant: Tenant, customer_id: str) -> dict[str, Any] | None:
    return (await tenant.data(CUSTOMER, {"id": customer_id}))["customer"]  # type: ignore[no-any-return]


async def emails_matching(tenant: Tenant, email: str) -> list[str]:
    page = (await tenant.data(PAGE, {"first": 100, "email": email}))["customers"]
    return [edge["node"]["email"] for edge in page["edges"]]


async def all_customer_ids(tenant: Tenant) -> list[str]:
    page = (await tenant.data(PAGE, {"first": 100}))["customers"]
    assert page["pageInfo"]["hasNextPage"] is False
    return [edge["node"]["id"] for edge in page["edges"]]


# --- createCustomer ----------------------------------------------------------------------


class TestCreateCustomer:
    async def test_only_email_is_required(self, tenant: Tenant) -> None:
        result = await create(tenant, email="only@example.com")
        assert result["__typename"] == "CreateCustomerSuccess", result
        customer = result["customer"]
        assert customer["email"] == "only@example.com"
        assert customer["name"] is None
        assert customer["externalId"] is None
        assert await fetch(tenant, customer["id"]) == customer

    async def test_name_and_external_id_are_stored(self, tenant: Tenant) -> None:
        result = await create(
            tenant, email="full@example.com", name="Ada Lovelace", externalId="crm-1"
        )
        customer = await fetch(tenant, result["customer"]["id"])
        assert customer is not None
        assert (customer["email"], customer["name"], customer["externalId"]) == (
            "full@example.com",
            "Ada Lovelace",
            "crm-1",
        )

    async def test_wallet_in_default_currency_exists_at_once_with_zero_balance(
        self, tenant: Tenant
    ) -> None:
        result = await create(tenant, email="wallet@example.com")
        wallet = result["wallet"]
        assert wallet["currency"] == "USD"
        assert wallet["balance"] == 0
        assert wallet["version"] == 0
        assert result["customer"]["wallets"] == [wallet]

        data = await tenant.data(
            """query($id: ID!) { customer(id: $id) {
                wallets { id currency balance version }
                usd: wallet(currency: USD) { id currency balance }
                eur: wallet(currency: EUR) { id } } }""",
            {"id": result["customer"]["id"]},
        )
        customer = data["customer"]
        assert customer["wallets"] == [wallet]
        assert customer["usd"] == {"id": wallet["id"], "currency": "USD", "balance": 0}
        assert customer["eur"] is None

    async def test_first_wallet_follows_the_organizations_default_currency(
        self, database: Database, client: httpx.AsyncClient
    ) -> None:
        euro_tenant = await new_tenant(database, client, currency="EUR")
        result = await create(euro_tenant, email="euro@example.com")
        assert result["wallet"]["currency"] == "EUR"
        assert result["wallet"]["balance"] == 0
        assert [w["currency"] for w in result["customer"]["wallets"]] == ["EUR"]

    async def test_currency_input_opens_the_first_wallet_in_that_currency(
        self, tenant: Tenant
    ) -> None:
        result = await create(tenant, email="pound@example.com", currency="GBP")
        assert result["wallet"]["currency"] == "GBP"
        assert result["wallet"]["balance"] == 0
        data = await tenant.data(
            """query($id: ID!) { customer(id: $id) {
                wallets { id currency }
                gbp: wallet(currency: GBP) { id balance }
                usd: wallet(currency: USD) { id } } }""",
            {"id": result["customer"]["id"]},
        )
        customer = data["customer"]
        assert customer["wallets"] == [{"id": result["wallet"]["id"], "currency": "GBP"}]
        assert customer["gbp"] == {"id": result["wallet"]["id"], "balance": 0}
        assert customer["usd"] is None

    async def test_duplicate_email_is_a_conflict(self, tenant: Tenant) -> None:
        await create(tenant, email="dup@example.com")
        result = await create(tenant, email="dup@example.com")
        assert result["__typename"] == "ConflictError", result
        assert result["code"] == "CONFLICT"
        assert result["field"] == "email"
        assert await emails_matching(tenant, "dup@example.com") == ["dup@example.com"]

    async def test_duplicate_email_in_another_case_is_a_conflict(self, tenant: Tenant) -> None:
        await create(tenant, email="A@x.com")
        result = await create(tenant, email="a@x.com")
        assert result["__typename"] == "ConflictError", result
        assert result["code"] == "CONFLICT"
        assert result["field"] == "email"
        assert await emails_matching(tenant, "a@x.com") == ["A@x.com"]

    async def test_duplicate_external_id_is_a_conflict(self, tenant: Tenant) -> None:
        await create(tenant, email="first@example.com", externalId="crm-42")
        result = await create(tenant, email="second@example.com", externalId="crm-42")
        assert result["__typename"] == "ConflictError", result
        assert result["code"] == "CONFLICT"
        assert result["field"] == "externalId"
        assert await emails_matching(tenant, "second@example.com") == []

    async def test_same_email_in_another_organization_is_no_conflict(
        self, tenant: Tenant, other_tenant: Tenant
    ) -> None:
        await create(tenant, email="shared@example.com", externalId="ext-1")
        result = await create(other_tenant, email="shared@example.com", externalId="ext-1")
        assert result["__typename"] == "CreateCustomerSuccess", result

    @pytest.mark.parametrize(
        ("fields", "field"),
        [
            pytest.param({"email": "not-an-email"}, "email", id="invalid-email"),
            pytest.param({"email": "two@@example.com"}, "email", id="two-at-signs"),
            pytest.param({"email": "no spaces@example.com"}, "email", id="space-in-email"),
            pytest.param({"email": ""}, "email", id="empty-email"),
            pytest.param({"email": "   "}, "email", id="blank-email"),
            pytest.param({"email": "a" * 249 + "@x.com"}, "email", id="email-255-chars"),
            pytest.param(
                {"email": "named@example.com", "name": "n" * 201}, "name", id="name-201-chars"
            ),
            pytest.param(
                {"email": "ext@example.com", "externalId": "e" * 201},
                "externalId",
                id="external-id-201-chars",
            ),
        ],
    )
    async def test_invalid_input_is_a_validation_error_and_writes_nothing(
        self, tenant: Tenant, fields: dict[str, Any], field: str
    ) -> None:
        result = await create(tenant, **fields)
        assert result["__typename"] == "ValidationError", result
        assert result["code"] == "VALIDATION_ERROR"
        assert result["field"] == field
        assert result["message"]
        if fields["email"].strip():
            assert await emails_matching(tenant, fields["email"]) == []
        assert await all_customer_ids(tenant) == []

    async def test_longest_allowed_email_and_name_are_accepted(self, tenant: Tenant) -> None:
        email = "a" * 248 + "@x.com"
        assert len(email) == 254
        result = await create(tenant, email=email, name="n" * 200)
        assert result["__typename"] == "CreateCustomerSuccess", result
        assert result["customer"]["email"] == email
        assert result["customer"]["name"] == "n" * 200


# --- updateCustomer ----------------------------------------------------------------------


class TestUpdateCustomer:
    async def test_changes_only_the_given_fields(self, tenant: Tenant) -> None:
        created = await create(
            tenant, email="keep@example.com", name="Old Name", externalId="crm-7"
        )
        customer_id = created["customer"]["id"]
        result = await update(tenant, customer_id, name="New Name")
        assert result["__typename"] == "UpdateCustomerSuccess", result
        expected = {"email": "keep@example.com", "name": "New Name", "externalId": "crm-7"}
        assert {k: result["customer"][k] for k in expected} == expected
        stored = await fetch(tenant, customer_id)
        assert stored is not None
        assert {k: stored[k] for k in expected} == expected

    async def test_changes_the_email_only(self, tenant: Tenant) -> None:
        created = await create(tenant, email="before@example.com", name="Kept", externalId="crm-8")
        customer_id = created["customer"]["id"]
        result = await update(tenant, customer_id, email="after@example.com")
        assert result["__typename"] == "UpdateCustomerSuccess", result
        stored = await fetch(tenant, customer_id)
        assert stored is not None
        assert (stored["email"], stored["name"], stored["externalId"]) == (
            "after@example.com",
            "Kept",
            "crm-8",
        )
        assert await emails_matching(tenant, "before@example.com") == []
        assert await emails_matching(tenant, "after@example.com") == ["after@example.com"]

    async def test_null_clears_the_name(self, tenant: Tenant) -> None:
        created = await create(
            tenant, email="clear@example.com", name="To Clear", externalId="crm-9"
        )
        customer_id = created["customer"]["id"]
        result = await update(tenant, customer_id, name=None)
        assert result["__typename"] == "UpdateCustomerSuccess", result
        stored = await fetch(tenant, customer_id)
        assert stored is not None
        assert (stored["email"], stored["name"], stored["externalId"]) == (
            "clear@example.com",
            None,
            "crm-9",
        )

    async def test_email_of_another_customer_is_a_conflict(self, tenant: Tenant) -> None:
        await create(tenant, email="taken@example.com")
        second = await create(tenant, email="mine@example.com")
        customer_id = second["customer"]["id"]
        result = await update(tenant, customer_id, email="TAKEN@example.com")
        assert result["__typename"] == "ConflictError", result
        assert result["code"] == "CONFLICT"
        assert result["field"] == "email"
        stored = await fetch(tenant, customer_id)
        assert stored is not None
        assert stored["email"] == "mine@example.com"

    async def test_own_email_in_another_case_is_no_conflict(self, tenant: Tenant) -> None:
        created = await create(tenant, email="self@example.com")
        result = await update(tenant, created["customer"]["id"], email="Self@Example.com")
        assert result["__typename"] == "UpdateCustomerSuccess", result
        assert result["customer"]["email"] == "Self@Example.com"

    async def test_invalid_email_is_a_validation_error_and_changes_nothing(
        self, tenant: Tenant
    ) -> None:
        created = await create(tenant, email="valid@example.com", name="Name")
        customer_id = created["customer"]["id"]
        result = await update(tenant, customer_id, email="broken", name="Other")
        assert result["__typename"] == "ValidationError", result
        assert result["field"] == "email"
        stored = await fetch(tenant, customer_id)
        assert stored is not None
        assert (stored["email"], stored["name"]) == ("valid@example.com", "Name")

    async def test_unknown_id_is_not_found(self, tenant: Tenant) -> None:
        result = await update(tenant, to_global_id("Customer", 2**40), name="Nobody")
        assert result["__typename"] == "NotFoundError", result
        assert result["code"] == "NOT_FOUND"

    async def test_another_organizations_customer_is_not_found(
        self, tenant: Tenant, other_tenant: Tenant
    ) -> None:
        theirs = await create(other_tenant, email="theirs@example.com", name="Theirs")
        customer_id = theirs["customer"]["id"]
        result = await update(tenant, customer_id, name="Hijacked")
        assert result["__typename"] == "NotFoundError", result
        stored = await fetch(other_tenant, customer_id)
        assert stored is not None
        assert stored["name"] == "Theirs"

    async def test_malformed_id_is_a_validation_error(self, tenant: Tenant) -> None:
        result = await update(tenant, "not a billgraph id!", name="Nobody")
        assert result["__typename"] == "ValidationError", result
        assert result["code"] == "VALIDATION_ERROR"
        assert result["field"] == "customerId"


# --- deleteCustomer ----------------------------------------------------------------------


class TestDeleteCustomer:
    async def test_returns_the_deleted_id(self, tenant: Tenant) -> None:
        created = await create(tenant, email="bye@example.com")
        customer_id = created["customer"]["id"]
        result = await delete(tenant, customer_id)
        assert result == {"__typename": "DeleteCustomerSuccess", "deletedCustomerId": customer_id}

    async def test_deleted_customer_disappears_from_every_read(self, tenant: Tenant) -> None:
        kept = await create(tenant, email="kept@example.com")
        gone = await create(tenant, email="gone@example.com")
        customer_id, wallet_id = gone["customer"]["id"], gone["wallet"]["id"]
        assert (await tenant.post(customer_id, 500))["__typename"] == "CreateLedgerEntrySuccess"
        assert (await delete(tenant, customer_id))["__typename"] == "DeleteCustomerSuccess"

        data = await tenant.data(
            """query($id: ID!, $wallet: ID!) {
                customer(id: $id) { id }
                node(id: $id) { id }
                wallet(id: $wallet) { id }
                walletNode: node(id: $wallet) { id }
            }""",
            {"id": customer_id, "wallet": wallet_id},
        )
        assert data == {"customer": None, "node": None, "wallet": None, "walletNode": None}
        assert await all_customer_ids(tenant) == [kept["customer"]["id"]]
        assert await emails_matching(tenant, "gone@example.com") == []

    async def test_ledger_entry_on_deleted_customer_is_not_found(self, tenant: Tenant) -> None:
        created = await create(tenant, email="noledger@example.com")
        customer_id = created["customer"]["id"]
        await delete(tenant, customer_id)
        credit = await tenant.post(customer_id, 100)
        assert credit["__typename"] == "NotFoundError", credit
        assert credit["code"] == "NOT_FOUND"
        debit = await tenant.post(customer_id, 100, "DEBIT")
        assert debit["__typename"] == "NotFoundError", debit

    async def test_email_and_external_id_can_be_reused(self, tenant: Tenant) -> None:
        first = await create(tenant, email="reuse@example.com", externalId="crm-reuse")
        await delete(tenant, first["customer"]["id"])
        second = await create(tenant, email="Reuse@example.com", externalId="crm-reuse")
        assert second["__typename"] == "CreateCustomerSuccess", second
        assert second["customer"]["id"] != first["customer"]["id"]
        assert second["wallet"]["balance"] == 0
        assert await all_customer_ids(tenant) == [second["customer"]["id"]]

    async def test_deleting_twice_is_not_found(self, tenant: Tenant) -> None:
        created = await create(tenant, email="twice@example.com")
        customer_id = created["customer"]["id"]
        assert (await delete(tenant, customer_id))["__typename"] == "DeleteCustomerSuccess"
        again = await delete(tenant, customer_id)
        assert again["__typename"] == "NotFoundError", again
        assert again["code"] == "NOT_FOUND"

    async def test_updating_a_deleted_customer_is_not_found(self, tenant: Tenant) -> None:
        created = await create(tenant, email="late@example.com")
        customer_id = created["customer"]["id"]
        await delete(tenant, customer_id)
        result = await update(tenant, customer_id, name="Too late")
        assert result["__typename"] == "NotFoundError", result

    async def test_another_organizations_customer_is_not_found(
        self, tenant: Tenant, other_tenant: Tenant
    ) -> None:
        theirs = await create(other_tenant, email="safe@example.com")
        customer_id = theirs["customer"]["id"]
        result = await delete(tenant, customer_id)
        assert result["__typename"] == "NotFoundError", result
        stored = await fetch(other_tenant, customer_id)
        assert stored is not None
        assert stored["email"] == "safe@example.com"

    async def test_malformed_id_is_a_validation_error(self, tenant: Tenant) -> None:
        result = await delete(tenant, "%%%")
        assert result["__typename"] == "ValidationError", result
        assert result["field"] == "id"

    async def test_personal_data_is_erased_but_the_row_and_ledger_stay(
        self, tenant: Tenant, database: Database
    ) -> None:
        created = await create(
            tenant, email="erase@example.com", name="Erase Me", externalId="crm-erase"
        )
        customer_id = created["customer"]["id"]
        assert (await tenant.post(customer_id, 700))["__typename"] == "CreateLedgerEntrySuccess"
        await delete(tenant, customer_id)

        async with database.engine.connect() as connection:
            row = (
                await connection.execute(
                    text(
                        "SELECT email, email_normalized, name, external_id, deleted_at "
                        "FROM customers WHERE id = :id"
                    ),
                    {"id": database_id(customer_id)},
                )
            ).one()
            ledger = (
                await connection.execute(
                    text(
                        "SELECT w.balance, COUNT(e.id) FROM wallets w "
                        "LEFT JOIN ledger_entries e ON e.wallet_id = w.id "
                        "WHERE w.customer_id = :id GROUP BY w.id, w.balance"
                    ),
                    {"id": database_id(customer_id)},
                )
            ).all()
        assert (row.email, row.email_normalized, row.name, row.external_id) == (
            None,
            None,
            None,
            None,
        )
        assert row.deleted_at is not None
        assert [tuple(r) for r in ledger] == [(700, 1)]


# --- customers connection ----------------------------------------------------------------


async def _pages(tenant: Tenant, query: str, first: int) -> list[dict[str, Any]]:
    pages, after = [], None
    for _ in range(10):  # far more than needed: a pager that never ends fails below
        data = await tenant.data(query, {"first": first, "after": after})
        page = data["viewer"]["customers"] if "viewer" in data else data["customers"]
        pages.append(page)
        if not page["pageInfo"]["hasNextPage"]:
            return pages
        after = page["pageInfo"]["endCursor"]
    raise AssertionError(f"pagination did not end: {pages}")


class TestCustomersConnection:
    @pytest.mark.parametrize(
        "query", [PAGE, VIEWER_PAGE], ids=["Query.customers", "viewer.customers"]
    )
    async def test_pages_with_first_and_after_in_creation_order(
        self, tenant: Tenant, query: str
    ) -> None:
        created = [
            (await create(tenant, email=f"page{i}@example.com"))["customer"]["id"] for i in range(5)
        ]
        pages = await _pages(tenant, query, first=2)

        assert [len(p["edges"]) for p in pages] == [2, 2, 1]
        assert [p["pageInfo"]["hasNextPage"] for p in pages] == [True, True, False]
        for page in pages:
            assert page["pageInfo"]["endCursor"] == page["edges"][-1]["cursor"]
        ids = [edge["node"]["id"] for page in pages for edge in page["edges"]]
        assert ids == created  # creation order, nothing repeated or skipped
        emails = [edge["node"]["email"] for page in pages for edge in page["edges"]]
        assert emails == [f"page{i}@example.com" for i in range(5)]

    async def test_another_organizations_customer_reads_as_null(
        self, tenant: Tenant, other_tenant: Tenant
    ) -> None:
        theirs = await create(other_tenant, email="private@example.com")
        data = await tenant.data(
            "query($id: ID!, $wallet: ID!) { customer(id: $id) { id } node(id: $id) { id } wallet(id: $wallet) { id } }",
            {"id": theirs["customer"]["id"], "wallet": theirs["wallet"]["id"]},
        )
        assert data == {"customer": None, "node": None, "wallet": None}

    async def test_only_the_callers_customers_are_listed(
        self, tenant: Tenant, other_tenant: Tenant
    ) -> None:
        mine = (await create(tenant, email="mine@example.com"))["customer"]["id"]
        await create(other_tenant, email="theirs@example.com")
        await create(other_tenant, email="mine@example.com")
        assert await all_customer_ids(tenant) == [mine]
        assert await emails_matching(tenant, "theirs@example.com") == []

    async def test_cursor_of_a_deleted_customer_still_continues(self, tenant: Tenant) -> None:
        ids = [
            (await create(tenant, email=f"k{i}@example.com"))["customer"]["id"] for i in range(4)
        ]
        first_page = (await tenant.data(PAGE, {"first": 2}))["customers"]
        assert [e["node"]["id"] for e in first_page["edges"]] == ids[:2]
        await delete(tenant, ids[1])
        rest = (
            await tenant.data(PAGE, {"first": 10, "after": first_page["pageInfo"]["endCursor"]})
        )["customers"]
        assert [e["node"]["id"] for e in rest["edges"]] == ids[2:]
        assert rest["pageInfo"]["hasNextPage"] is False

    async def test_email_filter_is_case_insensitive(self, tenant: Tenant) -> None:
        await create(tenant, email="someone@example.com")
        target = await create(tenant, email="Mixed.Case@Example.com")
        page = (await tenant.data(PAGE, {"first": 10, "email": "mixed.case@EXAMPLE.COM"}))[
            "customers"
        ]
        assert [e["node"]["id"] for e in page["edges"]] == [target["customer"]["id"]]
        assert page["edges"][0]["node"]["email"] == "Mixed.Case@Example.com"
        assert page["pageInfo"]["hasNextPage"] is False

    async def test_email_filter_without_match_is_empty(self, tenant: Tenant) -> None:
        await create(tenant, email="present@example.com")
        page = (await tenant.data(PAGE, {"first": 10, "email": "absent@example.com"}))["customers"]
        assert page == {"edges": [], "pageInfo": {"hasNextPage": False, "endCursor": None}}

    @pytest.mark.parametrize(
        "cursor",
        [
            pytest.param("garbage!", id="garbage"),
            pytest.param("", id="empty"),
            pytest.param(
                base64.urlsafe_b64encode(b"entry:1").decode().rstrip("="), id="ledger-entry-cursor"
            ),
            pytest.param(
                base64.urlsafe_b64encode(b"customer:abc").decode().rstrip("="), id="non-numeric-key"
            ),
            pytest.param(
                base64.urlsafe_b64encode(b"customer:-5").decode().rstrip("="), id="negative-key"
            ),
        ],
    )
    async def test_invalid_after_cursor_is_bad_user_input(
        self, tenant: Tenant, cursor: str
    ) -> None:
        await create(tenant, email="cursor@example.com")
        body = await tenant.gql(PAGE, {"first": 2, "after": cursor})
        assert body.get("data") is None
        assert [e["extensions"]["code"] for e in body["errors"]] == ["BAD_USER_INPUT"]

    @pytest.mark.parametrize("first", [101, -1])
    async def test_first_out_of_range_is_bad_user_input(self, tenant: Tenant, first: int) -> None:
        await create(tenant, email="range@example.com")
        body = await tenant.gql(PAGE, {"first": first})
        assert body.get("data") is None
        assert [e["extensions"]["code"] for e in body["errors"]] == ["BAD_USER_INPUT"]

    async def test_first_100_is_allowed(self, tenant: Tenant) -> None:
        created = (await create(tenant, email="hundred@example.com"))["customer"]["id"]
        page = (await tenant.data(PAGE, {"first": 100}))["customers"]
        assert [e["node"]["id"] for e in page["edges"]] == [created]

    async def test_first_zero_returns_no_edges(self, tenant: Tenant) -> None:
        await create(tenant, email="zero1@example.com")
        await create(tenant, email="zero2@example.com")
        page = (await tenant.data(PAGE, {"first": 0}))["customers"]
        assert page["edges"] == []
        assert page["pageInfo"] == {"hasNextPage": True, "endCursor": None}
