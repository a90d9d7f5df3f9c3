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
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass

from tools.compose import Compose, Container

# check-app's and try-app's own line, which names the problem (docker/app/check_app.py, try_app.py).
CHECK_APP_SAYS = "wsgi-chain: "


def replaced(stack: Compose, server: str) -> Container | None:
    """The running app server container that `compose up` would recreate; None when none runs, or it would be kept.
    When compose's plan cannot be read, it is taken as replaced: the check then runs, which costs a second or two."""
    running = [state for state in stack.containers() if state.service == server and state.status == "running"]
    if not running:
        return None
    plan = subprocess.run(
        stack.command("--dry-run", "up", "-d", "--remove-orphans"),
        env=stack.environment(),
        capture_output=True,
        text=True,
    )
    name = running[0].name
    about = [line for line in (plan.stdout + plan.stderr).splitlines() if f"Container {name} " in line + " "]
    if plan.returncode == 0 and about and not any("Recreate" in line for line in about):
        return None
    return running[0]


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
    """The line that says why: the tool's own (check-app's, try-app's), else the last one said."""
    own = [line for line in lines if line.startswith(CHECK_APP_SAYS)]
    return (own or lines or [f"exited {status}"])[-1]


def check(stack: Compose, server: str, timeout: float) -> Refusal | None:
    """The new app, tried step by step as `make up` would start it: None when it loads and passes its health probe."""
    limit = f"{timeout:.0f} s (UP_TIMEOUT)"
    # (what a failure means, the one-off's arguments, its timeout, what a timeout means). Every topology has the migrate
    # one-shot (compose.yaml, compose.single.yaml); try-app's own deadline comes first, the margin covers the one-off
    # container's start and removal.
    steps = (
        (
            "does not load",
            ("--entrypoint", "check-app", server),
            timeout,
            f"check-app did not finish within {limit}: the app's import hangs",
        ),
        ("fails its pre-start hook (the migrate service)", ("migrate",), timeout, f"did not finish within {limit}"),
        (
            "does not pass its health probe",
            ("--entrypoint", "try-app", server, f"{timeout:.0f}"),
            timeout + 30,
            f"try-app hung past {timeout:.0f} s",
        ),
    )
    for what, args, seconds, hung in steps:
        status, lines = one_off(stack, seconds, *args)
        if status != 0:
            return Refusal(what, hung if status is None else said(lines, status))
    return None
