"""The Starlette application: /graphql (HTTP with GraphiQL in a browser, and WebSocket for
subscriptions), /healthz, /metrics; and the wiring of settings, database, schema and the
event broker, done once here."""

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from datetime import timedelta

from cross_web import HTTPException
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http import GraphQLHTTPResponse
from strawberry.types import ExecutionResult

from billgraph.db.engine import Database, connect
from billgraph.events.brokers import Broker, create_broker
from billgraph.logs import configure as configure_logs
from billgraph.logs import get_logger
from billgraph.middleware import BodySizeLimit, RateLimit, RequestContext, bearer_token
from billgraph.schema import build_schema
from billgraph.schema.context import Context
from billgraph.schema.extensions import present_errors
from billgraph.services import api_keys
from billgraph.settings import Settings, get_settings
from billgraph.sockets import LegacyWSHandler, TransportWSHandler

log = get_logger("billgraph.app")


class GraphQLApp(GraphQL[Context, None]):
    graphql_transport_ws_handler_class = TransportWSHandler
    graphql_ws_handler_class = LegacyWSHandler

    def __init__(self, database: Database, settings: Settings, broker: Broker) -> None:
        super().__init__(
            build_schema(settings),
            keep_alive=True,
            keep_alive_interval=settings.websocket_keep_alive_seconds,
            connection_init_wait_timeout=timedelta(seconds=settings.websocket_init_timeout_seconds),
            max_subscriptions_per_connection=settings.max_subscriptions_per_socket,
        )
        self.database = database
        self.settings = settings
        self.broker = broker

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> Context:  # type: ignore[override]
        principal = None
        secret = bearer_token(request.headers.get("authorization", ""))
        if secret and request.scope["type"] == "http":  # a socket authenticates at its init
            principal = await api_keys.authenticate(self.database, secret)
        return Context(
            request=request,
            response=response,
            database=self.database,
            settings=self.settings,
            request_id=request.scope.get("state", {}).get("request_id", ""),
            principal=principal,
            hub=self.broker.hub,
        )

    async def on_ws_connect(self, context: Context) -> None:  # type: ignore[override]
        """A socket needs a READ key, from connection_init's `authorization` or else the
        Authorization header; refused, graphql-transport-ws closes with 4403 and graphql-ws
        answers connection_error."""
        params = context.connection_params or {}
        offered = params.get("authorization", params.get("Authorization"))
        if offered is None:
            offered = context.request.headers.get("authorization", "")
        secret = bearer_token(offered) if isinstance(offered, str) else None
        principal = await api_keys.authenticate(self.database, secret) if secret else None
        context.principal = principal
        if principal is None:
            raise ConnectionRejectionError(
                _socket_error(
                    context,
                    'Authentication required: send {"authorization": "Bearer <API key>"} '
                    "in connection_init, or an Authorization header.",
                    "UNAUTHENTICATED",
                )
            )
        if api_keys.Scope.READ not in principal.scopes:
            raise ConnectionRejectionError(
                _socket_error(context, "This API key lacks the READ scope.", "FORBIDDEN")
            )
        websocket = context.request

        async def close() -> None:
            with suppress(Exception):  # already closing
                await websocket.close(code=4403, reason="API key revoked")

        context.forget_socket = self.broker.hub.add_socket(principal.api_key.id, close)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        request = Request(scope=scope, receive=receive)
        try:
            response = await self.run(request)
        except HTTPException as exc:  # unreadable body, batching, wrong method: JSON, not text
            error = {
                "message": exc.reason,
                "extensions": {
                    "code": "BAD_REQUEST",
                    "requestId": scope.get("state", {}).get("request_id"),
                },
            }
            response = JSONResponse({"errors": [error]}, status_code=exc.status_code)
        await response(scope, receive, send)

    def parse_json(self, data: str | bytes) -> object:
        parsed = super().parse_json(data)
        if not isinstance(parsed, (dict, list)):  # lists are refused later: no batching
            raise HTTPException(400, "The request body must be a JSON object.")
        return parsed

    async def process_result(
        self, request: Request, result: ExecutionResult
    ) -> GraphQLHTTPResponse:  # type: ignore[override]
        if result.errors:
            request_id = request.scope.get("state", {}).get("request_id")
            result.errors = present_errors(result.errors, request_id)
        return await super().process_result(request, result)


def _socket_error(context: Context, message: str, code: str) -> dict[str, object]:
    return {"message": message, "extensions": {"code": code, "requestId": context.request_id}}


def create_app(settings: Settings | None = None, database: Database | None = None) -> Starlette:
    """The ASGI app. Without arguments it reads BILLGRAPH_* settings (uvicorn's factory mode)."""
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
    graphql = GraphQLApp(database, settings, broker)

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
        try:
            yield
        finally:
            database.events.attach(None)
            await broker.stop()  # uvicorn has closed the sockets by now (1012)
            await database.dispose()

    app = Starlette(
        routes=[
            Route("/graphql", graphql, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", graphql),
            Route("/healthz", healthz),
            Route("/metrics", metrics),
        ],
        middleware=[
            Middleware(RequestContext),
            Middleware(BodySizeLimit, max_bytes=settings.max_body_bytes),
            Middleware(
                RateLimit, rate=settings.rate_limit_per_second, burst=settings.rate_limit_burst
            ),
        ],
        lifespan=lifespan,
        exception_handlers={Exception: internal_error},
    )
    app.state.database = database
    return app
