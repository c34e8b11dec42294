"""Closed-loop write load over HTTP: each client sends its next debit when the last one answered."""

import asyncio
import itertools
import random
import time
from dataclasses import dataclass

from bench.harness.cpu import CpuMeter
from bench.harness.debits import WriteFailed, debit_body, debit_result
from bench.harness.http import RawConnection, RequestFailed
from bench.harness.processes import HOST, Gateway
from bench.harness.progress import progress
from bench.harness.report import percentile


@dataclass
class HttpResult:
    writes_per_second: float  # successes only
    p50_ms: float
    p99_ms: float
    errors: int
    cpu: dict[str, float]
    error_samples: list[str]
    requests: int = 0  # measured: successes and errors
    seconds: float = 0.0  # measured

    def log(self) -> None:
        """The result on the progress lines, with a few of its errors."""
        c = self.cpu
        progress(
            f"  -> {self.writes_per_second:,.1f} writes/s, p50 {self.p50_ms:.2f} ms, p99 "
            f"{self.p99_ms:.2f} ms, {self.errors} errors; cores busy: client {c['load']:.2f}, "
            f"gateway {c['gateway']:.2f}, postgres {c['postgres']:.2f}, "
            f"other processes {c['other']:.2f}"
        )
        for sample in self.error_samples:
            progress(f"  error: {sample}")


async def closed_loop(
    gateway: Gateway,
    api_key: str,
    customers: list[str],
    clients: int,
    seconds: float,
    warmup: float,
    tag: str,
    meter: CpuMeter,
) -> HttpResult:
    """`clients` keep-alive connections debiting customers (global ids) drawn at random, for
    `warmup` seconds and then `seconds` measured; `tag` keeps the keys and draws of runs apart."""
    counter = itertools.count()
    connections = [RawConnection(HOST, gateway.port, api_key) for _ in range(clients)]

    async def phase(duration: float, record: bool) -> tuple[list[float], list[str], float]:
        latencies: list[float] = []
        failures: list[str] = []
        start = time.perf_counter()
        deadline = start + duration

        async def worker(number: int) -> None:
            rng = random.Random(f"{tag}-{number}")
            connection = connections[number]
            while time.perf_counter() < deadline:
                customer = customers[0] if len(customers) == 1 else rng.choice(customers)
                phase_tag = "m" if record else "w"
                body = debit_body(customer, f"http-{tag}-{phase_tag}-{next(counter)}")
                t0 = time.perf_counter()
                try:
                    debit_result(*await connection.post(body))
                except (RequestFailed, WriteFailed) as exc:
                    failures.append(str(exc))
                else:
                    latencies.append(time.perf_counter() - t0)

        await asyncio.gather(*(worker(n) for n in range(clients)))
        return latencies, failures, time.perf_counter() - start

    try:
        if warmup > 0:
            _, warm_failures, _ = await phase(warmup, record=False)
            if warm_failures:
                progress(f"  warm-up: {len(warm_failures)} errors, e.g. {warm_failures[0]}")
        before = meter.snapshot()
        latencies, failures, elapsed = await phase(seconds, record=True)
        after = meter.snapshot()
    finally:
        for connection in connections:
            await connection.close()
    return HttpResult(
        writes_per_second=len(latencies) / elapsed,
        p50_ms=percentile(latencies, 50) * 1000,
        p99_ms=percentile(latencies, 99) * 1000,
        errors=len(failures),
        cpu=CpuMeter.usage(before, after),
        error_samples=failures[:5],
        requests=len(latencies) + len(failures),
        seconds=elapsed,
    )
