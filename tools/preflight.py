"""Before `make up` replaces the app server that runs: the app it would start must load and pass its health probe, or
nothing is replaced.

compose recreates a container by stopping the old one, then starting the new. A new version of the app that no
longer imports (a syntax error, a dependency missing from its requirements, a setting it refuses at import), or that
imports but then fails its health probe (it answers 500, its workers die while loading it), left the stack without an
app server that served: requests waited in the listener's queue until they timed out, or got the new app's errors,
and `make up` failed, naming the cause, after the outage had begun. So `make up` first asks compose what it would do
(`--dry-run`); when it would recreate the app server that runs, it tries the new app first, each step in a one-off
container with the new image and settings and the stack's volumes, networks and secrets (`compose run --rm
--no-deps`), and the first that fails stops `make up` before anything changes:

1. check-app: WSGI_MODULE imports and names a WSGI callable.
2. the pre-start hook (the migrate service: the default app's migrations), which `compose up` runs next anyway: the
   new app is then probed against the schema it will serve.
3. try-app: the new app server, started on a socket of its own (never nginx's or the listener's), until the health
   check's own probes pass (docker/app/try_app.py).

nginx likewise: when `make up` would recreate the nginx that runs (the single container, in that topology), the new
image's entrypoint renders the new settings and runs `nginx -t` on them in a one-off container first. A setting nginx
refuses (MAX_BODY_SIZE=10q, a SERVER_NAMES entry it cannot hold) stopped the running nginx and started one that
exited: the site was down until the next `make up`.
"""

from __future__ import annotations

import subprocess
from collections.abc import Collection
from dataclasses import dataclass

from tools.compose import Compose, Container

# The lines that name the problem: check-app's and try-app's own (docker/app/check_app.py, try_app.py), the nginx
# entrypoint's refusal of a setting (docker/nginx/nginx-entrypoint.sh), nginx's own on a config it cannot load.
NAMES_THE_PROBLEM = ("wsgi-chain: ", "nginx-entrypoint: ", "nginx: [emerg]")


def replaced(stack: Compose, services: Collection[str]) -> dict[str, Container]:
    """The running containers of `services` that `compose up` would recreate, by service (one plan for all). When
    compose's plan cannot be read, each is taken as replaced: the checks then run, which costs a second or two."""
    running = [state for state in stack.containers() if state.service in services and state.status == "running"]
    if not running:
        return {}
    plan = subprocess.run(
        stack.command("--dry-run", "up", "-d", "--remove-orphans"),
        env=stack.environment(),
        capture_output=True,
        text=True,
    )
    said = (plan.stdout + plan.stderr).splitlines()
    found = {}
    for state in running:
        about = [line for line in said if f"Container {state.name} " in line + " "]
        if plan.returncode != 0 or not about or any("Recreate" in line for line in about):
            found[state.service] = state
    return found


@dataclass(frozen=True)
class Refusal:
    """Why the new app is refused: what the failed step found ("does not load") and the line that says why."""

    what: str
    line: str


def one_off(stack: Compose, timeout: float, *args: str) -> tuple[int | None, list[str]]:
    """`compose run --rm --no-deps -T ARGS`: its status (None: not done within `timeout` s) and its output's non-empty
    lines."""
    command = stack.command("run", "--rm", "--no-deps", "-T", *args)
    try:
        result = subprocess.run(command, env=stack.environment(), capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, []
    return result.returncode, [line.strip() for line in (result.stdout + result.stderr).splitlines() if line.strip()]


def said(lines: list[str], status: int | None) -> str:
    """The line that says why: the last of those that name the problem, else the last one said."""
    own = [line for line in lines if line.startswith(NAMES_THE_PROBLEM)]
    return (own or lines or [f"exited {status}"])[-1]


def check_nginx(stack: Compose, front: str, timeout: float) -> Refusal | None:
    """The nginx `make up` would start in `front` (nginx, or the single container): None when its entrypoint takes the
    settings and `nginx -t` the config it renders, with the service's own volumes and secrets (TLS's certificate)."""
    status, lines = one_off(stack, timeout, "--entrypoint", "nginx-entrypoint", front, "nginx", "-t", "-q")
    if status == 0:
        return None
    return Refusal(
        "fails its config check",
        f"nginx -t did not finish within {timeout:.0f} s" if status is None else said(lines, status),
    )


def check(stack: Compose, server: str, timeout: float) -> Refusal | None:
    """The new app, tried step by step as `make up` would start it: None when it loads and passes its health probe."""
    limit = f"{timeout:.0f} s (UP_TIMEOUT)"
    # (what a failure means, the one-off's arguments, its timeout, what a timeout means). Every topology has the migrate
    # one-shot (compose.yaml, compose.single.yaml); try-app's own deadline comes first, the margin covers the one-off
    # container's start and removal.
    steps = (
        (
            "does not load",
            # Through the image's entrypoint, as the app server's own check-app runs: the app's HOME and MEDIA_ROOT.
            ("--entrypoint", "app-entrypoint", server, "check-app"),
            timeout,
            f"check-app did not finish within {limit}: the app's import hangs",
        ),
        ("fails its pre-start hook (the migrate service)", ("migrate",), timeout, f"did not finish within {limit}"),
        (
            "does not pass its health probe",
            # --checked: check-app passed above, so its app server starts without importing the app once more.
            ("--entrypoint", "try-app", server, "--checked", f"{timeout:.0f}"),
            timeout + 30,
            f"try-app hung past {timeout:.0f} s",
        ),
    )
    for what, args, seconds, hung in steps:
        status, lines = one_off(stack, seconds, *args)
        if status != 0:
            return Refusal(what, hung if status is None else said(lines, status))
    return None
