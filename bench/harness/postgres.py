"""A throwaway PostgreSQL server for tests and benchmarks: initdb into a temporary directory,
start it on a free loopback port, drop it all at the end. Runs the server as the `postgres`
user when we are root (PostgreSQL refuses to run as root)."""

import glob
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.harness.processes import free_port


class PostgresUnavailable(RuntimeError):
    pass


def find_bindir() -> Path:
    """PostgreSQL's binaries: $BILLGRAPH_PG_BINDIR, else Debian's newest, else the PATH."""
    candidates = [os.environ.get("BILLGRAPH_PG_BINDIR", "")]
    candidates += sorted(
        glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]), reverse=True
    )
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(str(Path(initdb).parent))
    for candidate in candidates:
        if candidate and (Path(candidate) / "initdb").exists():
            return Path(candidate)
    raise PostgresUnavailable(
        "PostgreSQL binaries (initdb, pg_ctl) not found; set BILLGRAPH_PG_BINDIR"
    )


@dataclass
class PostgresServer:
    bindir: Path
    root: Path
    port: int
    as_postgres_user: bool

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/billgraph"

    @property
    def dsn(self) -> str:
        """libpq form, for pgbench and psql."""
        return f"host=127.0.0.1 port={self.port} user=postgres dbname=billgraph"

    @property
    def postmaster_pid(self) -> int | None:
        """The server's root process (its backends are children), None if unreadable."""
        try:
            return int((self.root / "data" / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = [str(self.bindir / args[0]), *args[1:]]
        if self.as_postgres_user:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, check=check, capture_output=True, text=True, timeout=120)

    def stop(self) -> None:
        self.run("pg_ctl", "-D", str(self.root / "data"), "-m", "immediate", "stop", check=False)
        shutil.rmtree(self.root, ignore_errors=True)


def start(*, durable: bool = False, max_connections: int = 300) -> PostgresServer:
    """Start a new server with an empty `billgraph` database.

    `durable=False` turns fsync off (fast tests); benchmarks pass True for real commits.
    """
    bindir = find_bindir()
    as_postgres_user = os.geteuid() == 0
    root = Path(tempfile.mkdtemp(prefix="billgraph-pg-"))
    if as_postgres_user:
        shutil.chown(root, "postgres", "postgres")
    server = PostgresServer(
        bindir=bindir, root=root, port=free_port(), as_postgres_user=as_postgres_user
    )
    data = root / "data"
    try:
        server.run(
            "initdb", "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"
        )
        options = [
            f"-p {server.port}",
            f"-k {root}",
            "-c listen_addresses=127.0.0.1",
            f"-c max_connections={max_connections}",
            "-c shared_buffers=256MB",
        ]
        if not durable:
            options += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
        server.run(
            "pg_ctl",
            "-D",
            str(data),
            "-l",
            str(root / "server.log"),
            "-w",
            "-t",
            "60",
            "-o",
            " ".join(options),
            "start",
        )
        deadline = time.monotonic() + 30
        while server.run(
            "pg_isready", "-h", "127.0.0.1", "-p", str(server.port), check=False
        ).returncode:
            if time.monotonic() > deadline:
                raise PostgresUnavailable("PostgreSQL did not become ready in 30 s")
            time.sleep(0.2)
        server.run(
            "createdb", "-h", "127.0.0.1", "-p", str(server.port), "-U", "postgres", "billgraph"
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        log = root / "server.log"
        detail = getattr(exc, "stderr", "") or ""
        if log.exists():
            detail += "\n" + log.read_text()[-2000:]
        server.stop()
        raise PostgresUnavailable(f"could not start PostgreSQL: {exc}\n{detail}") from exc
    return server
