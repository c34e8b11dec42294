"""The lean path of an HTTP operation: a POST of a JSON query or mutation whose document
parses and validates (after its first request, from the Documents cache) and whose cost is
within the limits is answered here, by graphql-core with the schema's execution class, under
the same rules as Strawberry's view and extensions, which call the same functions: refusal,
Costs, mark_unavailable, process_result, create_response. What it leaves out is their
machinery: per request, nine context managers, an extension runner and the view's adapters.

Anything else gets None and takes Strawberry's path, which answers it as it always has: GET
and GraphiQL, other content types, streams and incremental delivery, a body that is not a
plain operation, a document that fails to parse or validate, no such operation, a
subscription, variables that do not coerce, a cost refusal, and every operation when a
tracer wraps operations in spans (OperationTracing is an extension)."""

from collections.abc import Awaitable, Callable
from functools import lru_cache
from inspect import isawaitable
from typing import TYPE_CHECKING, Any, TypeGuard, cast

from graphql import ExecutionResult as GraphQLExecutionResult
from graphql import GraphQLError, OperationType, execute, get_operation_ast
from starlette.requests import Request
from starlette.responses import Response
from strawberry.execution.is_awaitable import optimized_is_awaitable
from strawberry.http.parse_content_type import parse_content_type
from strawberry.types import ExecutionResult

from billgraph.graphql.extensions.auth import refusal
from billgraph.graphql.extensions.errors import mark_unavailable, set_status
from billgraph.graphql.extensions.limits import CostRefused
from billgraph.graphql.schema import Schema
from billgraph.http import bodies

if TYPE_CHECKING:
    from billgraph.graphql.view import GraphQLApp

# Content-Type headers repeat: parsed once each, as Strawberry's view parses them.
_media_type = lru_cache(maxsize=64)(parse_content_type)
# Strawberry's check, as its execute passes it (typed there as a plain bool function).
_IS_AWAITABLE = cast("Callable[[Any], TypeGuard[Awaitable[Any]]]", optimized_is_awaitable)


def serves(schema: Schema) -> bool:
    """Whether the lean path may answer for `schema`: not when operations are traced, run
    incrementally (@defer, @stream) or pass through directives or resolve middleware that
    only Strawberry's path applies."""
    return not (
        schema.traced
        or schema.config.enable_experimental_incremental_execution
        or schema.directives
        or any(extension._implements_resolve() for extension in schema.get_extensions())
    )


async def answer(view: "GraphQLApp", schema: Schema, request: Request) -> Response | None:
    """The response to `request` (a POST to `view`, whose schema `schema` is), or None for
    Strawberry's path to answer it."""
    content_type = request.headers.get("content-type", "")
    if _media_type(content_type)[0] != "application/json":
        return None
    if view._get_stream_transport_from_headers(request.headers) is not None:
        return None
    try:
        bodies.check_charset(content_type)
        data = view.decode_json(await request.body())
    except bodies.BadBody:
        return None
    if not isinstance(data, dict):
        return None
    query = data.get("query")
    variables = data.get("variables")
    name = data.get("operationName")
    extensions = data.get("extensions")
    if not (
        isinstance(query, str)
        and isinstance(variables, (dict, type(None)))
        and isinstance(name, (str, type(None)))
        and isinstance(extensions, (dict, type(None)))
    ):
        return None
    try:
        document = schema.documents.parse(query)
    except GraphQLError:
        return None
    operation = get_operation_ast(document, name)
    if operation is None or operation.operation == OperationType.SUBSCRIPTION:
        return None
    if schema.documents.validate(schema._schema, document):
        return None
    try:
        cost = schema.costs.of(schema._schema, document, name, variables or {})
    except CostRefused:
        return None
    if cost is None:
        return None

    sub_response = await view.get_sub_response(request)
    context = await view.get_context(request, sub_response)
    refused = refusal(context, operation)
    if refused is not None:  # as Authentication answers: no cost, no execution
        set_status(context, refused.status)
        result = ExecutionResult(data=None, errors=[refused.error])
    else:
        try:
            executed = execute(
                schema._schema,
                document,
                root_value=None,  # the view's get_root_value is Strawberry's: None
                context_value=context,
                variable_values=variables,
                operation_name=name,
                executor_class=schema.execution_context_class,
                is_awaitable=_IS_AWAITABLE,
                operation_extensions=extensions,
            )
            if isawaitable(executed):
                executed = await executed
            assert isinstance(executed, GraphQLExecutionResult)
            mark_unavailable(executed.errors or (), context)
        except Exception as exc:  # noqa: BLE001 - as Strawberry's execute answers one
            error = (
                exc if isinstance(exc, GraphQLError) else GraphQLError(str(exc), original_error=exc)
            )
            executed = GraphQLExecutionResult(data=None, errors=[error])
        result = ExecutionResult(
            data=executed.data,
            errors=executed.errors,
            extensions={"cost": schema.costs.report(cost)},
        )
    return view.create_response(await view.process_result(request, result), sub_response)
