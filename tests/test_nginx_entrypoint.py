"""The nginx image's entrypoint, the one templating step: its steps render the server names, trusted proxies, access
limits, TLS switch, static URL and largest body from nginx/templates/ into /tmp, from the environment, and refuse
values that would make a wrong or broken config."""

from __future__ import annotations

import re
import subprocess

import pytest

from tests.served_app import CSP_ENTRY
from tools import settings
from tools.compose import ROOT

IMAGE = settings.get("NGINX_IMAGE")


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


def test_the_trusted_proxies_whose_x_forwarded_proto_is_believed_are_the_same_list_none_by_default():
    assert rendered_file("trusted-proxies.conf") == []
    trusted = rendered_file("trusted-proxies.conf", "TRUSTED_PROXIES=10.0.0.0/8,fd00::/8")
    assert trusted == ["10.0.0.0/8 1;", "fd00::/8 1;"]


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


def rendered_file(name: str, *env: str) -> list[str]:
    """The data lines of one file the entrypoint renders into /tmp/nginx (its header comment left out)."""
    result = rendered(*env, command=("sh", "-c", f"cat /tmp/nginx/{name}"))
    assert result.returncode == 0, result.stderr
    return [line for line in result.stdout.splitlines() if not line.startswith("#")]


def test_login_paths_default_to_the_default_apps_two_logins_as_prefixes():
    assert rendered_file("login-paths.conf") == ['"~^/admin/login/" 1;', '"~^/api-auth/login/" 1;']
    # A leading "=" is one exact path; a "." is literal in the prefix's regex.
    assert rendered_file("login-paths.conf", "LOGIN_PATHS=/auth/v1.0/,=/login") == [
        '"~^/auth/v1[.]0/" 1;',
        '"/login" 1;',
    ]


def test_the_admin_is_restricted_only_once_admin_allow_lists_a_network():
    assert rendered_file("admin-allow.conf") == []
    assert rendered_file("admin-paths.conf") == [], "ADMIN_ALLOW empty: every address, on every path"
    allowed = ("ADMIN_ALLOW=10.0.0.0/8,192.168.1.7,fd00::/8",)
    assert rendered_file("admin-allow.conf", *allowed) == ["10.0.0.0/8 1;", "192.168.1.7 1;", "fd00::/8 1;"]
    assert rendered_file("admin-paths.conf", *allowed) == ['"~^/admin/" 1;']
    assert rendered_file("admin-paths.conf", *allowed, "ADMIN_PATHS=/admin/,/staff/") == [
        '"~^/admin/" 1;',
        '"~^/staff/" 1;',
    ]


@pytest.mark.parametrize(
    "setting",
    [
        "LOGIN_PATHS=admin/login/",
        "LOGIN_PATHS=/admin/login/ /api-auth/login/",
        "LOGIN_PATHS=/admin/login/;limit_req off",
        "LOGIN_PATHS=/admin/*",
        "LOGIN_PATHS=/admin/../login/",
        "LOGIN_PATHS=,",
        "ADMIN_PATHS=/admin/%2e%2e/",
        "ADMIN_PATHS=~^/",
        "ADMIN_ALLOW=10.0.0.0/33",
        "ADMIN_ALLOW=10.0.0/8",
        "ADMIN_ALLOW=10.0.0.256",
        "ADMIN_ALLOW=10.0.0.0/8;deny",
        "ADMIN_ALLOW=all",
        "ADMIN_ALLOW=fd00:::1",
        "ADMIN_ALLOW=,",
    ],
)
def test_an_access_limit_setting_that_is_not_valid_stops_the_container_with_one_line(setting):
    result = rendered(setting)
    assert result.returncode == 64, result.stdout[-500:] + result.stderr
    name = setting.split("=", 1)[0]
    assert result.stderr.startswith(f"nginx-entrypoint: {name}"), result.stderr
    assert result.stderr.count("\n") == 1, f"one line: {result.stderr!r}"


def test_the_largest_body_is_10m_unless_max_body_size_says_otherwise():
    assert rendered_file("body-size.conf") == ["client_max_body_size 10m;"]
    assert rendered_file("body-size.conf", "MAX_BODY_SIZE=64m") == ["client_max_body_size 64m;"]
    assert rendered_file("body-size.conf", "MAX_BODY_SIZE=2G") == ["client_max_body_size 2G;"]
    assert "client_max_body_size 1500000;" in rendered("MAX_BODY_SIZE=1500000").stdout


@pytest.mark.parametrize("size", ["0", "0m", "010m", "ten", "10 m", "10mb", "m", "10m;", "-1", "1.5m"])
def test_a_max_body_size_that_is_not_a_bounded_size_stops_the_container_with_one_line(size):
    result = rendered(f"MAX_BODY_SIZE={size}")
    assert result.returncode == 64, result.stdout[-500:] + result.stderr
    assert result.stderr.startswith(f"nginx-entrypoint: MAX_BODY_SIZE='{size}'"), result.stderr
    assert result.stderr.count("\n") == 1, f"one line: {result.stderr!r}"


def test_static_url_renders_the_static_location_from_the_environment_and_bad_ones_are_refused():
    assert "location ^~ /static/ {" in rendered().stdout, "the image's default"
    assert "location ^~ /assets/v2/ {" in rendered("STATIC_URL=/assets/v2/").stdout
    for bad in ("assets/", "/assets", "/a b/", "/a|b/", "/a//b/"):
        result = rendered(f"STATIC_URL={bad}")
        assert result.returncode == 64 and "STATIC_URL" in result.stderr, (bad, result.stderr)


def test_no_script_writes_nginx_syntax_only_the_templates_hold_directives():
    """The entrypoint's steps validate, choose and substitute: no directive is spelled out in them."""
    steps = sorted((ROOT / "docker" / "nginx").glob("nginx-entrypoint*"))
    steps += sorted((ROOT / "docker" / "nginx" / "nginx-entrypoint.d").glob("*.sh"))
    directive = re.compile(
        r"\b(listen \d|server_name |set_real_ip_from |location [~^=]|return 30\d|include /|server \{)"
    )
    for step in steps:
        if step.is_file():
            code = [line for line in step.read_text().splitlines() if not line.lstrip().startswith("#")]
            assert not [line for line in code if directive.search(line)], step


# The Content-Security-Policy nginx adds where the app sends none (conf.d/security-headers.conf maps an empty value to
# no header): the default, an operator's own, or none.
DEFAULT_CSP = (
    "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'self'; form-action 'self'; "
    "frame-ancestors 'none'"
)


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        (None, DEFAULT_CSP),
        ("", DEFAULT_CSP),
        ("default-src 'self' 'unsafe-inline'; img-src *", "default-src 'self' 'unsafe-inline'; img-src *"),
        ("off", ""),
    ],
    ids=["unset", "empty", "an operator's own", "off"],
)
def test_content_security_policy_renders_the_default_an_operators_own_or_none(setting, value):
    env = () if setting is None else (f"CONTENT_SECURITY_POLICY={setting}",)
    rendered = rendered_file("csp.map", *env)
    assert rendered == [f'"" "{value}";']
    # As `make verify` reads the deployment's policy back (tests/served_app.py).
    assert CSP_ENTRY.search("\n".join(rendered)).group(1) == value


@pytest.mark.parametrize("policy", ['default-src "self"', "default-src $host", "a{b}", "a|b", "a&b", "a\tb", "café"])
def test_a_content_security_policy_that_would_break_nginxs_quoted_value_is_refused(policy):
    result = rendered(f"CONTENT_SECURITY_POLICY={policy}")
    assert result.returncode == 64, result.stdout[-500:]
    assert result.stderr.startswith("nginx-entrypoint: CONTENT_SECURITY_POLICY=") and "or off" in result.stderr
