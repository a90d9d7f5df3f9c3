"""`make dev` (`python -m tools.stack dev`): the stack `make up` starts, serving the app's working copy.

The same images (built as `make up` builds them) and the same chain, with compose.dev.yaml (compose.single.dev.yaml
for TOPOLOGY=single) on top: APP_SRC mounted read-only at /srv/app, uWSGI reading uwsgi/dev.ini (a watcher that
chain-reloads the workers on a change), and the static files served by nginx from the working copy, through an
overlay written here per compose project (its mounts depend on the app). docs/development.md.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tools import settings
from tools import stack as stk
from tools.compose import ROOT, Compose
from tools.progress import phase

DEV_DIR = ROOT / ".build" / "dev"
STATIC_ROOT = "/srv/static"
# Where nginx finds a Django app's static directories of the working copy, one numbered directory each, in the order
# it looks in them (nginx/dev/static.conf) before the files collected at build.
DEV_STATIC_ROOT = "/srv/dev-static"
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
# Where a Django app keeps its static files by convention (<app>/static/<app>/...), searched this deep under APP_SRC.
DJANGO_STATIC_DEPTH = 3
SKIPPED_DIRS = {"__pycache__", ".git", ".venv", "venv", "node_modules", "staticfiles", "tests"}


@dataclass(frozen=True)
class StaticMount:
    """A directory of the working copy that nginx serves live, at a path under its static root."""

    source: Path
    target: str

    def relative(self, app: Path) -> str:
        return self.source.relative_to(app).as_posix()


def refuse_production_settings() -> None:
    """Settings that belong to a production stack, not to one serving a working copy."""
    if settings.get("TLS") != "off":
        raise stk.StackError(
            f"TLS={stk.env('TLS')}: make dev serves plain HTTP on the loopback; TLS is for `make up` (production). "
            "Run `make dev` without TLS"
        )
    bind = settings.get("HTTP_BIND")
    if bind not in LOOPBACK:
        raise stk.StackError(
            f"HTTP_BIND={bind}: make dev serves the working copy (and with DEBUG=true its tracebacks) on the loopback "
            "only; publish a stack to other hosts with `make up`"
        )


def is_django(app: Path) -> bool:
    """As the build decides (tools/stack.py app_settings): the default app, or an app naming its settings module."""
    default = app.resolve() == stk.DEFAULT_APP.resolve()
    return default or bool(stk.env("DJANGO_SETTINGS_MODULE"))


def django_static_dirs(app: Path) -> list[Path]:
    """<app>/static directories of a Django project's apps, shallow and outside caches and tests."""
    found = []
    for directory, dirs, _ in os.walk(app):
        depth = len(Path(directory).relative_to(app).parts)
        dirs[:] = sorted(d for d in dirs if d not in SKIPPED_DIRS and depth < DJANGO_STATIC_DEPTH)
        if Path(directory).name == "static" and depth > 0:
            found.append(Path(directory))
            dirs[:] = []
    return found


def static_mounts(app: Path) -> list[StaticMount]:
    """What nginx serves from the working copy.

    Another app: STATIC_DIR as the whole static root. A Django app: collectstatic is skipped, so the image's collected
    files stay (Django's admin, third-party apps'), and each static directory of the working copy (STATIC_DIR's when
    set, for STATICFILES_DIRS, then each app's <app>/static) is mounted whole under DEV_STATIC_ROOT: nginx looks for a
    path in each, in that order, and then among the collected files, as Django's finders merge them. Mounted one
    namespace at a time over the collected copy, a namespace two directories share (Wagtail's project template has
    css/ in two) was the first one's alone: the other's files were 404s.
    """
    static_dir = stk.env("STATIC_DIR")
    if not is_django(app):
        if not static_dir:
            return []
        source = app / static_dir
        if not source.is_dir():
            raise stk.StackError(f"STATIC_DIR={static_dir}: no such directory in APP_SRC={app}")
        return [StaticMount(source.resolve(), STATIC_ROOT)]
    roots = ([app / static_dir] if static_dir and (app / static_dir).is_dir() else []) + django_static_dirs(app)
    unique = list(dict.fromkeys(root.resolve() for root in roots))
    return [StaticMount(root, f"{DEV_STATIC_ROOT}/{number}") for number, root in enumerate(unique)]


def write_overlay(project: str, topology: str, mounts: list[StaticMount]) -> Path:
    """The static files' overlay of this project: the working copy's static directories mounted into nginx (its dev
    static location, nothing cached, is compose.dev.yaml's: nginx/dev/static.conf)."""
    volumes = [{"type": "bind", "source": str(m.source), "target": m.target, "read_only": True} for m in mounts]
    folder = DEV_DIR / project
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "compose.static.yaml"
    # The order nginx looks in them (nginx/dev/static.conf), for the entrypoint's STATIC_URL step to render.
    looked_in = " ".join(m.target for m in mounts if m.target.startswith(DEV_STATIC_ROOT + "/"))
    front = {"volumes": volumes, "environment": {"NGINX_DEV_STATIC": looked_in}}
    overlay = {"name": "wsgi-chain", "services": {settings.TOPOLOGIES[topology].front: front}}
    # JSON is YAML: compose reads it as any other file.
    path.write_text("# Written by `make dev` (tools/dev.py) for this project.\n" + json.dumps(overlay, indent=2))
    return path


def banner(url: str, app: Path, mounts: list[StaticMount], topology: str) -> None:
    server = settings.TOPOLOGIES[topology].server
    print(f"dev: DEVELOPMENT stack up at {url} (the working copy, served through nginx and uWSGI; not for production)")
    print(f"dev: live: {app} -> /srv/app in the {server} container, read-only; an edit chain-reloads the workers")
    if mounts:
        shown = ", ".join(f"{m.relative(app)} -> {m.target}" for m in mounts)
        print(f"dev: live: static files, served by nginx as they are: {shown}")
    if is_django(app):
        print("dev: as built: collected static files in none of those (Django admin's); rebuild with `make dev`")
    print("dev: needs `make dev` again: requirements.txt (until then the workers are not reloaded), new migrations")
    print("dev: the reloads and errors: make logs; leave: make down")


def dev(timeout: int) -> int:
    refuse_production_settings()
    topology = settings.get("TOPOLOGY")
    base = stk.compose()
    app = stk.app_source().resolve()
    stk.app_settings()  # the same checks as make up, before anything starts
    mounts = static_mounts(app)
    project = stk.project_name()
    overlay = write_overlay(project, topology, mounts)
    stk.bootstrap()
    secret_file = settings.path("SECRET_KEY_FILE")
    stk.ensure_secret_key(secret_file)
    base.env["SECRET_KEY_FILE"] = str(secret_file)
    stk.build_phase(base)
    stack = Compose(
        files=(*base.files, settings.TOPOLOGIES[topology].dev_overlay, str(overlay)),
        env={
            **base.env,
            "DEV_APP_SRC": str(app),
            "DEV_STATIC_DIRS": ",".join(m.relative(app) for m in mounts),
        },
    )
    stk.check_ports(stack)
    phase("start", f"starting the development stack {project}, waiting until healthy")
    started = time.monotonic()
    if not stk.start(stack, timeout):
        print("\ndev: the stack did not get healthy", file=sys.stderr)
        return 1
    stk.say_healthy(stack, started)
    banner(f"http://127.0.0.1:{settings.get('HTTP_PORT')}/", app, mounts, topology)
    return 0


def main() -> int:
    try:
        return dev(int(settings.get("UP_TIMEOUT")))
    except stk.StackError as exc:
        print(f"dev: error: {exc}", file=sys.stderr)
        return 1
    except subprocess.CalledProcessError as exc:
        print(f"dev: error: {' '.join(exc.cmd)} exited {exc.returncode}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
