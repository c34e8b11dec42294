"""The per-request GraphQL context: who is calling, the database, fresh loaders."""

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

from aiodataloader import DataLoader
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.types import Info as StrawberryInfo

from billgraph.api_keys.service import Principal
from billgraph.checkout.providers import Providers
from billgraph.customers.repository import CustomerRow
from billgraph.db.engine import Database
from billgraph.db.models import CheckoutSession, ProviderCustomer, Refund
from billgraph.graphql.billing.loaders import BillingLoaders
from billgraph.graphql.checkout.loaders import (
    SessionPageKey,
    checkout_session_loader,
    checkout_session_page_loader,
    provider_customers_loader,
    refund_loader,
    refunds_loader,
)
from billgraph.graphql.customers.loaders import customer_loader
from billgraph.graphql.ledger.loaders import EntryPageKey, entry_loader, entry_page_loader
from billgraph.graphql.wallets.loaders import (
    PagedKey,
    paged_wallets_loader,
    wallet_loader,
    wallets_by_customer_loader,
)
from billgraph.ledger.repository import LedgerEntryRow
from billgraph.live.hub import Hub
from billgraph.settings import Settings
from billgraph.wallets.repository import WalletRow


class Loaders:
    """This request's loaders, one set per organization and request. Each is made when a
    field first needs it: a request uses two or three of them, and making a DataLoader is
    not free."""

    def __init__(self, database: Database, organization_id: int) -> None:
        self._database = database
        self._organization_id = organization_id
        # What resolvers read ahead in their selection (graphql.lookahead), per field node.
        self.ahead: dict[tuple[int, tuple[str, ...]], dict[str, object] | None] = {}

    @cached_property
    def customer(self) -> "DataLoader[int, CustomerRow | None]":
        return customer_loader(self._database, self._organization_id)

    @cached_property
    def wallet(self) -> "DataLoader[int, WalletRow | None]":
        return wallet_loader(self._database, self._organization_id)

    @cached_property
    def wallets_by_customer(self) -> "DataLoader[int, list[WalletRow]]":
        return wallets_by_customer_loader(self._database, self._organization_id)

    @cached_property
    def paged_wallet(self) -> "DataLoader[PagedKey, list[WalletRow]]":
        return paged_wallets_loader(
            self._database,
            self._organization_id,
            self.wallet,
            self.ledger_page,
            by_customer=False,
        )

    @cached_property
    def paged_wallets_by_customer(self) -> "DataLoader[PagedKey, list[WalletRow]]":
        return paged_wallets_loader(
            self._database,
            self._organization_id,
            self.wallet,
            self.ledger_page,
            by_customer=True,
        )

    @cached_property
    def ledger_entry(self) -> "DataLoader[int, LedgerEntryRow | None]":
        return entry_loader(self._database, self._organization_id)

    @cached_property
    def ledger_page(self) -> "DataLoader[EntryPageKey, list[LedgerEntryRow]]":
        return entry_page_loader(self._database, self._organization_id)

    @cached_property
    def checkout_session(self) -> "DataLoader[int, CheckoutSession | None]":
        return checkout_session_loader(self._database, self._organization_id)

    @cached_property
    def checkout_session_page(self) -> "DataLoader[SessionPageKey, list[CheckoutSession]]":
        return checkout_session_page_loader(self._database, self._organization_id)

    @cached_property
    def refund(self) -> "DataLoader[int, Refund | None]":
        return refund_loader(self._database, self._organization_id)

    @cached_property
    def refunds(self) -> "DataLoader[int, list[Refund]]":
        return refunds_loader(self._database, self._organization_id)

    @cached_property
    def billing(self) -> BillingLoaders:
        return BillingLoaders(self._database, self._organization_id)

    @cached_property
    def provider_customers(self) -> "DataLoader[int, list[ProviderCustomer]]":
        return provider_customers_loader(self._database, self._organization_id)


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
