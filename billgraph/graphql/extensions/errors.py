"""What errors may say. Errors outside the mutation unions always carry `extensions.code`
and `extensions.requestId`: UNAUTHENTICATED, FORBIDDEN, BAD_USER_INPUT (malformed queries, bad
arguments, limits), SERVICE_UNAVAILABLE (the database is down: HTTP 503 with Retry-After, retry
later), and INTERNAL_SERVER_ERROR for anything unexpected, whose details go to the log, never
the client.
"""

from collections.abc import Iterable, Iterator, Mapping

from graphql import ExecutionResult as GraphQLExecutionResult
from graphql import GraphQLError
from starlette.responses import Response
from strawberry.extensions import SchemaExtension
from strawberry.types import ExecutionContext
from strawberry.types.execution import StreamExecutionResult

from billgraph.core.errors import ValidationError
from billgraph.db.availability import is_unavailable
from billgraph.graphql.context import Context
from billgraph.graphql.scalars import ScalarInputError
from billgraph.http.errors import UNAVAILABLE_CODE, UNAVAILABLE_MESSAGE, unavailable_headers
from billgraph.logs import get_logger

log = get_logger(__name__)


class StreamErrors(SchemaExtension):
    """Errors of results sent over WebSocket get the same presentation as over HTTP (where
    GraphQLApp.process_result applies it): a code, the request id, nothing internal."""

    def on_stream_result(self, result: StreamExecutionResult) -> Iterator[None]:
        errors = getattr(result, "errors", None)
        if errors:
            context: Context = self.execution_context.context
            result.errors = present_errors(list(errors), context.request_id)  # type: ignore[union-attr]
        yield


class DatabaseOutage(SchemaExtension):
    """An operation that failed because the database is unavailable is answered HTTP 503
    with Retry-After (its errors say SERVICE_UNAVAILABLE): the client retries later."""

    def on_execute(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        mark_unavailable(getattr(result, "errors", None) or (), self.execution_context.context)


def mark_unavailable(errors: Iterable[GraphQLError], context: Context) -> None:
    """HTTP 503 with Retry-After for an answer whose `errors` say the database is down."""
    if any(_unavailable(error) for error in errors):
        set_status(context, 503, unavailable_headers())


def set_status(context: Context, status: int, headers: Mapping[str, str] | None = None) -> None:
    """The answer's HTTP status, and `headers` with it (a socket has neither)."""
    response = context.response
    if isinstance(response, Response):
        response.status_code = status
        response.headers.update(headers or {})


def refuse(execution: ExecutionContext, error: GraphQLError) -> None:
    """Answer the operation with `error` instead of running it (an extension's on_execute
    that sets the result skips execution; later extensions see it is set)."""
    if execution.result is None:
        execution.result = GraphQLExecutionResult(data=None, errors=[error])


def present_errors(errors: list[GraphQLError], request_id: str | None) -> list[GraphQLError]:
    """What the client may see of `errors`: each gets a code and the request id; unexpected
    ones are logged with their traceback and masked. Runs on every result, whichever stage
    (parse, validation, extension hook, resolver) raised the error."""
    return [_present(error, request_id) for error in errors]


def error_code(error: GraphQLError) -> str:
    """The `extensions.code` that present_errors gives `error` (without logging it)."""
    if _unavailable(error):
        return UNAVAILABLE_CODE
    if not _expected(error):
        return "INTERNAL_SERVER_ERROR"
    return str((error.extensions or {}).get("code", "BAD_USER_INPUT"))


def _expected(error: GraphQLError) -> bool:
    """A client's mistake or a refusal, not a failure of ours. A domain ValidationError
    outside a mutation's union (a malformed id given to a query field) is one too."""
    original = error.original_error
    return original is None or isinstance(
        original, (GraphQLError, ScalarInputError, ValidationError)
    )


def _unavailable(error: GraphQLError) -> bool:
    original = error.original_error
    return original is not None and is_unavailable(original)


def _present(error: GraphQLError, request_id: str | None) -> GraphQLError:
    original = error.original_error
    extensions = dict(error.extensions or {})
    message = error.message
    if _expected(error):
        extensions.setdefault("code", "BAD_USER_INPUT")
    elif _unavailable(error):
        assert original is not None
        log.warning("database unavailable", path=error.path, error=type(original).__name__)
        message = UNAVAILABLE_MESSAGE
        extensions = {"code": UNAVAILABLE_CODE}
    else:
        assert original is not None
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
