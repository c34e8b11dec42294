"""OpenTelemetry traces: a server span per request, an operation span under it with the
operation's name, type, cost and request id, the SQL statements under that without their
values; failures as codes, never as messages; and, with tracing off, nothing at all."""

import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from opentelemetry.util._once import Once
from sqlalchemy import text
from starlette.applications import Starlette
from starlette.routing import Route

from billgraph.app import create_app
from billgraph.db.engine import Database, connect
from billgraph.db.migrate import upgrade
from billgraph.graphql.extensions.tracing import OperationTracing
from billgraph.settings import Settings
from billgraph.tracing import TraceRequests, Tracing, configure
from tests.support.graph import Tenant, entry_input, new_tenant

WALLET_PAGE = """
query WalletPage($id: ID!) {
  wallet(id: $id) { balance ledgerEntries(first: 20) { edges { node { id amount reason } } } }
}
"""

CREDIT = """
mutation Credit($input: CreateLedgerEntryInput!) {
  createLedgerEntry(input: $input) {
    __typename ... on CreateLedgerEntrySuccess { entry { id } wallet { balance } }
  }
}
"""

TRACING_VARIABLES = (
    "BILLGRAPH_OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_SDK_DISABLED",
)


@pytest.fixture(autouse=True)
def no_tracing_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever the developer's shell exports, each test says itself whether tracing is on."""
    for name in TRACING_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@dataclass
class Traced:
    exporter: InMemorySpanExporter
    tracing: Tracing
    database: Database  # the gateway's own engine, the one tracing instruments
    tenant: Tenant


@pytest.fixture
async def traced(settings: Settings, database: Database) -> AsyncIterator[Traced]:
    """A gateway with tracing on, recording to memory, on an engine of its own over the
    suite's database (the shared engine never gets the listeners)."""
    exporter = InMemorySpanExporter()
    tracing = configure(settings, SimpleSpanProcessor(exporter))
    assert tracing is not None
    own = connect(settings.database_url)
    app = create_app(settings, own, tracing)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://billgraph.test") as client:
        yield Traced(exporter, tracing, own, await new_tenant(database, client))
    tracing.shutdown()
    await own.dispose()


async def _post(
    tenant: Tenant,
    query: str,
    variables: dict[str, Any],
    request_id: str,
    key: str | None = None,
) -> dict[str, Any]:
    headers = {"x-request-id": request_id}
    if key != "":
        headers["authorization"] = f"Bearer {key or tenant.api_key}"
    response = await tenant.client.post(
        "/graphql", json={"query": query, "variables": variables}, headers=headers
    )
    assert response.headers["x-request-id"] == request_id
    return response.json()  # type: ignore[no-any-return]


def _trace_of(exporter: InMemorySpanExporter, request_id: str) -> list[ReadableSpan]:
    """Every span of the request's trace, found by its server span's request id."""
    spans = exporter.get_finished_spans()
    servers = [
        s
        for s in spans
        if s.kind == SpanKind.SERVER
        and (s.attributes or {}).get("billgraph.request_id") == request_id
    ]
    assert len(servers) == 1, [s.name for s in spans]
    trace_id = servers[0].context.trace_id
    return [s for s in spans if s.context.trace_id == trace_id]


def _one(spans: list[ReadableSpan], kind: SpanKind) -> ReadableSpan:
    matching = [s for s in spans if s.kind == kind]
    assert len(matching) == 1, [(s.name, s.kind) for s in spans]
    return matching[0]


def _children(spans: list[ReadableSpan], parent: ReadableSpan) -> list[ReadableSpan]:
    return [s for s in spans if s.parent is not None and s.parent.span_id == parent.context.span_id]


def _everything_said(spans: list[ReadableSpan]) -> str:
    """All a collector receives of these spans but ids and times, as one text."""
    said = []
    for span in spans:
        said.append(span.name)
        said.append(str(span.status.description))
        said.extend(f"{k}={v!r}" for k, v in (span.attributes or {}).items())
        for span_event in span.events:
            said.append(span_event.name)
            said.extend(f"{k}={v!r}" for k, v in (span_event.attributes or {}).items())
    return "\n".join(said)


async def _customer(tenant: Tenant) -> dict[str, Any]:
    created = await tenant.create_customer()
    assert (await tenant.post(created["customer"]["id"], 1000))["__typename"] == (
        "CreateLedgerEntrySuccess"
    )
    return created


async def test_a_query_is_one_operation_span_with_its_statements_under_it(
    traced: Traced, database_url: str
) -> None:
    created = await _customer(traced.tenant)
    traced.exporter.clear()
    body = await _post(traced.tenant, WALLET_PAGE, {"id": created["wallet"]["id"]}, "trace-q-1")
    assert "errors" not in body, body
    spans = _trace_of(traced.exporter, "trace-q-1")

    server = _one(spans, SpanKind.SERVER)
    assert server.name == "POST /graphql"
    assert server.parent is None
    assert server.attributes is not None
    assert server.attributes["http.request.method"] == "POST"
    assert server.attributes["http.route"] == "/graphql"
    assert server.attributes["http.response.status_code"] == 200
    assert server.status.status_code == StatusCode.UNSET

    operation = _one(spans, SpanKind.INTERNAL)
    assert operation.name == "query WalletPage"
    assert operation.parent is not None and operation.parent.span_id == server.context.span_id
    assert operation.attributes is not None
    assert operation.attributes["graphql.operation.type"] == "query"
    assert operation.attributes["graphql.operation.name"] == "WalletPage"
    assert operation.attributes["billgraph.graphql.root_fields"] == ("wallet",)
    assert (
        operation.attributes["billgraph.query.cost"]
        == (body["extensions"]["cost"]["requestedQueryCost"])
    )
    assert operation.attributes["billgraph.request_id"] == "trace-q-1"
    assert operation.attributes["billgraph.organization.id"] == traced.tenant.organization_id
    assert operation.status.status_code == StatusCode.UNSET

    statements = _children(spans, operation)
    assert statements, "the operation's SQL statements are its children"
    system = "sqlite" if database_url.startswith("sqlite") else "postgresql"
    for statement in statements:
        assert statement.kind == SpanKind.CLIENT
        assert statement.attributes is not None
        assert statement.attributes["db.system"] == system
        sql = str(statement.attributes["db.statement"])
        assert statement.name == sql.split()[0].upper() == statement.attributes["db.operation"]
    texts = [str(s.attributes["db.statement"]) for s in statements if s.attributes]
    assert any("FROM ledger_entries" in sql for sql in texts), texts
    # The API key lookup runs before the operation, under the server span; nothing else does.
    assert {s.context.span_id for s in spans} == {
        server.context.span_id,
        operation.context.span_id,
        *(s.context.span_id for s in _children(spans, server) if s.kind == SpanKind.CLIENT),
        *(s.context.span_id for s in statements),
    }


async def test_a_mutation_traces_its_writes_without_their_values(traced: Traced) -> None:
    created = await _customer(traced.tenant)
    traced.exporter.clear()
    key = f"idem-{uuid.uuid4().hex}"
    reason = f"reason-{uuid.uuid4().hex}"
    variables = entry_input(created["customer"]["id"], 4321, "CREDIT", key, reason=reason)
    body = await _post(traced.tenant, CREDIT, variables, "trace-m-1")
    assert body["data"]["createLedgerEntry"]["__typename"] == "CreateLedgerEntrySuccess", body
    spans = _trace_of(traced.exporter, "trace-m-1")

    operation = _one(spans, SpanKind.INTERNAL)
    assert operation.name == "mutation Credit"
    assert operation.attributes is not None
    assert operation.attributes["graphql.operation.type"] == "mutation"
    assert (
        operation.attributes["billgraph.query.cost"]
        == (body["extensions"]["cost"]["requestedQueryCost"])
    )
    assert operation.attributes["billgraph.request_id"] == "trace-m-1"
    # One guarded statement on PostgreSQL (WITH moved AS (UPDATE ...) INSERT ...), two on SQLite.
    writes = [str((s.attributes or {})["db.statement"]) for s in _children(spans, operation)]
    assert any("INSERT INTO ledger_entries" in sql for sql in writes), writes
    said = _everything_said(spans)
    for secret in (key, reason, "4321", traced.tenant.api_key, traced.tenant.api_key[:12]):
        assert secret not in said, (secret, said)


async def test_failed_operations_carry_their_code(traced: Traced) -> None:
    tenant = traced.tenant
    body = await _post(tenant, "query Who { viewer { name } }", {}, "trace-f-1", key="")
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED", body
    spans = _trace_of(traced.exporter, "trace-f-1")
    operation = _one(spans, SpanKind.INTERNAL)
    assert operation.name == "query Who"
    assert operation.status.status_code == StatusCode.ERROR
    assert operation.status.description == "UNAUTHENTICATED"
    assert operation.attributes is not None
    assert operation.attributes["error.type"] == "UNAUTHENTICATED"
    assert operation.attributes["billgraph.error.codes"] == ("UNAUTHENTICATED",)
    assert "billgraph.organization.id" not in operation.attributes
    server = _one(spans, SpanKind.SERVER)
    assert server.attributes is not None
    assert server.attributes["http.response.status_code"] == 401
    assert server.status.status_code == StatusCode.UNSET  # a client's error, not the server's

    # 1 + 100 * (3 + (1 + 100 * (2 + 4))) = 60,401, over the 50,000 allowed
    entries = "ledgerEntries(first: 100) { edges { node { id amount balanceAfter createdAt } } }"
    costly = f"{{ customers(first: 100) {{ edges {{ node {{ wallets {{ {entries} }} }} }} }} }}"
    body = await _post(tenant, costly, {}, "trace-f-2")
    assert body["errors"][0]["extensions"]["code"] == "QUERY_TOO_COSTLY", body
    operation = _one(_trace_of(traced.exporter, "trace-f-2"), SpanKind.INTERNAL)
    assert operation.name == "query"
    assert operation.attributes is not None
    assert operation.attributes["error.type"] == "QUERY_TOO_COSTLY"
    assert (
        operation.attributes["billgraph.query.cost"]
        == (body["extensions"]["cost"]["requestedQueryCost"])
    )
    assert not _children(_trace_of(traced.exporter, "trace-f-2"), operation)  # nothing ran

    body = await _post(tenant, "{ wallet(id: 1) { nope } ", {}, "trace-f-3")
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", body
    operation = _one(_trace_of(traced.exporter, "trace-f-3"), SpanKind.INTERNAL)
    assert operation.name == "GraphQL Operation"  # it never parsed
    assert operation.attributes is not None
    assert operation.attributes["error.type"] == "BAD_USER_INPUT"


LEAKS = ("Traceback", "no such table", "customers_gone", "Unexpected error", "OperationalError:")


@pytest.fixture
async def broken(
    tmp_path: Path,
) -> AsyncIterator[tuple[httpx.AsyncClient, str, InMemorySpanExporter]]:
    """A traced gateway whose database lost its customers table after a key was made."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'broken.db'}"
    database = connect(url)
    await upgrade(database)
    settings = Settings(database_url=url, rate_limit_per_second=0, log_level="CRITICAL")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(settings, database)), base_url="http://t"
    ) as client:
        tenant = await new_tenant(database, client)
    async with database.engine.begin() as connection:
        await connection.execute(text("ALTER TABLE customers RENAME TO customers_gone"))
    exporter = InMemorySpanExporter()
    tracing = configure(settings, SimpleSpanProcessor(exporter))
    assert tracing is not None
    app = create_app(settings, database, tracing)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t"
    ) as client:
        yield client, tenant.api_key, exporter
    tracing.shutdown()
    await database.dispose()


async def test_an_internal_error_is_its_code_and_nothing_of_what_is_masked(
    broken: tuple[httpx.AsyncClient, str, InMemorySpanExporter],
) -> None:
    client, key, exporter = broken
    response = await client.post(
        "/graphql",
        json={"query": "query Customers { customers(first: 5) { edges { node { id } } } }"},
        headers={"authorization": f"Bearer {key}", "x-request-id": "trace-i-1"},
    )
    assert response.json()["errors"][0]["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    spans = _trace_of(exporter, "trace-i-1")
    operation = _one(spans, SpanKind.INTERNAL)
    assert operation.status.status_code == StatusCode.ERROR
    assert operation.attributes is not None
    assert operation.attributes["error.type"] == "INTERNAL_SERVER_ERROR"
    failed = [s for s in _children(spans, operation) if s.status.status_code == StatusCode.ERROR]
    assert failed, "the failing statement's span"
    assert all((s.attributes or {}).get("error.type") == "OperationalError" for s in failed)
    said = _everything_said(spans)
    assert not any(leak in said for leak in LEAKS), said


async def test_a_failure_before_graphql_runs_is_a_failed_server_span(tmp_path: Path) -> None:
    # No migrations: authenticating the key fails on a missing table.
    url = f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
    database = connect(url)
    exporter = InMemorySpanExporter()
    settings = Settings(database_url=url, rate_limit_per_second=0, log_level="CRITICAL")
    tracing = configure(settings, SimpleSpanProcessor(exporter))
    assert tracing is not None
    app = create_app(settings, database, tracing)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.post(
            "/graphql",
            json={"query": "{ viewer { name } }"},
            headers={"authorization": "Bearer bgk_not_a_real_key", "x-request-id": "trace-b-1"},
        )
    tracing.shutdown()
    await database.dispose()
    assert response.status_code == 500
    spans = _trace_of(exporter, "trace-b-1")
    server = _one(spans, SpanKind.SERVER)
    assert server.status.status_code == StatusCode.ERROR
    assert server.attributes is not None
    assert server.attributes["error.type"] == "INTERNAL_SERVER_ERROR"
    said = _everything_said(spans)
    assert "bgk_not_a_real_key" not in said
    assert not any(leak in said for leak in LEAKS), said


async def test_an_incoming_traceparent_is_continued(traced: Traced) -> None:
    trace_id = uuid.uuid4().hex
    response = await traced.tenant.client.post(
        "/graphql",
        json={"query": "{ currencies { code } }"},
        headers={
            "authorization": f"Bearer {traced.tenant.api_key}",
            "traceparent": f"00-{trace_id}-00f067aa0ba902b7-01",
            "x-request-id": "trace-p-1",
        },
    )
    assert response.status_code == 200
    server = _one(_trace_of(traced.exporter, "trace-p-1"), SpanKind.SERVER)
    assert server.context.trace_id == int(trace_id, 16)
    assert server.parent is not None and server.parent.span_id == 0x00F067AA0BA902B7


async def test_probes_and_scrapes_make_no_spans(traced: Traced) -> None:
    traced.exporter.clear()
    for path in ("/healthz", "/metrics"):
        assert (await traced.tenant.client.get(path)).status_code == 200
    assert traced.exporter.get_finished_spans() == ()


async def test_shutdown_removes_the_engine_listeners(settings: Settings) -> None:
    own = connect(settings.database_url)
    tracing = configure(settings, SimpleSpanProcessor(InMemorySpanExporter()))
    assert tracing is not None
    create_app(settings, own, tracing)
    assert _listeners(own)
    tracing.shutdown()
    tracing.shutdown()  # idempotent
    assert not _listeners(own)
    await own.dispose()


def _listeners(database: Database) -> list[object]:
    engine = database.engine.sync_engine
    return [
        listener
        for name in ("before_cursor_execute", "after_cursor_execute")
        for listener in getattr(engine.dispatch, name)
    ]


def _middleware(app: Starlette) -> list[str]:
    return [getattr(m.cls, "__name__", "") for m in app.user_middleware]


def _graphql_app(app: Starlette) -> Any:
    return next(r.endpoint for r in app.routes if isinstance(r, Route) and r.path == "/graphql")


@pytest.fixture
def global_exporter(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    """A recording SDK provider as the process-global one, for the length of a test: any
    span made through the global API would land here. The previous globals are restored."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(trace, "_TRACER_PROVIDER_SET_ONCE", Once())
    monkeypatch.setattr(trace, "_TRACER_PROVIDER", None)
    trace.set_tracer_provider(provider)
    yield exporter
    provider.shutdown()


async def test_off_nothing_is_installed_and_nothing_recorded(
    settings: Settings, database: Database, global_exporter: InMemorySpanExporter
) -> None:
    own = connect(settings.database_url)
    app = create_app(settings, own)
    assert app.state.tracing is None
    assert TraceRequests.__name__ not in _middleware(app)
    extensions = _graphql_app(app).schema.get_extensions()
    assert not any(isinstance(e, OperationTracing) for e in extensions)
    assert not _listeners(own)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://billgraph.test"
    ) as client:
        tenant = await new_tenant(database, client)
        created = await _customer(tenant)
        body = await _post(tenant, WALLET_PAGE, {"id": created["wallet"]["id"]}, "off-1")
        assert body["data"]["wallet"]["balance"] == 1000, body
    await own.dispose()
    assert global_exporter.get_finished_spans() == ()


async def test_on_the_schema_has_the_hook_first_and_the_app_the_middleware(
    settings: Settings,
) -> None:
    own = connect(settings.database_url)
    tracing = configure(settings, SimpleSpanProcessor(InMemorySpanExporter()))
    assert tracing is not None
    app = create_app(settings, own, tracing)
    assert isinstance(_graphql_app(app).schema.get_extensions()[0], OperationTracing)
    assert _middleware(app)[:2] == ["RequestContext", "TraceRequests"]
    tracing.shutdown()
    await own.dispose()


# --- export over OTLP/HTTP ---------------------------------------------------------------


class _Collector(BaseHTTPRequestHandler):
    received: list[tuple[str, str, bytes]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        self.received.append((self.path, self.headers.get("content-type", ""), body))
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[tuple[str, list[tuple[str, str, bytes]]]]:
    """An OTLP/HTTP sink on 127.0.0.1: its base URL and what it received."""
    received: list[tuple[str, str, bytes]] = []
    handler = type("Collector", (_Collector,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", received
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(
    "how", ["BILLGRAPH_OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"]
)
async def test_spans_are_exported_over_otlp_http_to_the_endpoint(
    how: str,
    collector: tuple[str, list[tuple[str, str, bytes]]],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    endpoint, received = collector
    monkeypatch.setenv(how, endpoint)
    url = f"sqlite+aiosqlite:///{tmp_path / 'otlp.db'}"
    database = connect(url)
    await upgrade(database)
    settings = Settings(database_url=url, rate_limit_per_second=0, log_level="WARNING")
    app = create_app(settings, database)  # tracing from the environment alone
    tracing: Tracing | None = app.state.tracing
    assert tracing is not None
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://billgraph.test"
    ) as client:
        tenant = await new_tenant(database, client)
        body = await _post(tenant, "query Codes { currencies { code } }", {}, "otlp-1")
        assert "errors" not in body, body
    tracing.shutdown()  # flushes the batch
    await database.dispose()

    assert received, "nothing reached the collector"
    assert {path for path, _, _ in received} == {"/v1/traces"}
    assert {kind for _, kind, _ in received} == {"application/x-protobuf"}
    names: set[str] = set()
    services: set[str] = set()
    for _, _, payload in received:
        request = ExportTraceServiceRequest.FromString(payload)
        for resource_spans in request.resource_spans:
            for attribute in resource_spans.resource.attributes:
                if attribute.key == "service.name":
                    services.add(attribute.value.string_value)
            for scope_spans in resource_spans.scope_spans:
                names.update(span.name for span in scope_spans.spans)
    assert services == {"billgraph"}
    assert {"POST /graphql", "query Codes"} <= names, names


def test_no_endpoint_means_off_and_the_sdk_switch_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    assert configure(Settings()) is None
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    assert configure(Settings()) is None
    monkeypatch.delenv("OTEL_SDK_DISABLED")
    tracing = configure(Settings(otel_service_name="billgraph-eu"))
    assert tracing is not None
    assert tracing.provider.resource.attributes["service.name"] == "billgraph-eu"
    tracing.shutdown()


def test_the_endpoint_setting_is_a_base_url() -> None:
    from billgraph.tracing import otlp_exporter

    for given in (
        "http://collector:4318",
        "http://collector:4318/",
        "http://collector:4318/v1/traces",
    ):
        exporter = otlp_exporter(Settings(otel_exporter_otlp_endpoint=given))
        assert exporter is not None
        assert exporter._endpoint == "http://collector:4318/v1/traces"  # type: ignore[attr-defined]
        exporter.shutdown()
