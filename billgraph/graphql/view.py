"""The GraphQL ASGI view on /graphql: HTTP (GraphiQL in a browser) and WebSocket, with the
per-request context and the same error presentation on both."""

from contextlib import suppress
from datetime import timedelta

from cross_web import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http import GraphQLHTTPResponse
from strawberry.types import ExecutionResult

from billgraph.api_keys.service import Scope as KeyScope
from billgraph.db.engine import Database
from billgraph.graphql.context import Context
from billgraph.graphql.extensions.errors import present_errors
from billgraph.graphql.schema import build_schema
from billgraph.graphql.sockets import LegacyWSHandler, TransportWSHandler
from billgraph.http.auth import authenticate, bearer_token
from billgraph.live.brokers import Broker
from billgraph.settings import Settings


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
    ) -> Context:
        principal = None
        secret = bearer_token(request.headers.get("authorization", ""))
        if secret and request.scope["type"] == "http":  # a socket authenticates at its init
            principal = await authenticate(self.database, secret)
        return Context(
            request=request,
            response=response,
            database=self.database,
            settings=self.settings,
            request_id=request.scope.get("state", {}).get("request_id", ""),
            principal=principal,
            hub=self.broker.hub,
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
        principal = await authenticate(self.database, secret) if secret else None
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
    ) -> GraphQLHTTPResponse:
        if result.errors:
            request_id = request.scope.get("state", {}).get("request_id")
            result.errors = present_errors(result.errors, request_id)
        return await super().process_result(request, result)


def _socket_error(context: Context, message: str, code: str) -> dict[str, object]:
    return {"message": message, "extensions": {"code": code, "requestId": context.request_id}}
