"""The Starlette application: /graphql (HTTP with GraphiQL in a browser, and WebSocket for
subscriptions), /webhooks/sandbox and the sandbox's hosted checkout page
(/sandbox/checkout/{id}), the hosted invoice page (/invoices/{token}), /healthz, /metrics,
/static (GraphiQL's and the pages' own files); and the wiring of settings, database, schema
and the event broker, done once here."""

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles

from billgraph.billing.run import bill_every
from billgraph.checkout.providers import Providers
from billgraph.db.engine import Database, connect
from billgraph.graphql.view import GraphQLApp
from billgraph.http.checkout import CheckoutRoutes
from billgraph.http.invoices import InvoiceRoutes
from billgraph.http.middleware import (
    Guards,
    RequestContext,
)
from billgraph.http.toss import TossRoutes
from billgraph.live.brokers import create_broker
from billgraph.logs import configure as configure_logs
from billgraph.logs import get_logger
from billgraph.settings import Settings, get_settings
from billgraph.tracing import TraceRequests, Tracing
from billgraph.tracing import configure as configure_tracing

log = get_logger("billgraph.app")


def create_app(
    settings: Settings | None = None,
    database: Database | None = None,
    tracing: Tracing | None = None,
) -> Starlette:
    """The ASGI app. Without arguments it reads BILLGRAPH_* settings (uvicorn's factory mode).
    Tracing is on when the settings name an OTLP endpoint, or with `tracing`; the app owns it
    (its shutdown flushes it)."""
    settings = settings or get_settings()
    configure_logs(settings.log_level, settings.log_json)
    database = database or connect(
        settings.database_url,
        pool_size=settings.database_pool_size,
        statement_timeout_ms=settings.statement_timeout_ms,
    )
    broker = create_broker(
        database,
        settings.database_url,
        kind=settings.event_broker,
        queue_size=settings.subscription_queue_size,
    )
    tracing = tracing or configure_tracing(settings)
    if tracing is not None:
        tracing.instrument(database)
    providers = Providers(database, settings)
    graphql = GraphQLApp(
        database, settings, broker, tracing.tracer if tracing else None, providers=providers
    )
    checkout = CheckoutRoutes(database, providers)
    invoice_pages = InvoiceRoutes(database)
    toss = TossRoutes(database, providers)

    async def healthz(_: Request) -> Response:
        try:
            async with database.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        except Exception:  # noqa: BLE001 - any failure means "not healthy"
            return JSONResponse(
                {"status": "unavailable", "database": "unreachable"}, status_code=503
            )
        return JSONResponse({"status": "ok"})

    async def metrics(_: Request) -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    async def internal_error(request: Request, exc: Exception) -> Response:
        # Failures outside GraphQL execution (e.g. the database down while authenticating):
        # the same masked shape as inside it; the log has the details.
        request_id = request.scope.get("state", {}).get("request_id")
        log.error("unhandled error", path=request.url.path, exc_info=exc)
        error = {
            "message": "Unexpected error.",
            "extensions": {"code": "INTERNAL_SERVER_ERROR", "requestId": request_id},
        }
        headers = {"x-request-id": request_id} if request_id else None
        return JSONResponse({"errors": [error]}, status_code=500, headers=headers)

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        await broker.start()
        database.events.attach(broker.publish)
        # What exists now lives as long as the process: keep it out of the collector's full
        # passes, which otherwise pause a process holding many sockets for hundreds of ms.
        gc.collect()
        gc.freeze()
        # The billing job (BILLGRAPH_BILLING_INTERVAL_SECONDS > 0): every worker may run it,
        # concurrent runs share the work; a failed run is logged and the next one goes on.
        stop_billing = asyncio.Event()
        billing: asyncio.Task[None] | None = None
        if settings.billing_interval_seconds > 0:
            billing = asyncio.create_task(
                bill_every(database, providers, settings.billing_interval_seconds, stop_billing),
                name="billgraph-billing",
            )
        try:
            yield
        finally:
            if billing is not None:
                # A run cut short rolls back its step; the next run (anywhere) redoes it once.
                stop_billing.set()
                billing.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await billing
            database.events.attach(None)
            await broker.stop()  # uvicorn has closed the sockets by now (1012)
            await providers.close()
            await database.dispose()
            if tracing is not None:  # flushes pending spans: off the loop, it may wait
                await asyncio.to_thread(tracing.shutdown)

    app = Starlette(
        routes=[
            Route("/graphql", graphql, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", graphql),
            Route("/webhooks/{provider}", checkout.webhook, methods=["POST"]),
            Route("/sandbox/checkout/{session_id}", checkout.sandbox_page, methods=["GET", "POST"]),
            Route("/invoices/{token}", invoice_pages.page, methods=["GET"]),
            # Toss's redirects first: "success" and "fail" are not orderIds.
            Route("/checkout/toss/success", toss.success, methods=["GET"]),
            Route("/checkout/toss/billing/success", toss.billing_success, methods=["GET"]),
            Route("/checkout/toss/billing/fail", toss.billing_fail, methods=["GET"]),
            Route("/checkout/toss/fail", toss.fail, methods=["GET"]),
            Route("/checkout/toss/{order_id}", toss.page, methods=["GET"]),
            Route("/healthz", healthz),
            Route("/metrics", metrics),
            # GraphiQL's files (the page itself is GET /graphql in a browser).
            Mount("/static", StaticFiles(packages=[("billgraph.http", "static")]), name="static"),
        ],
        middleware=[
            Middleware(RequestContext),
            # Off, not even a pass-through: tracing costs a request nothing.
            *([Middleware(TraceRequests, tracer=tracing.tracer)] if tracing else []),
            Middleware(
                Guards,  # body size, rate limit; a database outage anywhere below: 503
                max_bytes=settings.max_body_bytes,
                rate=settings.rate_limit_per_second,
                burst=settings.rate_limit_burst,
            ),
        ],
        lifespan=lifespan,
        exception_handlers={Exception: internal_error},
    )
    app.state.database = database
    app.state.tracing = tracing
    app.state.providers = providers
    return app
