"""py-spy, outside the project's dependencies: finding it, recording a process, and reading
its raw (collapsed) stacks into where the time goes, by package."""

import os
import shutil
import subprocess
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

INSTALL = "python3 -m pip install --target /tmp/pyspy py-spy"
PLACES = ("/tmp/pyspy/bin/py-spy",)

# Top-level module -> the group the summary reports it in.
GROUPS = {
    "sqlalchemy": "SQLAlchemy",
    "graphql": "graphql-core",
    "strawberry": "Strawberry",
    "billgraph": "billgraph",
    "asyncpg": "asyncpg",
    "aiodataloader": "aiodataloader",
    "starlette": "Starlette, uvicorn",
    "uvicorn": "Starlette, uvicorn",
    "httptools": "Starlette, uvicorn",
    "h11": "Starlette, uvicorn",
    "json": "JSON",
    "orjson": "JSON",
    "asyncio": "event loop",
    "uvloop": "event loop",
    "selectors": "event loop",
    "contextvars": "event loop",
    "pydantic": "pydantic",
    "pydantic_core": "pydantic",
    "opentelemetry": "OpenTelemetry",
    "prometheus_client": "prometheus_client",
    "structlog": "logging",
    "logging": "logging",
    "bench": "bench (ceiling)",
}
STDLIB = "Python stdlib (other)"
GENERATED = "generated code (<string>: dataclass __init__, ...)"


def find(explicit: str | None) -> str | None:
    """py-spy's path: `explicit`, else $PY_SPY, else the PATH, else /tmp/pyspy/bin."""
    for candidate in (explicit, os.environ.get("PY_SPY"), shutil.which("py-spy"), *PLACES):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def record(
    py_spy: str, pid: int, seconds: int, output: Path, *, rate: int, nonblocking: bool
) -> subprocess.CompletedProcess[str]:
    """py-spy record of `pid` for `seconds` into `output` (raw format, full file names)."""
    command = [
        py_spy,
        "record",
        "--pid",
        str(pid),
        "--duration",
        str(seconds),
        "--rate",
        str(rate),
        "--format",
        "raw",
        "--full-filenames",
        "--output",
        str(output),
    ]
    if nonblocking:
        command.append("--nonblocking")
    return subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)


@dataclass(frozen=True)
class Frame:
    function: str
    path: str

    @property
    def module(self) -> str:
        """ "sqlalchemy/orm", "billgraph/graphql", "asyncio", "json", "<frozen>" ...: the
        package and its first subpackage (or the stdlib module)."""
        path = self.path
        if path.startswith("<sqlalchemy generated"):
            return "sqlalchemy/generated"
        if "/site-packages/" in path:
            parts = path.split("/site-packages/", 1)[1].split("/")
        elif "/billgraph/" in path or "/bench/" in path:
            marker = "/billgraph/" if "/billgraph/" in path else "/bench/"
            parts = [marker.strip("/"), *path.rsplit(marker, 1)[1].split("/")]
        elif "/lib/python3" in path:
            parts = path.split("/lib/python3", 1)[1].split("/")[1:]
        else:
            return path or "?"
        parts[-1] = parts[-1].removesuffix(".py")
        return "/".join(parts[:2]) if len(parts) > 2 else parts[0]

    @property
    def group(self) -> str:
        if self.path.startswith("<sqlalchemy generated"):
            return GROUPS["sqlalchemy"]
        if self.path == "<string>":
            return GENERATED
        top = self.module.split("/")[0]
        return GROUPS.get(top, STDLIB if self._stdlib else f"other ({top})")

    @property
    def _stdlib(self) -> bool:
        return ("/lib/python3" in self.path and "/site-packages/" not in self.path) or (
            self.path.startswith("<frozen")
        )


def _frame(text: str) -> Frame:
    # "function (path:line)"; the path may hold spaces, the function no parentheses at its end
    function, _, rest = text.partition(" (")
    path = rest.rsplit(":", 1)[0] if ":" in rest else rest.rstrip(")")
    return Frame(function, path)


@dataclass
class Profile:
    samples: int = 0  # of the main thread (its greenlets included)
    other_threads: int = 0  # samples of threads started by `threading` (left out of the rest)
    by_group: Counter[str] = field(default_factory=Counter)  # leaf frame's group (self)
    inclusive: Counter[str] = field(default_factory=Counter)  # group anywhere on the stack
    by_module: Counter[str] = field(default_factory=Counter)  # leaf frame's module (self)
    by_function: Counter[str] = field(default_factory=Counter)  # leaf "function (module)"

    def share(self, count: int) -> float:
        return 100 * count / self.samples if self.samples else 0.0


def read_raw(path: Path) -> Profile:
    """A py-spy raw file: one line per distinct stack, 'frame;frame;...;leaf count'."""
    profile = Profile()
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [
            _frame(f) for f in stack.split(";") if f.endswith(")") and not f.startswith("process ")
        ]
        frames = [f for f in frames if not f.function.startswith("thread (")]
        if not frames:
            continue
        if frames[0].function == "Thread._bootstrap":
            # Not the event loop's: uvicorn's supervisor pipe (blocked in recv, yet sampled
            # as active), an exporter's thread.
            profile.other_threads += count
            continue
        leaf = frames[-1]
        profile.samples += count
        profile.by_group[leaf.group] += count
        profile.by_module[leaf.module] += count
        profile.by_function[f"{leaf.function} ({leaf.module})"] += count
        for group in {f.group for f in frames}:
            profile.inclusive[group] += count
    return profile
