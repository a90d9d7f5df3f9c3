"""Memory of a server's processes, read inside its container from /proc (the images ship no ps-less gaps: just sh).

RSS counts every page a process maps, shared or not; PSS splits shared pages between their users; USS (private)
is what the process alone holds, i.e. what it costs beyond what it shares by copy-on-write with its master.
The server (master) process is the container's PID 1 (the entrypoints exec it), or PID 1's child when PID 1 is
an init (compose's `init: true`: docker-init); the master's children are the workers.
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import asdict, dataclass

INITS = ("docker-init", "tini", "dumb-init")

# One block per process: "@@ pid ppid cmdline", then smaps_rollup's Rss/Pss/Private lines (kB).
SCRIPT = r"""
for d in /proc/[0-9]*; do
  [ -r "$d/smaps_rollup" ] || continue
  pid=${d#/proc/}
  ppid=$(sed -n 's/^PPid:[[:space:]]*//p' "$d/status" 2>/dev/null)
  cmd=$(tr '\0' ' ' < "$d/cmdline" 2>/dev/null)
  [ -n "$cmd" ] || continue
  echo "@@ $pid $ppid $cmd"
  grep -E '^(Rss|Pss|Private_Clean|Private_Dirty):' "$d/smaps_rollup" 2>/dev/null
done
"""


@dataclass
class Proc:
    pid: int
    ppid: int
    cmdline: str
    rss_kib: int = 0
    pss_kib: int = 0
    uss_kib: int = 0

    def to_json(self) -> dict:
        return asdict(self)


@dataclass
class ServerMemory:
    container: str
    master: Proc | None
    workers: list[Proc]

    @property
    def worker_rss_mib(self) -> float | None:
        return _mean_mib([w.rss_kib for w in self.workers])

    @property
    def worker_uss_mib(self) -> float | None:
        return _mean_mib([w.uss_kib for w in self.workers])

    @property
    def total_pss_mib(self) -> float:
        procs = [p for p in [self.master, *self.workers] if p]
        return round(sum(p.pss_kib for p in procs) / 1024, 1)

    def to_json(self) -> dict:
        return {
            "container": self.container,
            "master": self.master.to_json() if self.master else None,
            "workers": [w.to_json() for w in self.workers],
            "worker_rss_mib": self.worker_rss_mib,
            "worker_uss_mib": self.worker_uss_mib,
            "total_pss_mib": self.total_pss_mib,
        }


def _mean_mib(values: list[int]) -> float | None:
    return round(sum(values) / len(values) / 1024, 1) if values else None


def parse(text: str) -> list[Proc]:
    procs: list[Proc] = []
    fields = {"Rss:": "rss_kib", "Pss:": "pss_kib"}
    for line in text.splitlines():
        if line.startswith("@@ "):
            pid, ppid, *cmd = line[3:].split(" ", 2)
            procs.append(Proc(pid=int(pid), ppid=int(ppid or 0), cmdline=(cmd[0] if cmd else "").strip()))
            continue
        parts = line.split()
        if not procs or len(parts) < 2:
            continue
        if parts[0] in fields:
            setattr(procs[-1], fields[parts[0]], int(parts[1]))
        elif parts[0] in ("Private_Clean:", "Private_Dirty:"):
            procs[-1].uss_kib += int(parts[1])
    return procs


def find_master(procs: list[Proc]) -> Proc | None:
    first = next((p for p in procs if p.pid == 1), None)
    if first and first.cmdline.split(" ")[0].rsplit("/", 1)[-1] in INITS:
        return min((p for p in procs if p.ppid == 1), key=lambda p: p.pid, default=None)
    return first


def is_worker(master: Proc, child: Proc) -> bool:
    """A named uWSGI master ("... uWSGI master", procname-master) also forks its daemons (attach-daemon, e.g. the
    metrics exporter): only its "... uWSGI worker N" children serve requests. Other servers' children all do."""
    if "uWSGI master" in master.cmdline:
        return "uWSGI worker" in child.cmdline
    return True


def sample(container: str, workers: int | None = None, timeout: float = 10) -> ServerMemory:
    """The server's processes once all `workers` run (unknown: once any does); polls, with a deadline, while a worker
    is being respawned (max-requests: the hello app's workers reach theirs within a full run)."""
    deadline = time.monotonic() + timeout
    while True:
        result = subprocess.run(
            ["docker", "exec", container, "sh", "-c", SCRIPT], capture_output=True, text=True, timeout=30, check=True
        )
        procs = parse(result.stdout)
        master = find_master(procs)
        found = [p for p in procs if master and p.ppid == master.pid and is_worker(master, p)]
        if (len(found) >= (workers or 1)) or time.monotonic() > deadline:
            return ServerMemory(container=container, master=master, workers=found)
        time.sleep(0.2)
