"""The `billgraph` command as a user runs it."""

import json
import sqlite3

import httpx

from tests.support.server import cli, live_server


def test_create_organization_prints_one_json_line(tmp_path) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    done = cli(
        "create-organization",
        "--name",
        "Acme",
        "--currency",
        "KRW",
        "--json",
        "--database-url",
        url,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1
    result = json.loads(lines[0])
    assert set(result) == {"organization_id", "api_key"}
    assert result["api_key"].startswith("bgk_")


def test_database_url_from_the_environment(tmp_path) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite+aiosqlite:///{tmp_path / 'env.db'}"
    done = cli("migrate", env={"BILLGRAPH_DATABASE_URL": url})
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "env.db").exists()


def test_unknown_currency_and_bad_url_fail_cleanly(tmp_path) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite+aiosqlite:///{tmp_path / 'bad.db'}"
    bad_currency = cli(
        "create-organization", "--name", "X", "--currency", "XYZ", "--database-url", url
    )
    assert bad_currency.returncode == 2
    assert "Unknown currency" in bad_currency.stderr
    assert "Traceback" not in bad_currency.stderr
    bad_url = cli("migrate", "--database-url", "mysql://localhost/x")
    assert bad_url.returncode == 2
    assert "unsupported database URL" in bad_url.stderr


def test_serve_answers_healthz_and_graphiql(tmp_path) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite+aiosqlite:///{tmp_path / 'serve.db'}"
    with live_server(url) as server:
        assert httpx.get(f"{server.base_url}/healthz").json() == {"status": "ok"}
        page = httpx.get(f"{server.base_url}/graphql", headers={"accept": "text/html"})
        assert page.status_code == 200
        assert "graphiql" in page.text.lower()
        metrics = httpx.get(f"{server.base_url}/metrics")
        assert "billgraph_http_requests_total" in metrics.text


def test_check_ledger_passes_a_balanced_ledger_and_names_a_broken_wallet(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "audit.db"
    url = f"sqlite+aiosqlite:///{path}"
    created_org = cli("create-organization", "--name", "Audit", "--json", "--database-url", url)
    assert created_org.returncode == 0, created_org.stderr
    headers = {"authorization": f"Bearer {json.loads(created_org.stdout)['api_key']}"}
    with live_server(url) as server:
        created = httpx.post(
            f"{server.base_url}/graphql",
            json={
                "query": 'mutation { createCustomer(input: {email: "a@example.com"}) '
                "{ ... on CreateCustomerSuccess { customer { id } } } }"
            },
            headers=headers,
        ).json()
        customer = created["data"]["createCustomer"]["customer"]["id"]
        posted = httpx.post(
            f"{server.base_url}/graphql",
            json={
                "query": "mutation($c: ID!) { createLedgerEntry(input: {customerId: $c, "
                'amount: 500, currency: USD, entryType: CREDIT, idempotencyKey: "k"}) '
                "{ __typename } }",
                "variables": {"c": customer},
            },
            headers=headers,
        ).json()
        assert posted["data"]["createLedgerEntry"]["__typename"] == "CreateLedgerEntrySuccess"
    balanced = cli("check-ledger", "--database-url", url)
    assert balanced.returncode == 0, balanced.stderr
    assert "every wallet balances" in balanced.stderr

    with sqlite3.connect(path) as connection:  # a balance moved behind the ledger's back
        connection.execute("UPDATE wallets SET balance = balance + 1")
    broken = cli("check-ledger", "--database-url", url)
    assert broken.returncode == 1
    assert "balance 501" in broken.stdout and "net of entries 500" in broken.stdout
