"""The per-request GraphQL context: who is calling, the database, fresh loaders."""

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.types import Info as StrawberryInfo

from billgraph.db.engine import Database
from billgraph.events.hub import Hub
from billgraph.schema.loaders import Loaders
from billgraph.services.api_keys import Principal
from billgraph.settings import Settings


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
    # This process's live-event subscribers (subscriptions over WebSocket).
    hub: Hub | None = None
    # A WebSocket's connection_init payload (the API key may be in it).
    connection_params: dict[str, object] | None = None
    # Unregisters an authenticated socket from the hub's revocation registry.
    forget_socket: Callable[[], None] = lambda: None
    # Set once the query cost is known, for the response's `extensions`.
    cost: int | None = field(default=None)

    @property
    def organization_id(self) -> int:
        if self.principal is None:  # the Authentication extension refuses such requests first
            raise UnauthenticatedError
        return self.principal.organization.id

    @cached_property
    def loaders(self) -> Loaders:
        return Loaders(self.database, self.organization_id)

    def fresh_loaders(self) -> None:
        """Forget the loaders' cache: a socket lives for hours, each event reads afresh."""
        self.__dict__.pop("loaders", None)


Info = StrawberryInfo[Context, None]
