"""The chain, link by link: nginx -> uwsgi protocol over a unix socket -> uWSGI master -> workers -> the app.

These run against the tests' own stack, or against any deployment with `make verify`.
"""

from __future__ import annotations

import ipaddress
import json
import re
import time
import uuid

import pytest

from tests.harness import (
    ROOT,
    check_interval,
    docker,
    health_verdict,
    listening_tcp,
    pinned,
    poll,
)
from tests.served_app import environment
from tools import settings

pytestmark = pytest.mark.chain

SOCKET = "/run/uwsgi/uwsgi.sock"
METRICS_PORT = 9117
# nginx's internal server: health and stub_status, never published (nginx/sites/internal.conf).
NGINX_INTERNAL_PORT = 8081


def processes(host) -> list[tuple[str, int, int, str]]:
    """(user, pid, ppid, command line) of every process but the ps that lists them."""
    out = host.check_output("ps -eo user:32=,pid=,ppid=,args=")
    rows = []
    for line in out.splitlines():
        user, pid, ppid, args = line.split(None, 3)
        if not args.startswith("ps -eo"):
            rows.append((user, int(pid), int(ppid), args))
    return rows


# --- processes and users ----------------------------------------------------------------------------------------


def test_nginx_master_and_workers_run_as_an_unprivileged_user(nginx_host, deployment):
    nginx = [p for p in processes(nginx_host) if p[3].startswith("nginx:")]
    masters = [p for p in nginx if "master process" in p[3]]
    workers = [p for p in nginx if "worker process" in p[3]]
    assert len(masters) == 1
    assert workers, "no nginx worker processes"
    assert {p[0] for p in nginx} == {deployment.nginx_user}
    assert all(w[2] == masters[0][1] for w in workers), "every worker is a child of the master"


def test_uwsgi_runs_one_master_plus_exactly_the_configured_number_of_workers(app_host):
    configured = int(environment(app_host).get("UWSGI_WORKERS") or 2)
    rows = processes(app_host)
    # The app server's processes by their titles (uwsgi.ini: procname-prefix-spaced): in the single container the
    # socket listener is a uWSGI master too, titled "wsgi-chain-listener uWSGI master".
    masters = [p for p in rows if p[3] == "wsgi-chain uWSGI master"]
    workers = [p for p in rows if re.fullmatch(r"wsgi-chain uWSGI worker \d+", p[3])]
    assert len(masters) == 1, rows
    assert len(workers) == configured, rows
    assert all(w[2] == masters[0][1] for w in workers), "every worker is forked by the master"


def test_uwsgi_queues_up_to_the_configured_listen_backlog(app_host, deployment):
    # uWSGI's stats give queue sizes for TCP sockets only; for its unix socket, its startup log says.
    if not deployment.app_container:
        pytest.skip("needs a docker:// app host to read uWSGI's startup log")
    configured = int(environment(app_host).get("UWSGI_LISTEN") or 2048)
    logs = deployment.logs(deployment.app_container)
    assert f"your server socket listen backlog is limited to {configured} connections" in logs


def test_the_app_runs_as_a_non_root_user(app_host):
    uwsgi = [p for p in processes(app_host) if "uWSGI" in p[3]]
    assert uwsgi
    assert {p[0] for p in uwsgi} == {"app"}
    assert app_host.user("app").uid != 0


# --- the socket and what is exposed -----------------------------------------------------------------------------


def test_the_uwsgi_socket_is_a_unix_socket_only_the_app_and_nginx_can_open(
    app_host, nginx_host, deployment, served_app
):
    if port := served_app.uwsgi_tcp_port:
        pytest.skip(f"the app server listens on TCP :{port} (UWSGI_SOCKET: Swarm's replicas behind one nginx)")
    sock = app_host.file(SOCKET)
    assert sock.is_socket
    assert sock.user == "app"
    assert sock.mode == 0o660
    assert nginx_host.file(SOCKET).is_socket, "nginx sees the same socket through the shared volume"
    socket_gid = app_host.group(sock.group).gid
    nginx_gids = {nginx_host.group(name).gid for name in nginx_host.user(deployment.nginx_user).groups}
    assert socket_gid in nginx_gids, "nginx reaches the socket through its group"
    assert not sock.mode & 0o007, "nobody else can"


def test_uwsgi_listens_on_no_tcp_port_but_its_loopback_stats_server_and_the_internal_metrics_port(
    app_host, deployment, served_app
):
    listening = listening_tcp(app_host)
    assert ("127.0.0.1", 1717) in listening, listening
    # Docker's embedded DNS also listens, on 127.0.0.11: loopback too. In the single container, so does nginx. The
    # metrics exporter's port (9117) is on the container's private networks only: never published (next test).
    nginx = {*served_app.public_ports, NGINX_INTERNAL_PORT}
    allowed = {*nginx, METRICS_PORT} if deployment.single else {METRICS_PORT}
    # Swarm's replicas take nginx's requests over TCP on the stack's internal network (UWSGI_SOCKET).
    allowed |= {served_app.uwsgi_tcp_port} - {None}
    exposed = {(addr, port) for addr, port in listening if not ipaddress.ip_address(addr).is_loopback}
    assert {port for _, port in exposed} <= allowed, exposed


def test_only_nginx_publishes_a_port_and_only_its_public_ones(deployment, served_app):
    if not (deployment.app_container and deployment.nginx_container):
        pytest.skip("needs docker:// hosts to inspect port bindings")
    nginx_ports = json.loads(docker("inspect", "-f", "{{json .HostConfig.PortBindings}}", deployment.nginx_container))
    assert set(nginx_ports) == {f"{port}/tcp" for port in served_app.public_ports}, nginx_ports
    if not deployment.single:
        app_ports = json.loads(docker("inspect", "-f", "{{json .HostConfig.PortBindings}}", deployment.app_container))
        assert not app_ports, f"the app container publishes {app_ports}"


# --- configuration ----------------------------------------------------------------------------------------------


def test_nginx_t_accepts_the_configuration_inside_the_image(nginx_host):
    result = nginx_host.run("nginx -e stderr -t")
    assert result.rc == 0, result.stderr
    assert "test is successful" in result.stderr


@pytest.mark.parametrize(
    "side, path",
    [
        ("nginx", "/etc/nginx/nginx.conf"),
        ("nginx", "/etc/nginx/conf.d/limits.conf"),
        ("nginx", "/etc/nginx/conf.d/upstream.conf"),
        ("nginx", "/etc/nginx/sites/public.conf"),
        ("nginx", "/etc/nginx/snippets/uwsgi-pass.conf"),
        ("app", "/etc/uwsgi/uwsgi.ini"),
        # The app's code, whatever its files are (any app's: APP_SRC lands here).
        ("app", "/srv/app"),
    ],
)
def test_config_and_code_are_root_owned_and_not_writable_by_the_services(side, path, nginx_host, app_host):
    host = nginx_host if side == "nginx" else app_host
    f = host.file(path)
    assert f.exists, path
    assert (f.user, f.group) == ("root", "root")
    assert f.mode & 0o022 == 0, f"{path} is group- or world-writable: {oct(f.mode)}"
    # testinfra's docker backend runs commands as the container's user: nginx or app.
    assert host.check_output("id -u") != "0"
    # Neither it nor, for a directory, anything in it.
    writable = host.run(f"find {path} -writable -print -quit").stdout.strip()
    assert not writable, f"the service user can write {writable}"


def test_installed_versions_are_the_pinned_ones(nginx_host, app_host):
    pins = settings.defaults()
    nginx_version = nginx_host.run("nginx -v").stderr
    assert f"nginx/{pins['NGINX_SERIES']}." in nginx_version
    python_version = app_host.check_output("python3 --version")
    assert python_version.startswith(f"Python {pins['PYTHON_SERIES']}.")
    assert app_host.check_output("uwsgi --version") == pinned(ROOT / "uwsgi/requirements.txt", "uwsgi")


def test_the_default_apps_django_is_the_pinned_one(app_host, served_app):
    served_app.needs_default("Django's pinned version (app/requirements.txt)")
    django_pin = pinned(ROOT / "app/requirements.txt", "Django")
    assert app_host.check_output("python3 -c 'import django; print(django.__version__)'") == django_pin


# --- over HTTP on the published port ----------------------------------------------------------------------------


def test_the_home_page_comes_from_the_app_through_nginx(http, served_app):
    response = http.get("/", allow_redirects=False)
    assert response.status_code < 500
    assert response.headers["Server"] == "nginx", "nginx answers, without its version"
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["X-Request-ID"])
    if served_app.default:
        assert response.status_code == 200
        assert "microposts" in response.text
        assert (ROOT / "app/VERSION").read_text().strip() in response.text


def test_static_files_are_served_by_nginx_and_never_reach_uwsgi(http, deployment, nginx_host, served_app):
    if not deployment.app_container:
        pytest.skip("needs a docker:// app host to read uWSGI's request log")
    file = served_app.needs_static_files()
    served_app.needs_logged_miss()
    static_marker, app_marker = uuid.uuid4().hex, uuid.uuid4().hex
    sent = time.time()
    static = http.get(f"{served_app.static_path(file)}?m={static_marker}")
    assert static.status_code == 200
    assert static.content == nginx_host.file(file).content, "not the file byte for byte"
    if file.endswith(".css"):
        assert static.headers["Content-Type"].startswith("text/css")
    assert "Expires" in static.headers
    # Control: a request that does reach the app shows up in uWSGI's request log (a path the app lacks: the log keeps
    # 4xx answers) ...
    assert http.get(f"/no-such-page?m={app_marker}", allow_redirects=False).status_code == served_app.unknown_status
    poll(lambda: any(app_marker in line for line in deployment.uwsgi_log(sent)), what="uWSGI logs the app request")
    # ... and by then the static request, sent earlier, would have been logged too if uWSGI had seen it.
    assert not any(static_marker in line for line in deployment.uwsgi_log(sent))


def test_the_app_sees_the_clients_address_not_nginxs(http, deployment, served_app):
    if not (deployment.app_container and deployment.nginx_container):
        pytest.skip("needs docker:// hosts to read both logs")
    served_app.needs_logged_miss()
    marker = uuid.uuid4().hex
    sent = time.time()
    # A path the app lacks (a 404 from the default app), so that uWSGI logs it too (its request log keeps 4xx, 5xx
    # and slow requests: uwsgi/uwsgi.ini).
    assert http.get(f"/no-such-page?addr={marker}", allow_redirects=False).status_code == served_app.unknown_status

    def logged(container: str, source: str) -> dict | None:
        records = deployment.records(container, source, since=sent)
        return next((record for record in records if marker in record.get("path", "")), None)

    nginx_record = poll(lambda: logged(deployment.nginx_container, "nginx"), what="nginx logs the request")
    uwsgi_record = poll(lambda: logged(deployment.app_container, "uwsgi"), what="uWSGI logs the request")
    client = nginx_record["remote_addr"]
    assert re.fullmatch(r"[0-9a-f.:]+", client)
    assert uwsgi_record["remote_addr"] == client, f"uWSGI saw another address than nginx's client: {uwsgi_record}"


def test_the_admin_login_page_renders_and_its_stylesheets_load(http, served_app):
    served_app.needs_default("Django's admin (/admin/)")
    page = http.get("/admin/login/")
    served_app.needs_admin_reached(page)
    assert page.status_code == 200
    assert "csrfmiddlewaretoken" in page.text
    stylesheets = re.findall(r'<link rel="stylesheet" href="([^"]+)"', page.text)
    assert stylesheets, "the login page links no stylesheet"
    for href in stylesheets:
        css = http.get(href)
        assert css.status_code == 200, href
        assert css.headers["Content-Type"].startswith("text/css"), href
        assert len(css.content) > 100, href


def test_an_unknown_path_gets_the_apps_own_404(http, served_app):
    served_app.needs_default("The JSON 404")
    response = http.get(f"/no-such-page-{uuid.uuid4().hex}")
    assert response.status_code == 404
    assert response.json() == {"status": 404, "error": "not found", "app": "microposts"}


def test_a_missing_static_file_is_nginxs_404_not_the_apps(http, served_app):
    served_app.needs_static_files()
    response = http.get(f"{served_app.static_url}no-such-file.css")
    assert response.status_code == 404
    # nginx's own error body (nginx/snippets/errors.conf), not the app's.
    request_id = response.headers["X-Request-ID"]
    assert response.json() == {"status": 404, "error": "not found", "request_id": request_id}


@pytest.mark.parametrize("setting", ["HEALTHCHECK_PATH", "READINESS_PATH"])
def test_the_health_endpoints_answer_2xx(http, served_app, setting):
    path = served_app.needs_probe(setting)
    response = http.get(path, allow_redirects=False)
    # A 2xx is what the stack's probes take (README: Bring your own WSGI app); the default app's is a JSON 200.
    assert 200 <= response.status_code < 300, path
    if served_app.default:
        assert response.status_code == 200 and response.json()["status"] == "ok"


def test_each_health_check_runs_every_health_interval_of_the_stack(deployment):
    """HEALTH_INTERVAL reaches every container with a check (this suite's stacks: QUIET_HEALTH_INTERVAL)."""
    if deployment.compose is None:
        pytest.skip("a given deployment: its interval is its own")
    interval = settings.duration_seconds(deployment.compose.env["HEALTH_INTERVAL"])
    checked = {
        state.service: check_interval(state.name)
        for state in deployment.compose.containers()
        if state.check and not state.one_shot
    }
    assert checked and set(checked.values()) == {interval}, checked


def test_containers_report_healthy(deployment):
    for container in (deployment.app_container, deployment.nginx_container):
        if container is None:
            pytest.skip("needs docker:// hosts to read health")
        assert health_verdict(container) == "healthy"
