"""`python -m tools.stack up`: start the stack, wait until it is healthy and say where it is.

If it never gets healthy, print the failing services' logs and exit non-zero. Settings from the environment:
HTTP_BIND, HTTP_PORT, SECRET_KEY_FILE, UP_TIMEOUT (seconds, default 120), COMPOSE_PROJECT_NAME.
"""

from __future__ import annotations

import argparse
import os
import secrets
import subprocess
import sys
from pathlib import Path

from tools.compose import ROOT, Compose

DEFAULT_SECRET_FILE = ROOT / ".secrets" / "secret_key"


def ensure_secret_key(path: Path) -> None:
    """Generate the Django secret once per checkout; it never enters an image or the repo."""
    if path.exists():
        return
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.write_text(secrets.token_urlsafe(50) + "\n")
    # Readable by the container's unprivileged user through the bind mount; the folder itself is 0700.
    path.chmod(0o644)
    print(f"up: generated a secret key in {path}")


def report_failures(compose: Compose) -> None:
    failing = [c for c in compose.containers() if not c.ok]
    if not failing:
        print("up: compose failed, but every container looks fine; see the messages above", file=sys.stderr)
    for container in failing:
        status = container.state + (f"/{container.health}" if container.health else "")
        print(f"\nup: service {container.service} is {status}; its last log lines:", file=sys.stderr)
        print(compose.logs(container.service, tail=40).rstrip() or "(no logs)", file=sys.stderr)


def up(timeout: int) -> int:
    secret_file = Path(os.environ.get("SECRET_KEY_FILE") or DEFAULT_SECRET_FILE)
    ensure_secret_key(secret_file)
    compose = Compose(env={"SECRET_KEY_FILE": str(secret_file)})
    result = compose.run("up", "-d", "--build", "--wait", "--wait-timeout", str(timeout), check=False)
    if result.returncode != 0:
        report_failures(compose)
        print("\nup: the stack did not get healthy", file=sys.stderr)
        return 1
    bind = os.environ.get("HTTP_BIND") or "127.0.0.1"
    host = "127.0.0.1" if bind == "0.0.0.0" else bind  # noqa: S104 - compares, binds nothing
    print(f"up: wsgi-chain is up at http://{host}:{os.environ.get('HTTP_PORT') or '8080'}/")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.stack")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("up", help="start, wait until healthy, print the URL")
    args = parser.parse_args(argv)
    if args.command == "up":
        try:
            return up(int(os.environ.get("UP_TIMEOUT") or 120))
        except subprocess.SubprocessError as exc:
            print(f"up: {exc}", file=sys.stderr)
            return 1
    return 2


if __name__ == "__main__":
    sys.exit(main())
