"""bench.live, step 2: gateway A's memory and CPU with 1,000 idle subscribed sockets, after a
warm-up that gives its baseline what any busy process holds."""

import asyncio
import math
import time
from dataclasses import dataclass

import httpx

from bench.harness.cpu import CpuMeter
from bench.harness.http import RawConnection
from bench.harness.processes import HOST, Gateway, process_table, tree
from bench.harness.progress import progress
from bench.harness.report import Table
from bench.harness.seed import Seeded
from bench.live_deliveries import post_debit
from bench.live_gateways import await_subscribers, rss_kb, ws_url
from bench.live_subscribers import SUB_WALLET, SubscriberProcesses

IDLE_SECONDS = 3.0


@dataclass
class Memory:
    before_kb: int  # gateway A after warm-up
    after_kb: int  # with the sockets subscribed and idle
    sockets: int
    processes: int  # in the gateway's tree
    idle_gateway_cores: float
    open_seconds: float  # to open the sockets and register their subscriptions
    after_deliveries_kb: int = 0  # after step 3

    @property
    def per_subscriber_kb(self) -> float:
        return (self.after_kb - self.before_kb) / self.sockets if self.sockets else math.nan

    def table(self) -> Table:
        header = [
            "gateway A RSS before",
            "with 1,000 idle sockets",
            "per subscriber",
            "after step 3",
            "processes",
            "cores busy, idle sockets",
            "time to open 1,000",
        ]
        row = [
            f"{self.before_kb / 1024:,.1f} MB",
            f"{self.after_kb / 1024:,.1f} MB",
            f"{self.per_subscriber_kb:,.1f} KB",
            f"{self.after_deliveries_kb / 1024:,.1f} MB",
            str(self.processes),
            f"{self.idle_gateway_cores:.2f}",
            f"{self.open_seconds:.1f} s",
        ]
        return Table("Memory of the subscribers' gateway:", header, [row])


async def warm_up(gateway: Gateway, writer: Gateway, seeded: Seeded) -> None:
    """Fill the subscriber gateway's connection pool and run its socket path once, so that its
    memory baseline holds what any busy process holds."""
    headers = {"authorization": f"Bearer {seeded.api_key}"}
    async with httpx.AsyncClient(base_url=gateway.base_url, timeout=30, headers=headers) as client:
        for _ in range(3):
            replies = await asyncio.gather(
                *(client.post("/graphql", json={"query": "{ __typename }"}) for _ in range(40))
            )
            assert all(r.status_code == 200 for r in replies), replies[0].text
    subscribers = await SubscriberProcesses.start(1)
    try:
        wallets = seeded.wallets[-10:]  # not watched later
        opened, failed, failures = await subscribers.open(ws_url(gateway), seeded.api_key, wallets)
        if failed:
            raise RuntimeError(f"warm-up sockets failed: {failures}")
        await await_subscribers(gateway, opened, timeout=30)
        versions = {}
        async with RawConnection(HOST, writer.port, seeded.api_key) as connection:
            for customer, wallet in zip(seeded.customers[-10:], wallets, strict=True):
                versions[wallet] = (await post_debit(connection, customer, wallet, "warm")).version
        behind = await subscribers.wait(SUB_WALLET, versions, timeout=10)
        if behind:
            raise RuntimeError(
                f"warm-up: {behind} of 10 sockets got no event in 10 s; see the gateway logs"
            )
    finally:
        await subscribers.close()


async def open_sockets(
    a: Gateway, subscribers: SubscriberProcesses, meter: CpuMeter, watch: list[str], key: str
) -> Memory:
    """Socket i on wallet watch[i], all registered; gateway A's memory and CPU with them idle."""
    before_kb = rss_kb(a.process.pid)
    wallets = len(set(watch))
    progress(
        f"step 2: opening {len(watch):,} sockets to gateway A from "
        f"{len(subscribers.processes)} processes, {len(watch) // wallets} per wallet on "
        f"{wallets} wallets (gateway A RSS {before_kb / 1024:.1f} MB)"
    )
    started = time.monotonic()
    opened, failed, failures = await subscribers.open(ws_url(a), key, watch)
    registered = await await_subscribers(a, len(watch))
    open_seconds = time.monotonic() - started
    progress(
        f"step 2: {opened:,} sockets open, {registered:,.0f} subscriptions registered in "
        f"{open_seconds:.1f} s; {failed} failed"
    )
    for failure in failures:
        progress(f"  error: {failure}")
    if failed or registered < len(watch):
        raise RuntimeError(
            f"only {registered:.0f} of {len(watch)} subscriptions registered:\n{a.log_tail()}"
        )
    idle_before = meter.snapshot()
    await asyncio.sleep(IDLE_SECONDS)  # idle: only keep-alive pings
    idle = CpuMeter.usage(idle_before, meter.snapshot())
    processes = len(tree(a.process.pid, process_table()))
    memory = Memory(
        before_kb, rss_kb(a.process.pid), opened, processes, idle["gateway"], open_seconds
    )
    progress(
        f"step 2: gateway A RSS {memory.before_kb / 1024:.1f} MB -> "
        f"{memory.after_kb / 1024:.1f} MB with {opened:,} idle sockets: "
        f"{memory.per_subscriber_kb:.1f} KB per subscriber; {memory.idle_gateway_cores:.2f} "
        "cores busy while idle"
    )
    return memory
