"""Request bodies, and the JSON in GET's parameters, are decoded in one place with bounds
(billgraph/http/bodies.py): whatever the bytes, the answer is a 400 with a coded JSON error,
nothing is written, and the connection stays open for the client's next request."""

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from billgraph.http import bodies
from tests.support.graph import CREATE_ENTRY, Tenant, customer_count, snapshot
from tests.support.leaks import assert_no_leak
from tests.support.server import create_organization, live_server
from tests.support.ws import LEGACY_WS, TRANSPORT_WS, GraphQLSocket, SocketClosed, authenticated

DEEP = 1_000
DIGITS = "9" * 5_000  # Python's int() refuses more than 4,300

CREATE_CUSTOMER = (
    "mutation($input: CreateCustomerInput!) { createCustomer(input: $input) { __typename } }"
)
UPDATE_WALLET = (
    "mutation($input: UpdateWalletInput!) { updateWallet(input: $input) { __typename } }"
)
FIRST = "query($first: Int) { customers(first: $first) { edges { node { id } } } }"


# --- the decoder -------------------------------------------------------------------------


def _nested(depth: int, leaf: str = "1") -> str:
    return "[" * depth + leaf + "]" * depth


@pytest.mark.parametrize(
    ("text", "value"),
    [
        (b'{"a": [1, 2.5, "x", null, true]}', {"a": [1, 2.5, "x", None, True]}),
        ('{"caf\u00e9": "\u00e9"}'.encode(), {"caf\u00e9": "\u00e9"}),
        (_nested(bodies.MAX_DEPTH).encode(), json.loads(_nested(bodies.MAX_DEPTH))),
        ("9" * bodies.MAX_INTEGER_DIGITS, int("9" * bodies.MAX_INTEGER_DIGITS)),
        ("-" + "9" * bodies.MAX_INTEGER_DIGITS, -int("9" * bodies.MAX_INTEGER_DIGITS)),
        ('"[[[[" ', "[[[["),  # brackets inside strings nest nothing
        ('["\\"[", "\\\\", "]]]"]', ['"[', "\\", "]]]"]),
        (b'"\\ud800"', "\ud800"),  # valid JSON: text validation refuses it, naming the field
    ],
    ids=[
        "plain",
        "utf8",
        "at-depth-limit",
        "at-digit-limit",
        "negative-at-digit-limit",
        "brackets-in-string",
        "escapes",
        "escaped-surrogate",
    ],
)
def test_decodes_json_within_the_bounds(text: bytes | str, value: object) -> None:
    assert bodies.parse_json(text) == value


@pytest.mark.parametrize(
    "text",
    [
        b"\xff\xfe\x00",
        b'{"a": "\xff"}',
        b'{"a": "\xed\xa0\x80"}',  # a surrogate encoded as if UTF-8: not UTF-8
        '{"a": 1}'.encode("utf-16"),  # json.loads(bytes) would guess UTF-16
        "\ufeff{}".encode(),
        _nested(bodies.MAX_DEPTH + 1).encode(),
        _nested(DEEP),
        _nested(100_000),
        '{"a": ' * DEEP + "1" + "}" * DEEP,
        "9" * (bodies.MAX_INTEGER_DIGITS + 1),
        DIGITS,
        "-" + DIGITS,
        "1e999",
        "-1e999",
        "NaN",
        "Infinity",
        "-Infinity",
        "{not json",
        "",
    ],
    ids=[
        "invalid-utf8",
        "byte-ff",
        "raw-surrogate",
        "utf16",
        "bom",
        "depth-33",
        "depth-1000",
        "depth-100000",
        "objects-1000",
        "101-digits",
        "5000-digits",
        "negative-5000-digits",
        "infinite-float",
        "negative-infinite-float",
        "nan",
        "infinity",
        "negative-infinity",
        "malformed",
        "empty",
    ],
)
def test_refuses_anything_else_with_bad_body(text: bytes | str) -> None:
    with pytest.raises(bodies.BadBody) as refused:
        bodies.parse_json(text)
    assert refused.value.msg and str(refused.value) == refused.value.msg


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "application/json",
        "application/json; charset=utf-8",
        'application/json;CHARSET="UTF8"',
    ],
)
def test_a_utf8_charset_or_none_is_accepted(content_type: str | None) -> None:
    bodies.check_charset(content_type)


@pytest.mark.parametrize("charset", ["latin-1", "ISO-8859-1", "utf-16", "windows-1252", ""])
def test_another_charset_is_refused(charset: str) -> None:
    with pytest.raises(bodies.BadBody):
        bodies.check_charset(f"application/json; charset={charset}")


# --- over HTTP: every way in ---------------------------------------------------------------


@dataclass
class Funded:
    """A customer with a USD wallet holding 1000 after one credit, and what it looked like."""

    tenant: Tenant
    customer_id: str
    wallet_id: str
    before: list[tuple[str, int, int, int]]
    customers: int

    def entry(self, **overrides: Any) -> str:
        """createLedgerEntry's input as JSON text, `overrides` written verbatim."""
        fields = {
            "customerId": json.dumps(self.customer_id),
            "amount": "100",
            "currency": '"USD"',
            "entryType": '"CREDIT"',
            "idempotencyKey": '"bodies"',
            **overrides,
        }
        return "{" + ", ".join(f'"{name}": {value}' for name, value in fields.items()) + "}"

    async def assert_nothing_written(self) -> None:
        assert await snapshot(self.tenant, self.customer_id) == self.before
        assert await customer_count(self.tenant) == self.customers


@pytest.fixture
async def funded(tenant: Tenant) -> Funded:
    created = await tenant.create_customer()
    customer_id = created["customer"]["id"]
    credit = await tenant.post(customer_id, 1000)
    assert credit["__typename"] == "CreateLedgerEntrySuccess", credit
    before = await snapshot(tenant, customer_id)
    assert before == [("USD", 1000, 1, 1)]
    return Funded(
        tenant, customer_id, created["wallet"]["id"], before, await customer_count(tenant)
    )


def assert_bad_request(response: httpx.Response) -> None:
    """A 400 whose JSON error has a code and the request id, and says nothing internal."""
    assert response.status_code == 400, (response.status_code, response.text[:2000])
    assert response.headers["content-type"].startswith("application/json"), response.text
    assert_no_leak(response.text)
    errors = response.json()["errors"]
    assert len(errors) == 1, errors
    extensions = errors[0]["extensions"]
    assert extensions["code"] in ("BAD_REQUEST", "BAD_USER_INPUT"), errors
    assert extensions["requestId"] == response.headers["x-request-id"], errors
    assert errors[0]["message"], errors


def _body(query: str, variables: str = "{}", rest: str = "") -> bytes:
    return f'{{"query": {json.dumps(query)}, "variables": {variables}{rest}}}'.encode()


def _input(entry: str, **more: str) -> str:
    """Variables with `input` (and `more`), each written verbatim."""
    return "{" + ", ".join(f'"{k}": {v}' for k, v in {"input": entry, **more}.items()) + "}"


def _with(body: bytes, marker: bytes, raw: bytes) -> bytes:
    assert body.count(marker) == 1
    return body.replace(marker, raw)


# Each: the body (made for the funded customer) and its Content-Type. Mutations where they
# can be, so that "nothing was written" means something.
BODIES: dict[str, Callable[[Funded], tuple[bytes, str]]] = {
    # 1. Not UTF-8, or declared another charset.
    "invalid-utf8": lambda f: (b"\xff\xfe\x00", "application/json"),
    "byte-ff-in-variables": lambda f: (
        _with(_body("{ viewer { id } }", '{"a": "RAW"}'), b"RAW", b"\xff"),
        "application/json",
    ),
    "byte-ff-in-reason": lambda f: (
        _with(_body(CREATE_ENTRY, _input(f.entry(reason='"RAW"'))), b"RAW", b"\xff"),
        "application/json",
    ),
    "raw-surrogate-in-email": lambda f: (
        _with(
            _body(CREATE_CUSTOMER, '{"input": {"email": "adaRAW@example.com"}}'),
            b"RAW",
            b"\xed\xa0\x80",
        ),
        "application/json",
    ),
    "raw-surrogate-in-reason": lambda f: (
        _with(_body(CREATE_ENTRY, _input(f.entry(reason='"RAW"'))), b"RAW", b"\xed\xa0\x80"),
        "application/json",
    ),
    "utf16": lambda f: (
        _body(CREATE_CUSTOMER, '{"input": {"email": "utf16@example.com"}}')
        .decode()
        .encode("utf-16"),
        "application/json",
    ),
    "latin-1": lambda f: (
        _body(CREATE_CUSTOMER, '{"input": {"email": "zoe@example.com", "name": "Zo\u00e9"}}')
        .decode()
        .encode("latin-1"),
        "application/json; charset=latin-1",
    ),
    "latin-1-ascii-only": lambda f: (
        _body(CREATE_CUSTOMER, '{"input": {"email": "ascii@example.com"}}'),
        "application/json; charset=ISO-8859-1",
    ),
    # 2. Nested past the bound, anywhere in the body.
    "arrays-1000-in-variables": lambda f: (
        _body(CREATE_ENTRY, _input(f.entry(), x=_nested(DEEP))),
        "application/json",
    ),
    "objects-1000-in-input": lambda f: (
        _body(CREATE_ENTRY, _input(f.entry(reason='{"a": ' * DEEP + "1" + "}" * DEEP))),
        "application/json",
    ),
    "arrays-1000-in-extensions": lambda f: (
        _body(CREATE_ENTRY, _input(f.entry()), f', "extensions": {{"x": {_nested(DEEP)}}}'),
        "application/json",
    ),
    "arrays-1000-as-body": lambda f: (_nested(DEEP).encode(), "application/json"),
    "one-too-deep": lambda f: (
        _body(
            CREATE_ENTRY,
            _input(f.entry()),
            f', "extensions": {{"x": {_nested(bodies.MAX_DEPTH - 1)}}}',
        ),
        "application/json",
    ),
    # 3. Integers past the bound, in every integer argument.
    "amount-5000-digits": lambda f: (
        _body(CREATE_ENTRY, _input(f.entry(amount=DIGITS))),
        "application/json",
    ),
    "negative-amount-5000-digits": lambda f: (
        _body(CREATE_ENTRY, _input(f.entry(amount="-" + DIGITS))),
        "application/json",
    ),
    "amount-infinite": lambda f: (
        _body(CREATE_ENTRY, _input(f.entry(amount="1e999"))),
        "application/json",
    ),
    "amount-nan": lambda f: (
        _body(CREATE_ENTRY, _input(f.entry(amount="NaN"))),
        "application/json",
    ),
    "low-balance-threshold-5000-digits": lambda f: (
        _body(
            UPDATE_WALLET,
            f'{{"input": {{"walletId": "{f.wallet_id}", "lowBalanceThreshold": {DIGITS}}}}}',
        ),
        "application/json",
    ),
    "first-5000-digits": lambda f: (_body(FIRST, f'{{"first": {DIGITS}}}'), "application/json"),
    "unused-variable-5000-digits": lambda f: (
        _body(CREATE_ENTRY, _input(f.entry(), unused=DIGITS)),
        "application/json",
    ),
    "extensions-5000-digits": lambda f: (
        _body(CREATE_ENTRY, _input(f.entry()), f', "extensions": {{"n": {DIGITS}}}'),
        "application/json",
    ),
    # 4. A lone surrogate in the operation name, which the refusal quotes.
    "operation-name-surrogate": lambda f: (
        b'{"query": "query Q { viewer { id } }", "operationName": "Q\\ud800"}',
        "application/json",
    ),
    "mutation-operation-name-surrogate": lambda f: (
        _body(
            CREATE_ENTRY.replace("mutation(", "mutation Q(", 1),
            _input(f.entry()),
            ', "operationName": "Q\\udfff"',
        ),
        "application/json",
    ),
}


@pytest.mark.parametrize("name", list(BODIES))
async def test_malformed_body_is_a_400_and_writes_nothing(funded: Funded, name: str) -> None:
    content, content_type = BODIES[name](funded)
    response = await funded.tenant.client.post(
        "/graphql",
        content=content,
        headers={
            "authorization": f"Bearer {funded.tenant.api_key}",
            "content-type": content_type,
        },
    )
    assert_bad_request(response)
    await funded.assert_nothing_written()


# GET: `variables` and `extensions` are JSON inside the query string, decoded the same way.
# (Bytes that are not UTF-8 cannot reach it: the query string is decoded with replacement.)
PARAMETERS: dict[str, dict[str, str]] = {
    "variables-nested-1000": {"query": FIRST, "variables": f'{{"first": {_nested(DEEP)}}}'},
    "variables-5000-digits": {"query": FIRST, "variables": f'{{"first": {DIGITS}}}'},
    "variables-infinite": {"query": FIRST, "variables": '{"first": 1e999}'},
    "variables-nan": {"query": FIRST, "variables": '{"first": NaN}'},
    "variables-not-json": {"query": FIRST, "variables": "{first"},
    "extensions-nested-1000": {"query": FIRST, "extensions": _nested(DEEP)},
    "extensions-5000-digits": {"query": FIRST, "extensions": f'{{"n": {DIGITS}}}'},
}


@pytest.mark.parametrize("name", list(PARAMETERS))
async def test_malformed_get_parameters_are_a_400(funded: Funded, name: str) -> None:
    response = await funded.tenant.client.get(
        "/graphql",
        params=PARAMETERS[name],
        headers={"authorization": f"Bearer {funded.tenant.api_key}"},
    )
    assert_bad_request(response)
    await funded.assert_nothing_written()


async def test_the_bounds_are_the_bounds(funded: Funded) -> None:
    """JSON nested exactly MAX_DEPTH deep is read; an integer of MAX_INTEGER_DIGITS digits
    too, and then refused by GraphQL for what it is (no BigInt is that large)."""
    headers = {
        "authorization": f"Bearer {funded.tenant.api_key}",
        "content-type": "application/json; charset=UTF-8",
    }
    deepest = _body(
        "{ viewer { id } }", "{}", f', "extensions": {{"x": {_nested(bodies.MAX_DEPTH - 2)}}}'
    )
    assert bodies.nesting(deepest) == bodies.MAX_DEPTH
    response = await funded.tenant.client.post("/graphql", content=deepest, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["data"]["viewer"]["id"]

    longest = _body(CREATE_ENTRY, _input(funded.entry(amount="9" * bodies.MAX_INTEGER_DIGITS)))
    response = await funded.tenant.client.post("/graphql", content=longest, headers=headers)
    assert response.status_code == 200, response.text
    assert_no_leak(response.text)
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    await funded.assert_nothing_written()


# --- the connection is kept ----------------------------------------------------------------


def _local_port(response: httpx.Response) -> int:
    """The client's port of the connection that carried `response`."""
    address = response.extensions["network_stream"].get_extra_info("client_addr")
    return int(address[1])


# Raw bodies, each once answered with a 500 that dropped the connection.
RAW: dict[str, tuple[bytes, str]] = {
    "invalid-utf8": (b"\xff\xfe\x00", "application/json"),
    "latin-1": (
        '{"query": "{ customers(email: \\"caf\u00e9@example.com\\") { edges { cursor } } }"}'.encode(
            "latin-1"
        ),
        "application/json; charset=latin-1",
    ),
    "nested-1000": (
        f'{{"query": "{{ viewer {{ id }} }}", "variables": {{"v": {_nested(DEEP)}}}}}'.encode(),
        "application/json",
    ),
    "5000-digits": (
        f'{{"query": {json.dumps(FIRST)}, "variables": {{"first": {DIGITS}}}}}'.encode(),
        "application/json",
    ),
    "operation-name-surrogate": (
        b'{"query": "query Q { viewer { id } }", "operationName": "Q\\ud800"}',
        "application/json",
    ),
}


def test_a_malformed_body_keeps_the_connection(tmp_path: Path) -> None:
    """Against a real `billgraph serve`: after each malformed body, the next request on the
    same keep-alive connection is answered."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'keep-alive.db'}"
    organization = create_organization(url, "Keep-alive")
    good = {"query": "{ viewer { name } }"}
    with (
        live_server(url) as server,
        httpx.Client(
            base_url=server.base_url,
            headers={"authorization": f"Bearer {organization['api_key']}"},
            timeout=30,
        ) as client,
    ):
        first = client.post("/graphql", json=good)
        assert first.status_code == 200, first.text
        port = _local_port(first)
        for name, (content, content_type) in RAW.items():
            bad = client.post("/graphql", content=content, headers={"content-type": content_type})
            assert_bad_request(bad)
            assert bad.headers.get("connection", "").lower() != "close", name
            after = client.post("/graphql", json=good)
            assert after.status_code == 200, (name, after.text)
            assert after.json()["data"]["viewer"]["name"] == "Keep-alive", (name, after.text)
            assert _local_port(bad) == _local_port(after) == port, f"{name}: a new connection"
        log = server.log()
    assert "Exception in ASGI application" not in log, log[-3000:]


# --- socket messages -----------------------------------------------------------------------


async def test_malformed_socket_messages_close_the_socket_cleanly(tmp_path: Path) -> None:
    """Over WebSocket, messages are decoded by the same bounded decoder: graphql-transport-ws
    closes a socket sending one with 4400 (invalid message), graphql-ws ignores it; a lone
    surrogate offered as the key is an unknown key (4403). The server goes on serving."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'sockets.db'}"
    organization = create_organization(url, "Sockets")
    messages = {
        "nested-1000": _nested(DEEP),
        "5000-digits": f'{{"type": "connection_init", "payload": {{"n": {DIGITS}}}}}',
        "nan": '{"type": "connection_init", "payload": {"n": NaN}}',
    }
    with live_server(url) as server:
        for name, message in messages.items():
            socket = await GraphQLSocket.open(server.base_url, TRANSPORT_WS)
            await socket.connection.send(message)
            with pytest.raises(SocketClosed) as closed:
                await socket.receive()
            assert closed.value.code == 4400, (name, closed.value)

        socket = await GraphQLSocket.open(server.base_url, TRANSPORT_WS)
        await socket.connection.send(
            '{"type": "connection_init", "payload": {"authorization": "Bearer bgk_\\ud800"}}'
        )
        with pytest.raises(SocketClosed) as closed:
            await socket.receive()
        assert closed.value.code == 4403, closed.value

        legacy = await GraphQLSocket.open(server.base_url, LEGACY_WS)
        await legacy.connection.send(messages["nested-1000"])
        ack = await legacy.init({"authorization": f"Bearer {organization['api_key']}"})
        assert ack["type"] == "connection_ack", ack
        await legacy.close()

        socket = await authenticated(server.base_url, organization["api_key"])
        await socket.close()
        log = server.log()
    assert "Exception in ASGI application" not in log, log[-3000:]
    assert "unexpected error" not in log, log[-3000:]
