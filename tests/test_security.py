"""The edge's security policy on every response, and the client's address as the app sees it: security headers on
the app's pages, static files and nginx's own errors; a client-sent X-Forwarded-For never becomes the client's
address (nginx is the edge and trusts no proxy unless TRUSTED_PROXIES says so).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from tests.harness import Deployment, OwnStack, networks_of
from tests.served_app import ServedApp
from tests.test_examples import EXAMPLES

HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


def answer(source: str, app: ServedApp) -> tuple[str, int | None]:
    """The path asked for and the status expected (None: the app's to choose) for one source of answers, from the
    app the deployment serves; skips a source the app has none of."""
    match source:
        case "the app's page":
            return "/", 200 if app.default else None
        case "Django's admin":
            app.needs_default("Django's admin")
            return "/admin/login/", 200
        case "the app's health route":
            return app.needs_probe("HEALTHCHECK_PATH"), 200 if app.default else None
        case "the app's answer to a path it lacks":
            return "/no-such-page", app.unknown_status
        case "a static file":
            return app.static_path(app.needs_static_files()), 200
        case "nginx's 404":
            app.needs_static_files()
            return f"{app.static_url}no-such-file.css", 404
    raise AssertionError(source)


SOURCES = [
    "the app's page",
    "Django's admin",
    "the app's health route",
    "the app's answer to a path it lacks",
    "a static file",
    "nginx's 404",
]


@pytest.mark.chain
@pytest.mark.parametrize("source", SOURCES)
def test_every_response_carries_the_security_headers_once(http: requests.Session, served_app: ServedApp, source):
    path, status = answer(source, served_app)
    response = http.get(path, allow_redirects=False)
    assert response.status_code == status or status is None, source
    for name, value in HEADERS.items():
        # requests joins repeated headers with ", ": exactly one value means the header was sent once.
        assert response.headers.get(name) == value, f"{source}: {name}={response.headers.get(name)!r}"
    csp = response.headers.get("Content-Security-Policy", "")
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp, f"{source}: {csp!r}"
    # HSTS over HTTPS only (TLS=on): over plain HTTP a man in the middle could send it, so browsers ignore it there.
    hsts = "Strict-Transport-Security" in response.headers
    assert hsts == response.url.startswith("https://"), f"{source}: HSTS {'sent' if hsts else 'missing'}"


@pytest.fixture(scope="module")
def plain(tmp_path_factory) -> Iterator[Deployment]:
    """The plain WSGI example, which echoes the client address it was told (/client)."""
    env = {
        **EXAMPLES["plain"]["env"],
        "APP_IMAGE": "wsgi-chain-test/security-plain-app:dev",
        "NGINX_IMAGE": "wsgi-chain-test/security-plain-nginx:dev",
        "SINGLE_IMAGE": "wsgi-chain-test/security-plain-single:dev",
    }
    stack = OwnStack(tmp_path_factory.mktemp("plain"), prefix="wct-sec", env=env)
    with stack.running() as deployment:
        yield deployment


def test_a_spoofed_x_forwarded_for_never_becomes_the_client_address(plain: Deployment):
    honest = requests.get(f"{plain.base_url}/client", timeout=10).json()
    spoofed = requests.get(
        f"{plain.base_url}/client",
        headers={"X-Forwarded-For": "203.0.113.7", "X-Real-IP": "203.0.113.8", "X-Forwarded-Proto": "https"},
        timeout=10,
    ).json()
    # The address nginx saw, whatever the client claims; the forwarding headers say the same, and the scheme is
    # the one nginx was reached with.
    assert spoofed["REMOTE_ADDR"] == honest["REMOTE_ADDR"]
    assert "203.0.113" not in str(spoofed)
    assert spoofed["HTTP_X_FORWARDED_FOR"] == spoofed["HTTP_X_REAL_IP"] == spoofed["REMOTE_ADDR"]
    assert spoofed["HTTP_X_FORWARDED_PROTO"] == "http"


def test_the_app_server_has_no_way_out_of_the_stack_by_default(deployment: Deployment):
    """APP_EGRESS=off (the default): the app server is on internal networks only, from which Docker lets no packet
    leave the host: no API, mail server or tracker of the app's is reached unless the operator says so."""
    joined = networks_of(deployment.app_container)
    assert joined and all(joined.values()), joined
