#!/usr/bin/env python3
"""The app this container would serve, started on a socket of its own and probed as its health check probes it.

`make up` runs it in a one-off container of the new image, with the new settings, before it replaces an app server
that runs (tools/preflight.py): an app that imports but fails its health probe (it answers 500, its workers die
loading it) is refused there, and the running app server keeps serving, instead of being stopped for one that never
gets healthy.

It starts the app server as the container would (`app-entrypoint serve`: its settings' checks, check-app, uWSGI with
uwsgi.ini), with one worker, on a socket in this container's /tmp instead of nginx's, and not on the listener's
(UWSGI_ZERG unset), so nothing reaches it but the probe. Then, every PROBE_EVERY s, the health check's own probes
(uwsgi-health --ready: liveness, then readiness when READINESS_PATH is set) until one passes. It fails when the app
server exits, when FAILED_IN_A_ROW probes in a row get an answer that fails (as `make up` gives up on a starting
container), or at the deadline: exit 78, with one line naming what was asked and what came back, after the app
server's last log lines.

Usage: try-app [--checked] [SECONDS] (the deadline, 60 by default). --checked: check-app has just passed for this
image and these settings (`make up` runs it first, in a one-off container of its own), so the app server starts
without it (`app-entrypoint serve --checked`): one import of the app the fewer, which is the app's whole start for a
large one.
"""

import importlib.machinery
import importlib.util
import os
import shutil
import subprocess
import sys
import threading
import time
from collections import deque

EX_CONFIG = 78
PROBE_EVERY = 0.5
FAILED_IN_A_ROW = 3
# A socket no one else uses: this container's own /tmp (a tmpfs per container), not nginx's path on the shared volume.
OWN_SOCKET = "/tmp/try-app.sock"  # noqa: S108
LOG_LINES = 20


def health_module():
    """uwsgi-health, the health check itself (installed without a .py suffix), for its probes."""
    path = shutil.which("uwsgi-health") or "/usr/local/bin/uwsgi-health"
    loader = importlib.machinery.SourceFileLoader("uwsgi_health", path)
    spec = importlib.util.spec_from_loader("uwsgi_health", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def answered(health, problem: str) -> bool:
    """The app answered (a status it should not give, or no status at all), rather than nothing listening yet."""
    return health.NOT_ANSWERING not in problem


def server_environment() -> dict[str, str]:
    environ = {key: value for key, value in os.environ.items() if key != "UWSGI_ZERG"}
    environ.update(UWSGI_SOCKET=OWN_SOCKET, UWSGI_WORKERS="1", STOP_DRAIN="0")
    return environ


def outcome(server: subprocess.Popen, health, seconds: float) -> tuple[str, bool] | None:
    """None once the health check's probes pass, else the line saying why the app server will not, and whether it
    exited (then its own line is added once its output is read)."""
    deadline = time.monotonic() + seconds
    failed = 0
    while True:
        status = server.poll()
        if status is not None:
            return f"the app server exited with status {status} before it passed its health probe", True
        problem = health.first_problem(ready=True)
        if problem is None:
            return None
        failed = failed + 1 if answered(health, problem) else 0
        if failed >= FAILED_IN_A_ROW:
            return f"{FAILED_IN_A_ROW} health probes in a row failed: {problem}", False
        if time.monotonic() > deadline:
            return f"not healthy within {seconds:.0f} s: {problem}", False
        time.sleep(PROBE_EVERY)


def main(argv: list[str]) -> int:
    checked = argv[:1] == ["--checked"]
    argv = argv[1:] if checked else argv
    try:
        seconds = float(argv[0]) if argv else 60.0
    except ValueError:
        seconds = -1.0
    if not 0 < seconds < float("inf"):
        print(f"try-app: {argv[0]!r}: give the deadline in seconds, e.g. 60", file=sys.stderr)
        return 2
    health = health_module()
    server = subprocess.Popen(
        ["app-entrypoint", "serve", *(["--checked"] if checked else [])],
        env=server_environment(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
    )
    log: deque = deque(maxlen=LOG_LINES)
    reader = threading.Thread(target=lambda: log.extend(line.rstrip("\n") for line in server.stdout), daemon=True)
    reader.start()
    try:
        failed = outcome(server, health, seconds)
    finally:
        # A one-off container ends with this process; its app server is not stopped gracefully, nothing is in flight.
        if server.poll() is None:
            server.kill()
        server.wait()
    if failed is None:
        print("try-app: the app passes its health probe")
        return 0
    # Its output read to the end, or for a second: the processes it started (its metrics daemon) may hold the pipe.
    reader.join(timeout=1)
    lines = list(log)  # one copy, taken at once (the reader may still add to it)
    print("\n".join(lines), file=sys.stderr)
    # The app server's own line naming the problem (check-app's, which it runs first), when it said one.
    own = [line.removeprefix("wsgi-chain: ") for line in lines if line.startswith("wsgi-chain: ")]
    why, exited = failed
    if exited:
        why += f": {own[-1] if own else 'its last log line: ' + (lines[-1] if lines else '(none)')}"
    print(f"wsgi-chain: {why}", file=sys.stderr, flush=True)
    return EX_CONFIG


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
