"""The README's commands as an operator runs them (issue 20): each says what it does, fails safe, and can be run
twice."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from tests.harness import (
    ROOT,
    assert_answered_at_once_with_no_app_server,
    docker,
    free_port,
    made_up,
    make,
    own_settings,
    poll,
    project_containers,
    stats_answer,
    uwsgi_stats,
)
from tests.served_app import ServedApp
from tools import bootstrap, settings, unapplied
from tools.compose import CONFIG_HASH_LABEL, PROJECT_LABEL, Container
from tools.tls import self_signed

# --- /healthz is public: it names no version ------------------------------------------------------------------


@pytest.mark.chain
def test_the_public_healthz_names_no_version(http: requests.Session, served_app: ServedApp):
    served_app.needs_default("/healthz")
    response = http.get("/healthz")
    assert response.status_code == 200
    version = (ROOT / "app/VERSION").read_text().strip()
    assert "version" not in response.json(), response.text
    assert version not in response.text, response.text


# --- make verify checks the deployment it is given, and only that -----------------------------------------------

NO_TARGET = {"BASE_URL": "", "NGINX_HOST": "", "APP_HOST": ""}

VERIFY_REFUSALS = {
    "no variables": ({}, "BASE_URL, NGINX_HOST, APP_HOST not set"),
    "only BASE_URL": ({"BASE_URL": "http://127.0.0.1:8080"}, "NGINX_HOST, APP_HOST not set"),
    "a host that is no container": (
        {"NGINX_HOST": "docker://wct-no-such-container", "APP_HOST": "docker://wct-no-such-container"},
        "NGINX_HOST=docker://wct-no-such-container: no container named wct-no-such-container",
    ),
}


@pytest.mark.parametrize("case", VERIFY_REFUSALS)
def test_make_verify_without_a_usable_target_prints_one_line_of_usage_and_starts_nothing(case, deployment):
    settings, message = VERIFY_REFUSALS[case]
    if "BASE_URL" not in settings and "NGINX_HOST" in settings:
        settings = {**settings, "BASE_URL": deployment.base_url}
    started = time.monotonic()
    result = make("verify", {**NO_TARGET, **settings}, timeout=60)
    elapsed = time.monotonic() - started

    assert result.returncode != 0
    lines = (result.stdout + result.stderr).splitlines()
    assert lines[0].startswith("verify: ") and message in lines[0], lines
    if "not set" in message:
        assert all(name in lines[0] for name in ("BASE_URL=", "NGINX_HOST=", "APP_HOST=")), lines[0]
    # The usage line, then make's own "*** [verify] Error 2": no tracebacks, no pytest run, no stack.
    assert len(lines) == 2 and lines[1].startswith("make: ***"), lines
    assert elapsed < 20, f"make verify took {elapsed:.0f} s to refuse"


def test_make_verify_checks_the_given_deployment_and_says_so_first(deployment):
    if not (deployment.nginx_container and deployment.app_container):
        pytest.skip("needs a deployment in containers")
    before = compose_projects()
    # The chain checks of this file only: the full set runs in `make test` already.
    target = {**deployment.verify_target(), "PYTEST_ARGS": "tests/test_operator.py"}
    result = make("verify", target, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    first = result.stdout.splitlines()[0]
    assert first.startswith(f"verify: checking the deployment at {deployment.base_url} "), first
    assert deployment.nginx_host in first and deployment.app_host in first, first
    assert re.search(r"\b1 passed\b", result.stdout), result.stdout[-2000:]
    started = {project for project in compose_projects() - before if not project.startswith("wct")}
    assert started == set(), "make verify started a stack of its own"


def compose_projects() -> set[str]:
    """Compose projects with a container now, the tests' own (wct-...) ones included. Only the containers compose
    created count (it labels each with its config's hash): one started from a compose-built image any other way
    carries the image's project label too, as the host swarm's tasks do (`wsgi-chain`) and the local cluster's nodes
    (`wsgi-chain-cluster-images`); two runs took a swarm rollout's new tasks for a stack make verify had started."""
    out = docker("ps", "-a", "--filter", f"label={CONFIG_HASH_LABEL}", "--format", f'{{{{.Label "{PROJECT_LABEL}"}}}}')
    return {line for line in out.splitlines() if line}


# --- make up is quiet: one line per phase, the build's output only when asked for or when it fails ---------------

PHASES = ("up: bootstrap ", "up: build ", "up: start ", "up: healthy ")


@pytest.mark.lifecycle
def test_make_up_answers_in_one_line_per_phase_and_verbose_brings_back_the_build_output(make_env):
    # Progress lines every 20 s without a terminal: here as often as there is build output, so that there are some.
    quiet = make("up", {**make_env, "PROGRESS_EVERY": "0"})
    assert quiet.returncode == 0, quiet.stdout[-3000:] + quiet.stderr[-3000:]
    progress = [line for line in quiet.stdout.splitlines() if "still at it" in line]
    assert all(re.match(r"up: (bootstrap|build    ) still at it after \d+ s", line) for line in progress), progress
    assert any(line.startswith("up: build ") and "[app " in line for line in progress), "no build step named"
    lines = [line for line in quiet.stdout.splitlines() if "still at it" not in line]
    url = f"up: wsgi-chain is up at http://127.0.0.1:{make_env['HTTP_PORT']}/"
    assert len(lines) == len(PHASES) + 1, quiet.stdout
    assert all(line.startswith(prefix) for line, prefix in zip(lines, PHASES, strict=False)), quiet.stdout
    assert lines[-1] == url, quiet.stdout
    # Nothing on stderr but a warning about the machine's engine, if it has earned one (tools/buildkit_db.py).
    said = [line for line in quiet.stderr.splitlines() if not line.startswith(bootstrap.WARNING)]
    assert said == [], quiet.stderr
    assert "buildx" not in quiet.stdout + quiet.stderr

    loud = make("up", {**make_env, "VERBOSE": "1"})
    assert loud.returncode == 0, loud.stdout[-3000:] + loud.stderr[-3000:]
    output = loud.stdout + loud.stderr
    assert re.search(r"^#\d+ \[app ", output, re.M), "VERBOSE=1 shows no BuildKit step"
    if "buildx isn't installed" in output:
        assert "Bake needs buildx is harmless" in loud.stdout, "the Bake warning is not explained"
    assert url in loud.stdout


@pytest.mark.lifecycle
def test_make_up_whose_build_fails_shows_the_builds_last_lines(make_env, tmp_path):
    app = tmp_path / "unbuildable"
    app.mkdir()
    (app / "app.py").write_text("def application(environ, start_response):\n    return []\n")
    (app / "requirements.txt").write_text("wsgi-chain-no-such-package-anywhere==0.0.1\n")
    env = {
        **make_env,
        "APP_SRC": str(app),
        "WSGI_MODULE": "app:application",
        "APP_IMAGE": "wsgi-chain-test/unbuildable-app:dev",
        "NGINX_IMAGE": "wsgi-chain-test/unbuildable-nginx:dev",
    }
    result = make("up", env, timeout=600)
    assert result.returncode != 0
    assert "wsgi-chain-no-such-package-anywhere" in result.stderr, result.stderr[-3000:]
    assert "the build failed" in result.stderr and "VERBOSE=1 shows all of it" in result.stderr, result.stderr
    assert not re.search(r"^#\d+ ", result.stdout, re.M), "the build's output came before its failure"
    assert "up: start" not in result.stdout


@pytest.mark.parametrize("holder", ["a program on this host", "another stack's nginx"])
def test_make_up_on_a_port_something_else_holds_names_it_in_one_line_and_creates_nothing(holder, make_env, deployment):
    """Docker created the containers, the app's started, and nginx's failed on "address already in use", a line in the
    middle of compose's, after `make up` had named the services still starting as what failed. Now the ports are
    checked first."""
    with socket.socket() as program:
        if holder == "a program on this host":
            program.bind(("127.0.0.1", 0))
            program.listen()
            port, by = program.getsockname()[1], "a program on this host"
        else:
            port, by = (
                urlsplit(deployment.base_url).port,
                f"the container {deployment.nginx_container}",
            )
        result = make("up", {**make_env, "HTTP_PORT": str(port)}, timeout=120)
    assert result.returncode != 0
    [line] = [line for line in result.stderr.splitlines() if line.startswith("up: error: ")]
    assert line == (
        f"up: error: HTTP_PORT={port} on 127.0.0.1 is taken by {by}: stop it, or publish the stack on another port "
        "(make up HTTP_PORT=<port>); nothing was started"
    )
    assert "up: start" not in result.stdout
    assert project_containers(make_env["COMPOSE_PROJECT_NAME"]) == {}


# --- every target acts on the topology that runs; TOPOLOGY= chooses only at `make up` ---------------------------


def make_piped(target: str, env: dict[str, str], stdin: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """A target run with commands piped to it, as `echo ... | make shell` does."""
    return subprocess.run(
        ["make", "--no-print-directory", target],
        cwd=ROOT,
        env={**os.environ, **env},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def followed_logs(env: dict[str, str], until: str, timeout: float = 30) -> str:
    """`make logs` follows forever: read until a line holds `until` (or the deadline), then end it."""
    proc = subprocess.Popen(
        ["make", "--no-print-directory", "logs"],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    seen: list[str] = []
    reader = threading.Thread(target=lambda: seen.extend(proc.stdout or []), daemon=True)
    reader.start()
    try:
        poll(lambda: any(until in line for line in list(seen)) or proc.poll() is not None, timeout, what="log lines")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
        reader.join(timeout=10)
    return "".join(seen)


@pytest.mark.lifecycle
def test_every_target_finds_the_single_topology_that_make_up_started_whatever_topology_says(make_env):
    project = make_env["COMPOSE_PROJECT_NAME"]
    started = make("up", {**make_env, "TOPOLOGY": "single"}, timeout=600)
    assert started.returncode == 0, started.stdout[-3000:] + started.stderr[-3000:]
    # The other topology named now, as a stale TOPOLOGY in the environment (or the Makefile's default) would.
    later = {**make_env, "TOPOLOGY": "split"}
    single = f"{project}-single-1"

    ps = make("ps", later)
    assert ps.returncode == 0, ps.stderr
    assert single in ps.stdout and f"{project}-app-1" not in ps.stdout, ps.stdout

    assert "single-1" in followed_logs(later, until="single-1")

    # As the app's user, with the app's writable home (app-entrypoint's; the image's is read-only).
    shell = make_piped("shell", later, stdin='id -un\necho "$HOME"\ntouch "$HOME/.probe" && echo wrote\n')
    assert shell.returncode == 0, shell.stdout + shell.stderr
    assert shell.stdout.split() == ["app", "/var/tmp/home", "wrote"], shell.stdout + shell.stderr  # noqa: S108

    reload = make("reload", later)
    assert reload.returncode == 0, reload.stdout + reload.stderr

    top = make("top", later)
    assert top.returncode != 0
    assert "uwsgitop needs a terminal" in top.stderr, top.stderr

    # The single topology restarts its uWSGI program under supervisord (the container keeps nginx's socket).
    before = uwsgi_stats(single)["pid"]
    restart = make("restart", later, timeout=120)
    assert restart.returncode == 0, restart.stdout + restart.stderr
    assert "restart: single passes its health check again" in restart.stdout, restart.stdout
    poll(lambda: stats_answer(single) and uwsgi_stats(single)["pid"] != before, 60, what="a new uWSGI master")

    versions = make("versions", later)
    assert "(single)" in versions.stdout, versions.stdout


@pytest.mark.parametrize("target", ["shell", "reload", "restart"])
def test_a_target_that_needs_a_running_stack_says_so_in_one_line_when_none_runs(target):
    project = f"wct-none-{uuid.uuid4().hex[:6]}"
    result = make(target, {"COMPOSE_PROJECT_NAME": project})
    assert result.returncode != 0
    lines = result.stderr.splitlines()
    assert lines[0] == f"{target}: error: no stack runs in compose project {project}: start one with `make up`", lines


# --- TLS: make cert, and a TLS=on that cannot work changes nothing -----------------------------------------------


# Settings set empty in the environment, as a CI template or a shell's `export NAME=` can leave them: each takes its
# default (defaults.env), in `make up`'s own start as in every other target's.
SET_EMPTY = ("HEALTH_INTERVAL", "LOG_MAX_SIZE", "LOG_MAX_FILES")


@pytest.fixture(scope="module")
def plain_up(tmp_path_factory) -> Iterator[dict[str, str]]:
    """A stack of its own started by `make up`, plain HTTP, for TLS attempts against it; torn down afterwards. A few
    settings are set empty (SET_EMPTY)."""
    env = {**own_settings(tmp_path_factory.mktemp("plain-up"), "wct-tlsup"), **dict.fromkeys(SET_EMPTY, "")}
    with made_up(env):
        yield env


def test_a_stack_make_up_started_runs_each_health_check_every_health_interval(plain_up):
    """The operator's stack checks at HEALTH_INTERVAL's default (defaults.env), not the suite's quieter one (the
    one-shot migrate aside: compose gives it no check of its own, so it keeps its image's)."""
    field = "{{.HostConfig.RestartPolicy.Name}} {{.Config.Healthcheck.Interval}}"
    containers = project_containers(plain_up["COMPOSE_PROJECT_NAME"], field=field)
    seconds = settings.duration_seconds
    intervals = {name: seconds(value.split()[1]) for name, value in containers.items() if value[:3] != "no "}
    assert len(intervals) == 3 and set(intervals.values()) == {seconds(settings.get("HEALTH_INTERVAL"))}, containers


def test_a_setting_set_empty_takes_its_default_in_the_stack_make_up_started(plain_up):
    """compose takes an empty variable over its env file's value: `make up`'s start passed the environment to compose
    as it was, and the engine refused the stack ("failed to initialize logging driver: invalid size: ''"), where every
    other target read the default. Now each container logs within the default bound (and checks at the default
    interval: the test above)."""
    containers = project_containers(plain_up["COMPOSE_PROJECT_NAME"], field="{{json .HostConfig.LogConfig.Config}}")
    expected = {"max-size": settings.get("LOG_MAX_SIZE"), "max-file": settings.get("LOG_MAX_FILES")}
    assert containers and all(json.loads(config) == expected for config in containers.values()), containers


# --- a reload or restart keeps the settings the stack was started with ------------------------------------------

RUNNING_APP = Container(
    id="c0ffee",
    name="wct-x-app-1",
    service="app",
    status="running",
    exit_code=0,
    restarts=0,
    finished_at=0.0,
    health="healthy",
    probes=[],
    env={"ALLOWED_HOSTS": "example.com", "LOG_LEVEL": "info", "UWSGI_WORKERS": "3"},
    labels={},
    image="example.org/app:1",
    # Its second port was given another host port at its start (HTTPS_PORT, say), not given now.
    published=frozenset({("127.0.0.1", "8080", "8080"), ("127.0.0.1", "30000", "8443")}),
)
# The app's service as compose renders it from defaults.env alone (a name without a value: passed on only when set).
DEFAULT_APP = {
    "image": "example.org/app:1",
    "environment": {"ALLOWED_HOSTS": "localhost", "LOG_LEVEL": "info", "UWSGI_WORKERS": None},
    "ports": [
        {"host_ip": "127.0.0.1", "published": "8080", "target": 8080},
        {"host_ip": "127.0.0.1", "published": "8443", "target": 8443},
    ],
}


def rendered(image: str | None = None, port: str | None = None, **environment: str | None) -> dict:
    service = json.loads(json.dumps(DEFAULT_APP))
    service["environment"].update(environment)
    service["image"] = image or service["image"]
    service["ports"][0]["published"] = port or "8080"
    return service


@pytest.mark.parametrize(
    ("given", "now", "refused"),
    [
        # Given now, and not what runs: refused, naming it and what runs.
        ({"UWSGI_WORKERS"}, rendered(UWSGI_WORKERS="4"), ["UWSGI_WORKERS=4 (the app container has '3')"]),
        ({"LOG_LEVEL"}, rendered(LOG_LEVEL="debug"), ["LOG_LEVEL=debug (the app container has 'info')"]),
        ({"UWSGI_LISTEN"}, rendered(UWSGI_LISTEN="64"), ["UWSGI_LISTEN=64 (unset in the app container)"]),
        # A name a setting makes (an APP_ENV_FILE's line), the image, the published port.
        ({"APP_ENV_FILE"}, rendered(FEATURE="on"), ["FEATURE=on (unset in the app container)"]),
        ({"APP_IMAGE"}, rendered(image="mine:2"), ["image mine:2 (the app container runs example.org/app:1)"]),
        ({"HTTP_PORT"}, rendered(port="9000"), ["ports 127.0.0.1:9000 (the app container publishes 127.0.0.1:8080)"]),
        # Given now and what runs: nothing refused.
        ({"UWSGI_WORKERS", "HTTP_PORT"}, rendered(UWSGI_WORKERS="3"), []),
        # Not given now: the stack keeps what it was started with (ALLOWED_HOSTS, UWSGI_WORKERS), not defaults.env's.
        (set(), rendered(), []),
        ({"LOG_LEVEL"}, rendered(), []),
    ],
)
def test_a_reload_or_restart_refuses_each_setting_given_now_that_the_running_stack_does_not_have(given, now, refused):
    assert unapplied.differences(RUNNING_APP, now, DEFAULT_APP, given) == refused


@pytest.mark.parametrize("target", ["reload", "restart"])
@pytest.mark.parametrize(
    ("settings_now", "named"),
    [
        ({"UWSGI_WORKERS": "3"}, ["UWSGI_WORKERS=3 (unset in the app container)"]),
        (
            {"ALLOWED_HOSTS": "example.com"},
            ["ALLOWED_HOSTS=example.com (the app container has", "SERVER_NAMES=example.com (the nginx container has"],
        ),
        ({"HTTP_PORT": "1"}, ["ports 127.0.0.1:1 (the nginx container publishes 127.0.0.1:"]),
        ({"APP_EGRESS": "on"}, ["APP_EGRESS=on (the app container has 'off')"]),
    ],
)
def test_make_reload_and_restart_given_a_setting_the_stack_lacks_refuse_in_one_line_and_change_nothing(
    plain_up, target, settings_now, named
):
    """Before, `make restart UWSGI_WORKERS=3` restarted the app server with the 2 workers it had and said nothing;
    the README sent the worker count there."""
    app = f"{plain_up['COMPOSE_PROJECT_NAME']}-app-1"
    started, master = docker("inspect", "-f", "{{.State.StartedAt}}", app), uwsgi_stats(app)["pid"]
    result = make(target, {**plain_up, **settings_now})
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith(f"{target}: error: not applied by a {target}"), result.stderr
    assert all(part in lines[0] for part in named), lines[0]
    assert "`make up` with them applies them" in lines[0] and lines[0].endswith(f"nothing was {target}ed"), lines[0]
    assert docker("inspect", "-f", "{{.State.StartedAt}}", app) == started
    assert uwsgi_stats(app)["pid"] == master


def test_make_reload_given_the_settings_the_stack_runs_with_reloads(plain_up):
    """The settings the stack was started with, given again (some set empty: their defaults), are no reason to
    refuse."""
    result = make("reload", plain_up)
    assert result.returncode == 0, result.stdout + result.stderr


def unreadable_key(directory: Path) -> None:
    self_signed(directory)
    (directory / "tls.key").chmod(0o600)  # root's only: nginx's uid cannot read it


def compose_containers(project: str) -> dict[str, str]:
    """The containers compose made for a project (named after it): a `docker run` of one of its images carries the
    project's label too, and is none of them."""
    return {name: ident for name, ident in project_containers(project).items() if name.startswith(f"{project}-")}


TLS_REFUSALS = {
    "no certificate": (lambda directory: None, "TLS=on needs tls.crt and tls.key in"),
    "a key nginx cannot read": (unreadable_key, "needs /etc/nginx/tls/tls.key, readable by uid 10101"),
}


@pytest.mark.lifecycle
@pytest.mark.parametrize("case", TLS_REFUSALS)
def test_make_up_tls_on_that_cannot_work_fails_before_replacing_anything_and_says_the_stack_keeps_serving(
    case, plain_up, tmp_path
):
    prepare, message = TLS_REFUSALS[case]
    certs = tmp_path / "certs"
    prepare(certs)
    project = plain_up["COMPOSE_PROJECT_NAME"]
    before = compose_containers(project)

    env = {**plain_up, "TLS": "on", "TLS_CERTS_DIR": str(certs), "HTTPS_PORT": str(free_port())}
    result = make("up", env, timeout=300)

    assert result.returncode != 0
    refusal = [line for line in result.stderr.splitlines() if line.startswith("up: error:")]
    assert refusal and message in refusal[0], result.stderr[-3000:]
    assert "the running stack keeps serving" in refusal[0], refusal
    assert compose_containers(project) == before, "a refused TLS=on replaced or restarted a container"
    assert requests.get(f"http://127.0.0.1:{plain_up['HTTP_PORT']}/healthz", timeout=10).status_code == 200
    if case == "no certificate":
        assert not certs.exists(), "the missing certificate folder was created (as root, empty)"


@contextlib.contextmanager
def placeholder_secret(env: dict[str, str]) -> Iterator[None]:
    """The stack's secret file rewritten with a placeholder key, which the default app refuses as it starts (check-app
    names it), then put back whatever happens. Rewritten in place: the container's bind mount sees it."""
    secret = Path(env["SECRET_KEY_FILE"])
    key = secret.read_text()
    try:
        secret.write_text("django-insecure-rotated-by-mistake\n")
        yield
    finally:
        secret.write_text(key)


@pytest.mark.lifecycle
def test_make_reload_of_an_app_that_no_longer_loads_is_refused_naming_why_and_the_workers_keep_serving(plain_up):
    """Before, the chain reload's first new worker failed to load the app and uWSGI destroyed the whole instance
    (need-app); the container restarted into the same failure, an outage while the old workers could have served."""
    app = f"{plain_up['COMPOSE_PROJECT_NAME']}-app-1"
    before = uwsgi_stats(app)
    with placeholder_secret(plain_up):
        refused = make("reload", plain_up, timeout=180)
        served = requests.get(f"http://127.0.0.1:{plain_up['HTTP_PORT']}/healthz", timeout=10).status_code
    assert refused.returncode != 0
    lines = refused.stderr.splitlines()
    assert any(line.startswith("wsgi-chain: WSGI_MODULE=") and "SECRET_KEY" in line for line in lines), refused.stderr
    assert "so nothing was reloaded: the workers keep serving" in refused.stderr, refused.stderr
    assert served == 200
    after = uwsgi_stats(app)
    assert after["pid"] == before["pid"], "the same master"
    assert [w["pid"] for w in after["workers"]] == [w["pid"] for w in before["workers"]], "the same workers"


@pytest.mark.lifecycle
def test_make_cert_writes_a_certificate_nginx_can_read_keeps_it_when_run_again_and_make_up_tls_on_serves_it(
    plain_up, tmp_path
):
    certs = tmp_path / "certs"
    env = {**plain_up, "TLS_CERTS_DIR": str(certs), "SERVER_NAMES": "localhost,127.0.0.1"}
    first = make("cert", env)
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("cert: wrote a self-signed certificate for localhost, 127.0.0.1"), first.stdout
    key = (certs / "tls.key").stat()
    assert stat.S_IMODE(key.st_mode) == 0o640 and key.st_gid == 10001, oct(key.st_mode)
    written = (certs / "tls.crt").read_bytes()

    again = make("cert", env)
    assert again.returncode == 0 and "already holds a certificate" in again.stdout and "kept" in again.stdout
    assert (certs / "tls.crt").read_bytes() == written, "a second make cert replaced the certificate"

    https_port = free_port()
    up = make("up", {**env, "TLS": "on", "HTTPS_PORT": str(https_port)}, timeout=300)
    assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
    assert f"is up at https://127.0.0.1:{https_port}/" in up.stdout
    response = requests.get(f"https://127.0.0.1:{https_port}/healthz", verify=str(certs / "tls.crt"), timeout=10)
    assert response.status_code == 200


# The last of plain_up's tests: it leaves the app server stopped.
@pytest.mark.lifecycle
def test_make_restart_waits_for_the_app_server_and_one_that_no_longer_starts_fails_naming_why_without_a_loop(plain_up):
    """Before, `make restart` exited 0 once compose had started the app container again, and an app that no longer
    imported restarted in a loop while its clients waited in the listener's queue. Here the secret file is rewritten
    with a placeholder key, which the default app refuses as it starts (check-app names it)."""
    restarted = make("restart", plain_up, timeout=180)
    assert restarted.returncode == 0, restarted.stdout + restarted.stderr
    assert "restart: app passes its health check again" in restarted.stdout, restarted.stdout
    with placeholder_secret(plain_up):
        failed = make("restart", plain_up, timeout=180)
    assert failed.returncode != 0
    cause = failed.stderr.split("its last log lines")[0]
    # Docker restarts it (its policy), or leaves it exited after a restart on a loaded machine (tools/stack.py:
    # after_restart): a cold run's watcher saw it exited with check-app's 78 before any restart.
    assert re.search(r"restart: service app is (restarting|exited with code 78)", cause), failed.stderr[-3000:]
    assert "restart:   its last log line: wsgi-chain: WSGI_MODULE=" in cause and "SECRET_KEY" in cause, cause
    assert "restart: app did not come back" in failed.stderr, failed.stderr[-1000:]
    states = project_containers(plain_up["COMPOSE_PROJECT_NAME"], field="{{.State.Status}}")
    assert "restarting" not in states.values(), f"left restarting in a loop: {states}"
    assert_answered_at_once_with_no_app_server(failed.stderr, plain_up["COMPOSE_PROJECT_NAME"], "restart")


@pytest.mark.parametrize("overlay", ["compose.tls.yaml", "compose.single.tls.yaml"])
def test_the_tls_overlays_run_by_hand_default_to_the_makefiles_certificate_folder(overlay):
    base = "compose.single.yaml" if "single" in overlay else "compose.yaml"
    env = {key: value for key, value in os.environ.items() if key != "TLS_CERTS_DIR"}
    result = subprocess.run(
        ["docker", "compose", "--env-file", "defaults.env", "-f", base, "-f", overlay, "config", "--format", "json"],
        cwd=ROOT,
        env={**env, "SECRET_KEY_FILE": str(ROOT / "tests/requirements.txt")},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    service = json.loads(result.stdout)["services"]["single" if "single" in overlay else "nginx"]
    mounts = {volume["target"]: volume for volume in service["volumes"]}
    assert mounts["/etc/nginx/tls"]["source"] == str(ROOT / ".secrets/tls")
    assert mounts["/etc/nginx/tls"].get("bind", {}).get("create_host_path") in (None, False)


# --- make clean keeps data; make clean-data asks first ------------------------------------------------------------


def project_volumes(project: str) -> list[str]:
    return docker("volume", "ls", "-q", "--filter", f"label={PROJECT_LABEL}={project}").split()


def image_exists(ref: str) -> bool:
    return subprocess.run(["docker", "image", "inspect", ref], capture_output=True).returncode == 0


@pytest.mark.lifecycle
def test_make_clean_removes_containers_images_and_leftovers_keeps_data_and_clean_data_asks_first(make_env, tmp_path):
    # Image names, leftovers and secrets of its own: nothing another test or engineer uses is removed.
    own = f"wsgi-chain-test/clean-{uuid.uuid4().hex[:6]}"
    venv, leftover, secrets = tmp_path / "venv", tmp_path / "leftover", tmp_path / "secrets"
    for folder in (venv, leftover, secrets):
        folder.mkdir()
    (secrets / "secret_key").write_text("kept\n")
    env = {
        **make_env,
        "APP_IMAGE": f"{own}-app:dev",
        "NGINX_IMAGE": f"{own}-nginx:dev",
        "SINGLE_IMAGE": f"{own}-single:dev",
        "TEST_IMAGES": f"{own}-*",
        "VENV": str(venv),
        "LEFTOVERS": str(leftover),
        "SECRETS_DIR": str(secrets),
        # The engine's dangling build cache is everyone's on a shared engine: its step is checked in the dry run.
        "CLEAN_BUILD_CACHE": "no",
    }
    project = make_env["COMPOSE_PROJECT_NAME"]
    up = make("up", env, timeout=600)
    assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
    tags = [ref for ref in docker("images", "--format", "{{.Repository}}:{{.Tag}}", f"{own}-*").split()]
    assert len(tags) >= 4, tags  # :dev and a version tag, for app and nginx
    volumes = project_volumes(project)
    assert volumes

    dry = make("clean", {**env, "DRY_RUN": "1", "CLEAN_BUILD_CACHE": "yes"})
    assert dry.returncode == 0 and "docker builder prune" in dry.stdout and str(venv) in dry.stdout, dry.stdout
    assert venv.exists() and image_exists(tags[0]), "the dry run removed something"

    clean = make("clean", env)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert clean.stderr == "", clean.stderr  # no "No such image" for tags that share an image
    assert project_containers(project) == {}
    assert [ref for ref in tags if image_exists(ref)] == []
    assert not venv.exists() and not leftover.exists()
    assert project_volumes(project) == volumes and (secrets / "secret_key").exists(), "make clean removed data"

    again = make("clean", env)
    assert again.returncode == 0 and again.stderr == "", again.stdout + again.stderr

    unconfirmed = make("clean-data", env)
    assert unconfirmed.returncode != 0
    assert "nothing was removed" in unconfirmed.stderr and "CONFIRM=yes" in unconfirmed.stderr, unconfirmed.stderr
    assert project_volumes(project) == volumes and secrets.exists()

    confirmed = make("clean-data", {**env, "CONFIRM": "yes"})
    assert confirmed.returncode == 0, confirmed.stdout + confirmed.stderr
    assert project_volumes(project) == [] and not secrets.exists()


def build_image(tag: str, *lines: str) -> str:
    """An image from the base with these Dockerfile lines (no RUN: nothing runs), tagged; its ID."""
    dockerfile = "\n".join(["FROM debian:trixie-slim", *lines]) + "\n"
    subprocess.run(
        ["docker", "build", "-q", "-t", tag, "-"], input=dockerfile, text=True, capture_output=True, check=True
    )
    return docker("image", "inspect", "-f", "{{.Id}}", tag).strip()


def test_the_replaced_images_step_removes_only_the_pieces_untagged_images_that_no_container_uses():
    """`make test` ends with it: each rebuilt tag leaves its old image untagged."""
    own = f"wsgi-chain-test/replaced-{uuid.uuid4().hex[:6]}"
    piece = f"LABEL io.wsgi-chain.app.version=0.0.0-{own.rsplit('-', 1)[-1]}"
    replaced = build_image(f"{own}:a", piece, "ENV BUILD=1")
    build_image(f"{own}:a", piece, "ENV BUILD=2")  # the tag moves on: the first image is left untagged
    in_use = build_image(f"{own}:b", piece, "ENV BUILD=3")
    container = docker("create", "--name", f"{own.rsplit('/', 1)[-1]}", f"{own}:b", "true").strip()
    build_image(f"{own}:b", piece, "ENV BUILD=4")
    foreign = build_image(f"{own}:c", "LABEL org.example.other=1", "ENV BUILD=5")
    build_image(f"{own}:c", "LABEL org.example.other=1", "ENV BUILD=6")
    try:
        clean = subprocess.run(
            [sys.executable, "-m", "tools.clean", "--replaced"], cwd=ROOT, capture_output=True, text=True, check=False
        )
        assert clean.returncode == 0, clean.stdout + clean.stderr
        assert "removed untagged app images" in clean.stdout, clean.stdout
        assert not image_exists(replaced), "a piece's untagged image is left"
        assert image_exists(in_use), "an untagged image a container uses was removed"
        assert image_exists(foreign), "an untagged image of something else was removed"
        assert image_exists(f"{own}:a") and image_exists(f"{own}:b"), "a tagged image was removed"
    finally:
        docker("rm", "-f", container, check=False)
        docker("rmi", "-f", in_use, foreign, f"{own}:a", f"{own}:b", f"{own}:c", check=False)


# --- the documented API session can be run twice --------------------------------------------------------------------


def readme_session(port: str) -> str:
    """The API session of docs/default-app.md as a script: its commands (the lines before the first `$ ` prompt, and
    each prompt's command with its continuation lines), not the outputs shown, and not `make up` (the test's own)."""
    text = (ROOT / "docs" / "default-app.md").read_text()
    start = text.index("```sh\nmake up\nTOKEN=")
    block = text[start + len("```sh\n") : text.index("```", start + 5)]
    commands: list[str] = []
    continuing = prompted = False
    for line in block.splitlines():
        if continuing or line.startswith("$ "):
            prompted = prompted or line.startswith("$ ")
            commands.append(line.removeprefix("$ ") if not continuing else line)
            continuing = line.endswith("\\")
        elif not prompted and line.strip() and line != "make up":
            commands.append(line)
    return "set -euo pipefail\n" + "\n".join(commands).replace("127.0.0.1:8080", f"127.0.0.1:{port}")


@pytest.mark.lifecycle
def test_the_readme_api_session_works_again_after_make_down_and_make_up(make_env):
    script = readme_session(make_env["HTTP_PORT"])
    assert "createuser alice" in script and "DELETE" in script, script
    for attempt in ("first", "second"):
        up = make("up", make_env, timeout=600)
        assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
        run = subprocess.run(
            ["bash", "-c", script],
            cwd=ROOT,
            env={**os.environ, **make_env},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert run.returncode == 0, f"{attempt} run: {run.stdout}\n{run.stderr}"
        assert "HTTP/1.1 401 Unauthorized" in run.stdout, run.stdout
        assert '"text":"Hello again"' in run.stdout, run.stdout
        assert run.stdout.rstrip().endswith("204"), run.stdout
        down = make("down", make_env)
        assert down.returncode == 0, down.stderr
    assert "already exists: printing its token again" in run.stderr, run.stderr
