"""Every HTTP request is counted by method, path and status and timed by method and path
(Prometheus), and carries a request id: the client's if sane, else a fresh random one."""

import re

import httpx
from prometheus_client import REGISTRY


def _count(method: str, path: str, status: str) -> float:
    labels = {"method": method, "path": path, "status": status}
    return REGISTRY.get_sample_value("billgraph_http_requests_total", labels) or 0.0


def _timed(method: str, path: str) -> float:
    labels = {"method": method, "path": path}
    return REGISTRY.get_sample_value("billgraph_http_request_seconds_count", labels) or 0.0


async def test_requests_are_counted_by_method_path_and_status_and_timed(
    client: httpx.AsyncClient,
) -> None:
    # Paths outside the gateway's own are one label value, not one per path asked for.
    cases = [
        ("GET", "/healthz", "200"),
        ("GET", "other", "404"),
        ("POST", "/graphql", "400"),
        ("POST", "/graphql", "200"),
    ]
    before = {case: _count(*case) for case in cases}
    timed_before = {case[:2]: _timed(*case[:2]) for case in cases}
    for _ in range(3):
        assert (await client.get("/healthz")).status_code == 200
    for _ in range(2):
        assert (await client.get("/nowhere")).status_code == 404
    bad = await client.post("/graphql", content=b"{", headers={"content-type": "application/json"})
    assert bad.status_code == 400
    for _ in range(4):
        assert (await client.post("/graphql", json={"query": "{ __typename }"})).status_code == 200
    counted = {case: _count(*case) - before[case] for case in cases}
    assert counted == {cases[0]: 3, cases[1]: 2, cases[2]: 1, cases[3]: 4}
    assert _count("GET", "/nowhere", "404") == 0
    timed = {case[:2]: _timed(*case[:2]) - timed_before[case[:2]] for case in cases}
    assert timed == {("GET", "/healthz"): 3, ("GET", "other"): 2, ("POST", "/graphql"): 5}


async def test_a_request_without_a_sane_id_gets_a_fresh_random_one(
    client: httpx.AsyncClient,
) -> None:
    ids = [
        (await client.get("/healthz", headers={"x-request-id": "bad id!"})).headers["x-request-id"]
        for _ in range(3)
    ]
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids), ids
    assert len(set(ids)) == 3
    echoed = await client.get("/healthz", headers={"x-request-id": "client-7.a_b"})
    assert echoed.headers["x-request-id"] == "client-7.a_b"
