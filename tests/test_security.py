"""The edge's security policy on every response, and the client's address as the app sees it: security headers on
the app's pages, static files and nginx's own errors; a client-sent X-Forwarded-For never becomes the client's
address (nginx is the edge and trusts no proxy unless TRUSTED_PROXIES says so).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from tests.harness import Deployment, OwnStack, networks_of
from tests.test_examples import EXAMPLES

HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


@pytest.mark.chain
@pytest.mark.parametrize(
    ("path", "status", "source"),
    [
        ("/", 200, "the app's page"),
        ("/admin/login/", 200, "Django's admin"),
        ("/healthz", 200, "the app's JSON"),
        ("/no-such-page", 404, "the app's 404"),
        ("/static/admin/css/base.css", 200, "a static file"),
        ("/static/no-such-file.css", 404, "nginx's 404"),
    ],
)
def test_every_response_carries_the_security_headers_once(http: requests.Session, path, status, source):
    response = http.get(path)
    assert response.status_code == status, source
    for name, value in HEADERS.items():
        # requests joins repeated headers with ", ": exactly one value means the header was sent once.
        assert response.headers.get(name) == value, f"{source}: {name}={response.headers.get(name)!r}"
    csp = response.headers.get("Content-Security-Policy", "")
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp, f"{source}: {csp!r}"
    assert "Strict-Transport-Security" not in response.headers, f"{source}: HSTS over plain HTTP"


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
