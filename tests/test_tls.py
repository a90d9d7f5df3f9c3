"""Optional TLS at nginx (TLS=on, the compose TLS overlays), with a self-signed certificate the tests create: plain
HTTP redirects to HTTPS, only TLSv1.2 and TLSv1.3 complete a handshake, HSTS is sent over TLS and never over plain
HTTP, the app marks its cookies Secure, and HTTP/2 is offered through ALPN beside HTTP/1.1.
"""

from __future__ import annotations

import socket
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.harness import Deployment, OwnStack, free_port, make, verify_passes
from tools import hostdeps, settings
from tools.tls import self_signed


@dataclass
class TlsStack:
    deployment: Deployment
    https_port: int
    cert: Path

    @property
    def https_url(self) -> str:
        return f"https://127.0.0.1:{self.https_port}"


@pytest.fixture(scope="module", params=list(settings.TOPOLOGIES))
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
    stack.compose.files += (settings.TOPOLOGIES[topology].tls_overlay,)
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


def curl(tls: TlsStack, path: str, *args: str) -> tuple[str, dict[str, str]]:
    """The status line and headers (lower-cased names) of a request by curl, the client that speaks h2 here."""
    assert hostdeps.main(["curl"]) == 0, "could not install Debian's curl"
    port = tls.https_port
    result = subprocess.run(
        ["curl", "-sS", "-o", "/dev/null", "-D", "-", "--cacert", str(tls.cert),
         "--resolve", f"localhost:{port}:127.0.0.1", *args, f"https://localhost:{port}{path}"],
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    status, *lines = result.stdout.strip().splitlines()
    return status.strip(), {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}


@pytest.mark.parametrize(("flag", "protocol"), [("--http2", "HTTP/2"), ("--http1.1", "HTTP/1.1")])
def test_over_tls_nginx_offers_http2_through_alpn_and_http11_keeps_working(tls: TlsStack, flag: str, protocol: str):
    status, headers = curl(tls, "/", flag)
    assert status.split()[:2] == [protocol, "200"], status
    assert headers["server"] == "nginx"


def test_over_http2_the_request_id_security_headers_and_limits_hold(tls: TlsStack, tmp_path: Path):
    status, headers = curl(tls, "/", "--http2", "-H", "X-Request-ID: 0123456789abcdef0123456789abcdef")
    assert status.startswith("HTTP/2 200"), status
    assert headers["x-request-id"] == "0123456789abcdef0123456789abcdef"
    assert headers["strict-transport-security"].startswith("max-age=")
    assert headers["content-security-policy"] and headers["x-content-type-options"] == "nosniff"
    # A body over client_max_body_size (10 MB) is refused over h2 as over HTTP/1.1, with the request ID and the
    # security headers. (Over h2 nginx answers it with its own HTML body, not the JSON one: the error page's `return`
    # discards the refused body again, which h2 fails once more.)
    body = tmp_path / "11MiB"
    body.write_bytes(b"x" * 11 * 1024 * 1024)
    status, headers = curl(tls, "/api/posts", "--http2", "--data-binary", f"@{body}")
    assert status.startswith("HTTP/2 413"), status
    assert headers["x-request-id"] and headers["content-security-policy"] and headers["strict-transport-security"]


# --- make verify checks a TLS deployment over HTTPS, trusting the CA it is told of --------------------------------


def verify_over_https(tls: TlsStack, **settings_: str) -> dict[str, str]:
    """make verify's settings for the TLS stack's HTTPS URL, trusting its self-signed certificate."""
    return {**tls.deployment.verify_target(), "BASE_URL": tls.https_url, "VERIFY_CA": str(tls.cert), **settings_}


@pytest.mark.parametrize("tls", ["split"], indirect=True)
def test_make_verify_of_a_tls_deployment_passes_given_the_ca_that_signed_its_certificate(tls: TlsStack):
    # Every chain check, over HTTPS (its requests, its raw sockets, HSTS expected, both public ports published).
    out, skips = verify_passes(verify_over_https(tls))
    assert out.startswith(f"verify: checking the deployment at {tls.https_url} "), out[:300]
    assert skips == ["a given deployment: its interval is its own"], skips


# Each: what make verify is given (beside the TLS stack's containers), and what its one line says.
VERIFY_REFUSALS = {
    "no CA for a self-signed certificate": (
        lambda tls: {"VERIFY_CA": ""},
        lambda tls: (
            "its certificate is not one this host trusts (self-signed certificate): name the CA that signed"
            " it with VERIFY_CA=<PEM file>"
        ),
    ),
    "a CA file that is not there": (
        lambda tls: {"VERIFY_CA": f"{tls.cert}.missing"},
        lambda tls: f"VERIFY_CA={tls.cert}.missing: no such file",
    ),
    "the plain HTTP port, which redirects": (
        lambda tls: {"BASE_URL": tls.deployment.base_url},
        lambda tls: (
            f"BASE_URL={tls.deployment.base_url} sends every request to HTTPS (as TLS=on does): check"
            f" {tls.https_url} instead"
        ),
    ),
    "https:// to the plain HTTP port": (
        lambda tls: {"BASE_URL": tls.deployment.base_url.replace("http://", "https://")},
        lambda tls: "no TLS handshake on 127.0.0.1:",
    ),
}


@pytest.mark.parametrize("tls", ["split"], indirect=True)
@pytest.mark.parametrize("case", VERIFY_REFUSALS)
def test_make_verify_of_a_tls_deployment_it_cannot_check_says_why_in_one_line(tls: TlsStack, case: str):
    given, says = VERIFY_REFUSALS[case]
    result = make("verify", verify_over_https(tls, **given(tls)), timeout=60)
    assert result.returncode != 0, result.stdout[-2000:] + result.stderr[-2000:]
    lines = (result.stdout + result.stderr).splitlines()
    assert lines[0].startswith("verify: ") and says(tls) in lines[0], lines
    assert len(lines) == 2 and lines[1].startswith("make: ***"), lines
