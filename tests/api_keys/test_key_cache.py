"""Keys seen a moment ago are believed without their lookup, and a revoked key is still refused
at once: on the replica that revoked it, and on another as soon as the revocation arrives."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass

import httpx
import pytest
from starlette.applications import Starlette

from billgraph.api_keys import cache as key_cache
from billgraph.api_keys.cache import PrincipalCache
from billgraph.api_keys.service import Principal
from billgraph.app import create_app
from billgraph.db.engine import Database, connect
from billgraph.db.models import ApiKey, Organization
from billgraph.settings import Settings
from tests.conftest import postgresql_only
from tests.support.graph import Tenant, new_tenant
from tests.support.ledger import count_statements

VIEWER = "{ viewer { id name } }"
CREATE_KEY = """mutation { createApiKey(input: {name: "cached", scopes: [READ]}) {
  ... on CreateApiKeySuccess { secret apiKey { id } } } }"""
REVOKE_KEY = "mutation($id: ID!) { revokeApiKey(id: $id) { __typename } }"


@dataclass
class Replica:
    client: httpx.AsyncClient
    database: Database


@pytest.fixture
async def replicas(
    database: Database, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[list[Replica]]:
    """Two gateways on one PostgreSQL, each with its own event listener, as two replicas
    are; keys are believed for a minute, so only a revocation can evict them."""
    monkeypatch.setattr(key_cache, "CACHE_SECONDS", 60.0)
    async with AsyncExitStack() as stack:
        replicas = []
        for _ in range(2):
            # A database of its own: committed changes are announced to its own broker.
            replica = connect(settings.database_url)
            stack.push_async_callback(replica.dispose)
            app: Starlette = create_app(settings, replica)
            await stack.enter_async_context(app.router.lifespan_context(app))
            transport = httpx.ASGITransport(app=app)
            client = httpx.AsyncClient(transport=transport, base_url="http://billgraph.test")
            replicas.append(Replica(await stack.enter_async_context(client), replica))
        yield replicas


async def _status(client: httpx.AsyncClient, secret: str) -> int:
    response = await client.post(
        "/graphql", json={"query": VIEWER}, headers={"authorization": f"Bearer {secret}"}
    )
    return response.status_code


@postgresql_only  # SQLite's broker is in process: keys are not cached there
async def test_a_cached_key_costs_no_lookup_and_is_refused_once_revoked_on_every_replica(
    replicas: list[Replica], database: Database
) -> None:
    a, b = replicas
    tenant: Tenant = await new_tenant(database, a.client)
    created = (await tenant.data(CREATE_KEY))["createApiKey"]
    secret, key_id = created["secret"], created["apiKey"]["id"]
    for replica in replicas:
        with count_statements(replica.database) as looked_up:
            assert await _status(replica.client, secret) == 200
        assert any("api_keys" in s for s in looked_up), looked_up
        with count_statements(replica.database) as statements:
            assert await _status(replica.client, secret) == 200
        assert statements == [], statements  # believed: `viewer` needs no other statement

    revoked = await tenant.data(REVOKE_KEY, {"id": key_id})
    assert revoked["revokeApiKey"]["__typename"] == "RevokeApiKeySuccess"
    # The replica that revoked it refuses it on the very next request.
    assert await _status(a.client, secret) == 401
    # The other refuses it as soon as the revocation arrives: long before the minute the
    # key would otherwise be believed.
    for _ in range(100):
        if await _status(b.client, secret) == 401:
            break
        await asyncio.sleep(0.01)
    assert await _status(b.client, secret) == 401


class _Listener:
    delivered = True


def _principal(api_key_id: int) -> Principal:
    return Principal(
        api_key=ApiKey(id=api_key_id, scopes="read"), organization=Organization(id=1, name="x")
    )


def test_a_lookup_that_raced_with_a_revocation_is_not_cached() -> None:
    cache = PrincipalCache(_Listener(), seconds=60)
    generation = cache.generation  # the lookup starts, and reads the key as live
    cache.revoked(7)  # the key is revoked meanwhile
    cache.put("hash", _principal(7), generation)
    assert cache.get("hash") is None


def test_nothing_is_believed_while_revocations_may_not_arrive() -> None:
    listener = _Listener()
    cache = PrincipalCache(listener, seconds=60)
    cache.put("hash", _principal(7), cache.generation)
    assert cache.get("hash") is not None
    listener.delivered = False  # the listener is lost
    assert cache.get("hash") is None
    cache.put("other", _principal(8), cache.generation)
    listener.delivered = True
    assert cache.get("other") is None
    cache.clear()  # what the broker does when it listens again
    assert cache.get("hash") is None


def test_a_revoked_key_is_forgotten_and_the_others_kept() -> None:
    cache = PrincipalCache(_Listener(), seconds=60)
    cache.put("seven", _principal(7), cache.generation)
    cache.put("eight", _principal(8), cache.generation)
    cache.revoked(7)
    assert cache.get("seven") is None
    assert cache.get("eight") is not None
