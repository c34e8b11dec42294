"""A lean HTTP/1.1 keep-alive client for the write load.

httpx spends more CPU per request than the gateway does; on a 2-core machine shared by load
generator, gateway and PostgreSQL, that would measure the client. This one writes
pre-formatted requests and reads Content-Length bodies, nothing more.
"""

import asyncio
import contextlib
from types import TracebackType


class RequestFailed(Exception):
    """No answer: refused, reset or malformed. The connection is closed; the next post reopens
    it."""


class RawConnection:
    """POSTs JSON to `path` (/graphql with an API key; a webhook endpoint with none), on one
    connection opened at the first request."""

    def __init__(self, host: str, port: int, api_key: str | None, path: str = "/graphql") -> None:
        self.host, self.port = host, port
        authorization = f"Authorization: Bearer {api_key}\r\n" if api_key is not None else ""
        self.head = (
            f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n{authorization}"
            "Content-Type: application/json\r\n"
        ).encode()
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, body: bytes, headers: bytes = b"") -> tuple[int, str]:
        """The response's status and body; `headers` are more header lines, each ending in
        CRLF (a webhook's signature)."""
        try:
            if self.reader is None or self.writer is None:
                self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
            self.writer.write(
                self.head
                + headers
                + b"Content-Length: "
                + str(len(body)).encode()
                + b"\r\n\r\n"
                + body
            )
            head = await self.reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            status = int(lines[0].split(" ", 2)[1])
            length = next(
                int(value)
                for name, _, value in (line.partition(":") for line in lines[1:])
                if name.lower() == "content-length"
            )
            return status, (await self.reader.readexactly(length)).decode()
        except (OSError, asyncio.IncompleteReadError, ValueError, StopIteration) as exc:
            await self.close()
            raise RequestFailed(f"{type(exc).__name__}: {exc}") from exc

    async def close(self) -> None:
        writer, self.reader, self.writer = self.writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):  # the peer dropped it first: closed either way
                await writer.wait_closed()

    async def __aenter__(self) -> "RawConnection":
        return self

    async def __aexit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _traceback: TracebackType | None,
    ) -> None:
        await self.close()
