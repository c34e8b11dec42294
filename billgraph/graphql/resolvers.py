"""Resolvers called directly, without Strawberry's per-call wrapper.

For every field with a resolver, Strawberry's wrapper builds an Info, converts the arguments
(a walk over each argument's type), chains the field's extensions, calls the resolver and, for
an async one, awaits it inside a coroutine of its own: paid per call, 21 times on a customers
page. For a field whose arguments are scalars, enums, lists of them or plain input types
(whose conversion a function built once can do) and that has no field extensions, no
exception handlers and no field class of its own, `direct` installs a resolve function that
does only what the wrapper would have done: the Info, the converted arguments, the call (a
coroutine is returned to graphql-core, which awaits it). Anything else keeps Strawberry's
wrapper.
"""

from collections.abc import Callable
from dataclasses import MISSING
from types import FunctionType
from typing import Any

from graphql import GraphQLObjectType, GraphQLResolveInfo
from strawberry import Schema
from strawberry.relay import GlobalID
from strawberry.scalars import is_scalar
from strawberry.types.base import (
    StrawberryList,
    StrawberryMaybe,
    StrawberryOptional,
    has_object_definition,
)
from strawberry.types.enum import StrawberryEnumDefinition, has_enum_definition
from strawberry.types.field import StrawberryField
from strawberry.types.unset import UNSET

from billgraph.graphql.execution import STRAWBERRY

Resolve = Callable[..., Any]
Convert = Callable[[Any], Any]
# (GraphQL name, Python name, converter) of an argument or an input field.
Conversions = tuple[tuple[str, str, Convert], ...]


def _same(value: Any) -> Any:
    return value


def _converter(schema: Schema, type_: Any) -> Convert | None:
    """What Strawberry's convert_argument does to a value of `type_`, built once; None for a
    type this does not cover (Maybe, GlobalID, lazy and generic types, input types that build
    their own value), whose fields keep Strawberry's wrapper."""
    if isinstance(type_, StrawberryMaybe):
        return None
    if isinstance(type_, StrawberryOptional):
        return _converter(schema, type_.of_type)  # null and absent need nothing more
    if type_ is GlobalID:
        return None
    if (
        is_scalar(type_, schema.schema_converter.scalar_registry)
        or isinstance(type_, StrawberryEnumDefinition)
        or has_enum_definition(type_)
    ):
        return _same
    if isinstance(type_, StrawberryList):
        item = _converter(schema, type_.of_type)
        if item is None:
            return None
        if item is _same:
            # Copied, as Strawberry does: graphql-core shares a default value between requests.
            return lambda value: None if value is None else list(value)
        return lambda value: None if value is None else [item(v) for v in value]
    if not has_object_definition(type_):
        return None
    definition = type_.__strawberry_definition__
    if not definition.is_input or definition.from_input is not None:
        return None
    if definition.is_graphql_generic:
        return None
    fields = _conversions(
        schema, [(f, schema.config.name_converter.from_field(f)) for f in definition.fields]
    )
    if fields is None:
        return None
    # Fields without a default start as None (graphql-core has checked the required ones).
    unset = {
        f.python_name: None
        for f in definition.fields
        if f.default_value is MISSING and f.default_factory is MISSING
    }

    def build(value: Any) -> Any:
        if value is None or value is UNSET:
            return value
        kwargs = dict(unset)
        for name, python, convert in fields:
            if name in value:
                kwargs[python] = convert(value[name])
        return type_(**kwargs)

    return build


def _conversions(schema: Schema, named: list[tuple[Any, str]]) -> Conversions | None:
    """Of each (argument or input field, its GraphQL name); None if one is not covered."""
    conversions = []
    for item, name in named:
        convert = _converter(schema, item.type)
        if convert is None:
            return None
        conversions.append((name, item.python_name, convert))
    return tuple(conversions)


Keywords = Callable[[dict[str, Any]], dict[str, Any]]


def keywords(schema: Schema, field: StrawberryField) -> Keywords | None:
    """The resolver's keyword arguments from graphql-core's argument values, as Strawberry's
    convert_arguments makes them; None if an argument's type is not covered."""
    names = schema.config.name_converter
    arguments = _conversions(schema, [(a, names.from_argument(a)) for a in field.arguments])
    if arguments is None:
        return None
    # Most arguments are scalars and enums, passed on as they are.
    renames = tuple((name, python) for name, python, convert in arguments if convert is _same)
    converts = tuple(a for a in arguments if a[2] is not _same)

    def of(values: dict[str, Any]) -> dict[str, Any]:
        kwargs = {python: values[name] for name, python in renames if name in values}
        for name, python, convert in converts:
            if name in values:
                kwargs[python] = convert(values[name])
        return kwargs

    return of


def _direct(schema: Schema, field: StrawberryField) -> Resolve | None:
    """The resolve function for `field`, None if Strawberry's wrapper must stay."""
    resolver = field.base_resolver
    if type(field) is not StrawberryField or resolver is None or field.extensions:
        return None
    if field.is_subscription or resolver.parent_parameter or resolver.root_parameter:
        return None
    keywords_of = keywords(schema, field)
    function = resolver.wrapped_func
    # Not a plain function: a staticmethod or classmethod object, Strawberry's wrapper knows them.
    if keywords_of is None or not isinstance(function, FunctionType):
        return None
    with_self = resolver.self_parameter is not None
    info_name = resolver.info_parameter.name if resolver.info_parameter else None
    info_class = schema.config.info_class

    def resolve(source: Any, info: "GraphQLResolveInfo[Any]", **arguments: Any) -> Any:
        kwargs = keywords_of(arguments)
        if info_name is not None:
            kwargs[info_name] = info_class(_raw_info=info, _field=field)
        return function(source, **kwargs) if with_self else function(**kwargs)

    resolve._is_default = False  # type: ignore[attr-defined]  # as Strawberry marks its own
    return resolve


def direct(schema: Schema) -> int:
    """Install direct resolve functions on `schema`'s eligible fields; how many."""
    if getattr(schema.schema_converter, "_exception_handler_specs", ()):
        return 0  # a handler may apply to any field: Strawberry's wrapper runs it
    count = 0
    for type_ in schema._schema.type_map.values():
        if not isinstance(type_, GraphQLObjectType) or type_.name.startswith("__"):
            continue
        for graphql_field in type_.fields.values():
            definition = (graphql_field.extensions or {}).get(STRAWBERRY)
            if isinstance(definition, StrawberryField):
                resolve = _direct(schema, definition)
                if resolve is not None:
                    graphql_field.resolve = resolve
                    count += 1
    return count
