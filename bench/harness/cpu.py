"""Which processes used the cores: average cores busy per role over a measurement.

Load generator, gateways and PostgreSQL share one machine, so every figure comes with what each
of them cost, and with what ran outside the benchmark ('other': another job skews the figures).
"""

import os
import time
from dataclasses import dataclass, field

from bench.harness.processes import process_table, tree

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine spent busy (all cores), from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    total = sum(fields[:8])  # guest time is already in user
    return (total - idle) / _CLOCK_TICKS


def busy_cores(seconds: float = 1.0) -> float:
    """Cores busy on the machine over `seconds` while this process sleeps."""
    start_busy, start = machine_busy_seconds(), time.monotonic()
    time.sleep(seconds)
    return (machine_busy_seconds() - start_busy) / (time.monotonic() - start)


@dataclass(frozen=True)
class CpuSnapshot:
    wall: float
    load: float  # this process plus the children it reaped (pgbench): the load generator
    machine: float
    roles: dict[str, float]


@dataclass
class CpuMeter:
    """Roles are process trees: role -> root pids. A tree counts its live processes and the
    children they reaped (a PostgreSQL backend that exited is in the postmaster's cutime)."""

    roles: dict[str, list[int]] = field(default_factory=dict)

    def snapshot(self) -> CpuSnapshot:
        table = process_table()
        times = os.times()
        return CpuSnapshot(
            wall=time.monotonic(),
            load=times.user + times.system + times.children_user + times.children_system,
            machine=machine_busy_seconds(),
            roles={
                role: sum(table[p][1] for pid in pids for p in tree(pid, table)) / _CLOCK_TICKS
                for role, pids in self.roles.items()
            },
        )

    @staticmethod
    def usage(before: CpuSnapshot, after: CpuSnapshot) -> dict[str, float]:
        """Average cores busy over the interval: 'load', each role, 'machine' and 'other'."""
        wall = max(after.wall - before.wall, 1e-9)
        usage = {
            "load": (after.load - before.load) / wall,
            "machine": (after.machine - before.machine) / wall,
        }
        for role, seconds in after.roles.items():
            usage[role] = (seconds - before.roles.get(role, 0.0)) / wall
        accounted = usage["load"] + sum(usage[role] for role in after.roles)
        usage["other"] = max(0.0, usage["machine"] - accounted)
        return usage
