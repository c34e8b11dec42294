"""Who may run an operation: a query or subscription needs an API key with the READ scope, a
mutation the WRITE scope (introspection excepted); over a WebSocket only subscriptions run."""

from collections.abc import Iterator
from typing import NamedTuple

from graphql import (
    FieldNode,
    GraphQLError,
    OperationDefinitionNode,
    OperationType,
    get_operation_ast,
)
from starlette.websockets import WebSocket
from strawberry.extensions import SchemaExtension

from billgraph.api_keys.service import Scope
from billgraph.graphql.context import Context
from billgraph.graphql.errors import graphql_error
from billgraph.graphql.extensions.errors import refuse, set_status


class Refusal(NamedTuple):
    status: int  # the HTTP status of the answer
    error: GraphQLError


class Authentication(SchemaExtension):
    """An operation needs a valid API key (introspection excepted): a query or subscription
    the READ scope, a mutation the WRITE scope. Over WebSocket only subscriptions run, so
    queries and mutations keep HTTP's limits (body size, rate)."""

    def on_execute(self) -> Iterator[None]:
        execution = self.execution_context
        document = execution.graphql_document
        operation = get_operation_ast(document, execution.operation_name) if document else None
        refused = refusal(execution.context, operation) if operation is not None else None
        if refused is not None:
            set_status(execution.context, refused.status)
            refuse(execution, refused.error)
        yield


def refusal(context: Context, operation: OperationDefinitionNode) -> Refusal | None:
    """Why `operation` may not run in `context`, if it may not."""
    over_socket = isinstance(context.request, WebSocket)
    if over_socket != (operation.operation == OperationType.SUBSCRIPTION):
        return Refusal(
            400,
            graphql_error(
                "Subscriptions run over a WebSocket to /graphql (graphql-transport-ws or "
                "graphql-ws); queries and mutations over HTTP.",
                "BAD_USER_INPUT",
            ),
        )
    principal = context.principal
    if principal is None:
        if _introspection_only(operation.selection_set.selections):
            return None
        return Refusal(
            401,
            graphql_error(
                "Authentication required: send `Authorization: Bearer <API key>` with "
                "a valid, unrevoked key.",
                "UNAUTHENTICATED",
            ),
        )
    needed = Scope.WRITE if operation.operation == OperationType.MUTATION else Scope.READ
    if needed not in principal.scopes:
        return Refusal(
            403,
            graphql_error(
                f"This API key lacks the {needed.name} scope this operation needs.",
                "FORBIDDEN",
            ),
        )
    return None


def _introspection_only(selections: object) -> bool:
    return all(
        isinstance(s, FieldNode) and s.name.value.startswith("__")
        for s in selections  # type: ignore[attr-defined]
    )
