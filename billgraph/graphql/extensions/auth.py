"""Who may run an operation: a query or subscription needs an API key with the READ scope, a
mutation the WRITE scope (introspection excepted); over a WebSocket only subscriptions run."""

from collections.abc import Iterator

from graphql import FieldNode, OperationType, get_operation_ast
from starlette.websockets import WebSocket
from strawberry.extensions import SchemaExtension

from billgraph.api_keys.service import Scope
from billgraph.graphql.context import Context
from billgraph.graphql.errors import graphql_error
from billgraph.graphql.extensions.errors import refuse


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


def _introspection_only(selections: object) -> bool:
    return all(
        isinstance(s, FieldNode) and s.name.value.startswith("__")
        for s in selections  # type: ignore[attr-defined]
    )


def _set_status(context: Context, status: int) -> None:
    response = context.response
    if response is not None and hasattr(response, "status_code"):
        response.status_code = status
