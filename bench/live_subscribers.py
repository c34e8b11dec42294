"""bench.live's subscribers: processes of their own (`python -m bench.live_subscribers`), so that
their CPU is the load generator's, not the gateway's, each holding hundreds of
graphql-transport-ws sockets with walletBalanceChanged subscriptions.

The parent drives each process with JSON lines on its stdin and reads one JSON line back per
command on its stdout. Receipt times are taken the moment a frame is handed over.
"""

import asyncio
import contextlib
import json
import math
import os
import resource
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from bench.harness.processes import ROOT

OPEN_CONCURRENCY = 50  # handshakes in flight per subscriber process
SUB_WALLET, SUB_HOT = "1", "2"  # subscription ids on every socket: its own wallet, the hot one

BALANCE_CHANGED = (
    "subscription($w: ID) { walletBalanceChanged(walletId: $w) { version balance entry { id } } }"
)
PONG = json.dumps({"type": "pong"})

Receipt = tuple[int, str, int, float]  # socket index, subscription id, version, wall clock


def raise_open_files_limit() -> int:
    """1,000 sockets need more descriptors than a default soft limit of 1,024; children
    (gateways, subscriber processes) inherit the raised limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        soft = hard if hard != resource.RLIM_INFINITY else max(soft, 65_536)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    return soft


class _Socket:
    __slots__ = ("connection", "index", "last", "wallets")

    def __init__(self, index: int, connection: ClientConnection) -> None:
        self.index = index
        self.connection = connection
        self.wallets: dict[str, str] = {}  # subscription id -> wallet global id
        self.last: dict[str, int] = {}  # subscription id -> highest version received


class SubscriberProcess:
    """The child's side: one method per command."""

    def __init__(self) -> None:
        self.sockets: list[_Socket] = []
        self.readers: set[asyncio.Task[None]] = set()
        self.receipts: list[Receipt] = []
        self.errors: list[str] = []
        self.closing = False

    async def _open_one(self, url: str, api_key: str, index: int, wallet: str) -> None:
        # Library defaults otherwise (permessage-deflate on, as browsers offer); no client pings:
        # a busy gateway would be dropped for a late pong, and the server pings anyway.
        connection = await ws_connect(
            url,
            subprotocols=[Subprotocol("graphql-transport-ws")],
            open_timeout=60,
            ping_interval=None,
        )
        try:
            init = {"type": "connection_init", "payload": {"authorization": f"Bearer {api_key}"}}
            await connection.send(json.dumps(init))
            ack = json.loads(await asyncio.wait_for(connection.recv(), 60))
            if ack.get("type") != "connection_ack":
                raise RuntimeError(f"no connection_ack: {ack}")
        except BaseException:
            await connection.close()
            raise
        sock = _Socket(index, connection)
        self.sockets.append(sock)
        await self._subscribe(sock, SUB_WALLET, wallet)
        task = asyncio.create_task(self._read(sock))
        self.readers.add(task)
        task.add_done_callback(self.readers.discard)

    async def _subscribe(self, sock: _Socket, subscription: str, wallet: str) -> None:
        sock.wallets[subscription] = wallet
        payload = {"query": BALANCE_CHANGED, "variables": {"w": wallet}}
        await sock.connection.send(
            json.dumps({"id": subscription, "type": "subscribe", "payload": payload})
        )

    async def _read(self, sock: _Socket) -> None:
        try:
            async for raw in sock.connection:
                received = time.time()
                message = json.loads(raw)
                kind = message.get("type")
                if kind == "next":
                    payload = message.get("payload") or {}
                    data = (payload.get("data") or {}).get("walletBalanceChanged")
                    if payload.get("errors") or data is None:
                        self.errors.append(f"socket {sock.index}: {str(raw)[:300]}")
                        continue
                    subscription, version = message["id"], int(data["version"])
                    sock.last[subscription] = max(version, sock.last.get(subscription, 0))
                    self.receipts.append((sock.index, subscription, version, received))
                elif kind == "ping":
                    await sock.connection.send(PONG)
                elif kind != "pong":
                    self.errors.append(f"socket {sock.index}: {str(raw)[:300]}")
        except ConnectionClosed as closed:
            if not self.closing:
                self.errors.append(f"socket {sock.index} closed: {closed}")

    async def open(self, request: dict[str, Any]) -> dict[str, Any]:
        gate = asyncio.Semaphore(request["concurrency"])
        failures: list[str] = []

        async def one(index: int, wallet: str) -> None:
            async with gate:
                try:
                    await self._open_one(request["url"], request["api_key"], index, wallet)
                except Exception as exc:  # noqa: BLE001 - counted and reported by the parent
                    failures.append(f"socket {index}: {type(exc).__name__}: {exc}")

        started = time.monotonic()
        wallets = request["wallets"]
        await asyncio.gather(*(one(request["base"] + i, w) for i, w in enumerate(wallets)))
        return {
            "opened": len(wallets) - len(failures),
            "failures": failures[:5],
            "failed": len(failures),
            "seconds": time.monotonic() - started,
        }

    async def subscribe(self, request: dict[str, Any]) -> dict[str, Any]:
        for sock in self.sockets:
            await self._subscribe(sock, request["subscription"], request["wallet"])
        return {"subscribed": len(self.sockets)}

    async def wait(self, request: dict[str, Any]) -> dict[str, Any]:
        """Until every subscription `subscription` on a wallet of `targets` has received at
        least that wallet's target version, or `timeout`."""
        subscription, targets = request["subscription"], request["targets"]
        behind = [s for s in self.sockets if s.wallets.get(subscription) in targets]
        deadline = time.monotonic() + request["timeout"]
        while True:
            behind = [
                s for s in behind if s.last.get(subscription, 0) < targets[s.wallets[subscription]]
            ]
            if not behind or time.monotonic() > deadline:
                return {"behind": len(behind)}
            await asyncio.sleep(0.005)

    async def collect(self, _request: dict[str, Any]) -> dict[str, Any]:
        receipts, errors = self.receipts, self.errors
        self.receipts, self.errors = [], []
        return {"receipts": receipts, "errors": errors}

    async def close(self, _request: dict[str, Any]) -> dict[str, Any]:
        self.closing = True
        await asyncio.gather(*(s.connection.close() for s in self.sockets), return_exceptions=True)
        for task in list(self.readers):
            task.cancel()
        return {"closed": len(self.sockets)}

    async def serve(self, out: TextIO) -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=2**26)
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while line := await reader.readline():
            request = json.loads(line)
            reply = await getattr(self, request["command"])(request)
            out.write(json.dumps(reply, separators=(",", ":")) + "\n")
            out.flush()
            if request["command"] == "close":
                return


@dataclass
class SubscriberProcesses:
    """The parent's handle on the subscriber processes."""

    processes: list[asyncio.subprocess.Process]

    @classmethod
    async def start(cls, count: int) -> "SubscriberProcesses":
        processes = [
            await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bench.live_subscribers",
                cwd=ROOT,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                limit=2**26,
            )
            for _ in range(count)
        ]
        return cls(processes)

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.processes]

    async def _call(
        self, process: asyncio.subprocess.Process, request: dict[str, Any]
    ) -> dict[str, Any]:
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write(json.dumps(request).encode() + b"\n")
        await process.stdin.drain()
        line = await process.stdout.readline()
        if not line:
            raise RuntimeError(
                f"subscriber process {process.pid} exited ({await process.wait()}) "
                f"during {request['command']}"
            )
        return json.loads(line)  # type: ignore[no-any-return]

    async def each(self, requests: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """One request per process, concurrently."""
        calls = (self._call(p, r) for p, r in zip(self.processes, requests, strict=True))
        return list(await asyncio.gather(*calls))

    async def all(self, request: dict[str, Any]) -> list[dict[str, Any]]:
        return await self.each([request] * len(self.processes))

    async def open(self, url: str, api_key: str, wallets: list[str]) -> tuple[int, int, list[str]]:
        """Socket i watches wallets[i]; returns (opened, failed, failure samples)."""
        share = math.ceil(len(wallets) / len(self.processes))
        replies = await self.each(
            [
                {
                    "command": "open",
                    "url": url,
                    "api_key": api_key,
                    "base": n * share,
                    "wallets": wallets[n * share : (n + 1) * share],
                    "concurrency": OPEN_CONCURRENCY,
                }
                for n in range(len(self.processes))
            ]
        )
        return (
            sum(r["opened"] for r in replies),
            sum(r["failed"] for r in replies),
            [f for r in replies for f in r["failures"]],
        )

    async def subscribe(self, subscription: str, wallet: str) -> None:
        """A second subscription `subscription` on every socket, to `wallet`."""
        await self.all({"command": "subscribe", "subscription": subscription, "wallet": wallet})

    async def wait(self, subscription: str, targets: dict[str, int], timeout: float) -> int:
        """Subscriptions still behind their wallet's target version after at most `timeout`."""
        replies = await self.all(
            {
                "command": "wait",
                "subscription": subscription,
                "targets": targets,
                "timeout": timeout,
            }
        )
        return sum(r["behind"] for r in replies)

    async def collect(self) -> tuple[list[Receipt], list[str]]:
        """The receipts and errors since the last collect."""
        replies = await self.all({"command": "collect"})
        receipts: list[Receipt] = [tuple(x) for r in replies for x in r["receipts"]]
        return receipts, [e for r in replies for e in r["errors"]]

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.all({"command": "close"}), 30)
        for process in self.processes:
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await process.wait()


def main() -> int:
    raise_open_files_limit()
    # The protocol owns stdout; anything a library prints goes to stderr instead.
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    try:
        import uvloop  # the gateway's loop too (uvicorn); less client CPU on a shared machine
    except ImportError:
        asyncio.run(SubscriberProcess().serve(out))
    else:
        uvloop.run(SubscriberProcess().serve(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
