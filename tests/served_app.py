"""What the chain checks know of the app a deployment serves, read from the deployment itself: the suite's default app
on its own stacks, or any other app when `make verify` checks an operator's deployment.

A check of the chain asks this for what it needs of the app (a path it lacks, a static file nginx serves for it, its
health routes) and runs on any app; a check of the default app's own pages, routes or settings skips on another app,
naming the one served. The stack assumes nothing of an app (README: Bring your own WSGI app), so neither may its checks.
"""

from __future__ import annotations

import re
import shlex
import uuid
from dataclasses import dataclass

import pytest

from tools.compose import ROOT

# The default app's entry point: the app image's own default (docker/app/Dockerfile's ARG), read, not spelled again.
DEFAULT_WSGI_MODULE = re.search(
    r"^ARG WSGI_MODULE=(\S+)$", (ROOT / "docker/app/Dockerfile").read_text(encoding="utf-8"), re.MULTILINE
).group(1)
# Where the nginx image keeps the app's static files (nginx/templates/static.conf: alias), and the marker the app
# image's build leaves there for an app with none for nginx (docker/app/collect_static.py).
STATIC_ROOT = "/srv/static"
NO_STATIC_FILES = ".no-static-files"
# UWSGI_SOCKET for TCP (host:port or :port), as uWSGI reads it; anything else is a unix socket's path.
TCP_SOCKET = re.compile(r"[^/]*:(\d+)")
# nginx's public ports in its container (compose.yaml, compose.tls.yaml): HTTP always, HTTPS with TLS=on.
HTTP_PORT, HTTPS_PORT = 8080, 8443
# The Content-Security-Policy nginx adds where the app sends none, as its container rendered it from
# CONTENT_SECURITY_POLICY (docker/nginx/nginx-entrypoint.d/70-csp.sh): the map file conf.d/security-headers.conf
# includes, read from there, and its one entry's value ("" for none: off).
CSP_MAP = re.search(
    r"include (\S+/csp\.map);", (ROOT / "nginx/conf.d/security-headers.conf").read_text(encoding="utf-8")
).group(1)
CSP_ENTRY = re.compile(r'^"" "(.*)";$', re.MULTILINE)


@dataclass(frozen=True)
class ServedApp:
    """The app behind a deployment, as its containers say: the app server's settings, the files nginx serves for it,
    how it answers a path it does not have, and whether nginx serves it over TLS too."""

    wsgi_module: str
    # The app's health routes (HEALTHCHECK_PATH, READINESS_PATH); "" for a route it names none for.
    probes: dict[str, str]
    static_url: str
    # A file nginx serves for the app, as a path in the nginx container; None when nginx serves it none.
    static_file: str | None
    # The status the app answers a path it does not have with.
    unknown_status: int
    # nginx serves HTTPS as well (TLS=on), and its HTTP port redirects there.
    tls: bool
    # The Content-Security-Policy nginx adds to an answer whose app sent none, its own pages' too; "" for none.
    csp: str
    # LOG_FORMAT: uWSGI's request log and the default app's records as JSON lines ("json") or plain ones ("text").
    log_format: str
    # ADMIN_ALLOW: the networks nginx lets reach the admin's paths (ADMIN_PATHS); "" for everyone.
    admin_allow: str
    # DEBUG in the app server's environment, as given ("false" unless set).
    debug: str
    # The TCP port the app server listens on for nginx (UWSGI_SOCKET=:3031: Swarm's replicas behind one nginx);
    # None for the unix socket nginx shares with it (compose, the single container, Kubernetes).
    uwsgi_tcp_port: int | None

    @property
    def public_ports(self) -> set[int]:
        """The ports nginx's public server listens on in its container, the only ones published."""
        return {HTTP_PORT, HTTPS_PORT} if self.tls else {HTTP_PORT}

    @property
    def default(self) -> bool:
        return self.wsgi_module == DEFAULT_WSGI_MODULE

    def admin_refused(self, answer) -> bool:
        """The answer to an admin path is nginx's 403 for an address outside ADMIN_ALLOW: the deployment keeps the
        admin from this check's client (`make test` checks that rule: tests/test_access_limits.py)."""
        return bool(self.admin_allow) and answer.status_code == 403 and answer.headers.get("Server") == "nginx"

    def needs_admin_reached(self, answer) -> None:
        """Skip a check of the admin's page that the deployment keeps from this check's client (admin_refused)."""
        if self.admin_refused(answer):
            pytest.skip(f"ADMIN_ALLOW={self.admin_allow} keeps the admin from this check's client (nginx's 403)")

    def needs_default(self, what: str) -> None:
        """Skip a check of the default app's own: another app has no such page, route or setting."""
        if not self.default:
            pytest.skip(f"{what} is the default app's; this deployment serves {self.wsgi_module}")

    def needs_probe(self, setting: str) -> str:
        """The app's health route a setting names (HEALTHCHECK_PATH, READINESS_PATH); skips when it names none."""
        if not (path := self.probes[setting]):
            pytest.skip(f"{self.wsgi_module} names no {setting}")
        return path

    def static_path(self, file: str) -> str:
        """The URL path nginx serves a file of its static root under."""
        return self.static_url + file.removeprefix(f"{STATIC_ROOT}/")

    def needs_static_files(self) -> str:
        """A file nginx serves for the app; skips for an app with none for nginx (its STATIC_URL reaches the app)."""
        if self.static_file is None:
            pytest.skip(f"nginx serves no static files for {self.wsgi_module} (neither Django's nor STATIC_DIR's)")
        return self.static_file

    def needs_logged_miss(self) -> None:
        """Skip a check that reads uWSGI's request log for a path the app lacks, when the app answers such a path
        below 400: the log keeps only 4xx, 5xx and slow requests (uwsgi/uwsgi.ini)."""
        if self.unknown_status < 400:
            pytest.skip(
                f"{self.wsgi_module} answers a path it lacks with {self.unknown_status}, which uWSGI's request log"
                " leaves out (it keeps 4xx, 5xx and slow requests)"
            )


def environment(host) -> dict[str, str]:
    """The container's environment, as a command run in it sees it (testinfra: docker exec)."""
    return dict(line.split("=", 1) for line in host.check_output("env").splitlines() if "=" in line)


def read_served_app(nginx_host, app_host, http) -> ServedApp:
    """Read from the deployment: its app server's environment, nginx's static root, and one request to a path no
    app has."""
    app_env, nginx_env = environment(app_host), environment(nginx_host)
    static_url = nginx_env.get("STATIC_URL") or "/static/"
    files = sorted(
        nginx_host.run(f"find {STATIC_ROOT} -type f ! -name {shlex.quote(NO_STATIC_FILES)} -size -64k").stdout.split()
    )
    # A stylesheet first, when there is one: its type is known (text/css).
    static_file = next((file for file in files if file.endswith(".css")), files[0] if files else None)
    missing = http.get(f"/no-such-page-{uuid.uuid4().hex}", allow_redirects=False)
    return ServedApp(
        wsgi_module=app_env.get("WSGI_MODULE", ""),
        probes={name: app_env.get(name, "") for name in ("HEALTHCHECK_PATH", "READINESS_PATH")},
        static_url=static_url,
        static_file=static_file,
        unknown_status=missing.status_code,
        tls=nginx_env.get("TLS") == "on",
        csp=CSP_ENTRY.search(nginx_host.file(CSP_MAP).content_string).group(1),
        log_format=app_env.get("LOG_FORMAT") or "json",
        admin_allow=nginx_env.get("ADMIN_ALLOW", ""),
        debug=app_env.get("DEBUG") or "false",
        uwsgi_tcp_port=int(tcp.group(1)) if (tcp := TCP_SOCKET.fullmatch(app_env.get("UWSGI_SOCKET", ""))) else None,
    )
