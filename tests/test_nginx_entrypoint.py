"""The nginx image's entrypoint, the one templating step: it renders the server names, trusted proxies and TLS
switch into /tmp from the environment and refuses values that would make a wrong or broken config."""

from __future__ import annotations

import os
import subprocess

import pytest

IMAGE = os.environ.get("NGINX_IMAGE", "wsgi-chain/nginx:latest")


def rendered(*env: str, command: tuple[str, ...] = ("nginx", "-T")) -> subprocess.CompletedProcess:
    argv = ["docker", "run", "--rm", "--read-only", "--tmpfs", "/tmp", "--network", "none"]  # noqa: S108 - in the container
    for item in env:
        argv += ["-e", item]
    return subprocess.run([*argv, IMAGE, *command], capture_output=True, text=True, timeout=60)


def test_server_names_default_to_allowed_hosts_then_to_localhost():
    assert "server_name localhost 127.0.0.1;" in rendered().stdout
    assert "server_name app.example .example.org;" in rendered("ALLOWED_HOSTS=app.example,.example.org").stdout
    both = rendered("ALLOWED_HOSTS=app.example", "SERVER_NAMES=www.example").stdout
    assert "server_name www.example;" in both and "app.example" not in both


@pytest.mark.parametrize("names", ["*", "a.example;evil", "a b", ","])
def test_server_names_that_are_not_host_names_are_refused(names):
    result = rendered(f"SERVER_NAMES={names}")
    assert result.returncode == 64, result.stdout[-500:]
    assert "SERVER_NAMES" in result.stderr


def test_no_proxy_is_trusted_unless_configured():
    assert "set_real_ip_from" not in rendered().stdout
    out = rendered("TRUSTED_PROXIES=10.0.0.0/8,fd00::/8").stdout
    assert "set_real_ip_from 10.0.0.0/8;" in out and "set_real_ip_from fd00::/8;" in out


def test_a_trusted_proxy_that_is_not_an_address_is_refused():
    result = rendered("TRUSTED_PROXIES=10.0.0.0/8;deny all")
    assert result.returncode == 64 and "TRUSTED_PROXIES" in result.stderr


def test_tls_is_off_by_default_and_on_needs_the_mounted_certificate():
    plain = rendered().stdout
    assert "listen 8080;" in plain and "ssl" not in plain.replace("ssl_", "")
    missing = rendered("TLS=on")
    assert missing.returncode == 64 and "/etc/nginx/tls/tls.crt" in missing.stderr
    bogus = rendered("TLS=yes")
    assert bogus.returncode == 64 and "use on or off" in bogus.stderr
