"""A CPU-time sampler for the processes of bench.profile (--sampler cpu), loaded by Python at
startup when this folder is on PYTHONPATH, and idle unless $BENCH_CPU_SAMPLER_DIR is set.

SIGUSR1 starts it: a SIGPROF every 1/$BENCH_CPU_SAMPLER_RATE s of the process's CPU time
(ITIMER_PROF), each recording the main thread's Python stack at that moment; SIGUSR2 stops it
and writes the stacks to $BENCH_CPU_SAMPLER_DIR/<pid>.raw in py-spy's raw format. Unlike a
wall-clock sampler, a process that waits for a core is not sampled: on a shared machine the
samples stay proportional to the CPU the process used.
"""

import os
import signal
from collections import Counter
from pathlib import Path
from types import FrameType

_DIRECTORY = os.environ.get("BENCH_CPU_SAMPLER_DIR")
_stacks: Counter[str] = Counter()


def _sample(_signum: int, frame: FrameType | None) -> None:
    names = []
    while frame is not None:
        code = frame.f_code
        names.append(f"{code.co_qualname} ({code.co_filename}:{code.co_firstlineno})")
        frame = frame.f_back
    if names:
        _stacks[";".join(reversed(names))] += 1


def _start(_signum: int, _frame: FrameType | None) -> None:
    interval = 1 / float(os.environ.get("BENCH_CPU_SAMPLER_RATE", "100"))
    _stacks.clear()
    signal.signal(signal.SIGPROF, _sample)
    signal.siginterrupt(signal.SIGPROF, False)  # system calls restart rather than fail
    signal.setitimer(signal.ITIMER_PROF, interval, interval)


def _stop(_signum: int, _frame: FrameType | None) -> None:
    signal.setitimer(signal.ITIMER_PROF, 0, 0)
    assert _DIRECTORY is not None
    lines = [f"{stack} {count}\n" for stack, count in _stacks.items()]
    partial = Path(_DIRECTORY) / f"{os.getpid()}.raw.partial"
    partial.write_text("".join(lines))
    partial.rename(partial.with_suffix(""))


if _DIRECTORY:
    signal.signal(signal.SIGUSR1, _start)
    signal.signal(signal.SIGUSR2, _stop)
