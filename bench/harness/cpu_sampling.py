"""bench.profile's other sampler (--sampler cpu): bench/harness/cpusampler/sitecustomize.py
in the server's processes, started and stopped by signal. Its samples follow CPU time, so
waiting for a core on a shared machine does not count (py-spy counts it)."""

import asyncio
import os
import signal
import time
from pathlib import Path

FOLDER = Path(__file__).resolve().parent / "cpusampler"


def sampler_env(directory: Path, rate: int) -> dict[str, str]:
    """The server's environment for the sampler: loaded at startup, idle until signalled."""
    path = os.pathsep.join(p for p in (str(FOLDER), os.environ.get("PYTHONPATH", "")) if p)
    return {
        "PYTHONPATH": path,
        "BENCH_CPU_SAMPLER_DIR": str(directory),
        "BENCH_CPU_SAMPLER_RATE": str(rate),
    }


async def sample(pid: int, seconds: float, directory: Path) -> Path:
    """Sample `pid` for `seconds`; its stacks in py-spy's raw format."""
    output = directory / f"{pid}.raw"
    output.unlink(missing_ok=True)
    os.kill(pid, signal.SIGUSR1)
    await asyncio.sleep(seconds)
    os.kill(pid, signal.SIGUSR2)
    deadline = time.monotonic() + 10
    while not output.exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"the sampler in {pid} wrote no {output.name} in 10 s")
        await asyncio.sleep(0.05)
    return output
