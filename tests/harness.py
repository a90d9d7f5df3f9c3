"""Helpers for the infrastructure tests: free ports, polling with a deadline, a stack of the tests' own."""

from __future__ import annotations

import fcntl
import functools
import hashlib
import importlib.util
import json
import os
import re
import secrets
import shutil
import socket
import ssl
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, nullcontext, suppress
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TypeVar

import yaml

from tests.http_wire import parse_response
from tests.log_lines import json_record, log_records
from tests.stack_times import timed_process
from tools import engine, settings
from tools.compose import (
    PROJECT_LABEL,
    READY_POLL,
    ROOT,
    Compose,
    Container,
    compose_program,
    environ,
    free_port,
    image_id,
    passes_its_check,
    up_until_ready,
    write_secret_key,
)

T = TypeVar("T")

# The echo apps (tests/apps/echo): one image mounting a plain WSGI callable and four frameworks from PyPI, with no
# health route, named by its app factory (as Flask's create_app is named to gunicorn).
ECHO_APP = {
    "APP_SRC": "tests/apps/echo",
    "WSGI_MODULE": "dispatch:create_app()",
    "APP_IMAGE": "wsgi-chain-test/echo-app:dev",
    "NGINX_IMAGE": "wsgi-chain-test/echo-nginx:dev",
    "SINGLE_IMAGE": "wsgi-chain-test/echo-single:dev",
}
# The echo stack's APP_ENV_FILE (tests/conftest.py: echo): a setting of the app's own, beyond ASCII, and one the stack
# sets itself (DEBUG), which the stack's value must win.
ECHO_APP_ENV = {"ECHO_SETTING": "héllo, wörld = 1", "DEBUG": "true"}
# A Django project as its own template lays it out (tests/apps/project): STATIC_ROOT inside the project,
# ManifestStaticFilesStorage, migrations run by PRESTART_CMD, uploads under MEDIA_URL and a way out of the stack
# (APP_EGRESS), and requirements that need Debian packages to build (APP_BUILD_PACKAGES) and to run (APP_PACKAGES), as
# the README's table offers them (tests/test_any_app.py; the build without them, tests/test_broken_app.py).
PROJECT_APP = {
    "APP_SRC": "tests/apps/project",
    "WSGI_MODULE": "project.wsgi:application",
    "DJANGO_SETTINGS_MODULE": "project.settings",
    "PRESTART_CMD": "python manage.py migrate --noinput",
    "MEDIA_URL": "/media/",
    "APP_EGRESS": "on",
    "APP_BUILD_PACKAGES": "libpq-dev",
    "APP_PACKAGES": "libmagic1",
    "APP_IMAGE": "wsgi-chain-test/project-app:dev",
    "NGINX_IMAGE": "wsgi-chain-test/project-nginx:dev",
    "SINGLE_IMAGE": "wsgi-chain-test/project-single:dev",
}
# The echo stack's memory limit per worker (WORKER_MAX_RSS_MB): above what an echo worker uses (every framework
# imported, about 60 MB), below what the memory test makes one hold.
ECHO_MAX_RSS_MB = 160
# The echo stack's largest request body (MAX_BODY_SIZE): an app that takes large uploads, above the default 10m and
# above what the app container's tmpfs /tmp holds (256m, compose.yaml), where a framework spooling one would fail.
ECHO_MAX_BODY_MB = 320
# The echo stacks' CONTENT_SECURITY_POLICY: an operator's own, which nginx sends where the app sends none.
ECHO_CSP = "default-src 'none'; frame-ancestors 'none'"


def send_raw(
    port: int, data: bytes, timeout: float = 10, host: str = "127.0.0.1", tls: ssl.SSLContext | None = None
) -> bytes:
    """Send bytes as they are to a published port (loopback only) and read until the server closes: for requests
    an HTTP client would refuse to send, or would encode. Over TLS with a context (an https:// deployment's)."""
    with (
        socket.create_connection((host, port), timeout=timeout) as raw,
        tls.wrap_socket(raw, server_hostname=host) if tls else nullcontext(raw) as sock,
    ):
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def poll(probe: Callable[[], T], timeout: float = 20, interval: float = 0.2, what: str = "condition") -> T:
    """Return probe()'s first truthy value; fail with the last value seen once the deadline passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout} s (last: {value!r})")
        time.sleep(interval)


def docker(*args: str, check: bool = True, timeout: float | None = None) -> str:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=check, timeout=timeout).stdout


def record(container: str) -> dict:
    """`docker inspect` of one container: through the engine's API where the CLI would reach a local engine (the
    waits below ask several times a second; tools/engine.py), else through the CLI, which also says what is missing."""
    if local := engine.local():
        with suppress(OSError):
            if found := local.inspect([container]):
                return found[0]
    return json.loads(docker("inspect", container))[0]


def health(container: str) -> str:
    """The container's health as Docker has it from its health check: starting, healthy or unhealthy ("" without a
    check)."""
    return (record(container)["State"].get("Health") or {}).get("Status", "")


# Nothing in a test stack's life waits for Docker's periodic check (tools/compose.py: READY_POLL), and each one is a
# `docker exec` (its CPU: docs/operations.md, Health checks; at the default 5 s, a tenth of a warm run's:
# docs/testing.md). So the stacks the tests start themselves check every QUIET_HEALTH_INTERVAL; a test that reads
# Docker's verdict waits up to one interval for it (health_verdict), and one that needs a container back runs its check
# itself (wait_passing). The stacks that `make up` and `make dev` start check at HEALTH_INTERVAL, the operator's;
# Swarm's and the cluster's, sooner (QUICK_SWARM_HEALTH_INTERVAL).
QUIET_HEALTH_INTERVAL = "20s"

# A Swarm rollout or rollback is done once its last task has been watched for SWARM_UPDATE_MONITOR (10 s); with health
# checks, a task that cannot start fails before that window opens (Swarm calls it running once healthy). The suite's
# Swarm and cluster stacks use a shorter one: the rollback under load took 13.6 s alone with 10 s and under 6 s with
# 2 s, the rest as before (tests/test_swarm.py checks the setting reaches the services).
QUICK_SWARM_MONITOR = "2s"
# And they check their health every 2 s, not HEALTH_INTERVAL's 5: a Swarm task counts as running once its first check
# has passed, one interval after its start (Docker 20.10 has no start_interval), so each replica of a rollout, a
# scale-out and `make swarm-up` waited 5 s for it. The module alone took 88 s instead of 110 (two runs of each); what
# the rollouts check is the same (each new task serves before the old one drains), only sooner.
QUICK_SWARM_HEALTH_INTERVAL = "2s"


def inspected(container: str) -> Container:
    return Container.parse(record(container))


def check_interval(container: str) -> float:
    """Seconds between Docker's health checks of the container (its HEALTH_INTERVAL; Docker's 30 s when unset)."""
    nanoseconds = (record(container)["Config"].get("Healthcheck") or {}).get("Interval") or 0
    return nanoseconds / 1e9 or 30.0


def health_verdict(container: str) -> str:
    """Docker's health verdict on the container once it has one: a test stack is up before Docker's first check
    (up_until_ready), which comes one interval after the start (plus the check's own time and its retries' slack)."""
    timeout = check_interval(container) + 15
    return poll(
        lambda: (found := health(container)) != "starting" and found, timeout=timeout, what=f"{container} checked"
    )


def wait_healthy(container: str, timeout: float = 30) -> None:
    """Until Docker's health check has passed again (it runs every HEALTH_INTERVAL); for a container started with
    `docker run` or by the operator's targets. A test stack's container: wait_passing."""
    poll(lambda: health(container) == "healthy", timeout=timeout, what=f"{container} healthy")


def wait_passing(container: str, timeout: float = 60) -> None:
    """Until the container runs and passes its own health check, run now as Docker runs it: back, without waiting up
    to a QUIET_HEALTH_INTERVAL for Docker's next check."""
    poll(
        lambda: (state := inspected(container)).status == "running" and passes_its_check(state),
        timeout=timeout,
        interval=READY_POLL,
        what=f"{container} passing its health check",
    )


# Seconds read before a `since`: the engine stamps the lines with its own clock, which may lag this one's (a remote
# DOCKER_HOST for make verify).
CLOCK_SLACK = 2


def container_logs(container: str, since: float | None = None) -> str:
    """A container's whole log, its stdout then its stderr; with `since` (a time.time()), only the lines logged since
    then. A test that polls for the lines of a request it sent reads from the send: a shared stack's log grows through
    the run, and each whole read makes dockerd decode all of it (about 0.2 s of CPU per 10,000 lines)."""
    since = since - CLOCK_SLACK if since is not None else None
    if local := engine.local():
        # Through the engine's API where the CLI would reach a local engine (tools/engine.py); a container that is
        # not there is left to the CLI, whose error names it.
        with suppress(OSError):
            if (found := local.logs(container, since)) is not None:
                # As the CLI's output read as text: a tty's \r\n (and a lone \r) is a \n.
                return "".join(found).replace("\r\n", "\n").replace("\r", "\n")
    args = ["docker", "logs", *(["--since", f"{since:.6f}"] if since is not None else []), container]
    result = subprocess.run(args, capture_output=True, text=True, check=True)
    return result.stdout + result.stderr


def container_of(host_url: str) -> str | None:
    """The container name in a testinfra docker:// URL, None for other backends."""
    return host_url.removeprefix("docker://") if host_url.startswith("docker://") else None


@dataclass
class Deployment:
    """What the chain checks run against: a stack of the tests' own, or one given on the command line."""

    base_url: str
    nginx_host: str
    app_host: str
    compose: Compose | None = None
    # The CA that signed an https:// base_url's certificate (make verify's VERIFY_CA); "": the system's.
    ca: str = ""

    def record(self) -> dict:
        """As plain data, for another process (a shared stack: SHARED_STACKS)."""
        return asdict(self)

    @classmethod
    def from_record(cls, record: dict) -> Deployment:
        """record() read back (JSON gave its compose files back as a list)."""
        compose = record["compose"]
        return cls(**{**record, "compose": Compose(**{**compose, "files": tuple(compose["files"])})})

    @property
    def https(self) -> bool:
        return self.base_url.startswith("https://")

    def tls_context(self) -> ssl.SSLContext | None:
        """For a socket of the tests' own to base_url: None over plain HTTP."""
        return ssl.create_default_context(cafile=self.ca or None) if self.https else None

    def verify_target(self) -> dict[str, str]:
        """`make verify`'s settings for checking this deployment. Any stack it started would be named verify-wct-...
        (STACK_TAG): other workers' stacks (wct-...) come and go meanwhile."""
        return {
            "BASE_URL": self.base_url,
            "NGINX_HOST": self.nginx_host,
            "APP_HOST": self.app_host,
            "STACK_TAG": "verify-",
        }

    @property
    def nginx_container(self) -> str | None:
        return container_of(self.nginx_host)

    @property
    def app_container(self) -> str | None:
        return container_of(self.app_host)

    @property
    def single(self) -> bool:
        """nginx and uWSGI in one container (supervisord), rather than one container each."""
        return self.nginx_host == self.app_host

    @property
    def nginx_user(self) -> str:
        return "app" if self.single else "nginx"

    def logs(self, container: str, since: float | None = None) -> str:
        """A container's output (since a time). A given deployment's app server's is every replica's: through nginx a
        request reaches any (a Swarm service's tasks, a scaled compose service)."""
        if self.compose is None and container == self.app_container:
            return "\n".join(container_logs(replica, since) for replica in replicas(container))
        return container_logs(container, since)

    def records(self, container: str, source: str, since: float | None = None) -> list[dict]:
        """The log records of one source ("nginx", "uwsgi" or "app") in a container's output (since a time), JSON or
        LOG_FORMAT=text's lines read back (tests/log_lines.py)."""
        return [record for record in log_records(self.logs(container, since)) if record.get("source") == source]

    def with_request_id(self, container: str, source: str, request_id: str, since: float | None = None) -> list[dict]:
        """The records of one source that carry a request ID."""
        records = self.records(container, source, since)
        return [record for record in records if record.get("request_id") == request_id]

    def uwsgi_log(self, since: float | None = None) -> list[str]:
        """uWSGI's request log lines (as JSON, "source": "uwsgi"), whatever else shares the container's log."""
        assert self.app_container
        return [json.dumps(record) for record in self.records(self.app_container, "uwsgi", since)]


# The labels that name a container's service: Swarm's on a task, compose's (with its project) on a compose container.
SWARM_SERVICE_LABEL = "com.docker.swarm.service.name"
COMPOSE_SERVICE_LABEL = "com.docker.compose.service"


def swarm_task(container: str) -> bool:
    """A container Swarm runs for a service (whose settings `docker stack deploy` chose, not compose)."""
    return SWARM_SERVICE_LABEL in inspected_labels(container)


def inspected_labels(container: str) -> dict[str, str]:
    return record(container)["Config"].get("Labels") or {}


def replicas(container: str) -> list[str]:
    """The running containers of the container's service, itself included: a Swarm service's tasks, or a compose
    service's containers in its project; the container alone when it belongs to neither."""
    labels = inspected_labels(container)
    if SWARM_SERVICE_LABEL in labels:
        keys = [SWARM_SERVICE_LABEL]
    elif COMPOSE_SERVICE_LABEL in labels and PROJECT_LABEL in labels:
        keys = [COMPOSE_SERVICE_LABEL, PROJECT_LABEL]
    else:
        return [container]
    return running_with(*(f"{key}={labels[key]}" for key in keys)) or [container]


def running_with(*labels: str) -> list[str]:
    """The names of the running containers that carry all these labels (`key=value`), sorted."""
    filters = [arg for label in labels for arg in ("--filter", f"label={label}")]
    return sorted(docker("ps", *filters, "--format", "{{.Names}}").split())


def json_lines(text: str) -> list[dict]:
    """Every line of a log that is a JSON object; other lines (uWSGI's startup messages...) are skipped."""
    return [record for line in text.splitlines() if (record := json_record(line)) is not None]


# make test builds a stack's images once per run (pytest-xdist's workers share the run's id): a later build of the
# same inputs, on any worker, finds a marker here and the images still tagged, and skips. The controller empties the
# folder of earlier runs when a run starts (tests/conftest.py).
BUILT_MARKERS = ROOT / ".build" / "test-builds"
IMAGE_SETTINGS = ("APP_IMAGE", "NGINX_IMAGE", "SINGLE_IMAGE")


class ComposeLoader(yaml.SafeLoader):
    """YAML as compose reads it, far enough for build_inputs: its merge tags (!override, !reset) are plain values."""


def _untagged(loader: ComposeLoader, node: yaml.Node):
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node)
    return loader.construct_scalar(node)


for _tag in ("!override", "!reset"):
    ComposeLoader.add_constructor(_tag, _untagged)


@functools.cache
def build_inputs(files: tuple[str, ...]) -> list[str]:
    """The settings a build of these compose files reads: every build argument the files name, and the image tags."""
    names = set(IMAGE_SETTINGS)
    for file in {settings.TOPOLOGIES["split"].compose_file, *files}:
        for service in (yaml.load((ROOT / file).read_text(), ComposeLoader).get("services") or {}).values():  # noqa: S506
            args = (service.get("build") or {}).get("args") or []
            names |= {arg.split("=", 1)[0] for arg in args} if isinstance(args, list) else set(args)
    return sorted(names)


def built_once(
    compose: Compose, images: list[str], build: Callable[[], subprocess.CompletedProcess]
) -> subprocess.CompletedProcess:
    """build() unless this run built the same inputs already and their images are still there; outside a pytest-xdist
    run, always. A lock per inputs keeps two workers from building the same images at once."""
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID")
    if not run:
        return build()
    environment = compose.environment()
    inputs = {name: environment.get(name) or settings.defaults().get(name, "") for name in build_inputs(compose.files)}
    key = hashlib.sha256(json.dumps([compose.files, inputs], sort_keys=True).encode()).hexdigest()[:16]
    folder = BUILT_MARKERS / run
    folder.mkdir(parents=True, exist_ok=True)
    tags = [inputs[name] for name in images]
    with open(folder / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        marker = folder / f"{key}.built"
        present = all(image_id(tag) for tag in tags)
        if marker.exists() and present:
            return subprocess.CompletedProcess(["build"], 0, f"built earlier in this run: {', '.join(tags)}\n", "")
        result = timed_process(compose.project, "build", build)
        if result.returncode == 0:
            marker.touch()
        return result


def forget_builds() -> None:
    """At the start of a run: earlier runs' markers go."""
    shutil.rmtree(BUILT_MARKERS, ignore_errors=True)


# A stack's teardown runs beside what follows instead of before it: a split stack took about 3 s to go down, 2 of
# them uWSGI's own one-second waits (docs/testing.md: Teardowns off the workers' path), and still takes about 1 s
# (stack_down: its containers are not stopped gracefully). Under pytest-xdist, beside the worker's next tests; outside
# it (the serial phase, whose tests measure against the clock), beside the next test's setup only: a test's call waits
# for every teardown before it (pytest_runtest_call in tests/conftest.py). The run waits for them all before it ends
# (finish_teardowns, from tests/conftest.py).
TEARDOWN_THREADS = 4
_teardowns: list[tuple[Callable[[], None], Future]] = []


@functools.cache
def _teardown_pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(TEARDOWN_THREADS, thread_name_prefix="teardown")


def in_background(teardown: Callable[[], None]) -> None:
    """teardown() beside what follows: the worker's next tests under pytest-xdist, the next test's setup outside it."""
    _teardowns.append((teardown, _teardown_pool().submit(teardown)))


def under_xdist() -> bool:
    return bool(os.environ.get("PYTEST_XDIST_WORKER"))


def finish_teardowns() -> None:
    """Wait for the teardowns in_background started. One that raised is reported and run once more, here, so that its
    stack does not outlive the run (a teardown that failed so left its stack running, 2026-12-05); the others are
    still waited for."""
    while _teardowns:
        teardown, done = _teardowns.pop(0)
        error = done.exception()
        if error is None:
            continue
        print(f"a stack's teardown failed: {error!r}; running it again", file=sys.stderr)
        if (again := _teardown_pool().submit(teardown).exception()) is not None:
            print(f"a stack's teardown failed again: {again!r}", file=sys.stderr)


class OwnStack:
    """A stack under its own compose project name, on a free loopback port; always torn down.

    `env` picks the app and the image names (APP_SRC, WSGI_MODULE, APP_IMAGE, ...); build() builds them the way
    `make build` does.
    """

    def __init__(self, workdir: Path, topology: str = "split", prefix: str = "wct", env: dict[str, str] | None = None):
        # STACK_TAG (empty by default) marks a run's own stacks: a test that runs pytest inside pytest tells its stacks
        # from those other workers start meanwhile.
        self.project = f"{os.environ.get('STACK_TAG', '')}{prefix}-{secrets.token_hex(3)}"
        self.port = free_port()
        self.topology = topology
        secret = write_secret_key(workdir / "secret_key")
        self.compose = Compose(
            project=self.project,
            files=(settings.TOPOLOGIES[topology].compose_file,),
            env={
                "HTTP_BIND": "127.0.0.1",
                "HTTP_PORT": str(self.port),
                "SECRET_KEY_FILE": str(secret),
                "TOPOLOGY": topology,
                "HEALTH_INTERVAL": QUIET_HEALTH_INTERVAL,
                **(env or {}),
            },
        )

    def build(self) -> subprocess.CompletedProcess:
        """As `make build` does; once per `make test` run for the same build inputs (built_once)."""
        images = [*IMAGE_SETTINGS[:2], *(["SINGLE_IMAGE"] if self.topology == "single" else [])]
        return built_once(self.compose, images, self._build)

    def build_or_fail(self) -> None:
        """build(), failing the test with the build's last output if it fails."""
        built = self.build()
        assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]

    def _build(self) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "tools.stack", "build"],
            cwd=ROOT,
            env={**environ(), **self.compose.env},
            capture_output=True,
            text=True,
        )

    def start(self, timeout: int = 120) -> Deployment:
        result = timed_process(self.project, "up", lambda: up_until_ready(self.compose, timeout))
        if result.returncode != 0:
            logs = self.compose.run("logs", "--no-color", "--tail", "60", check=False, capture=True).stdout
            self.stop()
            raise RuntimeError(f"stack {self.project} did not get healthy:\n{result.stderr}\n{logs}")
        if self.topology == "single":
            nginx = app = self.compose.container("single")
        else:
            nginx, app = self.compose.container("nginx"), self.compose.container("app")
        return Deployment(
            base_url=f"http://127.0.0.1:{self.port}",
            nginx_host=f"docker://{nginx}",
            app_host=f"docker://{app}",
            compose=self.compose,
        )

    @contextmanager
    def running(self, build: bool = True) -> Iterator[Deployment]:
        """Build (as `make build` does) and start the stack; tear it down afterwards (in_background), whatever
        happens."""
        if build:
            self.build_or_fail()
        try:
            yield self.start()
        finally:
            in_background(self.stop)

    def stop(self) -> None:
        stack_down(self.compose)


# A test stack's teardown stops its containers at once (compose's stop timeout: 0 s, then SIGKILL; by default each
# service's stop_grace_period): nothing in a test stack is kept (its volumes go too), and the graceful stop it would
# wait for, about 3 s for a split stack and 4 s for a single one alone here, is checked where it is the point (the
# requests in flight finished on a stop: test_operations.py, test_single.py, test_observability.py; stops in each
# stage of a start: test_stopping.py; make down's tests). Some teardowns are waited for on the run's path: a worker's
# last, the controller's shared stacks, the serial phase's last stack. Both teardowns below run these arguments.
TEARDOWN = ("down", "-v", "--remove-orphans", "--timeout", "0")


def stack_down(compose: Compose) -> None:
    """A test stack's teardown: its containers, networks and volumes; a failure is reported, not raised."""
    result = timed_process(compose.project or "", "down", lambda: compose.run(*TEARDOWN, check=False, capture=True))
    if result.returncode != 0:
        print(f"teardown of {compose.project} failed:\n{result.stderr}", file=sys.stderr)


# make test's session stack that no test changes, the chain checks' deployment in each topology, is one for the whole
# run: the first of pytest-xdist's workers to need it starts it, under a lock, and writes down how to reach it; the
# others read that, instead of each starting one of its own (4 split stacks at once, each running its health checks
# every 5 s to the end of the run). The controller tears them down once every worker is done (tests/conftest.py).
# Outside pytest-xdist, a session's stack is its own, as before.
SHARED_STACKS = ROOT / ".build" / "shared-stacks"


def shared(name: str, stack: Callable[[], OwnStack], build: bool) -> Deployment:
    """The run's stack called name, started (and built first if build) by the first worker that asks for it."""
    folder = SHARED_STACKS / os.environ["PYTEST_XDIST_TESTRUNUID"]
    folder.mkdir(parents=True, exist_ok=True)
    record = folder / f"{name}.json"
    with open(folder / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if record.exists():
            return Deployment.from_record(json.loads(record.read_text()))
        own = stack()
        if build:
            own.build_or_fail()
        deployment = own.start()
        record.write_text(json.dumps(deployment.record()))
        return deployment


def stop_shared_stacks() -> None:
    """On the controller, once the workers are done: the run's shared stacks go down, at once. When a run starts, an
    earlier run's that was killed before it could."""
    records = [json.loads(path.read_text()) for path in SHARED_STACKS.glob("*/*.json")]
    with ThreadPoolExecutor(max(len(records), 1)) as pool:
        list(pool.map(lambda record: stack_down(Deployment.from_record(record).compose), records))
    shutil.rmtree(SHARED_STACKS, ignore_errors=True)


def listening_tcp(host) -> set[tuple[str, int]]:
    """(address, port) of every listening TCP socket in a host's network namespace, read from /proc (no ss needed)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        text = host.run(f"cat {table}").stdout
        for line in text.splitlines()[1:]:
            fields = line.split()
            if fields[3] != "0A":  # LISTEN
                continue
            addr_hex, port_hex = fields[1].split(":")
            if len(addr_hex) == 8:
                address = socket.inet_ntop(socket.AF_INET, bytes.fromhex(addr_hex)[::-1])
            else:
                raw = bytes.fromhex(addr_hex)
                address = socket.inet_ntop(socket.AF_INET6, b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4)))
            found.add((address, int(port_hex, 16)))
    return found


def pinned(requirements: Path, package: str) -> str | None:
    for line in requirements.read_text().splitlines():
        name, _, version = line.partition("==")
        if name.strip().lower() == package.lower():
            return version.strip()
    return None


def uwsgi_stats(container: str) -> dict:
    """uWSGI's stats (JSON), read with the image's own `uwsgi-ctl stats` from the loopback-only stats server."""
    return json.loads(docker("exec", container, "uwsgi-ctl", "stats"))


def running_workers(container: str) -> dict[int, int]:
    """worker id -> pid, for workers that are up (not being respawned)."""
    return {w["id"]: w["pid"] for w in uwsgi_stats(container)["workers"] if w["pid"] > 0}


def busy_workers(container: str) -> int:
    return sum(1 for worker in uwsgi_stats(container)["workers"] if worker["status"] == "busy")


def slow_request(seconds: float) -> tuple[str, str]:
    """A path to the default app's slow view that `serving` can find it by, and its marker (in the query string,
    which uWSGI's stats server lists among the request's variables)."""
    marker = uuid.uuid4().hex
    return f"/slow?seconds={seconds}&request={marker}", marker


def serving(container: str, marker: str) -> bool:
    """Whether a uWSGI worker is in the request whose target holds `marker`: the stats server lists each core's
    request variables while it is in one. A busy worker alone may be the health probe's request."""
    cores = [core for worker in uwsgi_stats(container)["workers"] for core in worker.get("cores", [])]
    return any(core.get("in_request") and any(marker in var for var in core.get("vars", [])) for core in cores)


# What a make that runs the tests (make test) tells the makes it starts: dropped, so that a target runs as an
# operator's own `make <target>` does (a top-level make, printing "make: ***", not "make[1]: ***").
NESTED_MAKE = ("MAKELEVEL", "MAKEFLAGS", "MFLAGS", "MAKEOVERRIDES")


def operator_env() -> dict[str, str]:
    """This process's environment as an operator's shell would hold it: without what an outer make added."""
    return {key: value for key, value in environ().items() if key not in NESTED_MAKE}


# The targets that start or stop a stack: their times join the run's stack report (tests/stack_times.py).
STACK_TARGETS = {"up", "dev", "down", "restart", "swarm-up", "swarm-down"}


def networks_of(container: str) -> dict[str, bool]:
    """The container's networks, each with whether it is internal (Docker drops what would leave the host from one)."""
    names = json.loads(docker("inspect", container, "--format", "{{json .NetworkSettings.Networks}}"))
    return {name: docker("network", "inspect", name, "--format", "{{.Internal}}").strip() == "true" for name in names}


def app_image_serving(name: str, value: str) -> subprocess.CompletedProcess:
    """The app image's `serve` with one setting, hardened as compose starts it (a read-only root, a tmpfs /tmp) and on
    no network, with no volume: for its entrypoint's refusal of a setting it cannot use (exit 78, one line)."""
    hardened = ["--read-only", "--tmpfs", "/tmp"]  # noqa: S108 - the container's own tmpfs, as compose gives it
    run = ["docker", "run", "--rm", "--network", "none", *hardened, "-e", f"{name}={value}"]
    return subprocess.run([*run, settings.get("APP_IMAGE"), "serve"], capture_output=True, text=True, timeout=60)


def own_settings(workdir: Path, prefix: str) -> dict[str, str]:
    """The settings that make a `make up` stack of its own: its compose project (<prefix>-<random>), a free loopback
    port and a secret key file in workdir."""
    return {
        "COMPOSE_PROJECT_NAME": f"{prefix}-{secrets.token_hex(3)}",
        "HTTP_PORT": str(free_port()),
        "SECRET_KEY_FILE": str(write_secret_key(workdir / "secret_key")),
    }


def image_module(name: str):
    """docker/app/<name>.py, as the image runs it (its directory first on the path: dev_watch imports uwsgi_ctl)."""
    sys.path.insert(0, str(ROOT / "docker" / "app"))
    try:
        spec = importlib.util.spec_from_file_location(name, ROOT / "docker" / "app" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # where a dataclass of it looks itself up
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(ROOT / "docker" / "app"))


@contextmanager
def made_up(env: dict[str, str]) -> Iterator[dict[str, str]]:
    """`make up` with env (own_settings' among them), as an operator runs it; the stack goes down afterwards
    (in_background), whatever happened."""
    try:
        up = make("up", env, timeout=600)
        assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
        yield env
    finally:
        in_background(lambda: compose_down(env["COMPOSE_PROJECT_NAME"]))


def make(target: str, env: dict[str, str], timeout: float = 300, *flags: str) -> subprocess.CompletedProcess:
    """`make <target>` as an operator runs it, with `env` over the operator's environment."""
    if target not in STACK_TARGETS:
        return _make(target, env, timeout, *flags)
    project = env.get("SWARM_STACK" if target.startswith("swarm-") else "COMPOSE_PROJECT_NAME") or "(default)"
    return timed_process(project, f"make {target}", lambda: _make(target, env, timeout, *flags))


def verify_passes(target: dict[str, str]) -> tuple[str, list[str]]:
    """`make verify` of a deployment (Deployment.verify_target()) with every chain check, which must pass: its output,
    and the reason of each check it skipped (pytest's -rs summary, a reason once per check)."""
    result = make("verify", {**target, "PYTEST_ARGS": "-rs"}, timeout=300)
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-3000:]
    skips = re.findall(r"^SKIPPED \[(\d+)\] \S+: (.+)$", result.stdout, re.MULTILINE)
    return result.stdout, [reason for count, reason in skips for _ in range(int(count))]


def _make(target: str, env: dict[str, str], timeout: float, *flags: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["make", "--no-print-directory", *flags, target],
        cwd=ROOT,
        env={**operator_env(), **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


# Run by the app's Python in its container: a SQL script on the app's SQLite database (SQLITE_PATH), then one value
# read back.
APP_SQL = (
    "import sqlite3, sys\n"
    "db = sqlite3.connect('/var/lib/app/db.sqlite3')\n"
    "db.executescript(sys.argv[1])\n"
    "db.commit()\n"
    "print(db.execute(sys.argv[2]).fetchone()[0] if len(sys.argv) > 2 else '')"
)


def app_sql(container: str, script: str = "", query: str = "") -> str:
    """Run a SQL script on the app's live SQLite database in its container, and read one value back (a query)."""
    return docker("exec", container, "python", "-c", APP_SQL, script, *((query,) if query else ())).strip()


def backup_env(deployment, backup_dir: Path, **extra: str) -> dict[str, str]:
    """What `make backup` and `make restore` need to find the stack: its project (the topology is read off it)."""
    return {
        "COMPOSE_PROJECT_NAME": deployment.compose.project,
        "SECRET_KEY_FILE": deployment.compose.env["SECRET_KEY_FILE"],
        "HTTP_PORT": deployment.compose.env["HTTP_PORT"],
        "BACKUP_DIR": str(backup_dir),
        **extra,
    }


def compose_down(project: str) -> None:
    """Remove a compose project's containers, networks and volumes (a test's own `make up` or `make dev`)."""
    down = [*compose_program(environ()), "-p", project, *TEARDOWN]
    timed_process(project, "down", lambda: subprocess.run(down, cwd=ROOT, capture_output=True))


def project_containers(project: str, field: str = "{{.Id}}@{{.State.StartedAt}}") -> dict[str, str]:
    """container name -> a field (by default id and start time), for every container of a compose project."""
    ids = docker("ps", "-aq", "--filter", f"label={PROJECT_LABEL}={project}").split()
    if not ids:
        return {}
    # A container removed between the listing and the inspection (compose replacing one, a down) is left out: the
    # engine inspects the others and names the missing one. So is a line without a name and a field: one such line
    # failed a run (w36), from a container removed meanwhile.
    inspect = ["docker", "inspect", "--type", "container", "-f", "{{.Name}} " + field, *ids]
    out = subprocess.run(inspect, capture_output=True, text=True)
    unexpected = [line for line in out.stderr.splitlines() if line and "No such container" not in line]
    if out.returncode != 0 and (unexpected or not out.stderr):
        raise subprocess.CalledProcessError(out.returncode, out.args, out.stdout, out.stderr)
    return dict(line.lstrip("/").split(" ", 1) for line in out.stdout.splitlines() if " " in line)


def stats_answer(container: str) -> bool:
    """Whether uWSGI's stats server answers yet (for polling while a container restarts)."""
    try:
        uwsgi_stats(container)
    except (subprocess.CalledProcessError, ValueError):
        return False
    return True


class Rounds:
    """A stand-in for a stack being started, for the tests of the waits: `up -d` answers, then each listing is the next
    round's (the last one repeats); a container passes its own check from the round given for its service."""

    def __init__(self, rounds: list[list[Container]], passes_from: dict[str, int]):
        self.rounds, self.passes_from, self.round = rounds, passes_from, -1

    def run(self, *args, **kwargs) -> subprocess.CompletedProcess:
        return subprocess.CompletedProcess(["up", *args], 0, "", "")

    def containers(self) -> list[Container]:
        self.round += 1
        return self.rounds[min(self.round, len(self.rounds) - 1)]

    def passes(self, container: Container) -> bool:
        first = self.passes_from.get(container.service)
        return first is not None and self.round >= first


def assert_answered_at_once_with_no_app_server(stderr: str, project: str, target: str) -> None:
    """After a failed `make up` or `make restart` that left no app server running: the listener was stopped too, so a
    client gets nginx's 503 with Retry-After at once, over HTTPS when the stack serves it (its HTTP port redirects).
    Before, its request waited in the listener's queue for an app server that never came, until nginx gave up on it
    (uwsgi_read_timeout, then a 504 "app server timed out")."""
    assert f"{target}: stopped listener too: no app server runs" in stderr, stderr[-2000:]
    front = f"{project}-nginx-1"
    https = docker("port", front, "8443/tcp", check=False).split()
    port = int((https or docker("port", front, "8080/tcp").split())[0].rsplit(":", 1)[1])
    tls = ssl._create_unverified_context() if https else None  # noqa: S323 - the suite's own stack, on loopback
    request = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    answer = send_raw(port, request, timeout=15, tls=tls)
    response = parse_response(answer)
    assert response and response.status == 503 and response.headers.get("retry-after"), answer[:600]
