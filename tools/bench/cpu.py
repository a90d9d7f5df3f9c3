"""CPU time the containers spent, read from their cgroup (v2 cpu.stat, else v1 cpuacct.usage).

CPU time per request is the benchmark's noise-robust figure: other work on the machine slows a run down (fewer
req/s) but barely changes how much CPU each request costs the servers that answer it.
"""

from __future__ import annotations

import subprocess

SCRIPT = "cat /sys/fs/cgroup/cpu.stat 2>/dev/null || cat /sys/fs/cgroup/cpuacct/cpuacct.usage"


def usage_us(container: str) -> int:
    """Microseconds of CPU the container's processes have used since it started."""
    out = subprocess.run(
        ["docker", "exec", container, "sh", "-c", SCRIPT], capture_output=True, text=True, timeout=30, check=True
    ).stdout
    for line in out.splitlines():
        key, _, value = line.partition(" ")
        if key == "usage_usec":
            return int(value)
    return int(out.split()[0]) // 1000  # cgroup v1: nanoseconds


def total_us(containers: list[str]) -> int:
    return sum(usage_us(c) for c in containers)
