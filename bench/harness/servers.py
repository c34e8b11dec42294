"""The ceiling server (bench.ceiling under uvicorn, as `billgraph serve` runs the gateway) and
the worker processes of a multi-worker server, for per-worker CPU and for the profiler."""

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
from sqlalchemy.engine import make_url

from bench.harness.processes import HOST, ROOT, Gateway, free_port, process_table
from bench.harness.progress import progress
from billgraph.settings import Settings


def libpq_url(database_url: str) -> str:
    """postgresql://... for asyncpg from the gateway's postgresql+asyncpg://... URL."""
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


async def start_ceiling(
    database_url: str,
    workdir: Path,
    *,
    workers: int,
    env: dict[str, str] | None = None,
    label: str = "step 0",
) -> Gateway:
    """bench.ceiling under `uvicorn --factory --workers N` on a free port, healthy: the same
    server, loop, HTTP parser and keep-alive as `billgraph serve`; `env` adds variables."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "bench.ceiling:create_app",
        "--factory",
        "--host",
        HOST,
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--log-level",
        "warning",
        "--no-access-log",
        "--timeout-keep-alive",
        str(Settings.model_fields["http_keep_alive_seconds"].default),
    ]
    environment = {**os.environ, "CEILING_DSN": libpq_url(database_url), **(env or {})}
    log_path = workdir / "ceiling.log"
    progress(f"{label}: starting the ceiling: {' '.join(command[1:])}")
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Gateway(process, port, log_path)
    deadline = time.monotonic() + 60
    async with httpx.AsyncClient(timeout=2) as client:
        while True:
            if not server.alive():
                raise RuntimeError(
                    f"the ceiling exited with {process.returncode}:\n{server.log_tail()}"
                )
            try:
                if (await client.get(f"{server.base_url}/healthz")).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"the ceiling did not answer /healthz in 60 s:\n{server.log_tail()}"
                )
            await asyncio.sleep(0.2)
    progress(f"{label}: ceiling healthy at {server.base_url} (pid {process.pid})")
    return server


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


async def worker_pids(server: Gateway, expected: int, timeout: float = 30) -> list[int]:
    """The pids of the server's uvicorn workers (multiprocessing spawn children), in pid
    order; waits until there are `expected` of them."""
    deadline = time.monotonic() + timeout
    while True:
        table = process_table()
        found = sorted(
            pid
            for pid, (ppid, _) in table.items()
            if ppid == server.process.pid and "spawn_main" in _cmdline(pid)
        )
        if len(found) >= expected or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.2)
