"""Before `make up` replaces the app server that runs: the app it would start must load, or nothing is replaced.

compose recreates a container by stopping the old one, then starting the new. A new version of the app that no
longer imports (a syntax error, a dependency missing from its requirements, a setting it refuses at import) left the
stack without an app server: requests waited in the listener's queue until they timed out, and `make up` failed,
naming the cause, after the outage had begun. So `make up` first asks compose what it would do (`--dry-run`); when it
would recreate the app server that runs, the app's own start check (check-app: WSGI_MODULE imports and names a WSGI
callable) runs in a one-off container of the new image, with the new settings and the stack's volumes, networks and
secrets (`compose run --rm --no-deps`), and a failure stops `make up` before anything changes.

What the check cannot see, an app that imports but then fails its health check, still fails `make up` after the
replacement, as before (docs/operations.md: Reload and full restart).
"""

from __future__ import annotations

import subprocess

from tools.compose import Compose, Container

# check-app's own line, which names the problem (docker/app/check_app.py).
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


def check(stack: Compose, server: str, timeout: float) -> str:
    """check-app in a one-off container of the service as `make up` would start it: "" when the app loads, else the
    line that says why (check-app's own, else the last one said)."""
    command = stack.command("run", "--rm", "--no-deps", "-T", "--entrypoint", "check-app", server)
    try:
        result = subprocess.run(command, env=stack.environment(), capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return f"check-app did not finish within {timeout:.0f} s (UP_TIMEOUT): the app's import hangs"
    if result.returncode == 0:
        return ""
    lines = [line.strip() for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    own = [line for line in lines if line.startswith(CHECK_APP_SAYS)]
    return (own or lines or [f"check-app exited {result.returncode}"])[-1]
