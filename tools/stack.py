"""The stack's lifecycle behind the Makefile: `python -m tools.stack <command>`.

- build: check the app source (APP_SRC), build the images with their piece versions stamped in, tag them.
- up: build, start, wait until healthy and print the URL; if it never gets healthy, print the failing services'
  logs, stop them so nothing restarts in a loop, and exit non-zero.
- versions: each piece's version as checked out and as running.
- logs, ps, shell, top, reload, restart: on the stack that runs, in the topology and TLS setting it was started with;
  reload and restart refuse a setting given now that it does not have (tools/unapplied.py).

Settings from the environment (see the README's configuration table): APP_SRC, WSGI_MODULE,
DJANGO_SETTINGS_MODULE, STATIC_DIR, STATIC_URL, TOPOLOGY, HTTP_BIND, HTTP_PORT, SECRET_KEY_FILE, UP_TIMEOUT.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import functools
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from tools import engine, lost_stops, preflight, settings, unapplied
from tools.bootstrap import WARNING as BOOTSTRAP_WARNING
from tools.compose import (
    PROJECT_LABEL,
    READY_POLL,
    ROOT,
    Compose,
    Container,
    image_id,
    now_ready,
    passes_its_check,
    timestamp,
    write_secret_key,
)
from tools.progress import phase, printable, run_step, verbose

# The default app's health routes (app/microposts/urls.py). Any other app gets none unless it names its own: then
# liveness accepts any answer below 500 (docker/app/uwsgi_health.py).
DEFAULT_APP_PROBES = {"HEALTHCHECK_PATH": "/healthz", "READINESS_PATH": "/readyz"}
STAGE_DIR = ROOT / ".build" / "apps"
# The default app's source, and the compose file every image is built from (the split topology's: it has them all).
DEFAULT_APP = ROOT / settings.defaults()["APP_SRC"]
# The compose project a stack runs under when COMPOSE_PROJECT_NAME is not set (compose.yaml's `name:`); every image
# is built under it.
DEFAULT_PROJECT = BUILD_PROJECT = "wsgi-chain"
SPLIT = settings.TOPOLOGIES["split"].compose_file
SEMVER = re.compile(r"\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?")
# What make up adds for an app with a pyproject.toml and no requirements.txt: its lock file gives one (without the
# project itself, whose files come into the image after its requirements: docker/app/requirement_files.py).
LOCKED = (
    ": write it from the project's lock, `uv export --no-emit-project --no-dev -o requirements.txt` or `poetry export"
    " -o requirements.txt`"
)
# A Debian package's name (Debian Policy 5.6.1), maybe with a version (name=1.2-3), as apt-get install takes it.
DEBIAN_PACKAGE = re.compile(r"[a-z0-9][a-z0-9+.-]+(?:=[0-9A-Za-z.+~:-]+)?", re.ASCII)
# Image label -> piece, for reading versions off running containers.
LABELS = {
    "io.wsgi-chain.app.version": "app",
    "io.wsgi-chain.uwsgi-config.version": "uwsgi-config",
    "io.wsgi-chain.nginx-config.version": "nginx-config",
}


class StackError(RuntimeError):
    """Something the operator must fix; the message says what."""


def env(name: str, default: str = "") -> str:
    return os.environ.get(name) or default


def compose() -> Compose:
    try:
        topology = settings.topology()
    except ValueError as error:
        raise StackError(str(error)) from None
    tls = settings.get("TLS")
    if tls not in {"on", "off"}:
        raise StackError(f"TLS={tls!r}: use on or off")
    try:
        settings.duration("HEALTH_INTERVAL")
    except ValueError as error:
        raise StackError(str(error)) from None
    check_media_url()
    check_uwsgi_options()
    return named((topology.compose_file, *((topology.tls_overlay,) if tls == "on" else ()), *egress_overlay(topology)))


def egress_overlay(topology: settings.Topology) -> tuple[str, ...]:
    """APP_EGRESS: the topology's way out of the stack for the app (its egress overlay) when on, none when off."""
    egress = settings.get("APP_EGRESS")
    if egress not in {"on", "off"}:
        raise StackError(f"APP_EGRESS={egress!r}: use on (the app may connect out of the stack) or off")
    return (topology.egress_overlay,) if egress == "on" else ()


URL_PATH = re.compile(r"/([\w.-]+/)+", re.ASCII)


def check_media_url() -> None:
    """MEDIA_URL, the prefix the app server serves MEDIA_ROOT's files under (uwsgi/uwsgi.ini): empty, or a path of
    its own beside STATIC_URL's, whose paths nginx answers itself."""
    media_url, static_url = settings.get("MEDIA_URL"), settings.get("STATIC_URL")
    if not media_url:
        return
    if not URL_PATH.fullmatch(media_url) or "/./" in media_url or "/../" in media_url:
        raise StackError(f"MEDIA_URL={media_url!r} must be a path like /media/ (leading and trailing slash), or empty")
    if media_url.startswith(static_url) or static_url.startswith(media_url):
        raise StackError(
            f"MEDIA_URL={media_url} and STATIC_URL={static_url} overlap: nginx answers the paths under STATIC_URL from"
            " the static files; give the media a prefix of their own, such as /media/"
        )


# A variable compose reads from its environment: passed through by name (`UWSGI_WORKERS:` in compose.yaml's x-app-env)
# or interpolated (`${NAME}`); and the build arguments of a uWSGI option's name (`- NAME`), which the build sets itself.
FROM_ENVIRONMENT = re.compile(r"^\s*([A-Z_][A-Z0-9_]*):\s*$|\$\{([A-Z_][A-Z0-9_]*)", re.MULTILINE)
BUILD_ARGUMENT = re.compile(r"^\s*- (UWSGI_\w+)\s*$", re.MULTILINE)


def compose_texts() -> list[str]:
    """Every compose file of the stack (the topologies', Swarm's and the overlays'), as text."""
    return [path.read_text() for path in sorted(ROOT.glob("compose*.yaml"))]


def from_environment(texts: list[str]) -> set[str]:
    """The variables those compose files read from compose's environment: the settings make passes on."""
    return {name for text in texts for match in FROM_ENVIRONMENT.finditer(text) for name in match.groups() if name}


def check_uwsgi_options() -> None:
    """uWSGI reads any UWSGI_<OPTION> in its environment, but compose gives the app server only the variables its files
    name: `make up UWSGI_THREADS=2` changed nothing, silently. Such a setting is refused, naming where it goes."""
    files = compose_texts()
    passed = {name for name in from_environment(files) if name.startswith("UWSGI_")}
    built = {name for text in files for name in BUILD_ARGUMENT.findall(text)}
    unpassed = sorted(name for name in os.environ if name.startswith("UWSGI_") and name not in passed | built)
    if unpassed:
        raise StackError(
            f"{', '.join(unpassed)}: no such setting reaches the app server (the stack passes"
            f" {', '.join(sorted(passed))}); give another uWSGI option in the app's settings file, APP_ENV_FILE (a line"
            f" {unpassed[0]}=...)"
        )


def service_environment(stack: Compose, service: str, env_file: Path) -> dict[str, str | None]:
    """The environment compose gives a service of the stack with env_file as APP_ENV_FILE (`docker compose config`
    renders the file's lines in); None for a variable passed through from an environment that lacks it."""
    config = Compose(files=stack.files, env={**stack.env, "APP_ENV_FILE": str(env_file)})
    rendered = config.run("config", "--format", "json", capture=True, check=False)
    if rendered.returncode != 0:
        said = rendered.stderr.strip().splitlines() or ["compose cannot read it"]
        raise StackError(f"APP_ENV_FILE={settings.get('APP_ENV_FILE')}: {said[-1]}")
    return dict(json.loads(rendered.stdout)["services"][service].get("environment") or {})


def check_app_env_file(stack: Compose) -> None:
    """A line of APP_ENV_FILE's file naming a variable the stack sets itself for the app server never reached the app,
    silently: compose puts a service's `environment` over its `env_file` (a variable passed through unset, too), so
    `DEBUG=true` there left DEBUG false and `UWSGI_WORKERS=3` two workers. Such a line is refused (one whose value is
    the stack's own is let be), naming it and the make setting to use where there is one; no value is shown. Swarm's
    stack file sets more (tools/swarm.py checks it too)."""
    path = settings.path("APP_ENV_FILE")
    if path == Path(os.devnull) or not path.is_file():
        return  # none, or a missing one, which app_settings() names
    own = service_environment(stack, server_service(stack), Path(os.devnull))
    (ROOT / ".build").mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=ROOT / ".build") as scratch:
        # The file's own values, as compose reads them (quotes, interpolation): a service that takes nothing else.
        alone = Path(scratch) / "compose.yaml"
        alone.write_text(json.dumps({"services": {"app": {"image": "none", "env_file": [str(path)]}}}))
        given = service_environment(Compose(files=(str(alone),), env=stack.env), "app", path)
    clashes = [name for name, value in given.items() if name in own and own[name] != value]
    if not clashes:
        return
    # A setting make takes: one compose reads from its environment (the topologies' files share compose.yaml's), or one
    # of defaults.env.
    takes = from_environment(compose_texts()) | set(settings.defaults())
    settable = [name for name in clashes if name in takes or own[name] is None]
    # Names only: a value may be a secret (a DATABASE_URL's password), and this line ends up in CI logs.
    instead = f"; give {', '.join(settable)} to make instead (make up {settable[0]}=...)" if settable else ""
    many = len(clashes) > 1
    raise StackError(
        f"APP_ENV_FILE={settings.get('APP_ENV_FILE')} sets {', '.join(clashes)}, which the stack sets itself for the"
        f" app (compose puts its own value{'s' if many else ''} first), so {'these lines' if many else 'the line'}"
        f" never reach{'' if many else 'es'} it. Remove {'them' if many else 'it'} from the file{instead}"
    )


def named(files: tuple[str, ...]) -> Compose:
    """The stack of these compose files under the project name compose would give it (COMPOSE_PROJECT_NAME, else the
    files' own `name:`), so that its listings (a start's polls, the targets' lookups) go to the engine's API
    (Compose.ids), not a compose command each."""
    return Compose(files=files, env={"COMPOSE_PROJECT_NAME": project_name()})


# --- the app source ----------------------------------------------------------------------------------------------


def stage_app(source: Path) -> str:
    """The build context is the repo root: an app outside it is copied under .build/apps/ first."""
    try:
        return source.resolve().relative_to(ROOT).as_posix()
    except ValueError:
        pass
    digest = hashlib.sha256(str(source.resolve()).encode()).hexdigest()[:8]
    target = STAGE_DIR / f"{source.name}-{digest}"
    shutil.rmtree(target, ignore_errors=True)
    ignore = shutil.ignore_patterns(".git", "__pycache__", "*.pyc", ".venv", "node_modules")
    shutil.copytree(source, target, ignore=ignore, symlinks=True)
    return target.relative_to(ROOT).as_posix()


def app_settings() -> dict[str, str]:
    """Build values for the app image, with clear errors for an app source that cannot work."""
    raw = settings.get("APP_SRC")
    source = app_source()
    if not source.is_dir():
        raise StackError(f"APP_SRC={raw}: no such directory")
    if not (source / "requirements.txt").is_file():
        raise StackError(
            f"APP_SRC={raw} has no requirements.txt; add one (it may be empty for an app without dependencies)"
            + (LOCKED if (source / "pyproject.toml").is_file() else "")
        )
    custom = source.resolve() != DEFAULT_APP.resolve()
    wsgi_module = env("WSGI_MODULE")
    if custom and not wsgi_module:
        raise StackError(f"APP_SRC={raw} needs WSGI_MODULE=package.module:callable")
    if wsgi_module and not re.fullmatch(r"[\w.]+(:[\w.]+(\(\))?)?", wsgi_module):
        raise StackError(
            f"WSGI_MODULE={wsgi_module!r} is not of the form package.module:callable (package.module:factory() for an"
            " app factory, called with no arguments)"
        )
    static_url = settings.get("STATIC_URL")
    if not URL_PATH.fullmatch(static_url):
        raise StackError(f"STATIC_URL={static_url!r} must be a path like /static/ (leading and trailing slash)")
    app_env_file = settings.path("APP_ENV_FILE")
    if not app_env_file.exists() or app_env_file.is_dir():
        name = settings.get("APP_ENV_FILE")
        raise StackError(f"APP_ENV_FILE={name}: no such file (a file of KEY=VALUE lines for the app; /dev/null: none)")
    values = {"APP_SRC": stage_app(source), "STATIC_URL": static_url}
    # The app's health routes go into its image: the ones set, else the default app's own (DEFAULT_APP_PROBES).
    for name, default in DEFAULT_APP_PROBES.items():
        if value := env(name, "" if custom else default):
            values[name] = value
    if wsgi_module:
        values["WSGI_MODULE"] = wsgi_module
    # Django-only steps (collectstatic) run only when a settings module is named; another app gets none.
    if custom or "DJANGO_SETTINGS_MODULE" in os.environ:
        values["DJANGO_SETTINGS_MODULE"] = env("DJANGO_SETTINGS_MODULE")
    if env("STATIC_DIR"):
        values["STATIC_DIR"] = env("STATIC_DIR")
    for name in ("APP_BUILD_PACKAGES", "APP_PACKAGES"):
        if packages := debian_packages(name):
            values[name] = packages
    return values


def debian_packages(name: str) -> str:
    """A setting naming Debian packages for the app image (space-separated names, each maybe pinned as name=version),
    as its build's apt-get takes them; refused before anything is built when one is no package name."""
    given = settings.get(name).split()
    if bad := [each for each in given if not DEBIAN_PACKAGE.fullmatch(each)]:
        raise StackError(
            f"{name}={settings.get(name)!r}: {bad[0]!r} is not a Debian package name; give names separated by spaces,"
            " such as libpq-dev"
        )
    return " ".join(given)


def app_source() -> Path:
    return settings.path("APP_SRC")


def read_version(file: Path) -> str:
    """A piece's semver version; an app without a VERSION file is reported as unversioned."""
    text = file.read_text().strip() if file.is_file() else "0.0.0-unversioned"
    if not SEMVER.fullmatch(text):
        raise StackError(f"{file} holds {text!r}, which is not a semver version")
    return text


def piece_versions() -> dict[str, str]:
    return {
        "app": read_version(app_source() / "VERSION"),
        "uwsgi-config": read_version(ROOT / "uwsgi/VERSION"),
        "nginx-config": read_version(ROOT / "nginx/VERSION"),
    }


def git(*args: str) -> str:
    result = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
    return result.stdout.strip() if result.returncode == 0 else ""


def build_env() -> dict[str, str]:
    """The images' build arguments: the app's settings, the piece versions, and provenance (from git, unless set)."""
    versions = piece_versions()
    return {
        **app_settings(),
        "VCS_REF": env("VCS_REF") or git("rev-parse", "--short", "HEAD") or "unknown",
        "SOURCE_URL": env("SOURCE_URL") or git("config", "--get", "remote.origin.url") or "unknown",
        "APP_VERSION": versions["app"],
        "UWSGI_CONFIG_VERSION": versions["uwsgi-config"],
        "NGINX_CONFIG_VERSION": versions["nginx-config"],
    }


def version_tags(values: dict[str, str]) -> dict[str, str]:
    """Tags derived from the piece versions each image holds."""
    app_image = settings.get("APP_IMAGE").rsplit(":", 1)[0]
    nginx_image = settings.get("NGINX_IMAGE").rsplit(":", 1)[0]
    single_image = settings.get("SINGLE_IMAGE").rsplit(":", 1)[0]
    app_tag = f"{values['APP_VERSION']}-uwsgi{values['UWSGI_CONFIG_VERSION']}"
    return {
        settings.get("APP_IMAGE"): f"{app_image}:{app_tag}",
        settings.get("NGINX_IMAGE"): f"{nginx_image}:{values['NGINX_CONFIG_VERSION']}-app{values['APP_VERSION']}",
        settings.get("SINGLE_IMAGE"): f"{single_image}:{app_tag}-nginx{values['NGINX_CONFIG_VERSION']}",
    }


def build(stack: Compose, quiet: bool = False) -> dict[str, str]:
    """Build the app and nginx images; the single-container topology builds its image on top of them.

    quiet (make up): a progress line instead of BuildKit's output, which is shown (its tail) only if the build fails.
    """
    values = build_env()
    stack.env.update(values)
    # Built under one project name, whichever stack asks: compose labels each image with the project that built it,
    # so a build per project would make a new image of the same content and move its tag under every other stack.
    builds = [Compose(project=BUILD_PROJECT, env=stack.env, files=(SPLIT,))]
    if stack.files != (SPLIT,):
        builds.append(Compose(project=BUILD_PROJECT, env=stack.env, files=stack.files))
    if not quiet and subprocess.run(["docker", "buildx", "version"], capture_output=True).returncode != 0:
        print("build: compose's warning that Bake needs buildx is harmless: it builds with the engine's BuildKit")
    for each in builds:
        if not quiet:
            each.run("build")
            continue
        code, tail, _ = run_step("build", each.command("build"), {**each.environment(), "BUILDKIT_PROGRESS": "plain"})
        if code != 0:
            print("\n".join(tail), file=sys.stderr)
            raise StackError(build_failure(code, tail))
    for image, tag in version_tags(values).items():
        tag_image(image, tag)
    stack.env["LISTENER_IMAGE"] = listener_image()
    return values


# What the app image's build says when it fails for a reason of the app's (docker/app/: the Dockerfile and the scripts
# its build runs): BuildKit puts the step and the time before it.
BUILD_SAID = re.compile(r"(?:^|\s)app image: (.+)$")


def build_failure(code: int, tail: list[str]) -> str:
    """make up's line for a failed build: the cause the build gave, if it gave one, and where the rest is."""
    said = [match[1] for line in tail if (match := BUILD_SAID.search(line))]
    cause = f": {said[0]}" if said else ""
    return f"the build failed (exit {code}){cause}; its last lines are above, VERBOSE=1 shows all of it"


# The split topology's service that owns nginx's socket and its queue (compose.yaml), beside the app server.
LISTENER = "listener"

# What the split topology's listener runs of the app image: the base image with the image's own packages and user
# (the Dockerfile), uWSGI (built by build_uwsgi.py from its requirements), listener.ini and the entrypoint's `listen`.
# Nothing of the app.
LISTENER_INPUTS = (
    "docker/app/Dockerfile",
    "uwsgi/listener.ini",
    "uwsgi/requirements.txt",
    "docker/app/build_uwsgi.py",
    "docker/app/app-entrypoint.sh",
    "docker/app/listener-rename.sh",
)


def listener_image() -> str:
    """The image the listener runs (compose.yaml: LISTENER_IMAGE): the app image as first built with these listener
    inputs, under a tag of their content. The listener owns nginx's socket and its queue, which outlive a restart of
    the app server; run from APP_IMAGE, every new version of the app replaced it too (compose recreates a container
    whose image changed), and requests got 503 until it was back. Now a new app alone leaves it running."""
    # The base image by its ID, not its name: one rebuilt with security updates replaces the listener too.
    base = image_id(settings.get("BASE_IMAGE"))
    digest = hashlib.sha256((base or settings.get("BASE_IMAGE")).encode())
    for name in LISTENER_INPUTS:
        digest.update((ROOT / name).read_bytes())
    app = settings.get("APP_IMAGE")
    tag = f"{app.rsplit(':', 1)[0]}:listener-{digest.hexdigest()[:12]}"
    if not image_id(tag):
        tag_image(app, tag)
    return tag


def tag_image(image: str, tag: str) -> None:
    """`docker tag image tag`, when the image exists (the single topology's is built only for that topology); through
    the engine's API when the CLI would reach a local engine (tools/engine.py: a tag every build, two CLI calls)."""
    if local := engine.local():
        with contextlib.suppress(OSError):
            local.tag(image, tag)
            return
    if image_id(image):
        subprocess.run(["docker", "tag", image, tag], check=True)


# --- up ----------------------------------------------------------------------------------------------------------


def ensure_secret_key(path: Path) -> None:
    """Generate the Django secret once per checkout; it never enters an image or the repo."""
    if path.exists():
        return
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    # Readable by the container's unprivileged user through the bind mount; the folder itself is 0700.
    write_secret_key(path)
    print(f"up: generated a secret key in {path}")


# A health probe that failed this many times in a row with an answer from the app (a status line, not a refused
# connection) is a clear verdict even inside the start period: the app loaded and answers, but not as the probe asks.
CLEAR_STREAK = 3
# How often `up` looks at the containers while compose creates and starts them (then: READY_POLL).
WATCH_INTERVAL = 2.0
# What compose says when a container it was starting was removed meanwhile (the engine's error).
REMOVED = "No such container"
# The settings that change what the app's health probe asks (docker/app/uwsgi_health.py).
PROBE_SETTINGS = ("HEALTHCHECK_PATH", "READINESS_PATH")
ANSWERED = re.compile(r"-> (?:HTTP/[\d.]+ )?([1-5]\d\d)\b")


def failure(
    state: Container,
    since: float,
    restarts_before: int = 0,
    existed: bool = False,
    began: str = "up",
    verdict: bool = True,
) -> str | None:
    """Why the container has clearly failed since `since`, or None while it may still come up. One that
    `existed` before up began is judged by its restarts only: compose may be replacing it, and its stop, or its
    health while its new dependencies start, says nothing about the new stack (until_ready judges the rest).
    `verdict`: whether Docker's "unhealthy" counts (not for a program restarted inside a running container)."""
    if state.status == "restarting" or state.restarts > restarts_before:
        count = state.restarts - restarts_before
        # A container started again (a second `make up` of a stopped one) counts its restarts from 0 anew.
        times = f"was restarted {count} time(s)" if count > 0 else "is being restarted"
        return f"restarting: it stopped and {times} since {began} began"
    if existed or stopped_from_elsewhere(state):
        # Stopped or being removed by a `make down` or `docker rm` from elsewhere: its health is then the engine's
        # verdict on a stopped container (unhealthy), not the app's.
        return None
    if state.status in ("exited", "dead"):
        # A one-shot (migrate) that finished cleanly is done, whatever its image's health check last said.
        return f"exited with code {state.exit_code}" if state.exit_code != 0 and state.finished_at >= since else None
    if state.one_shot:
        return None
    recent = [probe for probe in state.probes if timestamp(probe.get("Start", "")) >= since]
    if verdict and state.health == "unhealthy" and recent:
        return "unhealthy"
    streak = recent[-CLEAR_STREAK:]
    if (
        len(streak) == CLEAR_STREAK
        and all(p.get("ExitCode") != 0 for p in streak)
        and ANSWERED.search(state.last_probe)
    ):
        return f"failing its health check ({CLEAR_STREAK} times in a row, the app answering)"
    return None


def failing_now(states: list[Container], since: float, baseline: dict[str, int]) -> list[tuple[Container, str]]:
    """The containers that have clearly failed since `since`, each with why. `baseline`: the restart counts of the
    containers there before up began."""
    return [
        (state, why)
        for state in states
        if (why := failure(state, since, baseline.get(state.id, 0), existed=state.id in baseline))
    ]


def watch(
    stack: Compose, compose_up: subprocess.Popen, since: float, baseline: dict[str, int]
) -> list[tuple[Container, str]]:
    """The containers that have clearly failed, as soon as there is one; [] once compose is done by itself.
    `baseline`: the restart counts of the containers there before up began."""
    while True:
        try:
            compose_up.wait(timeout=WATCH_INTERVAL)
            return []
        except subprocess.TimeoutExpired:
            pass
        if failing := failing_now(stack.containers(), since, baseline):
            return failing


TRACEBACK = "Traceback (most recent call last):"


# How the stack's own fail-fast checks begin the one line that names a problem: check-app's (docker/app/check_app.py)
# and the entrypoints'.
CAUSES = ("wsgi-chain: ", "app-entrypoint: ", "nginx-entrypoint: ")


def last_said(log: str) -> str:
    """The last line of a failed container's log that names a problem: one of the stack's own checks' (CAUSES), else
    the last that says something. Not a traceback's header nor its indented frames, which a restarted container may
    be writing for its next attempt after the line that named the problem (check-app's, after its traceback), nor
    what the single container's supervisord logs as it gives up after that line."""
    lines = [line for line in log.splitlines() if line.strip()]
    said = [line for line in lines if line != TRACEBACK and not line.startswith((" ", "\t"))]
    causes = [line for line in said if line.startswith(CAUSES)]
    return (causes or said or lines or ["(none)"])[-1]


def about_its_probe(state: Container, why: str) -> bool:
    """Whether what the probe asks (PROBE_SETTINGS) may be why: the container failed its health check (not an exit, a
    crash or a restart), and it is an app server (the probe is uwsgi-health's) or its probe got an answer."""
    failed_its_check = why == "unhealthy" or "health check" in why
    servers = {topology.server for topology in settings.TOPOLOGIES.values()}
    return failed_its_check and (state.service in servers or bool(ANSWERED.search(state.last_probe)))


def failure_logs(stack: Compose, service: str, since: float | None) -> str:
    """The service's last 40 log lines of this attempt (from `since` on): a one-shot that failed before (the migrate
    service) keeps its container and its earlier runs' lines, which read as this run's. All of its log if the attempt
    wrote none (a container that failed before it and did not start again)."""
    if since is not None and (attempt := stack.logs(service, tail=40, since=since).rstrip()):
        return attempt
    return stack.logs(service, tail=40).rstrip()


def as_printed(text: str) -> str:
    """What an app logged or answered, each line printable (tools/progress.py): it may hold a client's text (a path
    the app logged), whose control characters would reach the operator's terminal."""
    return "\n".join(printable(line, backslash=False) for line in text.splitlines())


def report_failures(
    stack: Compose,
    failing: list[tuple[Container, str]],
    compose_output: str,
    target: str = "up",
    since: float | None = None,
) -> None:
    """The cause first (each failing service, its probe's last answer and the settings that change it), then
    compose's own last lines and each failing service's logs (from `since` on, the attempt's start); then stop what
    would restart in a loop. Each line begins with the target's name (up, restart)."""
    say = functools.partial(print, file=sys.stderr)
    if not failing:
        say(f"{target}: compose failed, but no container has failed: compose's last lines below say why")
    logs = {state.service: as_printed(failure_logs(stack, state.service, since)) for state, _ in failing}
    for state, why in failing:
        say(f"{target}: service {state.service} is {why}")
        if state.status != "running" or state.restarts:
            say(f"{target}:   its last log line: {last_said(logs[state.service])}")
        if state.last_probe:
            say(f"{target}:   its health probe's last answer: {as_printed(state.last_probe)}")
        if about_its_probe(state, why):
            shown = ", ".join(f"{name}={state.env.get(name) or '(unset)'}" for name in PROBE_SETTINGS)
            say(
                f"{target}:   what the probe asks is set by {shown}: change them with "
                "`make up HEALTHCHECK_PATH=<path> READINESS_PATH=<path>` (README: Bring your own WSGI app)"
            )
    if compose_output.strip():
        say(f"\n{target}: compose's last lines:")
        say("\n".join(compose_output.rstrip().splitlines()[-15:]))
    for state, _ in failing:
        status = state.status + (f"/{state.health}" if state.health else "")
        say(f"\n{target}: service {state.service} is {status}; its last log lines:")
        say(logs[state.service] or "(no logs)")
    looping = sorted({state.service for state, _ in failing if state.status in ("restarting", "running")})
    if looping:
        # A container restarting in a loop is always young: its stop may be lost (tools/lost_stops.py).
        with lost_stops.resending(stack.project or project_name()):
            stack.run("stop", "--timeout", "5", *looping, check=False, capture=True)
        say(f"\n{target}: stopped {', '.join(looping)} so it does not restart in a loop")
    # With no app server running, the listener (split) would queue the clients' requests for one that never comes,
    # each until nginx gave up on it (a 504 "app server timed out" after uwsgi_read_timeout): stopped too, so nginx
    # answers each at once (a 503 with Retry-After: snippets/app-unavailable.conf). The next make up starts it again.
    running = {state.service for state in stack.containers() if state.status == "running"}
    if LISTENER in running and server_service(stack) not in running:
        # Young too, when this make up started it: its stop may be lost likewise.
        with lost_stops.resending(stack.project or project_name()):
            stack.run("stop", "--timeout", "5", LISTENER, check=False, capture=True)
        say(f"\n{target}: stopped {LISTENER} too: no app server runs, so nginx answers 503 at once")


def stopped_from_elsewhere(state: Container) -> bool:
    """A container being removed (a one-shot too: only a `make down` or `docker rm` removes one), or a service (not a
    one-shot) that exited: `make down` stops the containers before it removes them. A service that ends by itself is
    restarted (`restart: unless-stopped`), which `failure` reports; only a stop through the engine leaves it exited,
    whatever its process's exit code: 0 for a graceful stop, 15 for uWSGI stopped before its master loop
    (uwsgi/uwsgi.ini), 137 at the stop timeout. Not one the engine could not start (its error), nor, under a policy
    that restarts only failures (on-failure), one that exited non-zero."""
    if state.status == "removing":
        return True
    if state.one_shot or state.status != "exited" or state.error:
        return False
    return state.exit_code == 0 or state.restarts_on_any_exit


def stopped_while_starting(remaining: list[Container], baseline: dict[str, int], removed: bool = False) -> bool:
    """Whether the start ended on a stop or removal from elsewhere rather than a failure: none of the containers is
    left, or one was removed (`removed`: gone from the listing, or lost by compose as it started it), stopped or is
    being removed, and none has clearly failed (the others may be anywhere in their own stop). `baseline`: each
    container's restarts before up began (those are not this start's failures)."""
    if not remaining:
        return True
    stopped = removed or any(stopped_from_elsewhere(state) for state in remaining)
    return stopped and not any(failure(state, 0, baseline.get(state.id, 0)) for state in remaining)


def stopped_as_compose_started(remaining: list[Container], baseline: dict[str, int], compose_output: str) -> bool:
    """After compose's start failed by itself: whether a stop or removal from elsewhere made it fail. No container
    left and none that compose lost on the way (REMOVED in its output) is compose's own failure, not a stop: it
    created none (a value it could not use), and its lines say why."""
    removed = REMOVED in compose_output
    if not remaining and not removed:
        return False
    return stopped_while_starting(remaining, baseline, removed=removed)


def until_ready(
    stack: Compose,
    since: float,
    baseline: dict[str, int],
    timeout: float,
    passes: Callable[[Container], bool] = passes_its_check,
) -> tuple[str, list[tuple[Container, str]]]:
    """Once compose has started the stack: ("ready", []) when every long-running container passes its health check
    (compose.now_ready: Docker's verdict or the check run now); ("failed", the failing) as soon as one has clearly
    failed; ("stopped", []) when the stack was stopped or removed from elsewhere meanwhile; ("late", the ones not
    ready) `timeout` s after up began (`since`). `baseline`: the restart counts of the containers there before."""
    ready: set[str] = set()
    seen: set[str] = set()
    while True:
        states = stack.containers()
        if failing := failing_now(states, since, baseline):
            return "failed", failing
        # A container that was there and is gone was removed from elsewhere (compose is done: it replaces none).
        if stopped_while_starting(states, baseline, removed=bool(seen - {state.id for state in states})):
            return "stopped", []
        seen |= {state.id for state in states}
        ready = now_ready(states, ready, passes)
        waiting = [state for state in states if not state.one_shot and state.id not in ready]
        if not waiting:
            return "ready", []
        if time.time() > since + timeout:
            late = f"not passing its health check {timeout} s after up began (UP_TIMEOUT)"
            return "late", [(state, late) for state in waiting]
        time.sleep(READY_POLL)


# What `healthy` means when `up` says it: Docker's status (`make ps`) still says "starting" until its first check.
CHECKS_PASSED = "each passed its health check; Docker's status follows at its first, within HEALTH_INTERVAL"
STOPPED_WHILE_STARTING = (
    "up: the stack's containers were stopped or removed while it started (a `make down`, `docker stop` or `docker rm` "
    "from elsewhere): nothing failed; `make up` starts it again"
)


def start(stack: Compose, timeout: int) -> bool:
    """`compose up -d`, watched, then until every long-running container passes its health check (until_ready): up
    as soon as each does, not at Docker's first check one HEALTH_INTERVAL after the start. A container that has
    clearly failed ends the wait at once, and the report names it. Compose's own lines are shown on failure, or as
    they come with VERBOSE=1."""
    since = time.time() - 1
    loud = verbose()
    baseline = {state.id: state.restarts for state in stack.containers()}
    with tempfile.TemporaryFile("w+") as output:
        compose_up = subprocess.Popen(
            stack.command("up", "-d", "--remove-orphans"),
            env=stack.environment(),
            stdout=None if loud else output,
            stderr=None if loud else subprocess.STDOUT,
            text=True,
        )
        try:
            failing = watch(stack, compose_up, since, baseline)
        finally:
            if compose_up.poll() is None:
                compose_up.terminate()
                try:
                    compose_up.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    compose_up.kill()
                    compose_up.wait()
        compose_output = ""
        if not failing and compose_up.returncode == 0:
            outcome, failing = until_ready(stack, since, baseline, timeout)
            if outcome == "ready":
                return True
            if outcome == "stopped":
                print(STOPPED_WHILE_STARTING, file=sys.stderr)
                return False
        elif not failing:
            # Compose gave up by itself (a port in use...): its own lines say why, after the containers'.
            output.seek(0)
            compose_output = output.read()
            remaining = stack.containers()
            if stopped_as_compose_started(remaining, baseline, compose_output):
                print(STOPPED_WHILE_STARTING, file=sys.stderr)
                return False
            # The containers that failed; only if none clearly did, every one not ready. One still "created" waited for
            # a dependency that failed, and one still starting (the listener, beside a pre-start hook that failed) was
            # not given the time: consequences, not causes, and nothing to stop.
            failing = [(state, why) for state in remaining if (why := failure(state, 0, baseline.get(state.id, 0)))]
            failing = failing or [
                (state, state.status) for state in remaining if not state.ok and state.status != "created"
            ]
        report_failures(stack, failing, compose_output, since=since)
    return False


def bootstrap() -> None:
    """tools/bootstrap.py, its three "nothing to do" lines folded into one; whatever it installs is shown."""
    argv = [sys.executable, "-m", "tools.bootstrap"]
    if verbose():
        subprocess.run(argv, cwd=ROOT, check=True)
        return
    code, lines, _ = run_step("bootstrap", argv, dict(os.environ), cwd=str(ROOT))
    # A warning (tools/buildkit_db.py) is shown, and does not take the folded line's place.
    if warnings := [line for line in lines if line.startswith(BOOTSTRAP_WARNING)]:
        print("\n".join(warnings), file=sys.stderr)
    said = [line for line in lines if line.strip() and line not in warnings]
    if done := [line for line in said if not line.rstrip().endswith("nothing to do")]:
        print("\n".join(done), file=sys.stderr if code else sys.stdout)
    if code != 0:
        raise StackError("bootstrap failed: the lines above say why")
    if not done:
        phase("bootstrap", "docker engine, compose and the base image present")


def single(stack: Compose) -> bool:
    return server_service(stack) == settings.TOPOLOGIES["single"].server


def tls_certs_dir() -> Path:
    """TLS_CERTS_DIR as compose reads it (a relative path from the repo root)."""
    return settings.path("TLS_CERTS_DIR")


def unchanged() -> str:
    """The end of a refusal that comes before compose: what still runs."""
    if running_stack() is not None:
        return "nothing was replaced: the running stack keeps serving as before"
    return "nothing was started"


def check_tls_files() -> None:
    """TLS=on: the certificate and key are there, before anything is built or replaced."""
    if settings.get("TLS") != "on":
        return
    certs = tls_certs_dir()
    missing = [name for name in ("tls.crt", "tls.key") if not (certs / name).is_file()]
    if missing:
        raise StackError(
            f"TLS=on needs {' and '.join(missing)} in {certs} (`make cert` writes a self-signed pair to try TLS with; "
            f"docs/security.md: Turning TLS on); {unchanged()}"
        )


def published_ports() -> list[tuple[str, str]]:
    """(setting, port) of each port the stack publishes on HTTP_BIND: HTTP_PORT, and HTTPS_PORT with TLS=on."""
    names = ("HTTP_PORT", "HTTPS_PORT") if settings.get("TLS") == "on" else ("HTTP_PORT",)
    return [(name, settings.get(name)) for name in names]


def port_taken(bind: str, port: int) -> bool:
    """Something on this host listens on (bind, port): a listening socket of our own there fails with EADDRINUSE."""
    family = socket.AF_INET6 if ":" in bind else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a port in TIME_WAIT only is free
        try:
            probe.bind((bind, port))
        except OSError as exc:
            return exc.errno == errno.EADDRINUSE
    return False


def check_ports(stack: Compose) -> None:
    """The ports the stack publishes are free, or its own: held by another program, nginx's container was created and
    failed to start (Docker's "address already in use", among compose's lines), and `make up` named the services
    still starting first."""
    ours = stack.project or project_name()
    bind = settings.get("HTTP_BIND")
    for setting, port in published_ports():
        # Each container that publishes the port on this host: its name and its compose project.
        shown = "{{.Names}} {{.Label " + json.dumps(PROJECT_LABEL) + "}}"
        listed = subprocess.run(
            ["docker", "ps", "--filter", f"publish={port}", "--format", shown],
            capture_output=True,
            text=True,
            check=True,
        )
        holders = [line.split() for line in listed.stdout.splitlines() if line.strip()]
        others = [holder[0] for holder in holders if holder[1:] != [ours]]
        if others:
            by = f"the container {', '.join(others)}"
        elif not holders and port_taken(bind, int(port)):
            by = "a program on this host"
        else:
            continue
        raise StackError(
            f"{setting}={port} on {bind} is taken by {by}: stop it, or publish the stack on another port "
            f"(make up {setting}=<port>); {unchanged()}"
        )


def check_tls_config(stack: Compose) -> None:
    """TLS=on: `nginx -t` on the config the new nginx would render, with the certificate mounted as it will be and
    as nginx's own uid, so an unreadable key or a mismatched pair fails here, before any running container is
    replaced."""
    if settings.get("TLS") != "on":
        return
    image = settings.get("SINGLE_IMAGE") if single(stack) else settings.get("NGINX_IMAGE")
    # The image carries its compose project's label: cleared, so this check never counts as one of its containers.
    cmd = ["docker", "run", "--rm", "--network", "none", "--label", f"{PROJECT_LABEL}=", "-e", "TLS=on"]
    cmd += ["-e", f"HTTPS_PORT={settings.get('HTTPS_PORT')}", "-v", f"{tls_certs_dir()}:/etc/nginx/tls:ro"]
    if single(stack):
        cmd += ["--entrypoint", "nginx-entrypoint"]  # the single image's entrypoint is supervisord
    result = subprocess.run([*cmd, image, "nginx", "-t", "-q"], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        lines = [line for line in (result.stderr + result.stdout).splitlines() if line.strip()]
        raise StackError(f"TLS=on: nginx -t fails: {lines[-1] if lines else 'no output'}; {unchanged()}")


def build_phase(stack: Compose) -> None:
    """`make up`'s build phase, also `make dev`'s, `make swarm-up`'s and `make cluster-up`'s: one line naming the
    images, those the build made anew apart from those it found up to date (BuildKit's output with VERBOSE=1, its
    tail if the build fails)."""
    check_app_env_file(stack)
    images = [settings.get(name) for name in settings.IMAGES if name != "SINGLE_IMAGE" or single(stack)]
    before = {image: image_id(image) for image in images}
    started = time.monotonic()
    build(stack, quiet=not verbose())
    new = [image for image in images if image_id(image) != before[image]]
    said = [f"{', '.join(new)} built anew"] if new else []
    if same := [image for image in images if image not in new]:
        said.append(f"{', '.join(same)} up to date")
    phase("build", f"{'; '.join(said)} ({time.monotonic() - started:.0f} s)")


def say_healthy(stack: Compose, started: float) -> None:
    """The start's last phase line, `make up`'s and `make dev`'s: the services that run, and how long they took."""
    services = sorted({state.service for state in stack.containers() if state.status == "running"})
    phase("healthy", f"{', '.join(services)} healthy after {time.monotonic() - started:.0f} s ({CHECKS_PASSED})")


def served_url() -> str:
    """Where `make up` says the stack is: its published port on the bind address, under a name nginx serves."""
    host = settings.served_host(settings.get("HTTP_BIND"))
    if settings.get("TLS") == "on":
        return f"https://{host}:{settings.get('HTTPS_PORT')}/"
    return f"http://{host}:{settings.get('HTTP_PORT')}/"


def up(timeout: int) -> int:
    bootstrap()
    check_tls_files()
    secret_file = settings.path("SECRET_KEY_FILE")
    ensure_secret_key(secret_file)
    stack = compose()
    stack.env["SECRET_KEY_FILE"] = str(secret_file)
    build_phase(stack)
    check_ports(stack)
    check_tls_config(stack)
    server = server_service(stack)
    front = server if single(stack) else "nginx"
    replaced = preflight.replaced(stack, {server, front})
    if front in replaced:
        refused = preflight.check_nginx(stack, front, timeout)
        if refused:
            print(
                f"up: error: the nginx this make up would start {refused.what}: {refused.line}. The nginx that runs "
                f"({replaced[front].name}) was left serving as it was (the new config was checked only in a one-off "
                "container, now removed): fix the setting, then run make up again",
                file=sys.stderr,
            )
            return 1
        phase("check", f"nginx takes the new settings (nginx -t), so {replaced[front].name} is replaced")
    running = replaced.get(server)
    if running:
        refused = preflight.check(stack, server, timeout)
        if refused:
            print(
                f"up: error: the app this make up would start {refused.what}: {refused.line}. The app server "
                f"that runs ({running.name}) was left serving as it was (the new image ran only in one-off "
                "containers, now removed): fix the app or its settings, then run make up again",
                file=sys.stderr,
            )
            return 1
        phase("check", f"the new app loads and passes its health probe (try-app), so {running.name} is replaced")
    phase("start", f"starting {stack.project or project_name()}, waiting until healthy")
    started = time.monotonic()
    if not start(stack, timeout):
        print("\nup: the stack did not get healthy", file=sys.stderr)
        return 1
    say_healthy(stack, started)
    print(f"up: wsgi-chain is up at {served_url()}")
    return 0


# --- the stack that runs: its topology and TLS read off its containers, not from TOPOLOGY= -----------------------

# Targets that act on the running stack, and what they run in it (SERVER: the app server's service, app or single).
SERVER = "{server}"
RUNNING_TARGETS: dict[str, tuple[str, tuple[str, ...]]] = {
    "logs": ("follow the logs of every service (LOGS_TAIL lines back, default 100)", ("logs", "-f")),
    "ps": ("list the stack's containers and their health", ("ps", "-a")),
    # Through the app's entrypoint, so that the shell has the app's environment (its writable HOME).
    "shell": ("a shell in the app server's container", ("exec", SERVER, "app-entrypoint", "bash")),
    "top": ("live uWSGI worker state (uwsgitop)", ("exec", SERVER, "uwsgi-top", "127.0.0.1:1717")),
    "reload": ("chain reload of the app's code, worker by worker", ("exec", "-T", SERVER, "uwsgi-ctl", "reload")),
    "restart": ("full restart of the app server", ("restart", SERVER)),
    "down": ("stop the stack and remove its containers (volumes are kept)", ("down", "--remove-orphans")),
}
# The single container restarts its uWSGI program, not itself: supervisord's listener keeps nginx's socket and its
# queue meanwhile (docker/single/supervisord.conf), as the listener service does for the split topology's app container.
# restart-program, not supervisorctl's restart, which waits out the program's startsecs: restart() waits for its health.
SINGLE_TARGETS = {"restart": ("exec", "-T", "single", "restart-program", "uwsgi")}
# These need a stack that runs; logs and ps also answer for one that does not.
NEEDS_RUNNING = {"shell", "top", "reload", "restart"}
# These keep the settings the stack was started with: a setting given with them that it does not have is refused
# (tools/unapplied.py), since it would change nothing.
APPLIES_NOTHING = {"reload", "restart"}
# These stop containers: a stop signal that a container lost as it started is sent again meanwhile.
STOPPING_TARGETS = {"down", "restart"}
CONFIG_FILES_LABEL = "com.docker.compose.project.config_files"


def project_name() -> str:
    """The compose project `make up` used: COMPOSE_PROJECT_NAME, else the compose files' own name."""
    return env("COMPOSE_PROJECT_NAME", DEFAULT_PROJECT)


def running_stack() -> Compose | None:
    """The stack as it was started (compose files from its containers' labels: topology and TLS overlay), or None
    when the project has no container."""
    found: dict[str, int] = {}
    for only_running in (True, False):
        args = ["docker", "ps", "--filter", f"label={PROJECT_LABEL}={project_name()}"]
        args += ["--filter", "status=running"] if only_running else ["-a"]
        out = subprocess.run(
            [*args, "--format", f'{{{{.Label "{CONFIG_FILES_LABEL}"}}}}'], capture_output=True, text=True, check=True
        ).stdout
        for line in out.splitlines():
            if line.strip():
                found[line.strip()] = found.get(line.strip(), 0) + 1
        if found:
            break
    if not found:
        return None
    files = max(found, key=found.__getitem__).split(",")
    return named(tuple(files))


def topology_of(stack: Compose) -> str:
    """The topology whose compose file the stack was started with (a name, or the absolute path compose records)."""
    files = {Path(file).name for file in stack.files}
    return next((t.name for t in settings.TOPOLOGIES.values() if t.compose_file in files), "split")


def server_service(stack: Compose) -> str:
    return settings.TOPOLOGIES[topology_of(stack)].server


def on_running(target: str) -> int:
    """Run a target against the stack that runs, whatever TOPOLOGY and TLS say now."""
    stack = running_stack()
    if stack is None:
        if target in NEEDS_RUNNING:
            raise StackError(f"no stack runs in compose project {project_name()}: start one with `make up`")
        stack = compose()
    if target in APPLIES_NOTHING:
        try:
            found = unapplied.unapplied(stack)
        except ValueError as error:
            raise StackError(f"{error}; nothing was {target}ed") from None
        if found:
            dev = {Path(file).name for file in stack.files} & {t.dev_overlay for t in settings.TOPOLOGIES.values()}
            raise StackError(unapplied.refusal(target, found, dev=bool(dev)))
    args = [arg.replace(SERVER, server_service(stack)) for arg in RUNNING_TARGETS[target][1]]
    if server_service(stack) == "single" and target in SINGLE_TARGETS:
        args = list(SINGLE_TARGETS[target])
    if target == "logs":
        args += ["--tail", env("LOGS_TAIL", "100")]
    if target == "shell" and not sys.stdin.isatty():
        args.insert(1, "-T")  # commands piped in: no terminal to allocate
    if target == "top" and not sys.stdout.isatty():
        raise StackError("uwsgitop needs a terminal; for a snapshot: docker exec <container> uwsgi-ctl stats")
    # A stop lost by a container stopped as it started is sent again (tools/lost_stops.py).
    stopping = lost_stops.resending(project_name()) if target in STOPPING_TARGETS else contextlib.nullcontext()
    try:
        if target == "restart":
            return restart(stack, args, int(settings.get("UP_TIMEOUT")), stopping)
        with stopping:
            return stack.run(*args, check=False).returncode
    except KeyboardInterrupt:
        return 130


def restart(stack: Compose, args: list[str], timeout: int, stopping: contextlib.AbstractContextManager) -> int:
    """The app server restarted (`args`: compose's restart of its container, or restart-program's of its program in the
    single container), then waited for, as `make up` waits for a start: done once it passes its health check again,
    run now (the single container's Docker verdict predates the restart), or failed, naming why, as soon as a
    container has clearly failed (an app that no longer imports: check-app's line), or late after UP_TIMEOUT s.
    `stopping`: what resends a stop lost meanwhile (tools/lost_stops.py)."""
    server = server_service(stack)
    since, started = time.time() - 1, time.monotonic()
    baseline = {state.id: state.restarts for state in stack.containers()}
    # The lost stops are looked for while the stop is under way only: the container started again is young, and a
    # stop sent to it now would be no lost one's.
    with stopping:
        code = stack.run(*args, check=False).returncode
    if code != 0:
        return code  # compose's or restart-program's own lines said why; the restart did not get as far as the app
    outcome, failing = after_restart(stack, server, since, baseline, timeout)
    if outcome == "ready":
        took = time.monotonic() - started
        print(f"restart: {server} passes its health check again, {took:.0f} s after the restart began")
        return 0
    if outcome == "stopped":
        print("restart: the app server was stopped or removed from elsewhere while it restarted", file=sys.stderr)
        return 1
    report_failures(stack, failing, "", target="restart", since=since)
    print(f"\nrestart: {server} did not come back", file=sys.stderr)
    return 1


def after_restart(
    stack: Compose,
    server: str,
    since: float,
    baseline: dict[str, int],
    timeout: float,
    passes: Callable[[Container], bool] = passes_its_check,
) -> tuple[str, list[tuple[Container, str]]]:
    """("ready", []) once the server's container passes its health check, run now; ("failed", the failing) as soon as
    a container has clearly failed since `since`, or the server's has exited non-zero and was not restarted (Docker
    left one so after a `docker restart` under load, its policy notwithstanding); ("stopped", []) when the server's
    container is gone, being removed, or stopped cleanly from elsewhere; ("late", the server's) `timeout` s after
    `since`. A server container that kept running (the single one: its uWSGI program restarted inside it) is not
    failed for Docker's "unhealthy": its checks failing while the app loads count with no start period there, and
    a restart of more than about three HEALTH_INTERVALs (a loaded machine's) was failed, and the container stopped.
    Its app answering errors, its program given up (the container exits) and the timeout still fail it."""
    while True:
        states = stack.containers()
        failing = [
            (state, why)
            for state in states
            if (
                why := failure(
                    state,
                    since,
                    baseline.get(state.id, 0),
                    began="the restart",
                    verdict=not (state.service == server and 0 < state.started_at < since),
                )
            )
        ]
        servers = [state for state in states if state.service == server]
        failing += [
            (state, f"exited with code {state.exit_code}, not restarted")
            for state in servers
            if state.status in ("exited", "dead") and state.exit_code != 0 and state.finished_at >= since
        ]
        if failing:
            return "failed", failing
        if not servers or any(state.status in ("removing", "exited", "dead") for state in servers):
            return "stopped", []
        if servers[0].status == "running" and passes(servers[0]):
            return "ready", []
        if time.time() > since + timeout:
            late = f"not passing its health check {timeout} s after the restart began (UP_TIMEOUT)"
            return "late", [(state, late) for state in servers]
        time.sleep(READY_POLL)


# --- versions ----------------------------------------------------------------------------------------------------


# (service, piece) whose label a service's image carries but that it does not run: the listener's image is the app
# image of its first build (listener_image), whose app version is not what the stack serves.
NOT_RUN = {(LISTENER, "app")}


def running_versions(stack: Compose) -> dict[str, dict[str, str]]:
    """piece -> {service: version} read from the labels of the stack's running containers."""
    found: dict[str, dict[str, str]] = {}
    for container in stack.containers():
        if container.status != "running":
            continue
        for label, value in container.labels.items():
            if label in LABELS and (container.service, LABELS[label]) not in NOT_RUN:
                found.setdefault(LABELS[label], {})[container.service] = value
    return found


def swarm_versions(stack: str) -> dict[str, dict[str, str]]:
    """piece -> {service (swarm): version} from the labels of the images a swarm stack's services run; empty when no
    such stack runs (or this engine is in no swarm)."""
    namespace = f"label=com.docker.stack.namespace={stack}"
    out = subprocess.run(
        ["docker", "service", "ls", "--filter", namespace, "--format", "{{.Name}} {{.Image}}"],
        capture_output=True,
        text=True,
    ).stdout
    found: dict[str, dict[str, str]] = {}
    for line in out.splitlines():
        name, image = line.split()
        labels = subprocess.run(
            ["docker", "image", "inspect", "-f", "{{json .Config.Labels}}", image.split("@")[0]],
            capture_output=True,
            text=True,
        ).stdout
        for label, value in (json.loads(labels or "null") or {}).items():
            if label in LABELS:
                found.setdefault(LABELS[label], {})[f"{name.removeprefix(stack + '_')} (swarm)"] = value
    return found


def versions() -> int:
    checked_out = piece_versions()
    # The compose stack that runs, else the swarm stack (make swarm-up) when that is the one running.
    running = running_versions(running_stack() or compose()) or swarm_versions(settings.get("SWARM_STACK"))
    print(f"{'piece':<14}{'checked out':<14}running")
    for piece, version in checked_out.items():
        live = ", ".join(f"{v} ({s})" for s, v in sorted(running.get(piece, {}).items())) or "not running"
        print(f"{piece:<14}{version:<14}{live}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.stack")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("build", help="check the app source, build and tag the images")
    sub.add_parser("up", help="build, start, wait until healthy, print the URL")
    sub.add_parser("versions", help="piece versions as checked out and as running")
    sub.add_parser("dev", help="up, serving the app's working copy with a reload on every change (tools/dev.py)")
    for target, (help_text, _) in RUNNING_TARGETS.items():
        sub.add_parser(target, help=f"{help_text}, in the topology that runs")
    args = parser.parse_args(argv)
    try:
        if args.command in RUNNING_TARGETS:
            return on_running(args.command)
        if args.command == "build":
            build(compose())
            return 0
        if args.command == "up":
            return up(int(settings.get("UP_TIMEOUT")))
        if args.command == "dev":
            from tools.dev import main as dev_main  # its errors are its own (this module runs as __main__)

            return dev_main()
        return versions()
    except StackError as exc:
        print(f"{args.command}: error: {exc}", file=sys.stderr)
        return 1
    except subprocess.CalledProcessError as exc:
        print(f"{args.command}: error: {' '.join(exc.cmd)} exited {exc.returncode}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
