"""`make up` / `make down` as ops run them, beside the suite's own stack, which must come through untouched."""

from __future__ import annotations

import contextlib
import dataclasses
import secrets
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.harness import Rounds, container_logs, docker, make, poll, project_containers
from tools import lost_stops, settings, stack
from tools.compose import PROJECT_LABEL, ROOT, Container

pytestmark = pytest.mark.lifecycle


# (settings, the URL `make up` says the stack is up at): the bind address where nginx serves it as a host name, else
# the first name nginx serves. It said the bind address whatever the names, and with SERVER_NAMES=localhost that URL
# got nginx's 421.
SERVED_URLS = [
    ({}, "http://127.0.0.1:8080/"),
    ({"HTTP_BIND": "0.0.0.0"}, "http://127.0.0.1:8080/"),  # noqa: S104 - a setting compared, nothing bound
    ({"SERVER_NAMES": "localhost", "HTTP_PORT": "8099"}, "http://localhost:8099/"),
    ({"ALLOWED_HOSTS": "shop.example,127.0.0.1"}, "http://127.0.0.1:8080/"),
    ({"ALLOWED_HOSTS": ".shop.example"}, "http://shop.example:8080/"),
    ({"SERVER_NAMES": "shop.example", "ALLOWED_HOSTS": "127.0.0.1"}, "http://shop.example:8080/"),
    ({"SERVER_NAMES": "shop.example", "TLS": "on", "HTTPS_PORT": "9443"}, "https://shop.example:9443/"),
    ({"HTTP_BIND": "::1", "SERVER_NAMES": "[::1]"}, "http://[::1]:8080/"),
]


@pytest.mark.parametrize(("given", "url"), SERVED_URLS)
def test_make_up_says_the_stack_is_up_at_a_url_under_a_name_nginx_serves(monkeypatch, given, url):
    for name in ("HTTP_BIND", "HTTP_PORT", "HTTPS_PORT", "TLS", "SERVER_NAMES", "ALLOWED_HOSTS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in given.items():
        monkeypatch.setenv(name, value)
    assert stack.served_url() == url


def test_make_up_twice_is_idempotent_and_make_down_leaves_no_containers(make_env, deployment):
    suite_stack = deployment.compose.project if deployment.compose else None
    suite_before = project_containers(suite_stack) if suite_stack else {}
    project, port = make_env["COMPOSE_PROJECT_NAME"], make_env["HTTP_PORT"]

    first = make("up", make_env)
    assert first.returncode == 0, first.stdout + first.stderr
    assert f"is up at http://127.0.0.1:{port}/" in first.stdout
    assert requests.get(f"http://127.0.0.1:{port}/", timeout=10).status_code == 200
    running = {name: ident for name, ident in project_containers(project).items() if "-migrate-" not in name}
    assert sorted(name.rsplit("-", 2)[-2] for name in running) == ["app", "listener", "nginx"], running

    second = make("up", make_env)
    assert second.returncode == 0, second.stdout + second.stderr
    again = {name: ident for name, ident in project_containers(project).items() if "-migrate-" not in name}
    assert again == running, "a second `make up` recreated or restarted a service"

    down = make("down", make_env)
    assert down.returncode == 0, down.stdout + down.stderr
    assert project_containers(project) == {}, "make down left containers behind"

    if suite_stack:
        assert project_containers(suite_stack) == suite_before, "another stack's up/down touched the suite's stack"


def test_make_up_fails_fast_with_the_failing_services_logs(make_env):
    started = time.monotonic()
    result = make("up", {**make_env, "DEBUG": "maybe"}, timeout=120)
    elapsed = time.monotonic() - started
    assert result.returncode != 0
    assert "DEBUG='maybe' is not a boolean" in result.stderr, result.stderr
    assert elapsed < 60, f"make up took {elapsed:.0f} s to fail"
    # The cause alone comes first: the pre-start hook that failed, not the listener that had not yet been given the
    # time to get healthy (listed, and stopped "so it does not restart in a loop", before), nor the health probe's
    # settings, which nothing here asked.
    # The causes' block ends at the first blank line: compose's last lines come next when compose gave up first, else
    # the failing services' logs (when make up saw the failure before compose returned).
    head = result.stderr.split("\n\nup: ", 1)[0]
    causes = [line for line in head.splitlines() if line.startswith("up: service ")]
    assert causes == ["up: service migrate is exited with code 1"], head
    assert "HEALTHCHECK_PATH" not in head, head
    assert "so it does not restart in a loop" not in result.stderr, result.stderr[-2000:]


def test_a_failed_make_up_again_shows_the_log_lines_of_its_own_attempt_alone_and_printable(make_env):
    """The migrate one-shot's container, unchanged, is started again by the second `make up`, its log holding both
    attempts' lines: the first's read as this one's (tried with Trac, whose pre-start hook failed the same way). And
    what the app logged reaches the operator's terminal with its control characters shown, not acted on (a line may
    hold a client's path): here an escape sequence that would colour the terminal."""
    env = {**make_env, "PRESTART_CMD": "printf 'the hook fails here \\033[31mred\\n'; exit 3"}
    first = make("up", env, timeout=120)
    assert first.returncode != 0
    again = make("up", env, timeout=120)
    assert again.returncode != 0
    shown = again.stderr.split("its last log lines:", 1)[1]
    assert shown.count("the hook fails here") == 1, shown
    assert "up:   its last log line: the hook fails here \\x1b[31mred" in again.stderr, again.stderr
    assert "\x1b" not in again.stderr + again.stdout


def last_lines(follow: subprocess.Popen, count: int = 40) -> str:
    """The last lines a `docker logs -f` printed; it ends when its container stops (else it is cut off after 10 s)."""
    try:
        output = follow.communicate(timeout=10)[0]
    except subprocess.TimeoutExpired:
        follow.kill()
        output = follow.communicate()[0]
    return "".join(output.splitlines(True)[-count:])


def test_make_down_while_make_up_waits_ends_it_at_once_naming_the_removal_not_a_failure(make_env, tmp_path):
    project = make_env["COMPOSE_PROJECT_NAME"]

    def statuses() -> dict[str, str]:
        return project_containers(project, "{{.State.Status}}")

    def app_running() -> bool:
        return any("-app-" in name and status == "running" for name, status in statuses().items())

    # An app whose readiness probe asks for a path it answers 404 never gets ready, and one failing answer a
    # HEALTH_INTERVAL fails the start only after three (a minute and more): `make up` is still waiting when the down
    # comes, however soon the app would have been ready. The path comes from the app's environment at run time
    # (APP_ENV_FILE), not from `make up READINESS_PATH=`, which builds it into the image every stack shares.
    app_env = tmp_path / "app.env"
    app_env.write_text("READINESS_PATH=/never-ready\n", encoding="utf-8")
    never_ready = {**make_env, "APP_ENV_FILE": str(app_env), "HEALTH_INTERVAL": "30s"}
    with ThreadPoolExecutor(max_workers=1) as pool:
        up = pool.submit(make, "up", never_ready, 120)
        # Down as soon as the app server runs.
        poll(app_running, timeout=90, interval=0.2, what="the app server running")
        # Each container's log to its end (`make down` removes them): which one held the stop up, if one did.
        followed = {
            name: subprocess.Popen(
                ["docker", "logs", "-f", "-t", name], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
            )
            for name in statuses()
        }
        started = time.monotonic()
        down = make("down", make_env)
        result = up.result(timeout=120)
        ended = time.monotonic() - started
    logs = "".join(f"--- {name}\n{last_lines(follow)}" for name, follow in followed.items())
    assert down.returncode == 0, down.stdout + down.stderr
    assert ended < 30, f"make up went on for {ended:.0f} s after make down\n{down.stdout}{down.stderr}\n{logs}"
    assert result.returncode != 0, f"{result.stdout}\n{down.stdout}{down.stderr}\n{logs}"
    assert "up: the stack's containers were stopped or removed while it started" in result.stderr, result.stderr
    assert "no container has failed" not in result.stderr, result.stderr
    assert statuses() == {}, "make down left containers behind"


# A program that loses its first stop signal, as a container stopped in its first moments can (tools/lost_stops.py):
# it ignores the first SIGQUIT and exits on the second.
DEAF_AT_FIRST = """import signal, sys, time
heard = 0
def on_quit(signum, frame):
    global heard
    heard += 1
    print(f"deaf at first: stop signal {heard}", flush=True)
    if heard > 1:
        sys.exit(0)
signal.signal(signal.SIGQUIT, on_quit)
print("deaf at first: ready", flush=True)
while True:
    time.sleep(1)
"""
# docker stop's timeout here: a container whose stop was not sent again runs until it, and is killed (exit 137).
DEAF_STOP_TIMEOUT = 6
# A young container's stop counts as young up to this in the second case, which waits it out.
SHORT_YOUNG = 1.0


@pytest.mark.parametrize("young", [True, False], ids=["stopped as it starts", "stopped later"])
def test_a_stop_signal_a_young_container_lost_is_sent_again_until_it_stops_and_an_older_ones_is_not(young):
    project = f"wct-lost-{secrets.token_hex(3)}"
    name = f"{project}-deaf-1"
    docker(
        *("run", "-d", "--init", "--name", name, "--network", "none", "--stop-signal", "QUIT"),
        *("--label", f"{PROJECT_LABEL}={project}"),
        settings.get("APP_IMAGE"),
        *("python3", "-c", DEAF_AT_FIRST),
    )
    try:
        poll(lambda: "deaf at first: ready" in container_logs(name), what="the program ready")
        if not young:
            poll(lambda: time.time() - lost_stops.started_at(name) > SHORT_YOUNG, what="the container older")
        with lost_stops.resending(project, young=SHORT_YOUNG if not young else lost_stops.YOUNG) as resent:
            started = time.monotonic()
            docker("stop", "-t", str(DEAF_STOP_TIMEOUT), name)
            took = time.monotonic() - started
        code = int(docker("inspect", "-f", "{{.State.ExitCode}}", name))
        logs = container_logs(name)
    finally:
        docker("rm", "-f", name, check=False)
    if young:
        assert took < DEAF_STOP_TIMEOUT - 2, f"docker stop took {took:.1f} s: the stop was not sent again\n{logs}"
        assert (code, "deaf at first: stop signal 2" in logs) == (0, True), logs
        assert resent == [name]
    else:
        assert took >= DEAF_STOP_TIMEOUT, f"an older container's stop was sent again: {took:.1f} s\n{logs}"
        assert (code, resent) == (137, []), logs


# A stop resent to a restarted container stopped its new run: in a cold run (2026-12-05) `make restart` found the
# app server exited 0 ("stopped from elsewhere") after a restart that followed another within seconds.
@pytest.mark.parametrize(
    ("sent", "started", "lost", "stopping"),
    [
        (10.0, 8.0, True, True),  # in its first seconds: may be lost, and it still runs that run
        (20.0, 8.0, False, True),  # an older container heard it
        (10.0, 0.0, False, False),  # gone
        (10.0, 11.0, False, False),  # read after a restart had started it again: the run before's
    ],
    ids=["young", "older", "gone", "started again since"],
)
def test_a_stop_is_sent_again_only_to_the_young_run_it_was_sent_to(sent, started, lost, stopping):
    assert lost_stops.may_be_lost(sent, started, lost_stops.YOUNG) == lost
    assert lost_stops.still_stopping(sent, started) == stopping


def test_a_stop_that_is_killed_leaves_no_follower_of_dockers_events_behind():
    project = f"wct-lost-{secrets.token_hex(3)}"

    def followers() -> list[str]:
        found = subprocess.run(["pgrep", "-f", f"docker events .*{PROJECT_LABEL}={project}"], capture_output=True)
        return found.stdout.decode().split()

    script = f"import time\nfrom tools import lost_stops\nwith lost_stops.resending({project!r}):\n    time.sleep(60)\n"
    stop = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT)
    try:
        poll(followers, what="the follower of docker's events")
    finally:
        stop.kill()
        stop.wait()
    poll(lambda: not followers(), timeout=10, what="the follower gone once its `make down` was killed")


# The engine's error for a container it could not start.
START_ERROR = "OCI runtime create failed: exec: app-entrypoint: not found"


@pytest.mark.parametrize(
    ("status", "exit_code", "policy", "error", "stopped"),
    [
        ("exited", 0, "unless-stopped", "", True),  # `make down` stopped it
        # Stopped before uWSGI's master loop: its _exit(15) (uwsgi/uwsgi.ini; a cold run's `make down`, 2026-12-05).
        ("exited", 15, "unless-stopped", "", True),
        ("exited", 137, "unless-stopped", "", True),  # killed at the stop timeout
        ("removing", 0, "unless-stopped", "", True),
        ("exited", 127, "unless-stopped", START_ERROR, False),  # the engine could not start it
        ("exited", 1, "on-failure", "", False),  # it failed, and its policy gave up on it
        ("exited", 0, "no", "", False),  # migrate, done
        ("removing", 0, "no", "", True),  # migrate, done, and `make down` removes it
        ("running", 0, "unless-stopped", "", False),
        ("restarting", 1, "unless-stopped", "", False),  # ended by itself: its restart policy brings it back
    ],
)
def test_make_up_tells_a_service_stopped_from_elsewhere_from_one_that_failed(status, exit_code, policy, error, stopped):
    state = container("nginx", status, exit_code, policy=policy, error=error)
    assert stack.stopped_from_elsewhere(state) is stopped


@pytest.mark.parametrize(
    ("policy", "error", "one_shot", "restarts_on_any_exit"),
    [
        ("unless-stopped", "", False, True),
        ("always", "", False, True),
        ("on-failure", "", False, False),
        ("no", "", True, False),
        ("", "", True, False),  # none given: Docker's "no"
        ("unless-stopped", START_ERROR, False, True),
    ],
)
def test_a_containers_restart_policy_and_start_error_are_read_from_its_record(
    policy, error, one_shot, restarts_on_any_exit
):
    record = {
        "Id": "c0ffee",
        "Name": "/wct-x-app-1",
        "State": {"Status": "exited", "ExitCode": 15, "Error": error, "FinishedAt": ""},
        "Config": {},
        "HostConfig": {"RestartPolicy": {"Name": policy, "MaximumRetryCount": 0}},
    }
    state = Container.parse(record)
    assert (state.one_shot, state.restarts_on_any_exit, state.error) == (one_shot, restarts_on_any_exit, error)


def container(
    service: str,
    status: str,
    exit_code: int = 0,
    health: str = "",
    restarts: int = 0,
    probes: tuple[dict, ...] = (),
    check: tuple[str, ...] = ("CMD", "probe"),
    policy: str = "unless-stopped",
    error: str = "",
) -> Container:
    """A container as Container.parse reads one; its restart policy as compose.yaml's long-running services' unless
    given (migrate's: "no")."""
    return Container(
        id=service,
        name=f"wct-x-{service}-1",
        service=service,
        status=status,
        exit_code=exit_code,
        restarts=restarts,
        finished_at=0.0,
        health=health,
        probes=list(probes),
        env={},
        labels={},
        restart_policy=policy,
        error=error,
        check=check,
    )


STARTING_APP = container("app", "running", health="starting")
STILL_UP = [STARTING_APP, container("listener", "running", health="healthy")]
# The engine's last health probes of a listener whose socket is gone.
FAILED_PROBES = tuple({"Start": "2026-12-04T17:10:40.0Z", "ExitCode": 1, "Output": ""} for _ in range(3))


@pytest.mark.parametrize(
    ("remaining", "removed", "told_as_stopped"),
    [
        pytest.param([], False, True, id="none left"),
        # A cold run's `make down` (2026-12-04): only the finished migrate left, being removed.
        pytest.param([container("migrate", "removing", policy="no")], False, True, id="migrate being removed"),
        pytest.param([container("nginx", "exited"), *STILL_UP], False, True, id="nginx stopped"),
        pytest.param(
            [container("nginx", "exited"), container("app", "exited", exit_code=127, error=START_ERROR)],
            False,
            False,
            id="the app could not start",
        ),
        pytest.param(
            [container("nginx", "exited"), container("app", "restarting", exit_code=1, restarts=3)],
            False,
            False,
            id="the app failed and restarts",
        ),
        # A cold run's `make down` (2026-12-05) as uWSGI started: it exits 15 before its master loop (uwsgi.ini).
        pytest.param(
            [container("app", "exited", exit_code=15), container("listener", "exited")],
            False,
            True,
            id="the app stopped before uWSGI's master loop",
        ),
        pytest.param(STILL_UP, False, False, id="still starting"),
        # Restarts from before this `make up` (an earlier crash) are not this start's failure; a new one is.
        pytest.param(
            [container("nginx", "exited"), container("app", "running", restarts=2)], False, True, id="old restarts"
        ),
        pytest.param(
            [container("nginx", "exited"), container("app", "running", restarts=3)], False, False, id="a new restart"
        ),
        # A warm run (2026-12-04): nginx stopped and already removed, the others still in their stop.
        pytest.param(STILL_UP, True, True, id="nginx stopped and gone"),
        # A warm run (2026-12-04 17:10): nginx stopped and gone, the listener being removed and, stopped, unhealthy.
        pytest.param(
            [container("listener", "removing", health="unhealthy", probes=FAILED_PROBES), STARTING_APP],
            True,
            True,
            id="nginx gone, the listener being removed",
        ),
        pytest.param(
            [container("listener", "running", health="unhealthy", probes=FAILED_PROBES), STARTING_APP],
            True,
            False,
            id="nginx gone, the listener unhealthy",
        ),
    ],
)
def test_make_up_tells_a_stack_stopped_while_it_started_from_one_that_failed(remaining, removed, told_as_stopped):
    restarts_before_up = {"app": 2}
    assert stack.stopped_while_starting(remaining, restarts_before_up, removed) is told_as_stopped


@pytest.mark.parametrize(
    ("remaining", "compose_output", "told_as_stopped"),
    [
        # Compose refused a value before it created anything (HEALTH_INTERVAL= before make up gave compose the
        # defaults, 2026-12-05): its own failure, and its lines say why.
        pytest.param([], "invalid duration ''", False, id="none created"),
        pytest.param([], "Error response from daemon: No such container: 5f3c", True, id="all removed as it started"),
        pytest.param([container("nginx", "exited"), *STILL_UP], "", True, id="nginx stopped"),
        pytest.param(
            [container("nginx", "created"), container("app", "created")],
            "port is already allocated",
            False,
            id="a start that failed",
        ),
    ],
)
def test_when_compose_fails_make_up_tells_a_stop_from_elsewhere_from_compose_creating_nothing(
    remaining, compose_output, told_as_stopped
):
    assert stack.stopped_as_compose_started(remaining, {}, compose_output) is told_as_stopped


LISTENER, APP, NGINX = (container(service, "running", health="starting") for service in ("listener", "app", "nginx"))
MIGRATED = container("migrate", "exited", policy="no")


# `make up` is done once each long-running container passes its own health check, run as the stack starts, or Docker
# found it healthy: not at Docker's first check, one HEALTH_INTERVAL after the start.
@pytest.mark.parametrize(
    ("rounds", "passes_from", "outcome"),
    [
        pytest.param([[MIGRATED, LISTENER, APP, NGINX]], {"listener": 0, "app": 0, "nginx": 0}, "ready", id="at once"),
        pytest.param([[LISTENER, APP, NGINX]], {"listener": 0, "app": 3, "nginx": 1}, "ready", id="in turn"),
        pytest.param(
            [[container("listener", "running", health="healthy"), container("app", "running", check=()), NGINX]],
            {"nginx": 0},
            "ready",
            id="healthy or unchecked",
        ),
        pytest.param([[LISTENER, container("app", "restarting"), NGINX]], {}, "failed", id="a crash"),
        pytest.param([[LISTENER, APP, NGINX], [LISTENER, APP]], {"listener": 0}, "stopped", id="nginx removed"),
        pytest.param(
            [[LISTENER, APP, NGINX], [LISTENER, APP, container("nginx", "exited")]], {}, "stopped", id="nginx stopped"
        ),
        pytest.param([[LISTENER, APP, NGINX], []], {}, "stopped", id="all removed"),
        pytest.param([[LISTENER, APP, NGINX]], {"listener": 0, "nginx": 0}, "late", id="the app never"),
    ],
)
def test_make_up_is_done_once_every_container_passes_its_health_check_and_says_why_not(rounds, passes_from, outcome):
    starting = Rounds(rounds, passes_from)
    found, failing = stack.until_ready(starting, time.time(), {}, 2, starting.passes)  # type: ignore[arg-type]
    assert found == outcome
    if outcome == "late":
        assert [(state.service, why) for state, why in failing] == [
            ("app", "not passing its health check 2 s after up began (UP_TIMEOUT)")
        ]
    assert bool(failing) == (outcome in ("failed", "late"))


def test_a_container_started_anew_that_restarts_is_named_without_a_negative_count():
    """A `make up` that starts a container the last one stopped (Docker counts its restarts from 0 again) said
    "was restarted -2 time(s)" (seen 2026-12-06, an nginx setting refused twice)."""
    why = stack.failure(container("nginx", "restarting", restarts=0), 0, restarts_before=2, existed=True)
    assert why == "restarting: it stopped and is being restarted since up began"


def exited(code: int) -> Container:
    """The app container found exited with this code after the restart began, whenever the test runs (its exit time
    is far ahead: the parameters are made at collection, minutes before the test in a full run)."""
    return dataclasses.replace(container("app", "exited", exit_code=code), finished_at=1e12)


# `make restart` is done once the app server passes its own health check again, and says why not.
@pytest.mark.parametrize(
    ("rounds", "passes_from", "outcome", "why"),
    [
        pytest.param([[LISTENER, APP, NGINX]], {"app": 2}, "ready", None, id="back"),
        pytest.param(
            [[LISTENER, container("app", "restarting", restarts=1), NGINX]],
            {},
            "failed",
            "restarting: it stopped and was restarted 1 time(s) since the restart began",
            id="in a loop",
        ),
        # Seen under load (2026-12-05): check-app failed, and Docker left the container exited after `docker restart`.
        pytest.param(
            [[LISTENER, APP, NGINX], [LISTENER, exited(78), NGINX]],
            {},
            "failed",
            "exited with code 78, not restarted",
            id="exited non-zero",
        ),
        pytest.param([[LISTENER, APP, NGINX], [LISTENER, exited(0), NGINX]], {}, "stopped", None, id="stopped"),
        pytest.param([[LISTENER, APP, NGINX], [LISTENER, NGINX]], {}, "stopped", None, id="removed"),
        pytest.param(
            [[LISTENER, APP, NGINX]],
            {},
            "late",
            "not passing its health check 1 s after the restart began (UP_TIMEOUT)",
            id="never back",
        ),
    ],
)
def test_make_restart_is_done_once_the_app_server_passes_its_health_check_and_says_why_not(
    rounds, passes_from, outcome, why
):
    restarting = Rounds(rounds, passes_from)
    found, failing = stack.after_restart(restarting, "app", time.time(), {}, 1, restarting.passes)  # type: ignore[arg-type]
    assert found == outcome
    assert [reason for _, reason in failing] == ([why] if why else [])


def single(started_at: float, output: str) -> Container:
    """The single container after its uWSGI program's restart began: Docker's verdict unhealthy, three probes since
    (their times far ahead, as exited's), each ending with `output`; started at `started_at` (0 < it < the restart:
    kept running; far ahead: started again)."""
    probes = tuple({"Start": "2999-01-01T00:00:00Z", "ExitCode": 1, "Output": output} for _ in range(3))
    return dataclasses.replace(container("single", "running", health="unhealthy", probes=probes), started_at=started_at)


TIMED_OUT = "unhealthy: GET /healthz: timed out (uWSGI is not answering on its socket)"
ANSWERED_500 = "unhealthy: GET /healthz -> 500"


@pytest.mark.parametrize(
    ("state", "passes_from", "outcome", "why"),
    [
        # Seen 2026-12-06 on a loaded machine: Django loaded in 6 s, three probes failed meanwhile, and make restart
        # failed and stopped the container, which would have passed a moment later.
        pytest.param(single(1.0, TIMED_OUT), {"single": 2}, "ready", None, id="kept running, loading"),
        pytest.param(
            single(1.0, ANSWERED_500),
            {},
            "failed",
            "failing its health check (3 times in a row, the app answering)",
            id="kept running, the app answering errors",
        ),
        pytest.param(single(1e12, TIMED_OUT), {}, "failed", "unhealthy", id="started again"),
    ],
)
def test_make_restart_of_the_program_in_a_running_container_waits_out_docker_s_unhealthy_while_the_app_loads(
    state, passes_from, outcome, why
):
    """Docker's start period covers a container's start, not its program's restart inside it: there, its verdict
    "unhealthy" says only that the app took three HEALTH_INTERVALs to load."""
    restarting = Rounds([[state]], passes_from)
    found, failing = stack.after_restart(restarting, "single", time.time(), {}, 5, restarting.passes)  # type: ignore[arg-type]
    assert found == outcome
    assert [reason for _, reason in failing] == ([why] if why else [])


class RestartNotRun(Rounds):
    """A stack whose restart command did not run (docker exec's 126: a tool missing in an old single image), while
    its app server, the one from before, still passes its health check."""

    def __init__(self, compose_file: str, server: str):
        super().__init__([[container(server, "running", health="healthy")]], {server: 0})
        self.files = [compose_file]

    def run(self, *args, **kwargs) -> subprocess.CompletedProcess:
        return subprocess.CompletedProcess(list(args), 126, "", "")


@pytest.mark.parametrize("topology", list(settings.TOPOLOGIES))
def test_make_restart_whose_command_fails_fails_with_its_status_instead_of_passing_on_the_old_app_server(topology):
    """Until 2026-12-06 the single topology went on to the health check whatever `supervisorctl restart` returned
    (it failed for an app that no longer starts, which the wait names better): a restart that never ran passed."""
    chosen = settings.TOPOLOGIES[topology]
    restarting = RestartNotRun(chosen.compose_file, chosen.server)
    code = stack.restart(restarting, ["restart"], 1, contextlib.nullcontext())  # type: ignore[arg-type]
    assert code == 126
    assert restarting.round == 0, "the old app server's health was read as the restart's"
