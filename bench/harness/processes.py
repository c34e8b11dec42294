"""The gateways under test (`billgraph serve` subprocesses) and the process table that CPU and
memory figures are read from."""

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.harness.progress import progress

ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def process_table() -> dict[int, tuple[int, int]]:
    """pid -> (parent pid, utime+stime+cutime+cstime in clock ticks) for every live process."""
    table: dict[int, tuple[int, int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as f:
                data = f.read()
        except OSError:
            continue
        # The command name may hold spaces and parentheses: the fields start after the last ')'.
        rest = data[data.rindex(")") + 2 :].split()
        table[int(entry.name)] = (int(rest[1]), sum(int(x) for x in rest[11:15]))
    return table


def tree(root: int, table: dict[int, tuple[int, int]]) -> list[int]:
    """`root` and its live descendants; empty if `root` is gone."""
    if root not in table:
        return []
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    found, stack = [], [root]
    while stack:
        pid = stack.pop()
        found.append(pid)
        stack.extend(children.get(pid, []))
    return found


@dataclass
class Gateway:
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def name(self) -> str:
        return self.log_path.stem

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL to the whole process group after 20 s; the exit code."""
        if self.alive():
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                progress(f"{self.name} did not stop in 20 s after SIGTERM; killing its group")
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        return self.process.returncode


def _spawn(command: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    # A file, not a pipe: nobody reads the log while the benchmark runs.
    with open(log_path, "wb") as log:
        # Its own session, so that stopping it can kill its workers with it.
        return subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )


async def start_gateway(
    database_url: str,
    workdir: Path,
    *,
    workers: int,
    env: dict[str, str] | None = None,
    name: str = "gateway",
    label: str = "step 0",
) -> Gateway:
    """`billgraph serve` on a free port, rate limit off, healthy; `env` adds BILLGRAPH_*
    settings, `name` names its log (in `workdir`), `label` prefixes the progress lines."""
    port = free_port()
    executable = Path(sys.executable).parent / "billgraph"
    if not executable.exists():
        executable = ROOT / ".venv" / "bin" / "billgraph"
    command = [
        str(executable),
        "serve",
        "--database-url",
        database_url,
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    environment = {
        **os.environ,
        "BILLGRAPH_RATE_LIMIT_PER_SECOND": "0",
        "BILLGRAPH_LOG_LEVEL": "WARNING",
        **(env or {}),
    }
    log_path = workdir / f"{name.replace(' ', '-')}.log"
    progress(f"{label}: starting the {name}: {' '.join(command)}")
    process = _spawn(command, environment, log_path)
    gateway = Gateway(process, port, log_path)
    deadline = time.monotonic() + 60
    async with httpx.AsyncClient(timeout=2) as client:
        while True:
            if not gateway.alive():
                raise RuntimeError(
                    f"billgraph serve exited with {process.returncode}:\n{gateway.log_tail()}"
                )
            try:
                if (await client.get(f"{gateway.base_url}/healthz")).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"billgraph serve did not answer /healthz in 60 s:\n{gateway.log_tail()}"
                )
            await asyncio.sleep(0.2)
    progress(f"{label}: {name} healthy at {gateway.base_url} (pid {process.pid})")
    return gateway
