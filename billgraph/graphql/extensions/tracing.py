"""A span per GraphQL operation over HTTP, when tracing is on (billgraph.tracing wires it).

Named `query Dashboard` (or `mutation` for an anonymous one), it spans parsing, validation
and execution, so the statements the operation runs are its children. It carries the
operation's type, name, root fields and cost, the request id and the caller's organization;
a failed operation its error codes, as the client gets them: never a message, never the
internals that the answer masks. Subscriptions (hours long, over a socket) get none.
"""

from collections.abc import Iterator

from graphql import FieldNode, GraphQLError, get_operation_ast
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer
from strawberry.exceptions import MissingQueryError
from strawberry.extensions import SchemaExtension
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError

from billgraph.graphql.context import Context
from billgraph.graphql.extensions.errors import error_code
from billgraph.graphql.node import to_global_id
from billgraph.tracing import REQUEST_ID

# Raised to the view, which answers them with HTTP 400 or 405 and the code BAD_REQUEST.
_REQUEST_ERRORS = (MissingQueryError, CannotGetOperationTypeError, InvalidOperationTypeError)


class OperationTracing(SchemaExtension):
    """One span around each operation; list it first, so that it wraps the other hooks."""

    def __init__(self, tracer: Tracer) -> None:
        self.tracer = tracer

    def on_operation(self) -> Iterator[None]:
        context: Context = self.execution_context.context
        if context.request.scope["type"] != "http":
            yield
            return
        attributes = {REQUEST_ID: context.request_id}
        if context.principal is not None:
            attributes["billgraph.organization.id"] = to_global_id(
                "Organization", context.principal.organization.id
            )
        with self.tracer.start_as_current_span(
            "GraphQL Operation",  # until the document is parsed
            kind=SpanKind.INTERNAL,
            attributes=attributes,
            record_exception=False,  # a message and a traceback: what the answer masks
            set_status_on_exception=False,
        ) as span:
            raised = None
            try:
                yield
            except Exception as exc:
                if isinstance(exc, GraphQLError):
                    raised = error_code(exc)
                elif isinstance(exc, _REQUEST_ERRORS):
                    raised = "BAD_REQUEST"
                else:
                    raised = "INTERNAL_SERVER_ERROR"
                raise
            finally:
                if span.is_recording():
                    self._describe(span, raised)

    def _describe(self, span: Span, raised: str | None) -> None:
        execution = self.execution_context
        document = execution.graphql_document
        operation = get_operation_ast(document, execution.operation_name) if document else None
        if operation is not None:
            kind = operation.operation.value
            name = operation.name.value if operation.name else None
            span.update_name(f"{kind} {name}" if name else kind)
            span.set_attribute("graphql.operation.type", kind)
            if name:
                span.set_attribute("graphql.operation.name", name)
            span.set_attribute(
                "billgraph.graphql.root_fields",
                [
                    s.name.value
                    for s in operation.selection_set.selections
                    if isinstance(s, FieldNode)
                ],
            )
        cost = execution.extensions_results.get("cost")
        if cost is not None:
            span.set_attribute("billgraph.query.cost", cost["requestedQueryCost"])
        if raised is not None:
            codes = [raised]
        else:
            result = execution.result
            errors = result.errors if result is not None else execution.pre_execution_errors
            codes = list(dict.fromkeys(error_code(error) for error in errors or ()))
        if codes:
            span.set_attribute("error.type", codes[0])
            span.set_attribute("billgraph.error.codes", codes)
            span.set_status(Status(StatusCode.ERROR, codes[0]))
