"""The edge's security policy on every response, and the client's address as the app sees it: security headers on
the app's pages, static files and nginx's own errors; a client-sent X-Forwarded-For never becomes the client's
address (nginx is the edge and trusts no proxy unless TRUSTED_PROXIES says so), and behind a trusted proxy that ends
TLS the app is told its client's https.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import urlsplit

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


@pytest.mark.chain
def test_the_app_server_runs_with_debug_off(served_app: ServedApp):
    """DEBUG is never on in production (README): the default app's debug pages would show its settings and a traceback
    to any client, and another app is told it too (docs/bring-your-own-app.md). With it on, the default app's JSON
    404 checks failed on its HTML page, and nothing named DEBUG."""
    assert served_app.debug == "false", (
        f"DEBUG={served_app.debug} in the app container: debug pages show the settings and tracebacks to any client; "
        "make up DEBUG=false"
    )


def test_the_debug_check_fails_naming_the_setting_on_a_deployment_with_debug_on():
    served = ServedApp(
        wsgi_module="app:app",
        probes={},
        static_url="/static/",
        static_file=None,
        unknown_status=404,
        tls=False,
        csp="",
        log_format="json",
        admin_allow="",
        debug="true",
        uwsgi_tcp_port=None,
    )
    with pytest.raises(AssertionError, match=r"^DEBUG=true in the app container: .*; make up DEBUG=false\n"):
        test_the_app_server_runs_with_debug_off(served)


# The sources nginx answers itself, never the app.
NGINX_ANSWERS = {"a static file", "nginx's 404"}
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
    if source == "Django's admin" and served_app.admin_refused(response):
        status = 403  # ADMIN_ALLOW keeps it from this client: nginx's refusal carries the headers as well
    assert response.status_code == status or status is None, source
    # nginx's values on its own answers and the default app's, which sets none; another app's answer may carry its
    # own instead (nginx leaves them: conf.d/security-headers.conf), as pgAdmin 4's X-Frame-Options: SAMEORIGIN.
    nginxs = source in NGINX_ANSWERS or served_app.default
    for name, value in HEADERS.items():
        sent = response.raw.headers.getlist(name)
        if nginxs:
            assert sent == [value], f"{source}: {name}={sent!r}"
        else:
            assert len(sent) == 1 and sent[0], f"{source}: {name}={sent!r}"
    # The deployment's policy (CONTENT_SECURITY_POLICY; none when off).
    csp = response.headers.get("Content-Security-Policy", "")
    if nginxs:
        assert csp == served_app.csp, f"{source}: {csp!r}"
    elif served_app.csp:
        assert csp, f"{source}: no Content-Security-Policy"
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


@pytest.fixture(scope="module")
def behind_tls_proxy(tmp_path_factory) -> Iterator[Deployment]:
    """The default app behind a load balancer that ends TLS: every address a trusted proxy (TRUSTED_PROXIES), as the
    balancer's would be; it tells nginx which scheme its client used with X-Forwarded-Proto."""
    env = {"TRUSTED_PROXIES": "0.0.0.0/0,::/0"}
    stack = OwnStack(tmp_path_factory.mktemp("proxied"), prefix="wct-proxied", env=env)
    with stack.running() as deployment:
        yield deployment


def test_behind_a_trusted_proxy_that_ends_tls_the_app_is_told_https_and_its_forms_post(behind_tls_proxy: Deployment):
    """Django's CSRF check compares a POST's Origin with the scheme the app is told: told "http" behind a balancer
    that ends TLS, the app refused every form of its https pages with 403 (seen failing before).
    nginx/conf.d/client-scheme.conf; a client's own X-Forwarded-Proto is never believed (above)."""
    base = behind_tls_proxy.base_url
    origin = "https://" + urlsplit(base).netloc
    proxied = {"X-Forwarded-Proto": "https"}
    page = requests.get(f"{base}/admin/login/", headers=proxied, timeout=10)
    assert page.status_code == 200, page.text[:300]
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    assert token and "csrftoken" in page.cookies, page.headers
    response = requests.post(
        f"{base}/admin/login/",
        data={"csrfmiddlewaretoken": token[1], "username": "nobody", "password": "wrong"},
        headers={**proxied, "Origin": origin, "Cookie": f"csrftoken={page.cookies['csrftoken']}"},
        allow_redirects=False,
        timeout=10,
    )
    # The form again with its error: past the CSRF check, refused only for the wrong password.
    assert response.status_code == 200, response.text[:300]
    assert "Please enter the correct username and password" in response.text


def test_the_app_server_has_no_way_out_of_the_stack_by_default(deployment: Deployment):
    """APP_EGRESS=off (the default): the app server is on internal networks only, from which Docker lets no packet
    leave the host: no API, mail server or tracker of the app's is reached unless the operator says so."""
    joined = networks_of(deployment.app_container)
    assert joined and all(joined.values()), joined
