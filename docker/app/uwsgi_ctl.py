#!/usr/bin/env python3
"""Control the running uWSGI master through its FIFO, and wait for the result using its stats server.

uwsgi-ctl reload   chain reload: replace the workers one at a time with freshly loaded app code; waits until
                   every worker is new and ready (zero failed requests: the others serve meanwhile). Refused, naming
                   why, when the app does not load now (check-app): the workers keep serving what they loaded
uwsgi-ctl stats    print the stats server's JSON
uwsgi-ctl stop MERCY
                   graceful stop (run by uWSGI's touch-exec when the listener is replaced, uwsgi/uwsgi.ini): the
                   workers finish their requests in flight and exit, and the master then exits; a worker still
                   running MERCY s (worker-reload-mercy) and a margin later is killed, as uWSGI's own mercy would
"""

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time

# The FIFO and stats address of uwsgi/uwsgi.ini. (No UWSGI_* variables here: uWSGI reads those as options.)
FIFO = "/tmp/uwsgi-master.fifo"  # noqa: S108 - the container's own /tmp
STATS = ("127.0.0.1", 1717)
# What auto-procname calls the app server's processes (uwsgi/uwsgi.ini), after its prefix.
MASTER_TITLE, WORKER_TITLE = "uWSGI master", "uWSGI worker"
# Past worker-reload-mercy: uWSGI's master checks its mercy once a second.
STOP_MARGIN = 2.0


def stats(timeout: float = 3) -> dict:
    """The stats server's JSON (uwsgi-ctl stats, the metrics exporter), each worker's `rss` read as it is now."""
    with socket.create_connection(STATS, timeout=timeout) as conn:
        chunks = []
        while data := conn.recv(65536):
            chunks.append(data)
    answer = json.loads(b"".join(chunks))
    for worker in answer.get("workers", []):
        worker["rss"] = rss(worker.get("pid", 0))
    return answer


def rss(pid: int) -> int:
    """A worker's resident memory in bytes (0 when it is not running). uWSGI's stats carry it only with memory-report,
    which reads it after every request (uwsgi.ini: WORKER_MAX_RSS_MB); here it is read when asked for."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, IndexError, ValueError):
        return 0


def workers() -> dict[int, tuple[int, str]]:
    """worker id -> (pid, status)."""
    return {w["id"]: (w["pid"], w["status"]) for w in stats()["workers"]}


def reload(timeout: float) -> int:
    # A new worker that cannot load the app stops the whole of uWSGI (need-app, uwsgi/uwsgi.ini: "need-app requested,
    # destroying the instance"), and the container then restarts into the same failure: an outage where the old
    # workers could have kept serving. So the app is loaded first, as each new worker would load it, in a process of
    # its own (check-app: WSGI_MODULE imports and names a WSGI callable).
    checked = subprocess.run(["check-app"], capture_output=True, text=True, check=False)
    if checked.returncode != 0:
        sys.stderr.write(checked.stdout + checked.stderr)
        print(
            "uwsgi-ctl: the app does not load now (the line above), so nothing was reloaded: the workers keep serving "
            "the code they loaded",
            file=sys.stderr,
        )
        return checked.returncode
    before = workers()
    with open(FIFO, "w") as fifo:
        fifo.write("c")
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        time.sleep(0.2)
        try:
            now = workers()
        except (OSError, ValueError):
            continue
        replaced = all(now[i][0] != before[i][0] and now[i][0] > 0 for i in before if i in now)
        ready = all(status in ("idle", "busy") for _, status in now.values())
        if replaced and ready and len(now) == len(before):
            print(f"uwsgi-ctl: chain reload done: {len(now)} workers replaced in {time.monotonic() - started:.1f} s")
            return 0
    print(f"uwsgi-ctl: chain reload not finished after {timeout:.0f} s; workers: {workers()}", file=sys.stderr)
    return 1


def proc_stat(pid: int) -> tuple[int, str] | None:
    """A process's parent and start time (clock ticks since boot: with the pid, who it is), None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[1]), fields[19].decode()


def started_at(pid: int) -> str | None:
    return (proc_stat(pid) or (0, None))[1]


def title(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            return cmdline.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def master_above() -> int | None:
    """The uWSGI master this command runs under (touch-exec runs it through a shell): the nearest ancestor so named,
    the first process itself where uWSGI runs without an init (Kubernetes)."""
    pid = os.getppid()
    while pid > 0:
        if MASTER_TITLE in title(pid):
            return pid
        parent = proc_stat(pid)
        pid = parent[0] if parent else 0
    return None


def workers_of(master: int) -> list[int]:
    """The master's worker processes still there (its other children: this command, the metrics exporter)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (stat := proc_stat(int(entry))) and stat[0] == master:
            if WORKER_TITLE in title(int(entry)):
                found.append(int(entry))
    return sorted(found)


def stop(mercy: float) -> int:
    # uWSGI 2.0's graceful stop (`q`) sends each worker SIGHUP once, then waits for them all with no deadline, inside
    # the FIFO's handler: the master loop, which kills a worker past worker-reload-mercy, does not run meanwhile. A
    # worker that does not take that SIGHUP as "finish and exit" holds the stop for ever, and the container, which is
    # to be restarted onto the new listener's socket, never exits: one respawned (a recycle, a crash) moments before
    # the stop, still between its fork and its post-fork hook, where it has the master's SIGHUP action (a reload) and
    # runs that instead, then loads the app and serves on; or an app that sets its own SIGHUP handler. So this command
    # gives the stop the deadline a reload has: what is left of the workers then is killed, and the master exits.
    master = master_above()
    with open(FIFO, "w") as fifo:
        fifo.write("q")
    if master is None:
        sys.stderr.write("uwsgi-ctl: graceful stop sent, with no deadline: no uWSGI master above this command\n")
        return 1
    started = started_at(master)

    def running() -> bool:
        return started is not None and started_at(master) == started

    deadline = time.monotonic() + mercy + STOP_MARGIN
    while running() and time.monotonic() < deadline:
        time.sleep(0.2)
    if not running():
        return 0
    left = workers_of(master)
    for pid in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    # One write: a line in uWSGI's log, which print would make two (PYTHONUNBUFFERED), another process's between them.
    pids = " ".join(map(str, left)) or "(none)"
    sys.stderr.write(
        f"uwsgi-ctl: the graceful stop still waited for worker pid {pids} after {mercy + STOP_MARGIN:g} s "
        f"(worker-reload-mercy {mercy:g} s and {STOP_MARGIN:g} s): killed, so the master exits\n"
    )
    return 0


def main(argv: list[str]) -> int:
    if argv[:1] == ["reload"]:
        return reload(float(os.environ.get("RELOAD_TIMEOUT", "120")))
    if argv[:1] == ["stop"] and len(argv) == 2 and argv[1].replace(".", "", 1).isdigit():
        return stop(float(argv[1]))
    if argv[:1] == ["stats"]:
        print(json.dumps(stats(), indent=2))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
