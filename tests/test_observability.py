"""Observability: one request ID across nginx, uWSGI and the app; JSON logs in one schema; Prometheus metrics on an
internal port only; health probes kept out of the request log; `make top`.

The request-ID and log checks are chain checks (both topologies, or a given deployment with docker:// hosts); the
metrics are read from inside the stack (docker exec in the app container), never through a published port.
"""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import time
import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.harness import (
    Deployment,
    OwnStack,
    docker,
    free_port,
    poll,
    send_raw,
    verify_passes,
    wait_healthy,
)
from tests.load import Load
from tests.log_lines import record_of
from tools import settings

METRICS_PORT = 9117
# Seconds a scrape may take: Prometheus's default scrape_timeout.
SCRAPE_TIMEOUT = 10
INDEX = {"view": "index", "method": "GET", "status": "200"}
GENERATED_ID = re.compile(r"[0-9a-f]{32}")

# docs/observability.md's log schema: fields every record of a source has.
COMMON = {"time", "source", "level", "request_id"}
SCHEMA = {
    "nginx": COMMON | {"remote_addr", "method", "path", "status", "bytes", "duration_ms", "upstream_ms", "user_agent"},
    "uwsgi": COMMON | {"remote_addr", "method", "path", "status", "bytes", "duration_ms", "worker", "pid"},
    "app": COMMON | {"logger", "message", "pid"},
}


def needs_docker_hosts(deployment: Deployment) -> None:
    if not (deployment.app_container and deployment.nginx_container):
        pytest.skip("needs docker:// hosts to read the containers' logs")


def chain_record(record: dict) -> bool:
    """A record of nginx's or uWSGI's, in the documented schema's layout, among another app's own lines."""
    return record.get("source") in ("nginx", "uwsgi")


def all_logs(deployment: Deployment, since: float | None = None) -> str:
    containers = {deployment.nginx_container, deployment.app_container}
    return "\n".join(deployment.logs(container, since) for container in containers if container)


def raw_get(deployment: Deployment, target: str, headers: dict[str, str] | None = None) -> tuple[str, dict[str, str]]:
    """A GET with the request target sent byte for byte (requests would percent-encode quotes and backslashes)."""
    url = urlsplit(deployment.base_url)
    port = url.port or (443 if deployment.https else 80)
    lines = [f"GET {target} HTTP/1.1", f"Host: {url.hostname}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    answer = send_raw(port, request, host=url.hostname, tls=deployment.tls_context())
    head = answer.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    fields = dict(line.split(": ", 1) for line in head[1:] if ": " in line)
    return head[0], fields


# --- the request ID ---------------------------------------------------------------------------------------------

# Request IDs nginx must not keep (conf.d/request-id.conf), each made from a marker of its request.
BAD_IDS = {
    "a character outside the allowed set": lambda m: f"{m}!",
    "longer than 128 characters": lambda m: m * 5,
    "a space": lambda m: f"{m[:3]} {m}",
    "a quote that would forge log fields": lambda m: m + '"},"status":200',
    "shorter than 8 characters": lambda m: f"Q{m[:6]}",
}


@dataclass
class Miss:
    """A request for a path the app lacks, sent for the log checks below: when (time.time()), what it carried (a
    marker in its path, a request ID) and what came back."""

    at: float
    marker: str
    request_id: str = ""
    response: requests.Response | None = None
    raw: tuple[str, dict[str, str]] = ("", {})


@pytest.fixture(scope="module")
def misses(http, deployment, served_app) -> dict[str, Miss]:
    """The log checks' requests, sent one after another before the first check reads a log. nginx writes its access
    log a buffer at a time, at least once a second, so each check sent alone waited up to a second for its line
    (8 of `make verify`'s 18 s); so, the first waits and the others find theirs. A path the app lacks: nginx logs it,
    uWSGI logs it (its request log keeps 4xx, 5xx and slow requests: uwsgi/uwsgi.ini), and the default app logs a
    warning (Django's "Not Found")."""
    needs_docker_hosts(deployment)
    served_app.needs_logged_miss()
    sent: dict[str, Miss] = {}

    def get(name: str, marker: str, path: str, request_id: str = "") -> None:
        headers = {"X-Request-ID": request_id} if request_id else {}
        miss = Miss(time.time(), marker, request_id)
        miss.response = http.get(path, headers=headers, allow_redirects=False)
        sent[name] = miss

    marker = uuid.uuid4().hex
    get("chosen", marker, f"/no-such-page-{marker}", f"ops-{uuid.uuid4()}")
    marker = uuid.uuid4().hex
    get("generated", marker, f"/no-such-page-{marker}")
    for name, bad in BAD_IDS.items():
        marker = uuid.uuid4().hex
        get(name, marker, f"/no-such-page?m={marker}", bad(marker))
    # A path with a quote and a backslash (sent raw), and an app warning: what could break the JSON of a log line.
    marker = uuid.uuid4().hex
    sent["schema"] = Miss(time.time(), marker)
    sent["schema"].raw = raw_get(deployment, f'/no-such-page-{marker}?q="\\x', {"User-Agent": 'ua"\\'})
    return sent


@pytest.mark.chain
def test_a_chosen_request_id_comes_back_in_the_response_and_shows_in_nginx_uwsgi_and_app_logs(
    deployment, served_app, misses
):
    miss = misses["chosen"]
    response, request_id = miss.response, miss.request_id
    status = served_app.unknown_status
    assert response.status_code == status
    assert response.headers["X-Request-ID"] == request_id

    def logged(container: str, source: str) -> list[dict]:
        return deployment.with_request_id(container, source, request_id, since=miss.at)

    nginx = poll(lambda: logged(deployment.nginx_container, "nginx"), what="nginx log")
    uwsgi = poll(lambda: logged(deployment.app_container, "uwsgi"), what="uWSGI log")
    assert [r["status"] for r in nginx] == [status]
    assert [r["status"] for r in uwsgi] == [status]
    if served_app.default:
        app = poll(lambda: logged(deployment.app_container, "app"), what="app log")
        # A text line carries no status (LOG_FORMAT=text: the JSON formatter's field alone).
        fields = ("level", "logger", "status") if served_app.log_format == "json" else ("level", "logger")
        assert [tuple(r[field] for field in fields) for r in app] == [("warning", "django.request", 404)[: len(fields)]]
        assert app[0]["message"].startswith("Not Found: /no-such-page-")


@pytest.mark.chain
def test_without_a_request_id_nginx_generates_one_that_every_log_shares(deployment, served_app, misses):
    miss = misses["generated"]
    response = miss.response
    request_id = response.headers["X-Request-ID"]
    assert GENERATED_ID.fullmatch(request_id)
    assert response.status_code == served_app.unknown_status
    logs = [(deployment.nginx_container, "nginx"), (deployment.app_container, "uwsgi")]
    if served_app.default:
        assert response.json() == {"status": 404, "error": "not found", "app": "microposts"}
        # The default app's own log record (another app's log lines are its own, in its own format).
        logs.append((deployment.app_container, "app"))
    for container, source in logs:
        records = poll(
            lambda c=container, s=source: deployment.with_request_id(c, s, request_id, since=miss.at),
            what=f"{source} log",
        )
        assert all(miss.marker in record.get("path", record.get("message", "")) for record in records), records


@pytest.mark.chain
@pytest.mark.parametrize("bad", BAD_IDS)
def test_a_malformed_or_oversized_request_id_is_replaced_and_appears_in_no_log(deployment, served_app, misses, bad):
    miss = misses[bad]
    response, incoming = miss.response, miss.request_id
    assert response.status_code == served_app.unknown_status
    request_id = response.headers["X-Request-ID"]
    assert request_id != incoming
    assert GENERATED_ID.fullmatch(request_id)
    poll(
        lambda: deployment.with_request_id(deployment.nginx_container, "nginx", request_id, since=miss.at),
        what="nginx logs the new ID",
    )
    poll(
        lambda: deployment.with_request_id(deployment.app_container, "uwsgi", request_id, since=miss.at),
        what="uWSGI logs the new ID",
    )
    assert incoming not in all_logs(deployment, since=miss.at)


# --- JSON logs in one schema ------------------------------------------------------------------------------------


@pytest.mark.chain
def test_every_log_line_of_nginx_uwsgi_and_the_app_is_json_with_the_documented_schema(deployment, served_app, misses):
    miss = misses["schema"]
    status, headers = miss.raw
    assert f" {served_app.unknown_status} " in status
    request_id = headers["X-Request-ID"]

    def logged(container: str, source: str) -> list[dict]:
        return deployment.with_request_id(container, source, request_id, since=miss.at)

    # The default app's records are in the schema too; another app's log lines are its own, in its own format.
    sources = {"nginx", "uwsgi", "app"} if served_app.default else {"nginx", "uwsgi"}
    if served_app.default:
        poll(lambda: logged(deployment.app_container, "app"), what="the app's warning")
    poll(lambda: logged(deployment.app_container, "uwsgi"), what="uWSGI's request log")
    # nginx writes its access log a buffer at a time (at least once a second).
    poll(lambda: logged(deployment.nginx_container, "nginx"), what="nginx's access log")

    nginx_out = subprocess.run(["docker", "logs", deployment.nginx_container], capture_output=True, text=True).stdout
    if not deployment.single:
        # nginx's stdout is its access log and nothing else: every line is a JSON record.
        lines = [line for line in nginx_out.splitlines() if line]
        assert lines
        assert [json.loads(line)["source"] for line in lines] == ["nginx"] * len(lines)
    # In the app container, uWSGI's own startup lines are text; every line in a record's layout is one (JSON, or with
    # LOG_FORMAT=text uWSGI's and the app's plain lines, read back: tests/log_lines.py). Another app's own lines are
    # its own (and may be JSON of its own shape): only the chain's are read.
    records = [
        record
        for line in all_logs(deployment).splitlines()
        if (record := record_of(line)) is not None and (served_app.default or chain_record(record))
    ]
    by_source: dict[str, list[dict]] = {}
    for record in records:
        by_source.setdefault(record["source"], []).append(record)
    assert set(by_source) == sources
    for source, found in by_source.items():
        # A text line of the app's has no pid (the JSON formatter's field alone).
        expected = SCHEMA[source] - ({"pid"} if source == "app" and served_app.log_format == "text" else set())
        for record in found:
            assert expected <= set(record), (source, expected - set(record), record)
            assert isinstance(record.get("status", 0), int) and isinstance(record.get("duration_ms", 0), int)

    ours = [r for r in records if r["request_id"] == request_id]
    nginx = next(r for r in ours if r["source"] == "nginx")
    assert nginx["path"] == f'/no-such-page-{miss.marker}?q="\\x'
    assert nginx["user_agent"] == 'ua"\\'
    assert isinstance(nginx["upstream_ms"], int)
    uwsgi = next(r for r in ours if r["source"] == "uwsgi")
    assert uwsgi["path"] == f"/no-such-page-{miss.marker}?q=...", "uWSGI's path is cut before the quote"
    assert isinstance(uwsgi["worker"], int) and uwsgi["worker"] >= 1


# TEST-NET-1 (RFC 5737): no client of the tests is on it.
TEXT_LOGS_ADMIN_ALLOW = "192.0.2.0/24"


@pytest.fixture(scope="module")
def text_logs(tmp_path_factory) -> Deployment:
    """A stack of its own with LOG_FORMAT=text (and LOG_LEVEL=debug), whose uWSGI logs every request
    (UWSGI_DISABLE_LOGGING=false; by default it logs only 4xx, 5xx and slow requests), and the admin kept to a network
    no client of the tests is on (ADMIN_ALLOW), as an operator's deployment may be."""
    env = {"LOG_FORMAT": "text", "UWSGI_DISABLE_LOGGING": "false", "ADMIN_ALLOW": TEXT_LOGS_ADMIN_ALLOW}
    stack = OwnStack(tmp_path_factory.mktemp("text-logs"), prefix="wct-text", env=env)
    stack.compose.env["LOG_LEVEL"] = "debug"
    with stack.running(build=False) as running:
        yield running


def test_log_format_text_gives_plain_lines_that_still_carry_the_request_id(text_logs):
    request_id = f"text-{uuid.uuid4().hex}"
    response = requests.get(f"{text_logs.base_url}/no-such-page", headers={"X-Request-ID": request_id}, timeout=10)
    assert response.status_code == 404

    def lines() -> list[str]:
        return [line for line in text_logs.logs(text_logs.app_container).splitlines() if request_id in line]

    found = poll(lambda: (found := lines()) and len(found) >= 2 and found, what="uWSGI and app text lines")
    assert not any(line.startswith("{") for line in found), found
    assert any(" uwsgi worker=" in line and f"request_id={request_id}" in line for line in found), found
    assert any("WARNING django.request" in line and f"request_id={request_id}" in line for line in found), found


def test_make_verify_passes_on_a_deployment_with_text_logs_and_the_admin_kept_to_other_networks(text_logs):
    """`make verify` reads the deployment's settings: uWSGI's and the app's plain lines are read back into the
    schema's fields (tests/log_lines.py), and the admin page ADMIN_ALLOW keeps from the checks' client is skipped,
    naming the setting, while nginx's refusal is checked for the security headers. Before, 10 checks failed on
    LOG_FORMAT=text (after 213 s of polls for JSON lines) and 2 on ADMIN_ALLOW."""
    _, skips = verify_passes(text_logs.verify_target())
    allowed = (
        re.compile(r"a given deployment: its interval is its own$"),
        re.compile(rf"ADMIN_ALLOW={re.escape(TEXT_LOGS_ADMIN_ALLOW)} keeps the admin from this check's client"),
    )
    assert any(allowed[1].search(reason) for reason in skips), skips
    assert all(any(pattern.search(reason) for pattern in allowed) for reason in skips), skips


def test_uwsgi_disable_logging_false_logs_every_request_that_reaches_the_app(text_logs):
    marker = uuid.uuid4().hex
    assert requests.get(f"{text_logs.base_url}/healthz?m={marker}", timeout=10).status_code == 200

    def logged() -> list[str]:
        lines = text_logs.logs(text_logs.app_container).splitlines()
        return [line for line in lines if " uwsgi worker=" in line and marker in line]

    [line] = poll(lambda: logged(), what="uWSGI's line for a 200")
    assert " 200 " in line and "request_id=" in line, line


class HostMismatchLoad(Load):
    """Requests nginx answers itself (421: a Host none of its server names), each with a path of its own."""

    def __init__(self, port: int, marker: str, **kwargs):
        super().__init__(f"http://127.0.0.1:{port}/{marker}", **kwargs)

    def request(self, session: requests.Session, number: int) -> requests.Response:
        return session.get(f"{self.url}/{number}", headers={"Host": "other.example"}, timeout=self.timeout)

    @property
    def answered(self) -> int:
        return sum(self.result.statuses.values())


def test_nginx_writes_its_buffered_access_log_in_whole_lines_and_a_stop_under_load_loses_none():
    """nginx buffers its access log per worker (nginx/conf.d/logging.conf). On the nginx image alone, under 8 clients:
    every line on stdout is one whole JSON record, though the workers write into one pipe, and `docker stop` in the
    middle of the load (nginx's graceful stop) writes out what each worker still held: every answered request has its
    line."""
    image = settings.get("NGINX_IMAGE")
    name, port, marker = f"wct-accesslog-{uuid.uuid4().hex[:6]}", free_port(), uuid.uuid4().hex
    docker("run", "-d", "--name", name, "--read-only", "--tmpfs", "/tmp", "-p", f"127.0.0.1:{port}:8080", image)  # noqa: S108 - in the container
    try:
        wait_healthy(name, timeout=60)
        workers = docker("exec", name, "sh", "-c", "cat /proc/[0-9]*/cmdline | tr '\\0' ' '").count("worker process")
        with HostMismatchLoad(port, marker, clients=8, duration=60, max_requests=20_000, timeout=5) as load:
            poll(lambda: load.answered >= 2000, timeout=30, interval=0.05, what="2000 answers")
            docker("stop", "--time", "20", name)
        assert set(load.result.statuses) == {421}, str(load.result)
        stdout = subprocess.run(["docker", "logs", name], capture_output=True, text=True, check=True).stdout
    finally:
        docker("rm", "-f", name, check=False)
    lines = stdout.splitlines()
    records = [json.loads(line) for line in lines]  # each line whole: one JSON object
    logged = [r["path"] for r in records if r["path"].startswith(f"/{marker}/")]
    assert workers >= 2, "one worker: nothing to interleave"
    assert len(logged) == len(set(logged)) >= load.answered, f"{len(logged)} lines for {load.result}"


# --- metrics ----------------------------------------------------------------------------------------------------


def scrape(deployment: Deployment) -> dict[tuple[str, tuple], float]:
    """Every sample of the exporter, fetched from inside the app container and parsed by prometheus-client."""
    url = f"http://127.0.0.1:{METRICS_PORT}/metrics"
    script = f"import urllib.request; print(urllib.request.urlopen({url!r}, timeout={SCRAPE_TIMEOUT}).read().decode())"
    # A scrape that hangs fails (the exporter answers within its own 2 s per collector), as Prometheus's would.
    text = docker("exec", deployment.app_container, "python3", "-c", script, timeout=2 * SCRAPE_TIMEOUT)
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def metrics_stack(own: Deployment) -> Deployment:
    if not own.app_container:
        pytest.skip("needs a docker:// app host")
    # Its first scrapes may come before nginx answers; a busy engine (its DNS resolves "nginx") can take a while.
    poll(lambda: value(scrape(own), "nginx_up") == 1, timeout=60, what="the exporter reads nginx's stub_status")
    return own


def test_the_metrics_parse_as_prometheus_text_and_cover_nginx_uwsgi_and_the_app(metrics_stack):
    samples = scrape(metrics_stack)
    names = {name for name, _ in samples}
    assert value(samples, "uwsgi_up") == 1
    assert value(samples, "nginx_up") == 1
    for name in (
        "uwsgi_requests_total",
        "uwsgi_exceptions_total",
        "uwsgi_listen_queue",
        "uwsgi_worker_requests_total",
        "nginx_http_requests_total",
        "nginx_connections_accepted_total",
        "app_http_requests_total",
        "app_http_request_duration_seconds_bucket",
    ):
        assert name in names, name
    workers = {labels: v for (name, labels), v in samples.items() if name == "uwsgi_workers"}
    assert sum(workers.values()) >= 2, workers
    assert set(dict(labels)["status"] for labels in workers) >= {"idle", "busy"}


def test_counters_move_after_requests_and_the_app_counts_every_worker(metrics_stack):
    before = scrape(metrics_stack)
    with Load(f"{metrics_stack.base_url}/", clients=4, duration=30, max_requests=60) as load:
        load.run_out()
    assert load.result.ok == 60, str(load.result)

    def moved() -> dict | None:
        after = scrape(metrics_stack)
        served = value(after, "app_http_requests_total", **INDEX) - value(before, "app_http_requests_total", **INDEX)
        return after if served == 60 else None

    after = poll(moved, what="the app's counter for the index view moves by exactly 60")
    assert value(after, "uwsgi_requests_total") - value(before, "uwsgi_requests_total") >= 60
    assert value(after, "nginx_http_requests_total") - value(before, "nginx_http_requests_total") >= 60
    timed = {"view": "index", "method": "GET"}
    count = "app_http_request_duration_seconds_count"
    assert value(after, count, **timed) - value(before, count, **timed) == 60
    # Several workers served them, and the app's count is their sum: multiprocess mode adds up every worker's file.
    per_worker = {
        labels: v - before.get((name, labels), 0.0)
        for (name, labels), v in after.items()
        if name == "uwsgi_worker_requests_total"
    }
    assert sum(1 for delta in per_worker.values() if delta > 0) >= 2, per_worker


def test_a_name_lookup_that_hangs_shows_nginx_down_within_the_exporters_timeout(metrics_stack):
    # The exporter reads nginx by name in the split topology (http://nginx:8081): a resolver that does not answer
    # (Docker's embedded DNS on a busy engine) must not hold up the scrape past the exporter's own timeout.
    script = (
        "import socket, sys, time; sys.path.insert(0, '/usr/local/lib/wsgi-chain');"
        "socket.getaddrinfo = lambda *args, **kwargs: time.sleep(60);"
        "import metrics_exporter as exporter; start = time.monotonic();"
        "up = next(iter(exporter.NginxCollector('http://nginx:8081/stub_status').collect()));"
        "print(up.samples[0].value, time.monotonic() - start, exporter.TIMEOUT)"
    )
    answer = docker("exec", metrics_stack.app_container, "python3", "-c", script, timeout=30)
    up, took, timeout = map(float, answer.split())
    assert up == 0
    assert took < timeout + 1, f"took {took:.1f} s, the exporter's timeout is {timeout} s"


def test_the_exporter_is_supervised_a_killed_one_comes_back(metrics_stack):
    container = metrics_stack.app_container

    def exporter_pid() -> str | None:
        pids = docker("exec", container, "pgrep", "-f", "metrics-exporter", check=False).split()
        return pids[0] if len(pids) == 1 else None

    killed = poll(exporter_pid, what="one metrics-exporter process")
    docker("exec", container, "kill", killed)
    poll(lambda: exporter_pid() not in (None, killed), what="the uWSGI master respawns the exporter")
    poll(lambda: value(scrape_or_empty(metrics_stack), "uwsgi_up") == 1, what="the new exporter answers")


def scrape_or_empty(deployment: Deployment) -> dict:
    try:
        return scrape(deployment)
    except subprocess.CalledProcessError:
        return {}


def test_metrics_are_not_reachable_through_the_public_port(http, deployment):
    for path in ("/metrics", "/stub_status"):
        response = http.get(path)
        assert response.status_code == 404, path
        assert "# TYPE" not in response.text and "Active connections" not in response.text
    if deployment.app_container:
        for container in {deployment.app_container, deployment.nginx_container}:
            bindings = json.loads(docker("inspect", "-f", "{{json .HostConfig.PortBindings}}", container) or "null")
            assert f"{METRICS_PORT}/tcp" not in (bindings or {}), bindings


# --- health -----------------------------------------------------------------------------------------------------


def test_the_container_health_probe_checks_readiness_and_stays_out_of_the_request_log(metrics_stack):
    container = metrics_stack.app_container
    readyz = {"view": "readyz", "method": "GET", "status": "200"}
    logged_before = sum(1 for r in metrics_stack.records(container, "uwsgi") if r["path"] == "/readyz")
    served_before = value(scrape(metrics_stack), "app_http_requests_total", **readyz)
    out = docker("exec", container, "uwsgi-health", "--ready")
    assert "healthy: GET /healthz -> 2xx, GET /readyz -> 2xx" in out, out
    poll(
        lambda: value(scrape(metrics_stack), "app_http_requests_total", **readyz) > served_before,
        what="the probe reaches the app's readiness view",
    )
    logged_after = sum(1 for r in metrics_stack.records(container, "uwsgi") if r["path"] == "/readyz")
    assert logged_after == logged_before, "the health probe shows in uWSGI's request log"
    health = json.loads(docker("inspect", "-f", "{{json .Config.Healthcheck.Test}}", container))
    assert health == ["CMD", "uwsgi-health", "--ready"]


# --- make top ---------------------------------------------------------------------------------------------------


def test_uwsgitop_shows_the_live_workers_from_the_stats_server(metrics_stack):
    # As `make top` runs it, on a terminal (docker exec -t), for 3 seconds.
    result = subprocess.run(
        [
            "docker",
            "exec",
            "-t",
            "-e",
            "TERM=xterm",
            metrics_stack.app_container,
            "timeout",
            "3",
            "uwsgi-top",
            "127.0.0.1:1717",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 124, result.stdout[-2000:] + result.stderr  # still running when stopped
    screen = result.stdout
    assert "WID" in screen and "STATUS" in screen, screen[-2000:]
    assert re.search(r"uwsgi-2\.0\.\d+ - .* - req: \d+ - RPS: \d+ - lq: \d+", screen), screen[-2000:]
    master = docker("exec", metrics_stack.app_container, "pgrep", "-f", "uWSGI master").split()
    assert len(master) == 1 and f"masterpid: {master[0]}" in screen, (master, screen[-2000:])


def on_a_terminal(command: list[str], keys: bytes, after: bytes, timeout: float = 30) -> tuple[int, str]:
    """Run a command on a pseudo-terminal of its own, type `keys` once its screen shows `after`, and read to its end:
    its exit status and all it drew."""
    terminal, its_side = pty.openpty()
    process = subprocess.Popen(command, stdin=its_side, stdout=its_side, stderr=its_side, start_new_session=True)
    os.close(its_side)
    seen, typed, deadline = b"", False, time.monotonic() + timeout
    try:
        while process.poll() is None or select.select([terminal], [], [], 0)[0]:
            if time.monotonic() > deadline:
                process.kill()
                raise AssertionError(f"{command} still ran after {timeout} s: {seen[-2000:]!r}")
            if select.select([terminal], [], [], 0.2)[0]:
                try:
                    chunk = os.read(terminal, 65536)
                except OSError:  # the command ended and its side of the terminal is closed
                    break
                if not chunk:
                    break
                seen += chunk
            if not typed and after in seen:
                os.write(terminal, keys)
                typed = True
    finally:
        os.close(terminal)
    return process.wait(timeout=10), seen.decode(errors="replace")


def test_make_top_quits_on_q_with_no_traceback(metrics_stack):
    """`make top` says q quits. uwsgitop 0.12 resets the terminal in its q handler and again at exit, where curses
    refuses the second: every quit printed that traceback (docker/app/uwsgi_top.py resets it once)."""
    command = ["docker", "exec", "-it", "-e", "TERM=xterm", metrics_stack.app_container, "uwsgi-top", "127.0.0.1:1717"]
    status, drawn = on_a_terminal(command, b"q", after=b"WID")
    assert "WID" in drawn and "Traceback" not in drawn and "endwin" not in drawn, drawn[-2000:]
    assert status == 0, drawn[-2000:]
