"""Resolvers called directly (billgraph/graphql/resolvers.py): the arguments they are given
are those Strawberry's own wrapper would give, for every such field of the schema; fields the
direct call does not cover keep Strawberry's wrapper."""

from typing import Any

import pytest
import strawberry
from graphql import GraphQLObjectType
from strawberry.permission import BasePermission
from strawberry.relay import GlobalID
from strawberry.types.arguments import convert_arguments
from strawberry.types.base import StrawberryList, StrawberryOptional, has_object_definition
from strawberry.types.field import StrawberryField

from billgraph.graphql.resolvers import STRAWBERRY, direct, keywords
from billgraph.graphql.schema import build_schema
from billgraph.settings import Settings

SCHEMA = build_schema(Settings())


def _sample(type_: Any, full: bool) -> Any:
    """A value as graphql-core hands it over: leaves as distinct objects (both conversions
    must pass them on as they are), input objects as dicts by GraphQL name; `full` fills
    every optional value, otherwise optional values are null or absent."""
    if isinstance(type_, StrawberryOptional):
        return _sample(type_.of_type, full) if full else None
    if isinstance(type_, StrawberryList):
        return [_sample(type_.of_type, full), _sample(type_.of_type, full)]
    if has_object_definition(type_):
        definition = type_.__strawberry_definition__
        return {
            SCHEMA.config.name_converter.from_field(f): _sample(f.type, full)
            for f in definition.fields
            if full or not isinstance(f.type, StrawberryOptional)
        }
    return object()


def _direct_fields() -> list[tuple[str, StrawberryField]]:
    found = []
    for type_ in SCHEMA._schema.type_map.values():
        if not isinstance(type_, GraphQLObjectType) or type_.name.startswith("__"):
            continue
        for name, field in type_.fields.items():
            definition = (field.extensions or {}).get(STRAWBERRY)
            if isinstance(definition, StrawberryField) and getattr(
                field.resolve, "__qualname__", ""
            ).startswith("_direct."):
                found.append((f"{type_.name}.{name}", definition))
    return found


DIRECT = _direct_fields()


def test_the_hot_fields_are_called_directly() -> None:
    names = {name for name, _ in DIRECT}
    assert {
        "Query.wallet",
        "Query.customers",
        "Customer.wallets",
        "Wallet.ledgerEntries",
        "Mutation.createLedgerEntry",
        "Mutation.createCustomer",
    } <= names
    # subscriptions keep Strawberry's wrapper (their resolve is not a resolver call)
    assert not {n for n in names if n.startswith("SubscriptionRoot.")}


@pytest.mark.parametrize("full", [True, False], ids=["every argument", "required only"])
@pytest.mark.parametrize(("name", "field"), DIRECT, ids=[name for name, _ in DIRECT])
def test_arguments_are_converted_as_strawberry_converts_them(
    name: str, field: StrawberryField, full: bool
) -> None:
    values = {
        SCHEMA.config.name_converter.from_argument(a): _sample(a.type, full)
        for a in field.arguments
        if full or not isinstance(a.type, StrawberryOptional)
    }
    of = keywords(SCHEMA, field)
    assert of is not None
    expected = convert_arguments(
        values,
        field.arguments,
        scalar_registry=SCHEMA.schema_converter.scalar_registry,
        config=SCHEMA.config,
    )
    assert of(values) == expected


class Never(BasePermission):
    message = "no"

    def has_permission(self, source: Any, info: strawberry.Info, **kwargs: Any) -> bool:
        return False


@strawberry.input
class Where:
    node: GlobalID


@strawberry.type
class Query:
    @strawberry.field
    def plain(self, info: strawberry.Info, first: int | None = None) -> int:
        return first or 0

    @strawberry.field(permission_classes=[Never])  # type: ignore[untyped-decorator]
    def guarded(self) -> int | None:
        return 1

    @strawberry.field
    def by_global_id(self, id: GlobalID) -> str:
        return id.node_id

    @strawberry.field
    def by_input(self, where: Where) -> str:
        return where.node.node_id


def test_fields_strawberry_must_wrap_keep_its_wrapper() -> None:
    schema = strawberry.Schema(Query)
    assert direct(schema) == 1  # `plain` only
    fields = schema._schema.query_type.fields  # type: ignore[union-attr]
    assert fields["plain"].resolve.__qualname__.startswith("_direct.")
    for kept in ("guarded", "byGlobalId", "byInput"):
        assert not fields[kept].resolve.__qualname__.startswith("_direct."), kept
    result = schema.execute_sync(
        '{ plain(first: 3) guarded byGlobalId(id: "UXVlcnk6Nw==") '
        'byInput(where: {node: "UXVlcnk6OA=="}) }'
    )
    assert result.data == {"plain": 3, "guarded": None, "byGlobalId": "7", "byInput": "8"}
    assert [e.message for e in result.errors or []] == ["no"]
