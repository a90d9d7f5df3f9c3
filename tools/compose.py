"""A thin handle on one compose project: run compose, list its containers, read their logs."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import random
import re
import secrets
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from tools import engine, settings

ROOT = Path(__file__).resolve().parent.parent
# The labels compose puts on the containers it makes: which project and service each belongs to.
PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
# "False" on a service's containers, "True" on those of `compose run`; `compose ps` lists only the "False" ones.
ONEOFF_LABEL = "com.docker.compose.oneoff"
# Set on the containers compose creates, and on no image: a container started from a compose-built image any other
# way (a Swarm task, a `docker run`) carries the image's PROJECT_LABEL, not this.
CONFIG_HASH_LABEL = "com.docker.compose.config-hash"


# Where the docker CLI looks for a plugin after its config folder's cli-plugins, in its order (docker/cli,
# cli-plugins/manager, Linux): `docker compose` runs the first docker-compose found.
SYSTEM_PLUGIN_DIRS = (
    "/usr/local/lib/docker/cli-plugins",
    "/usr/local/libexec/docker/cli-plugins",
    "/usr/lib/docker/cli-plugins",
    "/usr/libexec/docker/cli-plugins",
)


def compose_program(env: Mapping[str, str] | None = None) -> list[str]:
    """How the tools run compose: the plugin `docker compose` would run, run directly; `docker compose` when the CLI's
    config names plugin folders of its own (cliPluginsExtraDirs) or cannot be read, or no plugin is found.

    `docker compose` starts three Go programs: the CLI, the plugin once for its metadata (the CLI asks every plugin it
    finds), then the plugin itself. A `compose version` so costs about 0.13 s of CPU against 0.05 s run directly, and
    make up runs compose two to four times, the suite some 700 (docs/testing.md). Run directly, the plugin is the same
    compose against the same engine: it reads DOCKER_HOST, the chosen context and the CLI's config itself."""
    env = os.environ if env is None else env
    config = engine.cli_config(env)
    if config is None or config.get("cliPluginsExtraDirs"):
        return ["docker", "compose"]
    for folder in (engine.cli_config_dir(env) / "cli-plugins", *map(Path, SYSTEM_PLUGIN_DIRS)):
        plugin = folder / "docker-compose"
        if plugin.is_file() and os.access(plugin, os.X_OK):
            return [str(plugin)]
    return ["docker", "compose"]


def image_record(name: str) -> dict | None:
    """An image's record (a name, name:tag or ID) as `docker image inspect` gives it, None when the engine has none:
    through its API where the CLI would reach a local engine (tools/engine.py), else the CLI."""
    if local := engine.local():
        with contextlib.suppress(OSError, ValueError):
            return local.image(name)
    found = subprocess.run(
        ["docker", "image", "inspect", name], capture_output=True, text=True, timeout=60, check=False
    )
    return json.loads(found.stdout)[0] if found.returncode == 0 else None


def image_id(name: str) -> str:
    """An image's ID (a name, name:tag or ID), "" when the engine has none."""
    record = image_record(name)
    return str(record["Id"]) if record else ""


# Docker's RFC 3339 times: nanoseconds, and Z or an offset.
TIMESTAMP = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$")


def environ() -> dict[str, str]:
    """A copy of this process's environment that another thread's change cannot break: copying os.environ reads its
    names first and then each value, so a variable removed in between raised KeyError. pytest removes
    PYTEST_CURRENT_TEST after each test phase while a test stack's teardown runs compose in a thread of its own
    (tests/harness.py, in_background): a cold run's teardown failed so, and left its stack running. A variable removed
    meanwhile is left out."""
    return {name: value for name in list(os.environ) if (value := os.environ.get(name)) is not None}


def timestamp(text: str) -> float:
    """Docker's RFC 3339 times (nanoseconds, Z) as a POSIX time; 0 for none."""
    match = TIMESTAMP.match(text or "")
    if not match:
        return 0.0
    base, fraction, zone = match.groups()
    stamp = base + (fraction or "")[:7] + ("+00:00" if zone == "Z" else zone)
    return datetime.fromisoformat(stamp).timestamp()


@dataclass
class Container:
    """One container as `docker inspect` sees it: the one reading of its record that the tools and tests share."""

    id: str
    name: str
    service: str
    status: str  # created, running, restarting, exited, dead...
    exit_code: int
    restarts: int
    finished_at: float
    health: str  # "" without a health check
    # .State.Health.Log, oldest first: {"Start", "End", "ExitCode", "Output"}.
    probes: list[dict]
    env: dict[str, str]
    labels: dict[str, str]
    # .HostConfig.RestartPolicy.Name: compose.yaml gives every long-running service unless-stopped, migrate "no".
    restart_policy: str = "unless-stopped"
    # .State.Error: why the engine could not start it (an OCI runtime error), "" otherwise.
    error: str = ""
    # Its health check's command as Docker runs it (.Config.Healthcheck.Test: "CMD" or "CMD-SHELL", then the command);
    # empty without one, or with it turned off ("NONE").
    check: tuple[str, ...] = ()
    # .Config.Image: the image as it was named when the container was created.
    image: str = ""
    # .HostConfig.PortBindings as (host address, host port, container port) triples: what it publishes.
    published: frozenset[tuple[str, str, str]] = frozenset()
    # .State.StartedAt: when the container last started (0: never).
    started_at: float = 0

    @classmethod
    def parse(cls, raw: dict) -> Container:
        state, config = raw["State"], raw["Config"]
        health = state.get("Health") or {}
        labels = config.get("Labels") or {}
        return cls(
            id=raw["Id"],
            name=raw["Name"].lstrip("/"),
            service=labels.get(SERVICE_LABEL, ""),
            status=state.get("Status", ""),
            exit_code=int(state.get("ExitCode") or 0),
            restarts=int(raw.get("RestartCount") or 0),
            finished_at=timestamp(state.get("FinishedAt", "")),
            started_at=timestamp(state.get("StartedAt", "")),
            health=health.get("Status", ""),
            probes=health.get("Log") or [],
            env=dict(item.split("=", 1) for item in config.get("Env") or [] if "=" in item),
            labels=labels,
            restart_policy=((raw.get("HostConfig") or {}).get("RestartPolicy") or {}).get("Name", ""),
            error=state.get("Error") or "",
            check=tuple(test) if (test := (config.get("Healthcheck") or {}).get("Test")) and test[0] != "NONE" else (),
            image=config.get("Image", ""),
            published=frozenset(
                (bind.get("HostIp", ""), bind.get("HostPort", ""), port.split("/")[0])
                for port, binds in ((raw.get("HostConfig") or {}).get("PortBindings") or {}).items()
                for bind in binds or []
            ),
        )

    @property
    def one_shot(self) -> bool:
        """restart: "no" (migrate; Docker's default): only its exit code counts, not its image's health check while it
        runs."""
        return self.restart_policy in ("", "no")

    @property
    def restarts_on_any_exit(self) -> bool:
        """unless-stopped or always: Docker restarts it however it ends by itself, so exited, it was stopped through
        the engine."""
        return self.restart_policy in ("unless-stopped", "always")

    @property
    def ok(self) -> bool:
        """Running (and healthy where it has a health check), or a one-shot that finished cleanly."""
        if self.status == "exited":
            return self.exit_code == 0
        return self.status == "running" and self.health in ("", "healthy")

    @property
    def last_probe(self) -> str:
        return (self.probes[-1].get("Output") or "").strip() if self.probes else ""


def passes_its_check(container: Container) -> bool:
    """The container's own health check, run now as Docker runs it (as `docker exec` would: through the engine's API
    where the CLI would reach the same engine, tools/engine.py): whether it passes."""
    kind, *command = container.check
    argv = ["sh", "-c", *command] if kind == "CMD-SHELL" else command
    if local := engine.local():
        return local.exec_code(container.id, argv) == 0
    try:
        run = subprocess.run(["docker", "exec", container.id, *argv], capture_output=True, timeout=10, check=False)
    except subprocess.TimeoutExpired:
        return False
    return run.returncode == 0


# Docker 20.10 (Debian 12's docker.io) runs a container's first health check one HEALTH_INTERVAL after its start (it
# has no `start_interval`), so `compose up --wait` kept a stack waiting past its readiness (docs/operations.md: Health
# checks). A stack that starts (make up, make dev, the tests' and the bench's) is up once each of its long-running
# containers passes that same check, run every READY_POLL seconds from its start, or Docker has found it healthy
# already; Docker's own verdict follows at its first check.
READY_POLL = 0.5


def now_ready(
    states: list[Container], ready: set[str], passes: Callable[[Container], bool] = passes_its_check
) -> set[str]:
    """`ready` and the ids of the running long-running containers among `states` that are ready now: without a
    health check, found healthy by Docker, or passing their check run now (`passes`; not run again for those in
    `ready`)."""
    running = [state for state in states if not state.one_shot and state.status == "running"]
    found = set(ready) | {state.id for state in running if not state.check or state.health == "healthy"}
    return found | {state.id for state in running if state.id not in found and passes(state)}


def up_until_ready(
    compose: Compose,
    timeout: float,
    *args: str,
    passes: Callable[[Container], bool] = passes_its_check,
    poll: float = READY_POLL,
) -> subprocess.CompletedProcess:
    """`compose up -d [args]`, then until every long-running container is ready (now_ready), for a stack no operator
    watches (the tests' and the bench's; `make up` reports more: tools/stack.py); as a finished process, failed with
    the containers that stopped or got unhealthy (at once), or that were not ready in `timeout` s."""
    up = compose.run("up", "-d", *args, check=False, capture=True)
    if up.returncode != 0:
        return up
    deadline, ready = time.monotonic() + timeout, set()
    while True:
        running = [state for state in compose.containers() if not state.one_shot]
        failed = [
            f"{s.name} {s.status} {s.health}" for s in running if s.status != "running" or s.health == "unhealthy"
        ]
        ready = now_ready(running, ready, passes)
        waiting = [state.name for state in running if state.id not in ready]
        if running and not failed and not waiting:
            return up
        if failed or not running or time.monotonic() > deadline:
            why = f"stopped or unhealthy: {failed}" if failed else f"not ready in {timeout} s: {waiting}"
            why = why if running else "no container is running"
            return subprocess.CompletedProcess(up.args, 1, up.stdout, up.stderr + why)
        time.sleep(poll)


@dataclass
class Compose:
    project: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    files: tuple[str, ...] = ()

    def command(self, *args: str) -> list[str]:
        # defaults.env gives every ${NAME} in the compose files its default; the environment overrides it.
        program = compose_program({**environ(), **self.env})
        cmd = [*program, "--project-directory", str(ROOT), "--env-file", str(settings.DEFAULTS_FILE)]
        for file in self.files:
            cmd += ["-f", file]
        if self.project:
            cmd += ["-p", self.project]
        return [*cmd, *args]

    def environment(self) -> dict[str, str]:
        """What compose runs with: the environment and this project's settings over defaults.env. A setting set empty
        takes its default, as settings.get has it (compose would take the empty value over the env file's)."""
        env = {**environ(), **self.env}
        return {name: value for name, value in env.items() if value or name not in settings.defaults()}

    def run(self, *args: str, check: bool = True, capture: bool = False, timeout: float | None = None):
        return subprocess.run(
            self.command(*args),
            env=self.environment(),
            check=check,
            text=True,
            capture_output=capture,
            timeout=timeout,
        )

    def ids(self) -> list[str]:
        """The project's service containers, stopped ones included, as `compose ps -aq` lists them: by compose's
        project label and its one-off label "False", as compose does. That leaves out the one-off containers of
        `compose run`, and any `docker run` of an image compose built, which carries the project's label from the
        image but is none of the stack's services. Asked of the engine directly when the project's name is known
        (its API: tools/engine.py; else a docker call), since every compose command reads and interpolates the
        compose files first (about 0.2 s of CPU, against 0.04 for a docker call)."""
        name = self.project or self.environment().get("COMPOSE_PROJECT_NAME")
        if not name:
            return self.run("ps", "-aq", check=False, capture=True).stdout.split()
        labels = [f"{PROJECT_LABEL}={name}", f"{ONEOFF_LABEL}=False"]
        if local := engine.local(self.environment()):
            # An engine that does not answer is left to the CLI, whose own error is the one an operator knows.
            with contextlib.suppress(OSError):
                return local.container_ids(*labels)
        listed = subprocess.run(
            ["docker", "ps", "-aq", "--no-trunc", *(f"--filter=label={label}" for label in labels)],
            capture_output=True,
            text=True,
            check=False,
        )
        return listed.stdout.split()

    def inspect(self) -> list[dict]:
        """`docker inspect` of the project's containers; a container removed meanwhile (recreated) is left out."""
        ids = self.ids()
        if not ids:
            return []
        if local := engine.local(self.environment()):
            with contextlib.suppress(OSError):
                return local.inspect(ids)
        out = subprocess.run(["docker", "inspect", *ids], capture_output=True, text=True, check=False).stdout
        return json.loads(out or "[]")

    def containers(self) -> list[Container]:
        return [Container.parse(raw) for raw in self.inspect()]

    def container(self, service: str) -> str:
        names = [c.name for c in self.containers() if c.service == service and c.status == "running"]
        if not names:
            raise LookupError(f"no running container for service {service!r} in project {self.project!r}")
        return names[0]

    def logs(self, service: str, tail: int | None = None, since: float | None = None) -> str:
        """The service's log: its last `tail` lines, of those written from `since` on (seconds since the epoch)."""
        args = ["logs", "--no-color", "--no-log-prefix"]
        if tail is not None:
            args += ["--tail", str(tail)]
        if since is not None:
            args += ["--since", f"{since:.3f}"]
        return self.run(*args, service, capture=True, check=False).stdout


def write_secret_key(path: Path) -> Path:
    """A new random SECRET_KEY in `path` (the app strips the newline), readable by the containers' unprivileged
    users through the bind mount: keep it in a folder only its owner can enter."""
    path.write_text(secrets.token_urlsafe(50) + "\n")
    path.chmod(0o644)
    return path


# A stack's published port: a random free one from below the kernel's ephemeral range (ip_local_port_range), where
# no outgoing connection takes it as its source port, and none handed out on this machine in the last PORT_HOLD
# seconds: two stacks started at once were once given the same port by the kernel's own picks, which are free until
# docker binds them, and the second `make dev` failed with "port is already allocated" (2026-12-05).
PUBLISHED_PORTS = range(20000, 32768)
EPHEMERAL_PORTS_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
# The picks, one `port@time` a line, shared by every process under a lock: long enough for a cold build between a
# pick and the stack's start.
PICKS_FILE = Path(tempfile.gettempdir()) / "wsgi-chain-port-picks"
PORT_HOLD = 1800


def ephemeral_ports() -> range:
    """The kernel's ephemeral port range (Linux's default where it cannot be read)."""
    try:
        low, high = (int(value) for value in EPHEMERAL_PORTS_FILE.read_text().split())
    except (OSError, ValueError):
        low, high = 32768, 60999
    return range(low, high + 1)


def publishable(ephemeral: range) -> list[int]:
    """PUBLISHED_PORTS outside the ephemeral range."""
    return [port for port in PUBLISHED_PORTS if port not in ephemeral]


def recent_picks(text: str, now: float) -> dict[int, float]:
    """The picks file's ports handed out less than PORT_HOLD seconds before `now`; a line it cannot read is dropped."""
    picks = {}
    for line in text.split():
        port, _, when = line.partition("@")
        try:
            if now - float(when) < PORT_HOLD:
                picks[int(port)] = float(when)
        except ValueError:
            continue
    return picks


def bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def pick_port(taken: dict[int, float]) -> int:
    """A random bindable port of `publishable` not in `taken`; the kernel's pick where there is none."""
    candidates = [port for port in publishable(ephemeral_ports()) if port not in taken]
    port = next((port for port in random.sample(candidates, min(100, len(candidates))) if bindable(port)), 0)
    if not port:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
    return port


def free_port() -> int:
    """A TCP port free on the loopback now and not handed out lately, for a stack's published port. Without the
    picks file (another user's, say), a pick like it that only this call knows of."""
    try:
        file = PICKS_FILE.open("a+")
    except OSError:
        return pick_port({})
    with file:
        fcntl.flock(file, fcntl.LOCK_EX)
        file.seek(0)
        now = time.time()
        picks = recent_picks(file.read(), now)
        port = pick_port(picks)
        picks[port] = now
        file.seek(0)
        file.truncate()
        file.write("".join(f"{each}@{when:.0f}\n" for each, when in picks.items()))
        return port
