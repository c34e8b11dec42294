"""OpenTelemetry traces, configured here once: on when an OTLP endpoint is set, else off.

On, a request makes an HTTP server span (`POST /graphql`), a GraphQL operation under it
(`query Dashboard`, made by billgraph.graphql.extensions.tracing), and a client span for every
SQL statement the operation runs, its text without bind values. Off, nothing of this is
installed: no middleware, no schema extension, no engine listener.

Spans carry no secrets: no API keys or headers, no bind values, no error messages (an error is
its code, the one the client sees).
"""

import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.propagators.textmap import Getter
from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION, Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer
from sqlalchemy import event
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from billgraph.db.engine import Database
from billgraph.db.plain import Watcher
from billgraph.settings import Settings

REQUEST_ID = "billgraph.request_id"
# Requests that get no span: probes and scrapes, every few seconds, would drown the rest.
UNTRACED_PATHS = frozenset({"/healthz", "/metrics"})
# Where a statement's span waits on SQLAlchemy's execution context between its two events.
_SPAN = "_billgraph_span"


def _version() -> str:
    try:
        return version("billgraph")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0"


@dataclass
class Tracing:
    """A tracer provider of this app's own (the process-global one is left alone) and the
    engine listeners it installed; `shutdown` flushes what is pending and removes them."""

    provider: TracerProvider
    tracer: Tracer
    _listeners: list[tuple[Any, str, Callable[..., None]]] = field(
        default_factory=list, init=False, repr=False
    )
    _plain: tuple[Database, Watcher] | None = field(default=None, init=False, repr=False)
    _closed: bool = field(default=False, init=False, repr=False)

    def instrument(self, database: Database) -> None:
        """A client span per SQL statement `database` runs inside a traced request."""
        engine = database.engine.sync_engine
        attributes: dict[str, str | int] = {"db.system": engine.dialect.name}
        url = engine.url
        if engine.dialect.name != "sqlite":  # a SQLite "name" is a file path
            attributes.update(
                {k: v for k, v in (("db.name", url.database), ("server.address", url.host)) if v}
            )
            if url.port:
                attributes["server.port"] = url.port
        tracer = self.tracer

        def start(statement: str) -> Span:
            operation = statement.split(None, 1)[0].upper() if statement.strip() else "SQL"
            return tracer.start_span(
                operation,
                kind=SpanKind.CLIENT,
                attributes={**attributes, "db.operation": operation, "db.statement": statement},
            )

        def before(
            _conn: object,
            _cursor: object,
            statement: str,
            _parameters: object,
            context: object,
            _executemany: bool,
        ) -> None:
            # Only statements of a traced request: not probes, not background work, not
            # requests the sampler dropped.
            if context is None or not trace.get_current_span().is_recording():
                return
            setattr(context, _SPAN, start(statement))

        def after(
            _conn: object,
            _cursor: object,
            _statement: str,
            _parameters: object,
            context: object,
            _executemany: bool,
        ) -> None:
            span = getattr(context, _SPAN, None)
            if span is not None:
                setattr(context, _SPAN, None)
                span.end()

        def failed(exception_context: Any) -> None:
            context = exception_context.execution_context
            span = getattr(context, _SPAN, None)
            if span is not None:
                setattr(context, _SPAN, None)
                _failed(span, exception_context.original_exception)
                span.end()

        for name, listener in (
            ("before_cursor_execute", before),
            ("after_cursor_execute", after),
            ("handle_error", failed),
        ):
            event.listen(engine, name, listener)
            self._listeners.append((engine, name, listener))

        @contextmanager
        def plain(statement: str) -> Iterator[None]:
            """The same span for a prebuilt statement on asyncpg's own pool (Database.plain)."""
            if not trace.get_current_span().is_recording():
                yield
                return
            span = start(statement)
            try:
                yield
            except BaseException as error:
                _failed(span, error)
                raise
            finally:
                span.end()

        database.plain.watchers.append(plain)
        self._plain = (database, plain)

    def shutdown(self) -> None:
        """Export what is pending and stop; removes the engine listeners. Idempotent."""
        if self._closed:
            return
        self._closed = True
        for target, name, listener in self._listeners:
            event.remove(target, name, listener)
        self._listeners.clear()
        if self._plain is not None:
            database, watcher = self._plain
            database.plain.watchers.remove(watcher)
            self._plain = None
        self.provider.shutdown()


def _failed(span: Span, error: BaseException) -> None:
    # The exception's type only: its message may quote the values.
    name = type(error).__name__
    span.set_attribute("error.type", name)
    span.set_status(Status(StatusCode.ERROR, name))


def configure(settings: Settings, span_processor: SpanProcessor | None = None) -> Tracing | None:
    """Tracing as the settings and the environment say, or None when it is off.

    On with `BILLGRAPH_OTEL_EXPORTER_OTLP_ENDPOINT` (the collector's base URL) or the standard
    `OTEL_EXPORTER_OTLP_ENDPOINT` / `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, batched to that
    collector over OTLP/HTTP (the other standard OTEL_* variables apply: headers, timeout,
    sampler, batch sizes, resource attributes); `OTEL_SDK_DISABLED=true` turns it off.
    `span_processor` turns it on with that processor instead (tests, embedding).
    """
    if span_processor is None:
        exporter = otlp_exporter(settings)
        if exporter is None:
            return None
        span_processor = BatchSpanProcessor(exporter)
    provider = TracerProvider(
        resource=Resource.create(
            {SERVICE_NAME: settings.otel_service_name, SERVICE_VERSION: _version()}
        )
    )
    provider.add_span_processor(span_processor)
    return Tracing(provider=provider, tracer=provider.get_tracer("billgraph", _version()))


def otlp_exporter(settings: Settings) -> SpanExporter | None:
    """The OTLP/HTTP exporter the settings ask for, or None."""
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    endpoint = settings.otel_exporter_otlp_endpoint
    standard = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or os.environ.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    )
    if not endpoint and not standard:
        return None
    # Imported only when on: it brings protobuf and requests.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    if not endpoint:
        return OTLPSpanExporter()  # it reads the standard variables itself
    endpoint = endpoint.rstrip("/")
    if not endpoint.endswith("/v1/traces"):
        endpoint += "/v1/traces"
    return OTLPSpanExporter(endpoint=endpoint)


class _HeaderGetter(Getter[Iterable[tuple[bytes, bytes]]]):
    """Reads a W3C `traceparent` (and `tracestate`, baggage) from ASGI headers."""

    def get(self, carrier: Iterable[tuple[bytes, bytes]], key: str) -> list[str] | None:
        name = key.lower().encode("latin-1")
        values = [value.decode("latin-1") for header, value in carrier if header == name]
        return values or None

    def keys(self, carrier: Iterable[tuple[bytes, bytes]]) -> list[str]:
        return [header.decode("latin-1") for header, _ in carrier]


_HEADERS = _HeaderGetter()


class TraceRequests:
    """An HTTP server span around each request but probes (`POST /graphql`), continuing the
    caller's trace when it sends a `traceparent`; with the request id and the status. Goes
    inside RequestContext, which gives the request its id."""

    def __init__(self, app: ASGIApp, tracer: Tracer) -> None:
        self.app = app
        self.tracer = tracer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # A socket lives for hours: no span around it.
        if scope["type"] != "http" or scope["path"] in UNTRACED_PATHS:
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        path = scope["path"]
        attributes: dict[str, str] = {
            "http.request.method": method,
            "url.path": path,
            "url.scheme": scope.get("scheme", "http"),
            "network.protocol.version": scope.get("http_version", "1.1"),
            REQUEST_ID: scope.get("state", {}).get("request_id", ""),
        }
        if path == "/graphql":  # the one route; anything else is a 404, named by its method
            attributes["http.route"] = path
        with self.tracer.start_as_current_span(
            f"{method} {path}" if path == "/graphql" else method,
            context=propagate.extract(scope["headers"], getter=_HEADERS),
            kind=SpanKind.SERVER,
            attributes=attributes,
            record_exception=False,  # its message and traceback are what the client never sees
            set_status_on_exception=False,
        ) as span:

            async def send_with_status(message: Message) -> None:
                if message["type"] == "http.response.start":
                    status = message["status"]
                    span.set_attribute("http.response.status_code", status)
                    if status >= 500:
                        span.set_attribute("error.type", str(status))
                        span.set_status(Status(StatusCode.ERROR))
                await send(message)

            try:
                await self.app(scope, receive, send_with_status)
            except Exception:
                span.set_attribute("error.type", "INTERNAL_SERVER_ERROR")
                span.set_status(Status(StatusCode.ERROR))
                raise
