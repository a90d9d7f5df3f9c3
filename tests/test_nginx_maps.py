"""The maps of nginx/conf.d/uwsgi-host.conf and client-scheme.conf, as the nginx image runs them, over plain HTTP,
HTTPS and HTTP/2: the Host and SERVER_PORT the app is told for each Host a client may send, and the scheme, its own
or a trusted proxy's. A throwaway nginx of the image answers the values as text (no app, no stack); the chain's own
answer is the echo app's, tests/test_any_app.py."""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.harness import free_port, poll
from tests.http_wire import exchange
from tools import hostdeps, settings
from tools.tls import self_signed

IMAGE = settings.get("NGINX_IMAGE")

# A server of each scheme that answers what the maps made of the request: HTTP_HOST, then SERVER_PORT.
CONFIG = """
pid /tmp/nginx.pid;
error_log stderr;
events {}
http {
    access_log off;
    client_body_temp_path /tmp/body;
    proxy_temp_path /tmp/proxy;
    fastcgi_temp_path /tmp/fastcgi;
    uwsgi_temp_path /tmp/uwsgi;
    scgi_temp_path /tmp/scgi;
    include /etc/nginx/conf.d/uwsgi-host.conf;
    include /etc/nginx/conf.d/client-scheme.conf;
    server {
        listen 8080;
        listen 8443 ssl;
        http2 on;
        ssl_certificate /maps/tls.crt;
        ssl_certificate_key /maps/tls.key;
        location / { return 200 "$uwsgi_http_host $uwsgi_server_port"; }
        location /scheme { return 200 "$client_scheme|$client_https|$uwsgi_server_port"; }
    }
}
"""


def answers(port: int) -> bool:
    try:
        return bool(exchange(port, b"GET / HTTP/1.0\r\n\r\n"))
    except OSError:
        return False


@dataclass
class Maps:
    http_port: int
    https_port: int
    cert: Path


def throwaway(directory: Path, trusted: str) -> Iterator[Maps]:
    """An nginx of the image with CONFIG, trusting the proxies `trusted` names (lines of trusted-proxies.conf, as the
    entrypoint renders TRUSTED_PROXIES into /tmp/nginx)."""
    cert = self_signed(directory)
    (directory / "nginx.conf").write_text(CONFIG)
    (directory / "rendered").mkdir()
    (directory / "rendered" / "trusted-proxies.conf").write_text(trusted)
    for path in (directory, directory / "rendered"):
        path.chmod(0o755)
    for path in (directory / "nginx.conf", directory / "rendered" / "trusted-proxies.conf"):
        path.chmod(0o644)
    http_port, https_port = free_port(), free_port()
    name = f"wct-maps-{secrets.token_hex(3)}"
    subprocess.run(
        ["docker", "run", "-d", "--name", name, "--read-only", "--tmpfs", "/tmp",  # noqa: S108
         "-p", f"127.0.0.1:{http_port}:8080", "-p", f"127.0.0.1:{https_port}:8443", "-v", f"{directory}:/maps:ro",
         "-v", f"{directory}/rendered:/tmp/nginx:ro",
         "--entrypoint", "nginx", IMAGE, "-c", "/maps/nginx.conf", "-g", "daemon off;"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    try:
        try:
            poll(lambda: answers(http_port), timeout=15, what="the throwaway nginx answers")
        except AssertionError:
            logs = subprocess.run(["docker", "logs", name], capture_output=True, text=True, timeout=60, check=False)
            raise AssertionError(f"the throwaway nginx does not answer: {logs.stderr[-1000:]}") from None
        yield Maps(http_port, https_port, cert)
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, timeout=60, check=False)


@pytest.fixture(scope="module")
def maps(tmp_path_factory) -> Iterator[Maps]:
    """As the stack runs by default: no proxy trusted (nginx is the edge)."""
    yield from throwaway(tmp_path_factory.mktemp("maps"), "")


@pytest.fixture(scope="module")
def behind_proxy(tmp_path_factory) -> Iterator[Maps]:
    """Behind a load balancer: every address a trusted proxy (TRUSTED_PROXIES=0.0.0.0/0,::/0), whatever the peer the
    published port shows nginx."""
    yield from throwaway(tmp_path_factory.mktemp("proxied"), "0.0.0.0/0 1;\n::/0 1;\n")


# (request line, Host, what the app is told: HTTP_HOST, SERVER_PORT); {port} is the port the client connected to.
PLAIN = [
    ("GET / HTTP/1.1", "127.0.0.1:{port}", "127.0.0.1:{port} {port}"),
    ("GET / HTTP/1.1", "localhost", "localhost 80"),
    ("GET / HTTP/1.1", "LocalHost:4321", "LocalHost:4321 4321"),
    ("GET / HTTP/1.1", "[::1]:4321", "[::1]:4321 4321"),
    ("GET / HTTP/1.1", "[::1]", "[::1] 80"),
    # An absolute-form target names the host; a Host that differs is not passed on, nor its port.
    ("GET http://localhost/ HTTP/1.1", "127.0.0.1:{port}", "localhost 80"),
    ("GET http://localhost:4321/ HTTP/1.1", "localhost:4321", "localhost:4321 4321"),
]


@pytest.mark.parametrize(("line", "host", "told"), PLAIN, ids=lambda value: value if "{" not in value else None)
def test_over_plain_http_the_app_is_told_the_port_the_client_addressed_else_80(maps: Maps, line, host, told):
    port = maps.http_port
    request = f"{line}\r\nHost: {host.format(port=port)}\r\nConnection: close\r\n\r\n".encode()
    (response,) = exchange(port, request)
    assert (response.status, response.body.decode()) == (200, told.format(port=port))


@pytest.mark.parametrize(
    ("host", "told"), [("localhost:{port}", "localhost:{port} {port}"), ("localhost", "localhost 443")]
)
def test_over_https_the_app_is_told_the_port_the_client_addressed_else_443(maps: Maps, host, told):
    port = maps.https_port
    url = f"https://127.0.0.1:{port}/"
    response = requests.get(url, headers={"Host": host.format(port=port)}, verify=str(maps.cert), timeout=10)
    assert (response.status_code, response.text) == (200, told.format(port=port))


def test_over_http2_the_app_is_told_the_port_in_the_authority(maps: Maps):
    assert hostdeps.main(["curl"]) == 0, "could not install Debian's curl"
    port = maps.https_port
    result = subprocess.run(
        ["curl", "-sS", "--http2", "--cacert", str(maps.cert), "-w", " %{http_version}",
         "--resolve", f"localhost:{port}:127.0.0.1", f"https://localhost:{port}/"],
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    assert result.stdout == f"localhost:{port} {port} 2"


# (X-Forwarded-Proto sent, or None; over HTTPS?) -> the scheme, HTTPS and default port the app is told, with no proxy
# trusted (a client's field is never believed) and behind a trusted one (its field is: a load balancer that ends TLS).
SCHEMES = [
    (None, False, "http||80", "http||80"),
    (None, True, "https|on|443", "https|on|443"),
    ("https", False, "http||80", "https|on|443"),
    ("HTTPS", False, "http||80", "https|on|443"),
    ("http", True, "https|on|443", "http||80"),
    ("https, http", False, "http||80", "http||80"),
    ("ftp", False, "http||80", "http||80"),
]


@pytest.mark.parametrize(("sent", "tls", "by_default", "behind"), SCHEMES)
def test_the_scheme_is_nginxs_own_unless_a_trusted_proxy_says_which_the_client_used(
    maps: Maps, behind_proxy: Maps, sent, tls, by_default, behind
):
    headers = {"Host": "localhost", **({"X-Forwarded-Proto": sent} if sent else {})}
    for served, told in ((maps, by_default), (behind_proxy, behind)):
        port = served.https_port if tls else served.http_port
        url = f"{'https' if tls else 'http'}://127.0.0.1:{port}/scheme"
        response = requests.get(url, headers=headers, verify=str(served.cert), timeout=10)
        assert (response.status_code, response.text) == (200, told), served
