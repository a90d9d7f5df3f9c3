"""CPU time: the containers' from their cgroup (v2 cpu.stat, else v1 cpuacct.usage), the whole host's from /proc/stat.

CPU time per request is the benchmark's noise-robust figure: other work on the machine slows a run down (fewer
req/s) but barely changes how much CPU each request costs the servers that answer it.
"""

from __future__ import annotations

import os
import subprocess

SCRIPT = "cat /sys/fs/cgroup/cpu.stat 2>/dev/null || cat /sys/fs/cgroup/cpuacct/cpuacct.usage"


# Where the host keeps a container's CPU counter: cgroup v2 (systemd or cgroupfs driver), then v1.
HOST_PATHS = (
    "/sys/fs/cgroup/system.slice/docker-{id}.scope/cpu.stat",
    "/sys/fs/cgroup/docker/{id}/cpu.stat",
    "/sys/fs/cgroup/cpuacct/docker/{id}/cpuacct.usage",
    "/sys/fs/cgroup/cpu,cpuacct/docker/{id}/cpuacct.usage",
    "/sys/fs/cgroup/cpuacct/system.slice/docker-{id}.scope/cpuacct.usage",
)
_host_path: dict[str, str | None] = {}


def _parse(out: str) -> int:
    for line in out.splitlines():
        key, _, value = line.partition(" ")
        if key == "usage_usec":
            return int(value)
    return int(out.split()[0]) // 1000  # cgroup v1: nanoseconds


def host_path(container: str) -> str | None:
    """The container's CPU counter on this host's cgroup filesystem (no docker exec needed), if it is there: it is
    not when the engine runs elsewhere (DOCKER_HOST) or in a VM (Docker Desktop)."""
    if container not in _host_path:
        full_id = subprocess.run(
            ["docker", "inspect", "--format", "{{.Id}}", container], capture_output=True, text=True, timeout=30
        ).stdout.strip()
        found = [p.format(id=full_id) for p in HOST_PATHS if full_id and os.path.exists(p.format(id=full_id))]
        _host_path[container] = found[0] if found else None
    return _host_path[container]


def forget(container: str) -> None:
    """After a container was recreated under the same name (the sweep): look its cgroup up again."""
    _host_path.pop(container, None)


def usage_us(container: str) -> int:
    """Microseconds of CPU the container's processes have used since it started."""
    path = host_path(container)
    if path:
        with open(path) as f:
            return _parse(f.read())
    out = subprocess.run(
        ["docker", "exec", container, "sh", "-c", SCRIPT], capture_output=True, text=True, timeout=30, check=True
    ).stdout
    return _parse(out)


def total_us(containers: list[str]) -> int:
    return sum(usage_us(c) for c in containers)


# /proc/stat's first line: "cpu  user nice system idle iowait irq softirq steal guest guest_nice", in USER_HZ
# ticks summed over all CPUs. Busy is everything but idle and iowait; guest time is already inside user and nice.
BUSY_FIELDS = (0, 1, 2, 5, 6, 7)


def host_busy_ms(stat: str | None = None) -> float:
    """Milliseconds of CPU the whole host has been busy (all CPUs, every process and the kernel), since boot.

    Over a run this counts what the containers' cgroups do not: dockerd and containerd carrying the containers'
    logs, docker-proxy, the load generator, the kernel's network work charged to no container, and anything else
    the machine runs meanwhile (the reason to report it beside, not instead of, the containers' own CPU).
    """
    if stat is None:
        with open("/proc/stat") as f:
            stat = f.readline()
    fields = stat.split()
    if not fields or fields[0] != "cpu":
        raise RuntimeError(f"/proc/stat starts with {stat[:40]!r}, not the all-CPU line")
    ticks = [int(v) for v in fields[1:]]
    busy = sum(ticks[i] for i in BUSY_FIELDS if i < len(ticks))
    return busy * 1000 / os.sysconf("SC_CLK_TCK")
