"""WebSocket protocol handlers for /graphql: Strawberry's, plus keep-alive pings on
graphql-transport-ws (Strawberry sends "ka" only on the legacy graphql-ws) and forgetting a
socket in the revocation registry once it is gone."""

import asyncio
from contextlib import suppress

from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler

from billgraph.schema.context import Context


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
    async def handle(self) -> None:
        try:
            await super().handle()
        finally:
            self.context.forget_socket()
