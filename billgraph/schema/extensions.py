"""Schema extensions: who may run an operation, and what errors may say.

Errors outside the mutation unions always carry `extensions.code` and `extensions.requestId`:
UNAUTHENTICATED, FORBIDDEN, BAD_USER_INPUT (malformed queries, bad arguments, limits), and
INTERNAL_SERVER_ERROR for anything unexpected, whose details go to the log, never the client.
"""

from collections.abc import Iterator

from graphql import ExecutionResult as GraphQLExecutionResult
from graphql import FieldNode, GraphQLError, OperationType, get_operation_ast
from starlette.websockets import WebSocket
from strawberry.extensions import SchemaExtension
from strawberry.types import ExecutionContext
from strawberry.types.execution import StreamExecutionResult

from billgraph.logs import get_logger
from billgraph.schema.context import Context
from billgraph.schema.errors import graphql_error
from billgraph.schema.scalars import ScalarInputError
from billgraph.services.api_keys import Scope

log = get_logger(__name__)


class Authentication(SchemaExtension):
    """An operation needs a valid API key (introspection excepted): a query or subscription
    the READ scope, a mutation the WRITE scope. Over WebSocket only subscriptions run, so
    queries and mutations keep HTTP's limits (body size, rate)."""

    def on_execute(self) -> Iterator[None]:
        execution = self.execution_context
        context: Context = execution.context
        document = execution.graphql_document
        operation = get_operation_ast(document, execution.operation_name) if document else None
        over_socket = isinstance(context.request, WebSocket)
        if operation is not None and over_socket != (
            operation.operation == OperationType.SUBSCRIPTION
        ):
            _set_status(context, 400)
            refuse(
                execution,
                graphql_error(
                    "Subscriptions run over a WebSocket to /graphql (graphql-transport-ws or "
                    "graphql-ws); queries and mutations over HTTP.",
                    "BAD_USER_INPUT",
                ),
            )
        elif operation is not None:
            principal = context.principal
            if principal is None and not _introspection_only(operation.selection_set.selections):
                _set_status(context, 401)
                refuse(
                    execution,
                    graphql_error(
                        "Authentication required: send `Authorization: Bearer <API key>` with "
                        "a valid, unrevoked key.",
                        "UNAUTHENTICATED",
                    ),
                )
            elif principal is not None:
                needed = (
                    Scope.WRITE if operation.operation == OperationType.MUTATION else Scope.READ
                )
                if needed not in principal.scopes:
                    _set_status(context, 403)
                    refuse(
                        execution,
                        graphql_error(
                            f"This API key lacks the {needed.name} scope this operation needs.",
                            "FORBIDDEN",
                        ),
                    )
        yield


class StreamErrors(SchemaExtension):
    """Errors of results sent over WebSocket get the same presentation as over HTTP (where
    GraphQLApp.process_result applies it): a code, the request id, nothing internal."""

    def on_stream_result(self, result: StreamExecutionResult) -> Iterator[None]:
        errors = getattr(result, "errors", None)
        if errors:
            context: Context = self.execution_context.context
            result.errors = present_errors(list(errors), context.request_id)  # type: ignore[union-attr]
        yield


def refuse(execution: ExecutionContext, error: GraphQLError) -> None:
    """Answer the operation with `error` instead of running it (an extension's on_execute
    that sets the result skips execution; later extensions see it is set)."""
    if execution.result is None:
        execution.result = GraphQLExecutionResult(data=None, errors=[error])


def _introspection_only(selections: object) -> bool:
    return all(
        isinstance(s, FieldNode) and s.name.value.startswith("__")
        for s in selections  # type: ignore[attr-defined]
    )


def _set_status(context: Context, status: int) -> None:
    response = context.response
    if response is not None and hasattr(response, "status_code"):
        response.status_code = status


def present_errors(errors: list[GraphQLError], request_id: str | None) -> list[GraphQLError]:
    """What the client may see of `errors`: each gets a code and the request id; unexpected
    ones are logged with their traceback and masked. Runs on every result, whichever stage
    (parse, validation, extension hook, resolver) raised the error."""
    return [_present(error, request_id) for error in errors]


def _present(error: GraphQLError, request_id: str | None) -> GraphQLError:
    original = error.original_error
    extensions = dict(error.extensions or {})
    message = error.message
    if original is None or isinstance(original, (GraphQLError, ScalarInputError)):
        extensions.setdefault("code", "BAD_USER_INPUT")
    else:
        log.error(
            "unexpected error",
            path=error.path,
            error=type(original).__name__,
            exc_info=(type(original), original, original.__traceback__),
        )
        message = "Unexpected error."
        extensions = {"code": "INTERNAL_SERVER_ERROR"}
    extensions["requestId"] = request_id
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        extensions=extensions,
    )
