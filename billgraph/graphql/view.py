"""The GraphQL ASGI view on /graphql: HTTP (GraphiQL in a browser) and WebSocket, with the
per-request context and the same error presentation on both."""

import json
from contextlib import suppress
from datetime import timedelta
from pathlib import Path

import orjson
from cross_web import AsyncHTTPRequestAdapter, HTTPException
from opentelemetry.trace import Tracer
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.types import ExecutionResult

from billgraph.api_keys.cache import PrincipalCache
from billgraph.api_keys.service import Scope as KeyScope
from billgraph.checkout.providers import Providers
from billgraph.db.engine import Database
from billgraph.graphql import lean
from billgraph.graphql.context import Context
from billgraph.graphql.extensions.errors import present_errors
from billgraph.graphql.media_types import GRAPHQL_RESPONSE_JSON, response_media_type
from billgraph.graphql.schema import build_schema
from billgraph.graphql.sockets import LegacyWSHandler, TransportWSHandler
from billgraph.http import bodies
from billgraph.http.auth import authenticate, bearer_token
from billgraph.http.errors import error_response
from billgraph.live.brokers import Broker
from billgraph.settings import Settings

# GraphiQL, from billgraph's own files (/static/graphiql, vendored at pinned versions):
# Strawberry's page loads it from a public CDN, which a page holding an API key should not
# run, and which an offline machine cannot reach. Its fonts and images are data: URLs inside
# its own stylesheet; no inline script, no other origin, no framing. The one inline style is
# the scroll lock GraphiQL's dialogs insert (react-remove-scroll-bar), allowed by its hash:
# on this page, whose body never scrolls, its text is always the same.
GRAPHIQL_HTML = Path(__file__).with_name("graphiql.html").read_text(encoding="utf-8")
GRAPHIQL_CSP = "; ".join(
    (
        "default-src 'self'",
        "style-src 'self' 'sha256-Y/huXlwoYkVyQlxwSVcCi1RCDGDCSVBzDt0hYP9qlTc='",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)


class GraphQLApp(GraphQL[Context, None]):
    graphql_transport_ws_handler_class = TransportWSHandler
    graphql_ws_handler_class = LegacyWSHandler

    def __init__(
        self,
        database: Database,
        settings: Settings,
        broker: Broker,
        tracer: Tracer | None = None,
        providers: Providers | None = None,
    ) -> None:
        schema = build_schema(settings, tracer)
        super().__init__(
            schema,
            keep_alive=True,
            keep_alive_interval=settings.websocket_keep_alive_seconds,
            connection_init_wait_timeout=timedelta(seconds=settings.websocket_init_timeout_seconds),
            max_subscriptions_per_connection=settings.max_subscriptions_per_socket,
        )
        self.database = database
        self.settings = settings
        self.broker = broker
        self.providers = providers or Providers(database, settings)
        # Keys seen a moment ago, while the broker delivers every revocation to this process.
        self.principals = PrincipalCache(broker)
        broker.watch_revocations(self.principals.revoked, self.principals.clear)
        # Known operations skip Strawberry's view and extension machinery (graphql/lean.py).
        self.lean = schema if lean.serves(schema) else None

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> Context:
        principal = None
        secret = bearer_token(request.headers.get("authorization", ""))
        if secret and request.scope["type"] == "http":  # a socket authenticates at its init
            principal = await authenticate(self.database, secret, self.principals)
        return Context(
            request=request,
            response=response,
            database=self.database,
            settings=self.settings,
            request_id=request.scope.get("state", {}).get("request_id", ""),
            principal=principal,
            hub=self.broker.hub,
            providers=self.providers,
        )

    async def on_ws_connect(self, context: Context) -> None:
        """A socket needs a READ key, from connection_init's `authorization` or else the
        Authorization header; refused, graphql-transport-ws closes with 4403 and graphql-ws
        answers connection_error."""
        params = context.connection_params or {}
        offered = params.get("authorization", params.get("Authorization"))
        if offered is None:
            offered = context.request.headers.get("authorization", "")
        secret = bearer_token(offered) if isinstance(offered, str) else None
        principal = await authenticate(self.database, secret, self.principals) if secret else None
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
        if KeyScope.READ not in principal.scopes:
            raise ConnectionRejectionError(
                _socket_error(context, "This API key lacks the READ scope.", "FORBIDDEN")
            )
        websocket = context.request
        assert isinstance(websocket, WebSocket)

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
            response = None
            if self.lean is not None and request.method == "POST":
                response = await lean.answer(self, self.lean, request)
            if response is None:
                response = await self.run(request)
        except HTTPException as exc:  # unreadable body, batching, wrong method: JSON, not text
            request_id = scope.get("state", {}).get("request_id")
            response = error_response(exc.status_code, exc.reason, "BAD_REQUEST", request_id)
        await response(scope, receive, send)

    async def parse_http_body(
        self, request: AsyncHTTPRequestAdapter
    ) -> GraphQLRequestData | list[GraphQLRequestData]:
        if request.method == "POST":
            try:
                bodies.check_charset(request.content_type)
            except bodies.BadBody as exc:
                raise HTTPException(400, exc.msg) from None
        return await super().parse_http_body(request)

    def encode_json(self, data: object) -> str:
        return encode_json(data)

    def decode_json(self, data: str | bytes) -> object:
        """All JSON the view reads (bodies, GET's variables, socket messages), bounded."""
        return bodies.parse_json(data)

    def parse_json(self, data: str | bytes) -> object:
        try:
            parsed = self.decode_json(data)
        except bodies.BadBody as exc:
            raise HTTPException(400, exc.msg) from None
        if not isinstance(parsed, (dict, list)):  # lists are refused later: no batching
            raise HTTPException(400, "The request body must be a JSON object.")
        return parsed

    async def process_result(
        self, request: Request, result: ExecutionResult
    ) -> GraphQLHTTPResponse:
        if result.errors:
            request_id = request.scope.get("state", {}).get("request_id")
            result.errors = present_errors(result.errors, request_id)
        return await super().process_result(request, result)

    @property
    def graphql_ide_html(self) -> str:
        return GRAPHIQL_HTML

    async def render_graphql_ide(self, request: Request) -> Response:
        return HTMLResponse(
            self.graphql_ide_html,
            headers={
                "content-security-policy": GRAPHIQL_CSP,
                "referrer-policy": "no-referrer",
                "x-content-type-options": "nosniff",
            },
        )

    async def get_sub_response(self, request: Request | WebSocket) -> Response:
        sub_response = await super().get_sub_response(request)
        # The negotiated type rides on the sub-response to create_response, which needs it.
        sub_response.media_type = response_media_type(request.headers.get("accept"))
        return sub_response

    def create_response(
        self,
        response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse],
        sub_response: Response,
    ) -> Response:
        """application/json as Strawberry makes it (a request error is a 200 with data
        null); application/graphql-response+json when the client prefers it, where a request
        error has no data and a 4xx (the status an extension set, else 400) or a 500."""
        if sub_response.media_type != GRAPHQL_RESPONSE_JSON or isinstance(response_data, list):
            return super().create_response(response_data, sub_response)
        request_error = (
            "data" in response_data
            and response_data["data"] is None
            and _request_errors(response_data.get("errors"))
        )
        if request_error:
            response_data = response_data.copy()
            del response_data["data"]
        response = super().create_response(response_data, sub_response)
        response.headers["content-type"] = f"{GRAPHQL_RESPONSE_JSON}; charset=utf-8"
        if request_error and not sub_response.status_code:
            internal = any(
                (error.get("extensions") or {}).get("code") == "INTERNAL_SERVER_ERROR"
                for error in response_data.get("errors") or ()
                if isinstance(error, dict)
            )
            response.status_code = 500 if internal else 400
        return response


def encode_json(data: object) -> str:
    """Every answer and socket message: compact JSON, UTF-8 as is, by orjson (a third of
    json's time on a page of entries); by json what orjson refuses (an integer past 64 bits)."""
    try:
        return orjson.dumps(data).decode()
    except TypeError:
        return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def _request_errors(errors: object) -> bool:
    """Errors that stopped the operation before it ran (parse, validation, variables, a
    refusal): none has a path, which every error raised while executing a field has."""
    return (
        isinstance(errors, list)
        and bool(errors)
        and all(isinstance(error, dict) and "path" not in error for error in errors)
    )


def _socket_error(context: Context, message: str, code: str) -> dict[str, object]:
    return {"message": message, "extensions": {"code": code, "requestId": context.request_id}}
