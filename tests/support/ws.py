"""A GraphQL-over-WebSocket client on the `websockets` library, speaking either protocol:
graphql-transport-ws (subscribe/next/complete, ping/pong) or the legacy graphql-ws
(start/data/complete, ka)."""

import asyncio
import itertools
import json
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

TRANSPORT_WS = "graphql-transport-ws"
LEGACY_WS = "graphql-ws"
PROTOCOLS = [TRANSPORT_WS, LEGACY_WS]

_ids = itertools.count(1)


class SocketClosed(Exception):
    def __init__(self, code: int | None, reason: str) -> None:
        super().__init__(f"socket closed: {code} {reason}")
        self.code = code
        self.reason = reason


class GraphQLSocket:
    def __init__(self, connection: ClientConnection, protocol: str) -> None:
        self.connection = connection
        self.protocol = protocol
        # Keep-alives seen: "ping" (graphql-transport-ws) or "ka" (graphql-ws).
        self.keep_alives = 0

    @classmethod
    async def open(
        cls, base_url: str, protocol: str, headers: dict[str, str] | None = None
    ) -> "GraphQLSocket":
        url = base_url.replace("http://", "ws://") + "/graphql"
        connection = await connect(
            url,
            subprotocols=[protocol],
            additional_headers=headers,
            open_timeout=10,  # type: ignore[list-item]
        )
        return cls(connection, protocol)

    async def send(self, message: dict[str, Any]) -> None:
        await self.connection.send(json.dumps(message))

    async def receive(self, timeout: float = 10) -> dict[str, Any]:
        """The next protocol message other than keep-alives (answering pings with pongs).
        Raises SocketClosed when the server closes the socket."""
        while True:
            try:
                raw = await asyncio.wait_for(self.connection.recv(), timeout)
            except ConnectionClosed as closed:
                frame = closed.rcvd
                raise SocketClosed(
                    frame.code if frame else None, frame.reason if frame else ""
                ) from None
            message: dict[str, Any] = json.loads(raw)
            if message.get("type") == "ping":
                self.keep_alives += 1
                await self.send({"type": "pong"})
                continue
            if message.get("type") == "ka":
                self.keep_alives += 1
                continue
            return message

    async def init(self, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        """connection_init; the server's answer (connection_ack, or connection_error)."""
        message: dict[str, Any] = {"type": "connection_init"}
        if payload is not None:
            message["payload"] = payload
        await self.send(message)
        return await self.receive()

    async def subscribe(self, query: str, variables: dict[str, Any] | None = None) -> str:
        operation_id = str(next(_ids))
        kind = "subscribe" if self.protocol == TRANSPORT_WS else "start"
        payload = {"query": query, "variables": variables or {}}
        await self.send({"id": operation_id, "type": kind, "payload": payload})
        return operation_id

    async def stop(self, operation_id: str) -> None:
        kind = "complete" if self.protocol == TRANSPORT_WS else "stop"
        await self.send({"id": operation_id, "type": kind})

    async def next_payload(self, timeout: float = 10) -> dict[str, Any]:
        """The next result (`next` / `data`): its payload {"data", "errors"?}. Any other
        message (error, complete) fails the test with the message itself."""
        message = await self.receive(timeout)
        assert message["type"] in ("next", "data"), message
        return message["payload"]  # type: ignore[no-any-return]

    async def close(self) -> None:
        await self.connection.close()


async def authenticated(base_url: str, api_key: str, protocol: str = TRANSPORT_WS) -> GraphQLSocket:
    socket = await GraphQLSocket.open(base_url, protocol)
    ack = await socket.init({"authorization": f"Bearer {api_key}"})
    assert ack["type"] == "connection_ack", ack
    return socket
