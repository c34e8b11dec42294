"""bench.live's gateways: started and stopped as the steps need them, their logs read for
warnings, their metrics and memory read while they run."""

import asyncio
import math
import re
import time

import httpx

from bench.harness.processes import Gateway, process_table, start_gateway, tree
from bench.harness.progress import progress
from bench.harness.runner import Run

# A listener that reconnected or a failed dispatch would explain odd figures.
_WARNING = re.compile(r'"level": "(warning|error|critical)"|Traceback|ERROR')


class Gateways:
    """The gateways of a run: every one is stopped however the run ends."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self.running: list[Gateway] = []
        self.warnings: list[str] = []  # warning and error lines of the stopped ones' logs

    async def start(self, name: str, *, workers: int, broker: str, label: str) -> Gateway:
        """A gateway with BILLGRAPH_EVENT_BROKER=`broker`."""
        gateway = await start_gateway(
            self.run.server.url,
            self.run.workdir,
            workers=workers,
            env={"BILLGRAPH_EVENT_BROKER": broker},
            name=name,
            label=label,
        )
        self.running.append(gateway)
        return gateway

    async def stop(self, gateway: Gateway) -> None:
        self.running.remove(gateway)
        code = await asyncio.to_thread(gateway.stop)
        progress(f"{gateway.name} exited with {code}")
        for line in gateway.log_path.read_text(errors="replace").splitlines():
            if _WARNING.search(line):
                self.warnings.append(f"{gateway.name}: {line[:300]}")

    async def stop_all(self) -> None:
        for gateway in list(self.running):
            progress(f"stopping {gateway.name}")
            await self.stop(gateway)


def ws_url(gateway: Gateway) -> str:
    return gateway.base_url.replace("http://", "ws://") + "/graphql"


def rss_kb(pid: int) -> int:
    """Resident memory of `pid` and its descendants (with --workers 1, uvicorn serves in the
    `billgraph serve` process itself: the tree is one process)."""
    total = 0
    for each in tree(pid, process_table()):
        try:
            with open(f"/proc/{each}/status") as f:
                total += next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
        except (OSError, StopIteration):
            pass
    return total


async def metric(client: httpx.AsyncClient, gateway: Gateway, name: str) -> float:
    """A sample of the process that answers /metrics (the only one at --workers 1)."""
    body = (await client.get(f"{gateway.base_url}/metrics")).text
    found = re.search(rf"^{re.escape(name)} (\S+)$", body, re.MULTILINE)
    return float(found.group(1)) if found else math.nan


async def await_subscribers(gateway: Gateway, expected: int, timeout: float = 60) -> float:
    """Subscriptions register once the gateway starts their stream, after the subscribe
    message: wait for its gauge rather than guess."""
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=10) as client:
        while True:
            count = await metric(client, gateway, "billgraph_subscribers")
            if count >= expected or time.monotonic() > deadline:
                return count
            await asyncio.sleep(0.2)
