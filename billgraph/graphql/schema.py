"""The schema: root types composed from each domain's queries and mutations, and the limits."""

from functools import partial

import strawberry
from graphql import GraphQLError
from opentelemetry.trace import Tracer
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext

from billgraph.graphql.api_keys.mutations import ApiKeyMutations
from billgraph.graphql.billing.coupons import CouponMutations, CouponQueries
from billgraph.graphql.billing.mutations import BillingMutations
from billgraph.graphql.billing.portal import BillingPortalMutations
from billgraph.graphql.checkout.mutations import CheckoutMutations
from billgraph.graphql.currencies import CurrencyQueries
from billgraph.graphql.customers.mutations import CustomerMutations
from billgraph.graphql.customers.queries import CustomerQueries
from billgraph.graphql.execution import LeanExecution
from billgraph.graphql.extensions.auth import Authentication
from billgraph.graphql.extensions.documents import DocumentChecks, Documents
from billgraph.graphql.extensions.errors import DatabaseOutage, StreamErrors
from billgraph.graphql.extensions.limits import Costs, QueryLimits
from billgraph.graphql.extensions.tracing import OperationTracing
from billgraph.graphql.ledger.mutations import LedgerMutations
from billgraph.graphql.live.subscriptions import SubscriptionRoot
from billgraph.graphql.node import NodeQueries
from billgraph.graphql.organizations.queries import OrganizationQueries
from billgraph.graphql.resolvers import direct
from billgraph.graphql.scalars import SCALAR_MAP
from billgraph.graphql.wallets.mutations import WalletMutations
from billgraph.graphql.wallets.queries import WalletQueries
from billgraph.settings import Settings


# Each domain brings its part of the roots, listed in this order.
@strawberry.type
class Query(
    NodeQueries,
    OrganizationQueries,
    CustomerQueries,
    WalletQueries,
    CurrencyQueries,
    CouponQueries,
):
    pass


@strawberry.type
class Mutation(
    CustomerMutations,
    LedgerMutations,
    CheckoutMutations,
    BillingMutations,
    CouponMutations,
    BillingPortalMutations,
    WalletMutations,
    ApiKeyMutations,
):
    pass


class Schema(strawberry.Schema):
    """Strawberry's schema, with the document and cost caches its extensions share with the
    view's lean path, and whether a tracer wraps each operation."""

    documents: Documents
    costs: Costs
    traced: bool

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Client errors are answers, not incidents: present_errors logs the unexpected ones."""


def build_schema(settings: Settings, tracer: Tracer | None = None) -> Schema:
    """The schema; with a `tracer`, a span per operation (without, no tracing hook at all)."""
    tracing = [] if tracer is None else [partial(OperationTracing, tracer)]
    documents = Documents(settings.max_tokens, settings.max_query_depth, settings.max_aliases)
    costs = Costs(settings.max_query_cost, settings.max_mutations_per_document)
    schema = Schema(
        query=Query,
        mutation=Mutation,
        subscription=SubscriptionRoot,
        execution_context_class=LeanExecution,
        config=StrawberryConfig(scalar_map=SCALAR_MAP, disable_field_suggestions=True),
        extensions=[
            *tracing,  # first: its span wraps the other hooks
            lambda: DocumentChecks(documents),  # tokens, depth, aliases; validation
            Authentication,
            StreamErrors,
            DatabaseOutage,
            lambda: QueryLimits(costs),
        ],
    )
    direct(schema)  # resolvers without Strawberry's per-call wrapper where it does nothing
    schema.documents = documents
    schema.costs = costs
    schema.traced = tracer is not None
    return schema
