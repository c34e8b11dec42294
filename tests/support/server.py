"""A real gateway process (`billgraph serve`, uvicorn) for tests that must cross the wire."""

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx


@dataclass
class LiveServer:
    base_url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the `billgraph` command (as `python -m billgraph`) and capture its output."""
    return subprocess.run(
        [sys.executable, "-m", "billgraph", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def create_organization(database_url: str, name: str) -> dict[str, str]:
    done = cli("create-organization", "--name", name, "--json", "--database-url", database_url)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


@contextmanager
def live_server(
    database_url: str, workers: int = 1, env: dict[str, str] | None = None
) -> Iterator[LiveServer]:
    port = _free_port()
    # A file, not a pipe: nobody reads while the test runs, and a full pipe would stall the
    # server on its next log line.
    log_file = tempfile.NamedTemporaryFile(  # noqa: SIM115 - the server writes it until stopped
        prefix="billgraph-serve-", suffix=".log", delete=False
    )
    log_path = Path(log_file.name)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "billgraph",
            "serve",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--database-url",
            database_url,
        ],
        env={
            **os.environ,
            "BILLGRAPH_RATE_LIMIT_PER_SECOND": "0",
            "BILLGRAPH_LOG_LEVEL": "WARNING",
            # Hosted pages and redirects point at the server itself.
            "BILLGRAPH_PUBLIC_URL": f"http://127.0.0.1:{port}",
            **(env or {}),
        },
        stdout=subprocess.DEVNULL,
        stderr=log_file,
    )
    log_file.close()
    server = LiveServer(base_url=f"http://127.0.0.1:{port}", process=process, log_path=log_path)
    failed = True
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"billgraph serve exited: {server.log()}")
            try:
                if httpx.get(f"{server.base_url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("billgraph serve did not answer /healthz within 60 s")
            time.sleep(0.2)
        yield server
        failed = False
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if failed:  # the server's side of the story, in the failed test's captured output
            print(f"--- billgraph serve (exit {process.returncode}), last lines of its log ---")
            print("\n".join(server.log().splitlines()[-60:]))
        log_path.unlink(missing_ok=True)
