"""Optional TLS at nginx (TLS=on, the compose TLS overlays), with a self-signed certificate the tests create: plain
HTTP redirects to HTTPS, only TLSv1.2 and TLSv1.3 complete a handshake, HSTS is sent over TLS and never over plain
HTTP, and the app marks its cookies Secure.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.harness import Deployment, OwnStack, free_port
from tools.stack import TLS_OVERLAYS
from tools.tls import self_signed


@dataclass
class TlsStack:
    deployment: Deployment
    https_port: int
    cert: Path

    @property
    def https_url(self) -> str:
        return f"https://127.0.0.1:{self.https_port}"


@pytest.fixture(scope="module", params=["split", "single"])
def tls(request, tmp_path_factory) -> Iterator[TlsStack]:
    topology = request.param
    workdir = tmp_path_factory.mktemp(f"tls-{topology}")
    cert = self_signed(workdir / "certs")
    https_port = free_port()
    stack = OwnStack(
        workdir,
        topology=topology,
        prefix="wct-tls",
        env={"HTTPS_PORT": str(https_port), "TLS_CERTS_DIR": str(cert.parent)},
    )
    stack.compose.files += (TLS_OVERLAYS[topology],)
    # The split images are `make test`'s; the single one is built (as `make build TOPOLOGY=single` would).
    with stack.running(build=topology == "single") as deployment:
        yield TlsStack(deployment, https_port, cert)


def client_context(cert: Path, version: ssl.TLSVersion) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(cert))
    context.minimum_version = context.maximum_version = version
    return context


def handshake(port: int, context: ssl.SSLContext) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as conn:
            return conn.version() or ""


def test_plain_http_redirects_to_https_keeping_path_and_query(tls: TlsStack):
    response = requests.get(f"{tls.deployment.base_url}/admin/login/?next=/admin/", allow_redirects=False, timeout=10)
    assert response.status_code == 308
    assert response.headers["Location"] == f"{tls.https_url}/admin/login/?next=/admin/"
    assert "Strict-Transport-Security" not in response.headers


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3], ids=["TLSv1.2", "TLSv1.3"])
def test_modern_protocols_complete_a_handshake(tls: TlsStack, version: ssl.TLSVersion):
    expected = {ssl.TLSVersion.TLSv1_2: "TLSv1.2", ssl.TLSVersion.TLSv1_3: "TLSv1.3"}[version]
    assert handshake(tls.https_port, client_context(tls.cert, version)) == expected


# Python deprecates offering these protocols, which is what this test does on purpose.
@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1:DeprecationWarning")
@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1], ids=["TLSv1.0", "TLSv1.1"])
def test_old_protocols_are_refused_by_nginx(tls: TlsStack, version: ssl.TLSVersion):
    context = client_context(tls.cert, version)
    # Let this client offer the old protocol at all (OpenSSL's default security level forbids it), so that the
    # refusal is the server's and not the client's own.
    context.set_ciphers("ALL:@SECLEVEL=0")
    with pytest.raises(ssl.SSLError) as refused:
        handshake(tls.https_port, context)
    assert "ALERT_PROTOCOL_VERSION" in str(refused.value) or "UNSUPPORTED_PROTOCOL" in str(refused.value), refused.value
    assert "NO_PROTOCOLS_AVAILABLE" not in str(refused.value)


def test_over_tls_the_app_static_files_and_errors_carry_hsts(tls: TlsStack):
    for path, status in (("/", 200), ("/static/admin/css/base.css", 200), ("/static/missing.css", 404)):
        response = requests.get(f"{tls.https_url}{path}", verify=str(tls.cert), timeout=10)
        assert response.status_code == status, path
        assert response.headers["Strict-Transport-Security"].startswith("max-age="), path
        assert response.headers["Content-Security-Policy"], path


def test_over_tls_an_unknown_host_is_refused_too(tls: TlsStack):
    response = requests.get(f"{tls.https_url}/", headers={"Host": "evil.example"}, verify=str(tls.cert), timeout=10)
    assert response.status_code == 421


def test_over_tls_the_app_knows_it_is_https_and_marks_cookies_secure(tls: TlsStack):
    response = requests.get(f"{tls.https_url}/admin/login/", verify=str(tls.cert), timeout=10)
    assert response.status_code == 200
    cookie = response.headers["Set-Cookie"]
    assert "csrftoken=" in cookie and "Secure" in cookie, cookie


def test_without_tls_no_hsts_is_sent(http: requests.Session):
    for path in ("/", "/static/admin/css/base.css", "/static/missing.css"):
        assert "Strict-Transport-Security" not in http.get(path).headers, path
