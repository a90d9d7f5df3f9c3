"""A stop that comes while a container is still starting ends it at once, instead of after the stop timeout's SIGKILL.

Each case holds a container in one stage of its start (a slow entrypoint step, an app that is slow to import), stops
it there with `docker stop`, and times the stop: before the fixes, the stop signal was dropped in that stage and the
container ran until the timeout killed it.
"""

from __future__ import annotations

import json
import secrets
import time

import pytest

from tests.harness import container_logs, docker, poll
from tools import settings

pytestmark = pytest.mark.lifecycle

# docker stop's timeout: a container still running after it is killed (exit 137). After each stage below nginx or
# uWSGI runs on, so a dropped stop can only end in the kill.
STOP_TIMEOUT = 20
# A stop that was heard ends the container well within the timeout: the stage in hand finishes first (nginx), or the
# worker leaves at once and uWSGI stops gracefully (the app).
HEARD_WITHIN = 10

SLOW_STEP = """echo "slow step: running" >&2
sleep 4
"""

SLOW_APP = """import os
import sys
import time

# SLOW_STAGE: "check" holds check-app's import, which runs before uWSGI starts; "worker" holds a uWSGI worker's;
# another ("master": a hook holds the master instead) holds neither.
if os.environ["SLOW_STAGE"] == ("worker" if "uwsgi" in sys.modules else "check"):
    print("slow app: loading", file=sys.stderr, flush=True)
    try:
        time.sleep(60 if "uwsgi" in sys.modules else 4)
    except KeyboardInterrupt:
        # As the Python of a worker's first moments does (uWSGI's own post-fork step clears whatever it raised): a
        # stop that made only a KeyboardInterrupt is lost.
        print("slow app: KeyboardInterrupt, ignored", file=sys.stderr, flush=True)


def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]
"""


def stopped(name: str, *ready: str) -> tuple[float, int, str]:
    """Once each of `ready` is in the container's log: how long `docker stop` took, the exit code, and the log."""
    try:
        poll(lambda: all(line in container_logs(name) for line in ready), timeout=60, what=" and ".join(ready))
        started = time.monotonic()
        docker("stop", "-t", str(STOP_TIMEOUT), name)
        took = time.monotonic() - started
        state = json.loads(docker("inspect", "-f", "{{json .State}}", name))
        return took, state["ExitCode"], container_logs(name)
    finally:
        docker("rm", "-f", name, check=False)


def test_nginx_stopped_while_its_entrypoint_renders_the_config_stops_at_once_even_as_pid_1(tmp_path):
    # No init: the entrypoint's shell is PID 1, as in Kubernetes, where the kernel drops a signal it has no handler for.
    step = tmp_path / "05-slow.sh"
    step.write_text(SLOW_STEP)
    step.chmod(0o644)
    name = f"wct-stop-nginx-{secrets.token_hex(3)}"
    docker(
        *("run", "-d", "--name", name, "--read-only", "--tmpfs", "/tmp", "--network", "none"),  # noqa: S108 - in the container
        *("-v", f"{step}:/usr/local/lib/nginx-entrypoint.d/05-slow.sh:ro"),
        settings.get("NGINX_IMAGE"),
    )
    took, code, output = stopped(name, "slow step: running")
    assert took < HEARD_WITHIN, f"docker stop took {took:.1f} s (exit {code}): the stop signal was dropped\n{output}"
    assert code == 0, output
    assert "nginx-entrypoint: QUIT before nginx started: stopping" in output


# A uWSGI hook of the test's own (a UWSGI_HOOK_<STAGE> variable, which uWSGI reads before uwsgi.ini's hooks) that holds
# a process in one stage of its start: a worker in its first moments after the fork (post-fork), a window a busy
# machine opens by chance, or the master after its first hooks and before its loop (in-jail, run with or without a
# jail), where uWSGI ignored SIGTERM.
HOLD = "exec:sleep 6"

# (stage the app is held in, docker run's flags, what the log shows before the stop, what it shows once stopped)
APP_STAGES = {
    # No init: the entrypoint's shell is PID 1 while check-app runs, as in Kubernetes.
    "check-app, as pid 1": ("check", [], ["slow app: loading"], ["app-entrypoint: stopped before uWSGI started"]),
    # With an init, as compose runs the app: it hands the stop (TERM) to the uWSGI master. The master has its graceful
    # stop for TERM once it runs its master-start hook (uwsgi/uwsgi.ini).
    "a worker loading the app": (
        "worker",
        ["--init"],
        ["slow app: loading", 'gracefully_kill_them_all" (master-start)'],
        ["graceful shutdown triggered", "goodbye to uWSGI"],
    ),
    # As early as the master can stop gracefully: a worker may have only just been forked, before any Python code
    # of its own ran (uwsgi.ini: hook-post-fork). Stopped there, one worker in five ignored the stop before.
    "a worker only just started": (
        "worker",
        ["--init"],
        ['gracefully_kill_them_all" (master-start)'],
        ["graceful shutdown triggered", "goodbye to uWSGI"],
    ),
    # Held there: before uwsgi config 0.7.4 a worker ignored SIGHUP until its own post-fork hook ran (uWSGI's start
    # ignores it in the master), and this stop waited out the timeout every time.
    "a worker held right after its fork": (
        "worker",
        ["--init", "-e", f"UWSGI_HOOK_POST_FORK={HOLD}"],
        ['gracefully_kill_them_all" (master-start)', f'running "{HOLD}" (post-fork)'],
        ["graceful shutdown triggered", "goodbye to uWSGI"],
    ),
    # Held in the master's loop before its master-start hook (the test's own runs first), where uWSGI's own stop for
    # TERM sends each worker SIGINT, once. Before uwsgi config 0.7.6 a worker still starting took it as Python's
    # KeyboardInterrupt, which the Python running then could swallow (uWSGI's post-fork step does), and loaded the app
    # and served on, and the master waited out worker-reload-mercy (30 s): one stop in 30 of the single container's
    # as supervisord starts its programs (test_single.py), and this stop waited out the timeout every time.
    "a worker loading the app, the master before its graceful stop": (
        "worker",
        ["--init", "-e", f"UWSGI_HOOK_MASTER_START={HOLD}"],
        ["slow app: loading", f'running "{HOLD}" (master-start)'],
        ["goodbye to uWSGI"],
    ),
    # Before uwsgi config 0.7.5 the master ignored SIGTERM until its loop ran, and this stop waited out the timeout
    # every time. It now ends the master at once (exit status 15: nothing was served yet, no worker was forked).
    "the master still starting": (
        "master",
        ["--init", "-e", f"UWSGI_HOOK_IN_JAIL={HOLD}"],
        [f'running "{HOLD}" (in-jail)'],
        [],
    ),
}
# The exit status a stop leaves, where it is not 0: a master stopped before its loop ends at once with the signal's
# number (uwsgi/uwsgi.ini: hook-asap).
EXIT_STATUS = {"the master still starting": 15}


@pytest.mark.parametrize("stage", APP_STAGES)
def test_the_app_container_stopped_while_it_loads_the_app_stops_at_once(tmp_path, stage):
    held, flags, ready, said = APP_STAGES[stage]
    app = tmp_path / "app"
    app.mkdir()
    app.chmod(0o755)
    (app / "slow.py").write_text(SLOW_APP)
    (app / "slow.py").chmod(0o644)
    name = f"wct-stop-app-{secrets.token_hex(3)}"
    docker(
        *("run", "-d", *flags, "--name", name, "--network", "none", "-v", f"{app}:/srv/slow:ro"),
        *("-e", "APP_DIR=/srv/slow", "-e", "WSGI_MODULE=slow:application", "-e", "DJANGO_SETTINGS_MODULE="),
        *("-e", f"SLOW_STAGE={held}"),
        settings.get("APP_IMAGE"),
        "serve",
    )
    took, code, output = stopped(name, *ready)
    assert took < HEARD_WITHIN, f"docker stop took {took:.1f} s (exit {code}): the stop was dropped\n{output}"
    assert code == EXIT_STATUS.get(stage, 0), output
    assert all(line in output for line in said), output


def test_the_socket_listener_stopped_while_it_starts_stops_at_once(tmp_path):
    """The split topology's listener container and the single container's listener program: uWSGI too (listener.ini),
    held where it ignored SIGTERM before uwsgi config 0.7.5."""
    name = f"wct-stop-listener-{secrets.token_hex(3)}"
    docker(
        *("run", "-d", "--init", "--name", name, "--network", "none", "-e", f"UWSGI_HOOK_IN_JAIL={HOLD}"),
        *("--tmpfs", "/run/uwsgi", "--tmpfs", "/run/uwsgi-zerg"),
        settings.get("APP_IMAGE"),
        "listen",
    )
    took, code, output = stopped(name, f'running "{HOLD}" (in-jail)')
    assert took < HEARD_WITHIN, f"docker stop took {took:.1f} s (exit {code}): the stop was dropped\n{output}"
    assert code == 15, output
