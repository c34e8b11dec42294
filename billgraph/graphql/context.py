"""The per-request GraphQL context: who is calling, the database, fresh loaders."""

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.types import Info as StrawberryInfo

from billgraph.api_keys.service import Principal
from billgraph.checkout.providers import Providers
from billgraph.db.engine import Database
from billgraph.graphql.checkout.loaders import (
    checkout_session_loader,
    checkout_session_page_loader,
    provider_customers_loader,
    refund_loader,
    refunds_loader,
)
from billgraph.graphql.customers.loaders import customer_loader
from billgraph.graphql.ledger.loaders import entry_loader, entry_page_loader
from billgraph.graphql.wallets.loaders import wallet_loader, wallets_by_customer_loader
from billgraph.live.hub import Hub
from billgraph.settings import Settings


class Loaders:
    """This request's loaders, one set per organization and request."""

    def __init__(self, database: Database, organization_id: int) -> None:
        self.customer = customer_loader(database, organization_id)
        self.wallet = wallet_loader(database, organization_id)
        self.wallets_by_customer = wallets_by_customer_loader(database, organization_id)
        self.ledger_entry = entry_loader(database, organization_id)
        self.ledger_page = entry_page_loader(database, organization_id)
        self.checkout_session = checkout_session_loader(database, organization_id)
        self.checkout_session_page = checkout_session_page_loader(database, organization_id)
        self.refund = refund_loader(database, organization_id)
        self.refunds = refunds_loader(database, organization_id)
        self.provider_customers = provider_customers_loader(database, organization_id)


class UnauthenticatedError(Exception):
    """Raised when a resolver needs a principal and the request has none."""


@dataclass
class Context:
    request: Request | WebSocket
    response: Response | WebSocket | None
    database: Database
    settings: Settings
    request_id: str
    principal: Principal | None = None
    # The payment providers (checkout sessions); the app builds them once.
    providers: Providers | None = None
    # This process's live-event subscribers (subscriptions over WebSocket).
    hub: Hub | None = None
    # A WebSocket's connection_init payload (the API key may be in it).
    connection_params: dict[str, object] | None = None
    # Unregisters an authenticated socket from the hub's revocation registry.
    forget_socket: Callable[[], None] = lambda: None

    @property
    def organization_id(self) -> int:
        if self.principal is None:  # the Authentication extension refuses such requests first
            raise UnauthenticatedError
        return self.principal.organization.id

    @property
    def payment_providers(self) -> Providers:
        if self.providers is None:
            self.providers = Providers(self.database, self.settings)
        return self.providers

    @cached_property
    def loaders(self) -> Loaders:
        return Loaders(self.database, self.organization_id)

    def fresh_loaders(self) -> None:
        """Forget the loaders' cache: a socket lives for hours, each event reads afresh."""
        self.__dict__.pop("loaders", None)


Info = StrawberryInfo[Context, None]
