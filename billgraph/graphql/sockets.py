"""WebSocket protocol handlers for /graphql: Strawberry's, plus keep-alive pings on
graphql-transport-ws (Strawberry sends "ka" only on the legacy graphql-ws), one timely
connection_init on graphql-ws too, and forgetting a socket in the revocation registry once it
is gone."""

import asyncio
from contextlib import suppress

from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler
from strawberry.subscriptions.protocols.graphql_ws.types import ConnectionInitMessage

from billgraph.graphql.context import Context


class TransportWSHandler(BaseGraphQLTransportWSHandler[Context, None]):
    async def handle(self) -> None:
        pinger = asyncio.create_task(self._ping())
        try:
            await super().handle()
        finally:
            pinger.cancel()
            with suppress(asyncio.CancelledError):
                await pinger
            self.context.forget_socket()

    async def _ping(self) -> None:
        interval = self.view.keep_alive_interval or 15.0
        with suppress(Exception):  # the socket is gone: nothing left to keep alive
            while True:
                await asyncio.sleep(interval)
                if self.connection_acknowledged:
                    await self.send_message({"type": "ping"})


class LegacyWSHandler(BaseGraphQLWSHandler[Context, None]):
    """graphql-ws, held to graphql-transport-ws's rules: connection_init once, and in time."""

    async def handle(self) -> None:
        timeout = asyncio.create_task(self._init_timeout())
        try:
            await super().handle()
        finally:
            timeout.cancel()
            self.context.forget_socket()

    async def _init_timeout(self) -> None:
        await asyncio.sleep(self.view.connection_init_wait_timeout.total_seconds())
        if not self.connection_acknowledged:
            with suppress(Exception):
                await self.websocket.close(code=4408, reason="Connection initialisation timeout")

    async def handle_connection_init(self, message: ConnectionInitMessage) -> None:
        if self.connection_acknowledged:  # one key per socket, registered once
            await self.send_message(
                {
                    "type": "connection_error",
                    "payload": {"message": "Too many initialisation requests"},
                }
            )
            await self.websocket.close(code=4429, reason="Too many initialisation requests")
            return
        await super().handle_connection_init(message)
