"""`make lint`: every linter the project is held to, all of which must be clean.

- hadolint on every Dockerfile in the repo;
- gixy (gixy-ng) on nginx's config as the built image renders it (`nginx -T` after its entrypoint);
- `docker compose config -q` on every compose file (with the variables their tools set, as placeholders);
- ruff (lint and format) on the Python code;
- Django's `check --deploy` on the production settings, inside the built app image.

The tools are the virtualenv's (pinned in tests/requirements.txt); the images are APP_IMAGE and NGINX_IMAGE, as
`make build` leaves them. Each check prints its findings; the exit status is the number of failed checks.
"""

from __future__ import annotations

import secrets
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from tools import settings
from tools.compose import ROOT, Compose, write_secret_key
from tools.tls import self_signed

BIN = Path(sys.executable).parent
# Containers run as they are deployed: a read-only root with a tmpfs here (a path inside the container).
CONTAINER_TMPFS = ["--read-only", "--tmpfs", "/tmp"]  # noqa: S108 - a mount point in the container, not a temp file

# Compose files, each with the files it is used together with and the variables its tools set (placeholders here:
# only the file's validity is checked).
COMPOSE_SETS: list[tuple[tuple[str, ...], dict[str, str]]] = [
    *(((t.compose_file,), {}) for t in settings.TOPOLOGIES.values()),
    *(((t.compose_file, t.tls_overlay), {"TLS_CERTS_DIR": "/nonexistent"}) for t in settings.TOPOLOGIES.values()),
    *(((t.compose_file, t.dev_overlay), {"DEV_APP_SRC": "/nonexistent"}) for t in settings.TOPOLOGIES.values()),
    *(((t.compose_file, t.egress_overlay), {}) for t in settings.TOPOLOGIES.values()),
    (("compose.yaml", "tests/compose.host-postgres.yaml"), {"PG_SOCKET_DIR": "/nonexistent"}),
    (("compose.yaml", "tests/compose.writable-app.yaml"), {}),
    (
        ("compose.yaml", "bench/compose.bench.yaml"),
        {
            "BENCH_STATIC_DIR": "/nonexistent",
            "BENCH_LAZY_INI": "/nonexistent",
            "BENCH_PREFORK_INI": "/nonexistent",
            "BENCH_ALT_IMAGE": "placeholder",
            "BENCH_WRK_IMAGE": "placeholder",
            "BENCH_WORKERS": "1",
            "BENCH_GUNICORN_REC_WORKERS": "1",
            "UWSGI_WORKERS": "1",
        },
    ),
    (("compose.yaml", "compose.swarm.yaml"), {}),
    (("deploy/cluster/images.yaml",), {"CLUSTER_NODE_IMAGE": "placeholder", "CLUSTER_POSTGRES_IMAGE": "placeholder"}),
]


def run(argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, **kwargs)


def tracked(*patterns: str) -> list[str]:
    return run(["git", "ls-files", *patterns], check=True).stdout.split()


def hadolint() -> list[str]:
    problems = []
    for dockerfile in tracked("*Dockerfile", "*.Dockerfile"):
        result = run([str(BIN / "hadolint"), "--no-color", dockerfile])
        if result.returncode != 0:
            problems.append(result.stdout + result.stderr)
    return problems


def gixy() -> list[str]:
    """Both renderings: plain HTTP (the default) and TLS=on, with a throwaway certificate."""
    image = settings.get("NGINX_IMAGE")
    certs = ROOT / ".build" / "lint-tls"
    self_signed(certs)
    problems = []
    for extra in ([], ["-e", "TLS=on", "-v", f"{certs}:/etc/nginx/tls:ro"]):
        # Rendered as a container would: through the entrypoint (server names, TLS), read-only root, tmpfs /tmp.
        argv = ["docker", "run", "--rm", *CONTAINER_TMPFS, "--network", "none", *extra, image, "nginx", "-T"]
        dump = run(argv)
        if dump.returncode != 0:
            problems.append(f"nginx -T in {image} {' '.join(extra)} failed:\n{dump.stderr}")
            continue
        result = run([str(BIN / "gixy"), "-"], input=dump.stdout)
        if result.returncode != 0:
            problems.append(f"TLS {'on' if extra else 'off'}:\n{result.stdout}{result.stderr}")
    return problems


def compose() -> list[str]:
    problems = []
    # A secret file must exist for the secret to validate; a throwaway one, never the real key.
    secret = ROOT / ".build" / "lint-secret"
    secret.parent.mkdir(exist_ok=True)
    write_secret_key(secret)
    for files, env in COMPOSE_SETS:
        # As the tools run it: defaults.env under the environment.
        stack = Compose(files=files, env={"SECRET_KEY_FILE": str(secret), **env})
        result = run(stack.command("config", "-q"), env=stack.environment())
        if result.returncode != 0:
            problems.append(f"{' + '.join(files)}: {result.stderr}")
    return problems


def ruff() -> list[str]:
    problems = []
    for args in (["check", "--no-cache", "."], ["format", "--no-cache", "--check", "."]):
        result = run([str(BIN / "ruff"), *args])
        if result.returncode != 0:
            problems.append(result.stdout + result.stderr)
    return problems


def django_deploy_check() -> list[str]:
    image = settings.get("APP_IMAGE")
    if settings.get("APP_SRC") != "app":
        print("lint: django check --deploy: skipped (APP_SRC is not the default Django app)")
        return []
    # The production settings: DEBUG off, a real key, secure cookies (TLS on), the default hosts.
    env = {"SECRET_KEY": secrets.token_urlsafe(50), "DEBUG": "false", "SECURE_COOKIES": "true"}
    argv = ["docker", "run", "--rm", *CONTAINER_TMPFS, "--network", "none"]
    for name, value in env.items():
        argv += ["-e", f"{name}={value}"]
    result = run([*argv, image, "python", "manage.py", "check", "--deploy", "--fail-level", "WARNING"])
    return [] if result.returncode == 0 else [result.stdout + result.stderr]


CHECKS: dict[str, Callable[[], list[str]]] = {
    "hadolint": hadolint,
    "gixy": gixy,
    "compose config": compose,
    "ruff": ruff,
    "django check --deploy": django_deploy_check,
}


def main(argv: list[str] | None = None) -> int:
    selected = argv or list(CHECKS)
    failed = 0
    for name in selected:
        problems = CHECKS[name]()
        print(f"lint: {name}: {'clean' if not problems else 'FAILED'}", flush=True)
        for problem in problems:
            print(problem.rstrip(), flush=True)
        failed += bool(problems)
    return failed


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
