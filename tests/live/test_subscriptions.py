"""Live balances over real WebSockets against real gateway processes.

On PostgreSQL two gateway processes share the database: sockets subscribe through A, writes
go through B (or both), and events cross between them over LISTEN/NOTIFY. On SQLite, one
process with the in-process broker plays both roles.
"""

import asyncio
import os
import signal
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from billgraph.db.engine import Database, connect
from tests.conftest import assert_ledger_invariant
from tests.support.graph import Tenant, new_tenant
from tests.support.server import LiveServer, live_server
from tests.support.ws import (
    LEGACY_WS,
    PROTOCOLS,
    TRANSPORT_WS,
    GraphQLSocket,
    SocketClosed,
    authenticated,
)

GATEWAY_ENV = {
    "BILLGRAPH_WEBSOCKET_KEEP_ALIVE_SECONDS": "0.5",
    "BILLGRAPH_WEBSOCKET_INIT_TIMEOUT_SECONDS": "1",
    # Room for the 200-write burst: this module tests order, test_slow_subscriber coalescing.
    "BILLGRAPH_SUBSCRIPTION_QUEUE_SIZE": "1000",
}

BALANCE_CHANGED = """
subscription($walletId: ID, $customerId: ID, $afterEntryId: ID) {
  walletBalanceChanged(walletId: $walletId, customerId: $customerId, afterEntryId: $afterEntryId) {
    balance version
    entry { id sequence amount entryType balanceAfter }
    wallet { id balance version currency lowBalanceThreshold customer { id } }
  }
}
"""
LOW_BALANCE = """
subscription($customerId: ID) {
  walletLowBalance(customerId: $customerId) { balance threshold version entry { id amount } wallet { id } }
}
"""
UPDATE_WALLET = """
mutation($input: UpdateWalletInput!) {
  updateWallet(input: $input) {
    __typename
    ... on UpdateWalletSuccess { wallet { id balance lowBalanceThreshold } }
    ... on UserError { code message }
    ... on ValidationError { field }
  }
}
"""


@pytest.fixture(scope="module")
def gateways(database_url: str) -> Iterator[tuple[LiveServer, LiveServer]]:
    with live_server(database_url, env=GATEWAY_ENV) as a:
        if database_url.startswith("sqlite"):  # one process per SQLite file
            yield a, a
            return
        with live_server(database_url, env=GATEWAY_ENV) as b:
            yield a, b


@pytest.fixture
async def http_a(gateways: tuple[LiveServer, LiveServer]) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=gateways[0].base_url, timeout=30) as client:
        yield client


@pytest.fixture
async def http_b(gateways: tuple[LiveServer, LiveServer]) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=gateways[1].base_url, timeout=30) as client:
        yield client


@pytest.fixture
async def writer(database: Database, http_b: httpx.AsyncClient) -> Tenant:
    """A tenant whose HTTP calls go to gateway B."""
    return await new_tenant(database, http_b)


@pytest.fixture
def url_a(gateways: tuple[LiveServer, LiveServer]) -> str:
    return gateways[0].base_url


async def _customer(tenant: Tenant) -> tuple[str, str]:
    created = await tenant.create_customer()
    return created["customer"]["id"], created["wallet"]["id"]


async def _subscribed(
    url: str, tenant: Tenant, query: str, variables: dict[str, Any], protocol: str = TRANSPORT_WS
) -> GraphQLSocket:
    socket = await authenticated(url, tenant.api_key, protocol)
    await socket.subscribe(query, variables)
    await asyncio.sleep(0.3)  # the subscription is registered before the first write
    return socket


async def _events(
    socket: GraphQLSocket, count: int, field: str = "walletBalanceChanged"
) -> list[dict[str, Any]]:
    events = []
    for _ in range(count):
        payload = await socket.next_payload()
        assert "errors" not in payload, payload
        events.append(payload["data"][field])
    return events


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_events_cross_processes_in_ledger_order(
    writer: Tenant, url_a: str, protocol: str
) -> None:
    customer_id, wallet_id = await _customer(writer)
    socket = await _subscribed(url_a, writer, BALANCE_CHANGED, {"walletId": wallet_id}, protocol)
    posted = [await writer.post(customer_id, amount) for amount in (500, 200, 50)]
    posted.append(await writer.post(customer_id, 120, "DEBIT"))

    events = await _events(socket, 4)
    assert [e["version"] for e in events] == [1, 2, 3, 4]
    assert [e["balance"] for e in events] == [500, 700, 750, 630]
    assert [e["entry"]["id"] for e in events] == [p["entry"]["id"] for p in posted]
    last = events[-1]
    assert last["entry"] == {
        "id": posted[-1]["entry"]["id"],
        "sequence": 4,
        "amount": 120,
        "entryType": "DEBIT",
        "balanceAfter": 630,
    }
    assert last["wallet"]["id"] == wallet_id and last["wallet"]["customer"]["id"] == customer_id
    assert last["wallet"]["balance"] == 630 and last["wallet"]["version"] == 4
    await socket.close()


async def test_200_rapid_writes_arrive_in_order_without_duplicates(
    database: Database, writer: Tenant, url_a: str, http_a: httpx.AsyncClient
) -> None:
    customer_id, wallet_id = await _customer(writer)
    by_wallet = await _subscribed(url_a, writer, BALANCE_CHANGED, {"walletId": wallet_id})
    by_customer = await _subscribed(
        url_a, writer, BALANCE_CHANGED, {"customerId": customer_id}, LEGACY_WS
    )
    everything = await _subscribed(url_a, writer, BALANCE_CHANGED, {})
    via_a = Tenant(writer.organization_id, writer.api_key, http_a)
    # Half the writes through each process: their notifications may cross on the way.
    results = await asyncio.gather(
        *((via_a if i % 2 else writer).post(customer_id, 1 + i % 7) for i in range(200))
    )
    assert all(r["__typename"] == "CreateLedgerEntrySuccess" for r in results)
    balance_after = {r["entry"]["sequence"]: r["entry"]["balanceAfter"] for r in results}

    for socket in (by_wallet, by_customer, everything):
        events = await _events(socket, 200)
        assert [e["version"] for e in events] == list(range(1, 201))
        assert [e["balance"] for e in events] == [balance_after[v] for v in range(1, 201)]
        assert len({e["entry"]["id"] for e in events}) == 200
        await socket.close()
    await assert_ledger_invariant(database)


async def test_refused_and_replayed_writes_send_no_event(writer: Tenant, url_a: str) -> None:
    customer_id, wallet_id = await _customer(writer)
    await writer.post(customer_id, 100, key="first")
    socket = await _subscribed(url_a, writer, BALANCE_CHANGED, {"walletId": wallet_id})

    assert (await writer.post(customer_id, 101, "DEBIT"))[
        "__typename"
    ] == "InsufficientBalanceError"
    assert (await writer.post(customer_id, 100, key="first"))["replayed"] is True
    conflict = await writer.post(customer_id, 5, key="first")
    assert conflict["__typename"] == "IdempotencyConflictError"
    await writer.post(customer_id, 7, "DEBIT")  # the only write since subscribing
    await writer.post(customer_id, 1, "DEBIT")

    # A stream may open with entries committed moments before it (see the hub); after that,
    # exactly the two writes, nothing for the refused ones.
    events = await _events(socket, 2)
    if events[0]["version"] == 1:
        events = events[1:] + await _events(socket, 1)
    assert [(e["version"], e["balance"], e["entry"]["amount"]) for e in events] == [
        (2, 93, 7),
        (3, 92, 1),
    ]
    await socket.close()


async def test_low_balance_fires_once_per_crossing(writer: Tenant, url_a: str) -> None:
    customer_id, wallet_id = await _customer(writer)
    updated = await writer.data(
        UPDATE_WALLET, {"input": {"walletId": wallet_id, "lowBalanceThreshold": 100}}
    )
    assert updated["updateWallet"]["wallet"]["lowBalanceThreshold"] == 100
    alerts = await _subscribed(url_a, writer, LOW_BALANCE, {"customerId": customer_id})
    all_alerts = await _subscribed(url_a, writer, LOW_BALANCE, {}, LEGACY_WS)

    await writer.post(customer_id, 150)  # 150
    await writer.post(customer_id, 30, "DEBIT")  # 120: above
    first = await writer.post(customer_id, 30, "DEBIT")  # 90: crosses
    await writer.post(customer_id, 10, "DEBIT")  # 80: still below, no second alert
    await writer.post(customer_id, 20)  # 100: back at the threshold
    second = await writer.post(customer_id, 1, "DEBIT")  # 99: crosses again
    await writer.post(customer_id, 99, "DEBIT")  # 0: below already

    for socket in (alerts, all_alerts):
        events = await _events(socket, 2, "walletLowBalance")
        assert [e["entry"]["id"] for e in events] == [
            first["entry"]["id"],
            second["entry"]["id"],
        ]
        assert [(e["balance"], e["threshold"], e["version"]) for e in events] == [
            (90, 100, 3),
            (99, 100, 6),
        ]
        assert events[0]["wallet"]["id"] == wallet_id
    # Nothing else was queued: the next alert is the next crossing.
    await writer.post(customer_id, 500)
    third = await writer.post(customer_id, 450, "DEBIT")  # 500 -> 50
    (event,) = await _events(alerts, 1, "walletLowBalance")
    assert event["entry"]["id"] == third["entry"]["id"]
    for socket in (alerts, all_alerts):
        await socket.close()


async def test_resume_after_entry_id_sends_later_entries_then_live_none_twice(
    writer: Tenant, url_a: str
) -> None:
    customer_id, wallet_id = await _customer(writer)
    posted = [await writer.post(customer_id, 10 + i) for i in range(5)]
    socket = await authenticated(url_a, writer.api_key)
    # Resume from the second entry while more writes are committing.
    writes = asyncio.gather(*(writer.post(customer_id, 1) for _ in range(20)))
    await socket.subscribe(
        BALANCE_CHANGED, {"walletId": wallet_id, "afterEntryId": posted[1]["entry"]["id"]}
    )
    await writes
    events = await _events(socket, 23)
    assert [e["version"] for e in events] == list(range(3, 26))
    assert [e["entry"]["id"] for e in events[:3]] == [p["entry"]["id"] for p in posted[2:]]
    live = await writer.post(customer_id, 1)
    (event,) = await _events(socket, 1)
    assert event["entry"]["id"] == live["entry"]["id"] and event["version"] == 26
    await socket.close()


async def test_organization_wide_subscription_sees_only_its_organization(
    database: Database, writer: Tenant, http_b: httpx.AsyncClient, url_a: str
) -> None:
    other = await new_tenant(database, http_b)
    other_customer, _ = await _customer(other)
    customer_id, wallet_id = await _customer(writer)
    socket = await _subscribed(url_a, writer, BALANCE_CHANGED, {})
    await other.post(other_customer, 999)
    mine = await writer.post(customer_id, 5)
    (event,) = await _events(socket, 1)
    assert event["entry"]["id"] == mine["entry"]["id"] and event["wallet"]["id"] == wallet_id
    await socket.close()


async def _subscription_error(
    url: str, tenant: Tenant, variables: dict[str, Any]
) -> dict[str, Any]:
    socket = await authenticated(url, tenant.api_key)
    await socket.subscribe(BALANCE_CHANGED, variables)
    message = await socket.receive()
    await socket.close()
    assert message["type"] == "error", message
    (error,) = message["payload"]
    return error  # type: ignore[no-any-return]


async def test_another_organizations_ids_behave_like_unknown_ids(
    database: Database, writer: Tenant, http_b: httpx.AsyncClient, url_a: str
) -> None:
    other = await new_tenant(database, http_b)
    other_customer, other_wallet = await _customer(other)
    posted = await other.post(other_customer, 50)
    _customer_id, wallet_id = await _customer(writer)
    unknown_wallet = "V2FsbGV0Ojk5OTk5OTk5"  # Wallet:99999999
    unknown_customer = "Q3VzdG9tZXI6OTk5OTk5OTk"  # Customer:99999999

    def shape(error: dict[str, Any]) -> tuple[str, str]:
        return error["message"], error["extensions"]["code"]

    foreign = await _subscription_error(url_a, writer, {"walletId": other_wallet})
    unknown = await _subscription_error(url_a, writer, {"walletId": unknown_wallet})
    assert shape(foreign) == shape(unknown) == ("Wallet not found.", "NOT_FOUND")
    assert foreign["extensions"]["requestId"]
    foreign = await _subscription_error(url_a, writer, {"customerId": other_customer})
    unknown = await _subscription_error(url_a, writer, {"customerId": unknown_customer})
    assert shape(foreign) == shape(unknown) == ("Customer not found.", "NOT_FOUND")
    # An entry of another organization's wallet cannot be a resume point either.
    foreign = await _subscription_error(
        url_a, writer, {"walletId": wallet_id, "afterEntryId": posted["entry"]["id"]}
    )
    assert shape(foreign) == ("Ledger entry not found in this wallet.", "NOT_FOUND")


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"walletId": "V2FsbGV0OjE", "customerId": "Q3VzdG9tZXI6MQ"}, "not both"),
        ({"afterEntryId": "TGVkZ2VyRW50cnk6MQ"}, "give its walletId"),
        ({"walletId": "not an id!"}, "Malformed id"),
    ],
)
async def test_bad_subscription_arguments_are_typed_errors(
    writer: Tenant, url_a: str, variables: dict[str, Any], message: str
) -> None:
    error = await _subscription_error(url_a, writer, variables)
    assert message in error["message"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"


async def test_queries_and_mutations_over_websocket_are_refused(writer: Tenant, url_a: str) -> None:
    socket = await authenticated(url_a, writer.api_key)
    await socket.subscribe(
        'mutation { createCustomer(input: {email: "ws@example.com"}) { __typename } }'
    )
    payload = await socket.next_payload()
    assert payload["data"] is None
    assert payload["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert (await socket.receive())["type"] == "complete"
    await socket.close()
    assert (await writer.data("{ customers(first: 10) { edges { node { id } } } }"))["customers"][
        "edges"
    ] == []


async def test_sockets_need_a_valid_read_key(writer: Tenant, url_a: str) -> None:
    created = await writer.data(
        'mutation { createApiKey(input: {name: "w", scopes: [WRITE]}) '
        "{ ... on CreateApiKeySuccess { secret } } }"
    )
    write_only = created["createApiKey"]["secret"]
    refused: list[dict[str, Any] | None] = [
        None,  # no key at all
        {"authorization": "Bearer bgk_not-a-key"},
        {"authorization": "Basic abc"},
        {"authorization": 42},
        {"authorization": f"Bearer {write_only}"},
    ]
    for payload in refused:
        socket = await GraphQLSocket.open(url_a, TRANSPORT_WS)
        with pytest.raises(SocketClosed) as closed:
            await socket.init(payload)
        assert closed.value.code == 4403, payload

        legacy = await GraphQLSocket.open(url_a, LEGACY_WS)
        answer = await legacy.init(payload)
        assert answer["type"] == "connection_error", payload
        assert answer["payload"]["extensions"]["code"] in ("UNAUTHENTICATED", "FORBIDDEN")
        with pytest.raises(SocketClosed):
            await legacy.receive()

    # Subscribing before connection_init is refused by the protocol.
    socket = await GraphQLSocket.open(url_a, TRANSPORT_WS)
    await socket.subscribe(BALANCE_CHANGED)
    with pytest.raises(SocketClosed) as closed:
        await socket.receive()
    assert closed.value.code == 4401

    # The Authorization header works in place of the connection_init payload.
    header = {"Authorization": f"Bearer {writer.api_key}"}
    for protocol in PROTOCOLS:
        socket = await GraphQLSocket.open(url_a, protocol, headers=header)
        assert (await socket.init())["type"] == "connection_ack"
        await socket.close()


async def test_revoking_a_key_closes_its_sockets(writer: Tenant, url_a: str) -> None:
    created = await writer.data(
        'mutation { createApiKey(input: {name: "dashboard", scopes: [READ]}) '
        "{ ... on CreateApiKeySuccess { secret apiKey { id } } } }"
    )
    doomed = Tenant(writer.organization_id, created["createApiKey"]["secret"], writer.client)
    sockets = [await authenticated(url_a, doomed.api_key, p) for p in PROTOCOLS]
    survivor = await _subscribed(url_a, writer, BALANCE_CHANGED, {})

    revoked = await writer.data(
        "mutation($id: ID!) { revokeApiKey(id: $id) { __typename } }",
        {"id": created["createApiKey"]["apiKey"]["id"]},
    )
    assert revoked["revokeApiKey"]["__typename"] == "RevokeApiKeySuccess"
    for socket in sockets:
        with pytest.raises(SocketClosed) as closed:
            await socket.receive(timeout=10)
        assert closed.value.code == 4403
    # Another key's socket is untouched and still gets events.
    customer_id, _ = await _customer(writer)
    await writer.post(customer_id, 3)
    (event,) = await _events(survivor, 1)
    assert event["balance"] == 3
    # And the revoked key cannot open a new one.
    socket = await GraphQLSocket.open(url_a, TRANSPORT_WS)
    with pytest.raises(SocketClosed):
        await socket.init({"authorization": f"Bearer {doomed.api_key}"})


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_idle_sockets_get_keep_alives(writer: Tenant, url_a: str, protocol: str) -> None:
    socket = await authenticated(url_a, writer.api_key, protocol)
    with pytest.raises(TimeoutError):  # keep-alives every 0.5 s, and nothing else
        await asyncio.wait_for(socket.receive(timeout=60), 1.6)
    assert socket.keep_alives >= 2
    await socket.close()


async def test_update_wallet_threshold(writer: Tenant, database: Database) -> None:
    _customer_id, wallet_id = await _customer(writer)

    async def update(value: Any, wallet: str = wallet_id) -> dict[str, Any]:
        body = await writer.gql(
            UPDATE_WALLET, {"input": {"walletId": wallet, "lowBalanceThreshold": value}}
        )
        return body

    ok = await update(250)
    assert ok["data"]["updateWallet"]["wallet"] == {
        "id": wallet_id,
        "balance": 0,
        "lowBalanceThreshold": 250,
    }
    refused = (await update(-1))["data"]["updateWallet"]
    assert (refused["__typename"], refused["field"]) == ("ValidationError", "lowBalanceThreshold")
    for bad in (1.5, "100", 2**53):
        body = await update(bad)
        assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", body
    missing = (await update(5, "V2FsbGV0Ojk5OTk5OTk5"))["data"]["updateWallet"]
    assert missing["__typename"] == "NotFoundError"
    # Left out: unchanged; null: cleared.
    kept = await writer.data(UPDATE_WALLET, {"input": {"walletId": wallet_id}})
    assert kept["updateWallet"]["wallet"]["lowBalanceThreshold"] == 250
    cleared = await update(None)
    assert cleared["data"]["updateWallet"]["wallet"]["lowBalanceThreshold"] is None


async def test_update_wallet_of_another_organization_is_not_found(
    writer: Tenant, database: Database, http_b: httpx.AsyncClient
) -> None:
    other = await new_tenant(database, http_b)
    _, other_wallet = await _customer(other)
    body = await writer.data(
        UPDATE_WALLET, {"input": {"walletId": other_wallet, "lowBalanceThreshold": 1}}
    )
    assert body["updateWallet"]["__typename"] == "NotFoundError"
    wallet = await other.data(
        "query($id: ID!) { wallet(id: $id) { lowBalanceThreshold } }", {"id": other_wallet}
    )
    assert wallet["wallet"]["lowBalanceThreshold"] is None


async def test_server_shutdown_closes_sockets_cleanly(
    database: Database, database_url: str
) -> None:
    with live_server(database_url, env=GATEWAY_ENV) as server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
            tenant = await new_tenant(database, http)
            sockets = [await authenticated(server.base_url, tenant.api_key, p) for p in PROTOCOLS]
            for socket in sockets:
                await socket.subscribe(BALANCE_CHANGED, {})
            await asyncio.sleep(0.3)
            server.process.send_signal(signal.SIGTERM)
            for socket in sockets:
                # A close frame ("service restart": reconnect, to another replica perhaps),
                # not a dropped connection; at most the subscription's `complete` before it.
                with pytest.raises(SocketClosed) as closed:
                    while True:
                        assert (await socket.receive())["type"] == "complete"
                assert closed.value.code in (1000, 1001, 1012), closed.value
            # uvicorn re-raises the signal once it has shut down cleanly.
            assert server.process.wait(timeout=20) in (0, -signal.SIGTERM)
            assert "Traceback" not in server.log()


@pytest.fixture(scope="module")
def postgres_url(request: pytest.FixtureRequest) -> str:
    """PostgreSQL only: SQLite's in-process broker has no connection to lose."""
    explicit = os.environ.get("BILLGRAPH_TEST_POSTGRES_URL")
    return explicit or request.getfixturevalue("postgres_server").url  # type: ignore[no-any-return]


async def test_listener_reconnects_and_resends_what_it_missed(postgres_url: str) -> None:
    database = connect(postgres_url)
    try:
        with (
            live_server(postgres_url, env=GATEWAY_ENV) as a,
            live_server(postgres_url, env=GATEWAY_ENV) as b,
        ):
            async with httpx.AsyncClient(base_url=b.base_url, timeout=30) as http:
                writer = await new_tenant(database, http)
                customer_id, wallet_id = await _customer(writer)
                socket = await _subscribed(
                    a.base_url, writer, BALANCE_CHANGED, {"walletId": wallet_id}
                )
                async with database.autocommit.connect() as connection:
                    killed = await connection.execute(
                        text(
                            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                            "WHERE application_name = 'billgraph-listener'"
                        )
                    )
                    assert killed.scalar_one() >= 2
                # Written while the listeners are down or reconnecting: sent by the resync.
                posted = [await writer.post(customer_id, 10) for _ in range(3)]
                events = await _events(socket, 3)
                assert [e["entry"]["id"] for e in events] == [p["entry"]["id"] for p in posted]
                await socket.close()
    finally:
        await database.dispose()


async def test_subscriptions_over_http_are_refused(tenant: Tenant) -> None:
    response = await tenant.client.post(
        "/graphql",
        json={"query": "subscription { walletBalanceChanged { version } }"},
        headers={"authorization": f"Bearer {tenant.api_key}"},
    )
    assert response.status_code == 400
    (error,) = response.json()["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "WebSocket" in error["message"]


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_a_socket_must_initialise_once_and_in_time(
    writer: Tenant, url_a: str, protocol: str
) -> None:
    silent = await GraphQLSocket.open(url_a, protocol)
    with pytest.raises(SocketClosed) as closed:
        await silent.receive(timeout=10)
    assert closed.value.code == 4408

    socket = await authenticated(url_a, writer.api_key, protocol)
    with pytest.raises(SocketClosed) as closed:
        answer = await socket.init({"authorization": f"Bearer {writer.api_key}"})
        assert answer["type"] == "connection_error"  # graphql-ws says why before closing
        await socket.receive()
    assert closed.value.code == 4429
