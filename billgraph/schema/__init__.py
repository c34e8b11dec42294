"""The GraphQL surface: one Strawberry schema built from the root types and the limits."""

import strawberry
from graphql import ASTValidationRule, GraphQLError, ValidationContext
from strawberry.extensions import (
    AddValidationRules,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    ValidationCache,
)
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext

# The object types come first: the resolvers they call import them back (see types.py).
from billgraph.schema import types as _types  # noqa: F401  # isort: skip
from billgraph.schema.extensions import Authentication, StreamErrors
from billgraph.schema.limits import QueryLimits
from billgraph.schema.mutation import Mutation
from billgraph.schema.query import Query
from billgraph.schema.scalars import SCALAR_MAP
from billgraph.schema.subscription import Subscription
from billgraph.settings import Settings


class Schema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Client errors are answers, not incidents: present_errors logs the unexpected ones."""


def _tolerate_unknown_fragments(rule: type[ASTValidationRule]) -> type[ASTValidationRule]:
    """Strawberry's depth rule raises KeyError on a spread of an undefined fragment; the
    standard KnownFragmentNames rule already reports that as a validation error."""

    class Rule(rule):  # type: ignore[valid-type,misc]
        def __init__(self, context: ValidationContext) -> None:
            try:
                super().__init__(context)
            except KeyError:
                ASTValidationRule.__init__(self, context)

    return Rule


def build_schema(settings: Settings) -> strawberry.Schema:
    # The rule classes are made once: the validation cache is keyed by them, so fresh classes
    # per request would make every lookup a miss.
    limit_rules = [
        *(
            _tolerate_unknown_fragments(rule)
            for rule in QueryDepthLimiter(max_depth=settings.max_query_depth).validation_rules
        ),
        *MaxAliasesLimiter(max_alias_count=settings.max_aliases).validation_rules,
    ]
    return Schema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        config=StrawberryConfig(scalar_map=SCALAR_MAP, disable_field_suggestions=True),
        extensions=[
            lambda: MaxTokensLimiter(max_token_count=settings.max_tokens),
            lambda: ParserCache(maxsize=256),
            lambda: AddValidationRules(limit_rules),
            lambda: ValidationCache(maxsize=256),
            Authentication,
            StreamErrors,
            lambda: QueryLimits(settings.max_query_cost, settings.max_mutations_per_document),
        ],
    )
