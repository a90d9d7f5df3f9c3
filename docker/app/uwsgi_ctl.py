#!/usr/bin/env python3
"""Control the running uWSGI master through its FIFO, and wait for the result using its stats server.

uwsgi-ctl reload   chain reload: replace the workers one at a time with freshly loaded app code; waits until
                   every worker is new and ready (zero failed requests: the others serve meanwhile). Refused, naming
                   why, when the app does not load now (check-app): the workers keep serving what they loaded
uwsgi-ctl stats    print the stats server's JSON
"""

import json
import os
import socket
import subprocess
import sys
import time

# The FIFO and stats address of uwsgi/uwsgi.ini. (No UWSGI_* variables here: uWSGI reads those as options.)
FIFO = "/tmp/uwsgi-master.fifo"  # noqa: S108 - the container's own /tmp
STATS = ("127.0.0.1", 1717)


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


def main(argv: list[str]) -> int:
    if argv[:1] == ["reload"]:
        return reload(float(os.environ.get("RELOAD_TIMEOUT", "120")))
    if argv[:1] == ["stats"]:
        print(json.dumps(stats(), indent=2))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
