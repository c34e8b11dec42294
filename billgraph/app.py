"""The Starlette application: /graphql (GraphiQL in a browser), /healthz, /metrics; and the
wiring of settings, database and schema, done once here."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from starlette.types import Receive, Scope, Send
from cross_web import HTTPException
from strawberry.http import GraphQLHTTPResponse
from strawberry.types import ExecutionResult

from billgraph.db.engine import Database, connect
from billgraph.logs import configure as configure_logs
from billgraph.logs import get_logger
from billgraph.middleware import BodySizeLimit, RateLimit, RequestContext, bearer_token
from billgraph.schema import build_schema
from billgraph.schema.context import Context
from billgraph.schema.extensions import present_errors
from billgraph.services import api_keys
from billgraph.settings import Settings, get_settings

log = get_logger("billgraph.app")


class GraphQLApp(GraphQL[Context, None]):
    def __init__(self, database: Database, settings: Settings) -> None:
        super().__init__(build_schema(settings), keep_alive=True, keep_alive_interval=15)
        self.database = database
        self.settings = settings

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> Context:  # type: ignore[override]
        principal = None
        secret = bearer_token(request.headers.get("authorization", ""))
        if secret:
            principal = await api_keys.authenticate(self.database, secret)
        return Context(
            request=request,
            response=response,
            database=self.database,
            settings=self.settings,
            request_id=request.scope.get("state", {}).get("request_id", ""),
            principal=principal,
        )

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


def create_app(settings: Settings | None = None, database: Database | None = None) -> Starlette:
    """The ASGI app. Without arguments it reads BILLGRAPH_* settings (uvicorn's factory mode)."""
    settings = settings or get_settings()
    configure_logs(settings.log_level, settings.log_json)
    database = database or connect(
        settings.database_url,
        pool_size=settings.database_pool_size,
        statement_timeout_ms=settings.statement_timeout_ms,
    )
    graphql = GraphQLApp(database, settings)

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
        yield
        await database.dispose()

    app = Starlette(
        routes=[
            Route("/graphql", graphql, methods=["GET", "POST"]),
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
