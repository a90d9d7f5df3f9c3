"""try-app (docker/app/try_app.py), which `make up` runs in a one-off container of a new app image before it replaces
the app server that runs: run on the host, with a stand-in for the app server it starts (`app-entrypoint serve`)
that answers the health check's own probes (uwsgi-health, the real one) on a socket of the test's own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.harness import ROOT

TOOL = ROOT / "docker" / "app" / "try_app.py"
EX_CONFIG = 78

# The stand-in app server: records the environment it was started with, then behaves as MODE says.
STAND_IN = """\
import json, os, socket, sys, time
with open(os.environ["RECORD"], "w") as record:
    json.dump({"argv": sys.argv[1:], "env": dict(os.environ)}, record)
mode = os.environ["MODE"]
if mode == "exits":
    print("wsgi-chain: WSGI_MODULE=app:application: cannot import app: ImportError: gone", flush=True)
    sys.exit(78)
if mode == "silent":
    time.sleep(60)
status = {"healthy": "200 OK", "500": "500 Internal Server Error"}[mode]
if mode == "500":
    # Logging all the while, as uWSGI logs each failing request: try-app prints the log as it fails (a copy of it: the
    # reader adding to the log while it was printed made the reason "deque mutated during iteration"; a race, which
    # this case caught about one run in three before the fix).
    import threading
    def chatter():
        number = 0
        while True:
            number += 1
            print(f"log line {number}", flush=True)
            time.sleep(0.0005)
    threading.Thread(target=chatter, daemon=True).start()
server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
server.bind(os.environ["HEALTHCHECK_SOCKET"])
server.listen(8)
while True:
    client, _ = server.accept()
    with client:
        client.recv(65536)
        client.sendall(f"HTTP/1.1 {status}\\r\\nContent-Length: 0\\r\\n\\r\\n".encode())
"""


def try_app(tmp_path: Path, mode: str, *argv: str, **environ: str) -> tuple[subprocess.CompletedProcess, dict]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    entrypoint = bin_dir / "app-entrypoint"
    entrypoint.write_text(f"#!{sys.executable}\n{STAND_IN}")
    entrypoint.chmod(0o755)
    health = bin_dir / "uwsgi-health"
    if not health.exists():
        health.symlink_to(ROOT / "docker" / "app" / "uwsgi_health.py")
    record = tmp_path / "record.json"
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "MODE": mode,
        "RECORD": str(record),
        "HEALTHCHECK_SOCKET": str(tmp_path / "probe.sock"),
        "HEALTHCHECK_PATH": "",
        "READINESS_PATH": "",
        **environ,
    }
    result = subprocess.run(
        [sys.executable, str(TOOL), *argv], env=env, capture_output=True, text=True, timeout=30, check=False
    )
    return result, (json.loads(record.read_text()) if record.exists() else {})


def last_line(result: subprocess.CompletedProcess) -> str:
    return (result.stderr.strip().splitlines() or [""])[-1]


CASES = {
    "an app that passes its probe": ("healthy", ("10",), 0, ""),
    "an app answering 500": (
        "500",
        ("10",),
        EX_CONFIG,
        "wsgi-chain: 3 health probes in a row failed: unhealthy: GET / -> HTTP/1.1 500 Internal Server Error: a server "
        "error (HEALTHCHECK_PATH names a path to probe)",
    ),
    "an app server that exits": (
        "exits",
        ("10",),
        EX_CONFIG,
        "wsgi-chain: the app server exited with status 78 before it passed its health probe: "
        "WSGI_MODULE=app:application: cannot import app: ImportError: gone",
    ),
    "an app server that never listens": (
        "silent",
        ("1",),
        EX_CONFIG,
        "wsgi-chain: not healthy within 1 s: unhealthy: GET /",
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_try_app_passes_only_an_app_server_that_passes_the_health_probe_and_names_why_not(case, tmp_path):
    mode, argv, code, line = CASES[case]
    result, _ = try_app(tmp_path, mode, *argv)
    assert result.returncode == code, result.stdout + result.stderr
    if code == 0:
        assert result.stdout.strip() == "try-app: the app passes its health probe", result.stdout
    else:
        assert last_line(result).startswith(line), result.stderr


@pytest.mark.parametrize(("argv", "serve"), [(("10",), ["serve"]), (("--checked", "10"), ["serve", "--checked"])])
def test_try_app_checked_starts_the_app_server_without_check_app_which_make_up_ran_just_before(argv, serve, tmp_path):
    """`make up` runs check-app in a one-off container first, then try-app --checked: the app server it tries is
    started without importing the app once more (app-entrypoint serve --checked); by itself, try-app checks."""
    result, record = try_app(tmp_path, "healthy", *argv)
    assert result.returncode == 0, result.stderr
    assert record["argv"] == serve


def test_try_app_starts_the_app_server_with_one_worker_on_a_socket_of_its_own_never_on_the_listeners(tmp_path):
    """Never nginx's socket (the shared volume) nor the listener's lent one: the running app server's stay untouched."""
    result, record = try_app(tmp_path, "healthy", "10", UWSGI_ZERG="/run/uwsgi-zerg/zerg.sock", UWSGI_WORKERS="4")
    assert result.returncode == 0, result.stderr
    assert record["argv"] == ["serve"]
    env = record["env"]
    assert "UWSGI_ZERG" not in env
    assert env["UWSGI_SOCKET"] == "/tmp/try-app.sock"  # noqa: S108 - the one-off container's own tmpfs
    assert env["UWSGI_WORKERS"] == "1"


@pytest.mark.parametrize("deadline", ["0", "-5", "nan", "inf", "soon"])
def test_try_app_refuses_a_deadline_that_is_not_a_positive_number_of_seconds(deadline, tmp_path):
    result, record = try_app(tmp_path, "healthy", deadline)
    assert result.returncode == 2, result.stderr
    assert last_line(result) == f"try-app: {deadline!r}: give the deadline in seconds, e.g. 60", result.stderr
    assert record == {}, "nothing was started"
