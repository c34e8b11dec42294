"""The `billgraph` command as a user runs it."""

import json

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
