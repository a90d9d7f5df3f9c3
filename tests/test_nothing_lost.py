"""Nothing lost: container logs stay within their bound on disk, however many requests are logged; bursts of clients
wait in the app server's queue and get served, and past its capacity get a 503 with Retry-After, never a 502.

The log test starts a stack of its own with a tiny bound (LOG_MAX_SIZE, LOG_MAX_FILES), sends a burst of requests
whose log lines are several times that bound, and measures the containers' log files on the host, where docker keeps
them (the tests run as root on the host). The burst tests send 1,024 concurrent connections (wrk, installed by
`make venv`) through the published port of the suite's stack, at the defaults; the overflow test uses a stack of its
own with a tiny queue.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from tests.harness import (
    ROOT,
    OwnStack,
    app_image_serving,
    docker,
    poll,
    project_containers,
    serving,
    slow_request,
    wait_passing,
)
from tests.load import Load
from tests.test_examples import example_env
from tools.compose import Compose

# --- bounded logs ------------------------------------------------------------------------------------------------

# A tiny bound: 2 files of 100 KB per container. docker reads max-size in decimal units (100k = 100,000 bytes).
LOG_MAX_SIZE, LOG_MAX_FILES, MAX_FILE_BYTES = "100k", 2, 100_000
# Each proxied request leaves at least 300 bytes on disk in each of nginx's and the app's logs (a JSON line wrapped
# in docker's JSON record): this many requests log at least 3 times the bound, in both containers.
BURST = 3 * LOG_MAX_FILES * MAX_FILE_BYTES // 300

COMPOSE_FILES = {
    "split": ("compose.yaml",),
    "single": ("compose.single.yaml",),
    "swarm": ("compose.yaml", "compose.swarm.yaml"),
}


@pytest.mark.parametrize("topology", list(COMPOSE_FILES))
def test_every_service_of_every_topology_rotates_its_log_by_the_documented_knobs(topology):
    env = {"LOG_MAX_SIZE": "7m", "LOG_MAX_FILES": "3", "POSTGRES_PASSWORD": "x", "COMPOSE_PROFILES": "postgres"}
    out = Compose(files=COMPOSE_FILES[topology], env=env).run("config", "--format", "json", capture=True).stdout
    services = json.loads(out)["services"]
    assert services
    logging = {name: service.get("logging") for name, service in services.items()}
    expected = {"driver": "json-file", "options": {"max-size": "7m", "max-file": "3"}}
    assert logging == dict.fromkeys(services, expected)


def listen_default(ini: str) -> int:
    """The listen backlog an ini file sets when UWSGI_LISTEN is absent."""
    match = re.search(r"^if-not-env = UWSGI_LISTEN\n(?:;.*\n)*listen = (\d+)$", (ROOT / ini).read_text(), re.M)
    assert match, f"{ini} sets no default listen backlog"
    return int(match[1])


@pytest.mark.parametrize("topology", list(COMPOSE_FILES))
def test_the_queue_owners_kernel_cap_on_backlogs_is_above_the_listen_backlog_in_every_topology(topology):
    out = Compose(files=COMPOSE_FILES[topology]).run("config", "--format", "json", capture=True).stdout
    services = json.loads(out)["services"]
    backlog = listen_default("uwsgi/uwsgi.ini")
    assert backlog == listen_default("uwsgi/listener.ini") >= 1024
    owners = [name for name in ("app", "listener", "single") if name in services]
    assert owners
    for name in owners:
        assert int(services[name]["sysctls"]["net.core.somaxconn"]) >= backlog, name


def log_files(container_id: str) -> dict[Path, bytes]:
    """The container's log file and its rotated predecessors on the host (json-file: <LogPath>, <LogPath>.1 ...)."""
    log_path = Path(docker("inspect", "-f", "{{.LogPath}}", container_id).strip())
    return {path: path.read_bytes() for path in sorted(log_path.parent.glob(log_path.name + "*"))}


def within_max_size(content: bytes) -> bool:
    """docker rotates before a write that finds the file at max-size or past it: the record that crossed the limit
    is the file's last, and everything before it is below the limit."""
    lines = content.splitlines(keepends=True)
    return len(content) - len(lines[-1] if lines else b"") < MAX_FILE_BYTES


@pytest.fixture(scope="module")
def small_logs(tmp_path_factory):
    # uWSGI logs every request here (by default only 4xx, 5xx and slow ones), so that both containers' logs overflow.
    env = {"LOG_MAX_SIZE": LOG_MAX_SIZE, "LOG_MAX_FILES": str(LOG_MAX_FILES), "UWSGI_DISABLE_LOGGING": "false"}
    stack = OwnStack(tmp_path_factory.mktemp("small-logs"), prefix="wct-logs", env=env)
    with stack.running(build=False) as deployment:
        yield deployment


@pytest.mark.lifecycle
def test_a_containers_log_on_disk_stays_within_its_bound_after_a_burst_several_times_larger(small_logs, load_report):
    marker = uuid.uuid4().hex
    containers = {name: ident.split("@")[0] for name, ident in project_containers(small_logs.compose.project).items()}
    for ident in containers.values():
        config = json.loads(docker("inspect", "-f", "{{json .HostConfig.LogConfig}}", ident))
        assert config == {"Type": "json-file", "Config": {"max-size": LOG_MAX_SIZE, "max-file": str(LOG_MAX_FILES)}}

    with Load(f"{small_logs.base_url}/healthz?burst={marker}", clients=8, duration=60, max_requests=BURST) as load:
        load.run_out()
    assert load.result.ok == BURST, str(load.result)
    # The lines reach the disk after the answers (nginx's log buffer, the container's pipe, dockerd, which lags on a
    # busy engine): a request sent after the burst, once `docker logs` shows it in both logs, has every line of the
    # burst on disk before it.
    last = uuid.uuid4().hex
    assert requests.get(f"{small_logs.base_url}/healthz?last={last}", timeout=10).status_code == 200
    for container in (small_logs.nginx_container, small_logs.app_container):
        poll(lambda c=container: last in small_logs.logs(c), timeout=30, what=f"the newest request in {container}")

    sizes = {}
    for container in (small_logs.nginx_container, small_logs.app_container):
        files = log_files(containers[container])
        sizes[container] = sum(len(content) for content in files.values())
        assert 1 <= len(files) <= LOG_MAX_FILES, list(files)
        assert all(within_max_size(content) for content in files.values()), {p: len(c) for p, c in files.items()}
        # The burst did overflow the bound: the log was rotated, and the oldest of its lines are gone ...
        assert len(files) == LOG_MAX_FILES, f"{container}'s log was never rotated: {list(files)}"
        kept = sum(1 for line in small_logs.logs(container).splitlines() if marker in line)
        assert 0 < kept < BURST, f"{container} kept {kept} of {BURST} lines"
    # ... while `docker logs` still shows the newest (waited for above).
    load_report.append(
        f"bounded logs ({LOG_MAX_FILES} x {LOG_MAX_SIZE}, {BURST} requests): on disk "
        + ", ".join(f"{name.rsplit('-', 2)[-2]} {size} bytes" for name, size in sizes.items())
        + f" (bound {LOG_MAX_FILES} x {MAX_FILE_BYTES} + the last record of each file)"
    )


# --- bursts are queued, not refused -----------------------------------------------------------------------------


@dataclass
class Burst:
    """What wrk counted: requests answered, answers with a status of 400 or more, socket errors by kind."""

    requests: int
    errors_4xx_5xx: int
    socket_errors: dict[str, int]
    max_latency: str

    def __str__(self) -> str:
        errors = {kind: n for kind, n in self.socket_errors.items() if n} or 0
        return (
            f"{self.requests} answered, {self.errors_4xx_5xx} non-2xx, socket errors {errors}, "
            f"slowest {self.max_latency}"
        )


def wrk(url: str, connections: int, seconds: int) -> Burst:
    """`connections` clients on keep-alive connections for `seconds`, each sending its next request when answered."""
    if urlsplit(url).hostname != "127.0.0.1":
        raise ValueError(f"bursts target the loopback only, not {url}")
    assert shutil.which("wrk"), "wrk is missing: `make venv` installs it (tools/hostdeps.py)"
    # Two threads, as the machine has two cores; a request may wait 30 s before wrk counts it as a timeout.
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--timeout", "30s", url]
    out = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60, check=True).stdout
    answered = re.search(r"(\d+) requests in", out)
    assert answered, out
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sockets = re.search(r"Socket errors: (.*)", out)
    return Burst(
        requests=int(answered[1]),
        errors_4xx_5xx=int(bad[1]) if bad else 0,
        socket_errors={kind: int(n) for kind, n in re.findall(r"(\w+) (\d+)", sockets[1])} if sockets else {},
        max_latency=re.search(r"Latency\s+\S+\s+\S+\s+(\S+)", out)[1],
    )


# How long each burst lasts, and how many health probes at most run one after another through the probed one. Every
# connection opens at the burst's start, so its first second fills the queue; 4 s still answer each client several
# times over (the count is in the run's load report; the bursts lasted 10 s until 2026-12-05).
BURST_SECONDS, MAX_PROBES = 4, 30
# The burst the health probe runs through: the heaviest, the whole app behind the 1,024 connections queued on nginx's.
PROBED = (1024, "/")


@dataclass
class ProbedBurst:
    burst: Burst
    probes: list[tuple[int, float]]  # each probe's exit status and seconds; [] when the burst was not probed


def probed_burst(deployment, connections: int, path: str) -> ProbedBurst:
    """A wrk burst; the PROBED one has the app's health probe run through it, one probe after another."""
    probes: list[tuple[int, float]] = []
    probed = (connections, path) == PROBED and deployment.app_container
    with ThreadPoolExecutor(max_workers=1) as pool:
        burst = pool.submit(wrk, deployment.base_url + path, connections, BURST_SECONDS)
        while probed and not burst.done() and len(probes) < MAX_PROBES:
            began = time.monotonic()
            result = subprocess.run(
                ["docker", "exec", deployment.app_container, "uwsgi-health"], capture_output=True, timeout=30
            )
            probes.append((result.returncode, time.monotonic() - began))
        return ProbedBurst(burst.result(), probes)


@pytest.fixture(scope="module")
def bursts(deployment):
    """Each burst once, whichever test asks first: the PROBED burst's answers are one test's check and its probes
    another's (two bursts of 1,024 clients on / checked the two before, 12 s more of the serial phase)."""
    done: dict[tuple[int, str], ProbedBurst] = {}

    def burst(connections: int, path: str) -> ProbedBurst:
        if (connections, path) not in done:
            done[connections, path] = probed_burst(deployment, connections, path)
        return done[connections, path]

    return burst


@pytest.mark.serial  # a throughput (every client answered twice in BURST_SECONDS): measured with the cores to itself
@pytest.mark.parametrize(
    ("connections", "path"),
    [(256, "/healthz"), (1024, "/healthz"), PROBED],
    ids=["256 clients on /healthz", "1024 clients on /healthz", "1024 clients on /"],
)
def test_a_burst_of_concurrent_clients_is_queued_and_served_with_no_error_at_the_defaults(
    deployment, bursts, connections, path, load_report
):
    if deployment.compose is None:
        pytest.skip("loads the suite's own stack, not a given deployment")
    burst = bursts(connections, path).burst
    load_report.append(f"burst ({connections} connections x {BURST_SECONDS} s on {path}, defaults): {burst}")
    assert burst.errors_4xx_5xx == 0, str(burst)
    assert not any(burst.socket_errors.values()), str(burst)
    # Every client was answered, most of them many times.
    assert burst.requests >= 2 * connections, str(burst)


@pytest.mark.serial  # a latency under a burst: measured with the cores to itself
def test_the_health_probe_answers_in_time_while_a_burst_fills_the_queue(deployment, bursts, load_report):
    """The probe has a socket of its own (uwsgi.ini): it never waits behind the 1,024 connections queued on nginx's,
    so an orchestrator never restarts an app server for being busy."""
    if deployment.compose is None or not deployment.app_container:
        pytest.skip("probes the suite's own stack, not a given deployment")
    probed = bursts(*PROBED)
    probes = probed.probes
    load_report.append(f"health probes during a 1,024-client burst on /: {probed.burst}; probes {probes}")
    assert len(probes) >= 3, probes
    # uwsgi-health gives up after HEALTHCHECK_TIMEOUT (2.5 s): each one answered, well within compose's 3 s timeout.
    assert all(code == 0 for code, _ in probes), probes


@dataclass
class Answers:
    statuses: Counter = field(default_factory=Counter)
    busy: list[tuple[float, dict[str, str], bytes]] = field(default_factory=list)  # the 503s: seconds, headers, body
    other: list[bytes] = field(default_factory=list)  # anything neither 200 nor 503, as received


async def _get(port: int, path: str, answers: Answers) -> None:
    started = time.monotonic()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode())
    raw = await asyncio.wait_for(reader.read(), timeout=30)
    writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1]) if lines[0] else 0
    answers.statuses[status] += 1
    if status == 503:
        headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
        answers.busy.append((time.monotonic() - started, headers, body))
    elif status != 200:
        answers.other.append(raw)


def burst_at_once(port: int, path: str, clients: int) -> Answers:
    """`clients` connections opened at once, one request each (raw sockets, so a single thread holds them all)."""
    answers = Answers()

    async def run() -> None:
        await asyncio.gather(*(_get(port, path, answers) for _ in range(clients)))

    asyncio.run(run())
    return answers


TINY = {"UWSGI_WORKERS": "1", "UWSGI_LISTEN": "4"}


@pytest.fixture(scope="module")
def tiny_queue(tmp_path_factory):
    stack = OwnStack(tmp_path_factory.mktemp("tiny-queue"), prefix="wct-tiny", env=TINY)
    with stack.running(build=False) as deployment:
        yield deployment


# A latency (each 503 within 2 s): measured with the cores to itself (a warm run with the parallel phase's other
# stacks beside it, 2026-12-04: 2.36 s).
@pytest.mark.serial
@pytest.mark.lifecycle
def test_past_a_tiny_queue_the_overflow_gets_a_quick_503_with_retry_after_and_the_app_stays_healthy(
    tiny_queue, load_report
):
    port = urlsplit(tiny_queue.base_url).port
    answers = burst_at_once(port, "/", clients=300)
    slowest = max((seconds for seconds, _, _ in answers.busy), default=0)
    load_report.append(
        f"overflow (300 clients at once, 1 worker, listen 4): {answers.statuses[200]} served, "
        f"{answers.statuses[503]} got 503, other {len(answers.other)}; slowest 503 {slowest:.2f} s"
    )
    assert answers.other == [], answers.other[:3]
    assert answers.statuses[200] >= 1 and answers.statuses[503] >= 1, answers.statuses
    for seconds, headers, body in answers.busy:
        assert headers.get("Retry-After") == "5", headers
        assert json.loads(body)["status"] == 503, body
        assert seconds < 2, f"a 503 took {seconds:.2f} s"
    # The app server never noticed: healthy, and serving the next client.
    container = tiny_queue.app_container
    wait_passing(container)
    assert requests.get(tiny_queue.base_url + "/", timeout=10).status_code == 200


@pytest.fixture(scope="module")
def one_worker_deadline_2s(tmp_path_factory):
    """The plain example (it has /slow) with one worker and a queue deadline of 2 s; uWSGI's request log as it is by
    default (4xx, 5xx and slow requests only)."""
    env = {**example_env("plain"), "UWSGI_WORKERS": "1", "QUEUE_TIMEOUT": "2"}
    stack = OwnStack(tmp_path_factory.mktemp("deadline"), prefix="wct-deadline", env=env)
    with stack.running() as deployment:
        yield deployment


def behind_a_slow_request(
    deployment, seconds: float, paths: list[str], attempts: int = 3
) -> list[tuple[requests.Response, float]]:
    """Occupy the only worker for `seconds`, then send `paths` at once: they wait in the queue behind it. On a busy
    machine one look at the worker (a docker exec) can outlast a short slow request: if it ended unseen, the slow
    request is sent again, up to `attempts` times."""
    answers: dict[str, tuple[requests.Response, float]] = {}

    def get(path: str) -> None:
        started = time.monotonic()
        response = requests.get(deployment.base_url + path, timeout=30)
        answers[path] = (response, time.monotonic() - started)

    for _ in range(attempts):
        slow_path, marker = slow_request(seconds)
        slow = threading.Thread(target=get, args=(slow_path,))
        slow.start()

        def seen(slow: threading.Thread = slow, marker: str = marker) -> str | None:
            if serving(deployment.app_container, marker):
                return "busy"
            return None if slow.is_alive() else "ended"

        if poll(seen, what="the only worker busy with the slow request, or the slow request over") == "busy":
            break
        slow.join()
    else:
        raise AssertionError(f"a {seconds} s request ended before a look at the worker saw it, {attempts} times")
    queued = [threading.Thread(target=get, args=(path,)) for path in paths]
    for thread in queued:
        thread.start()
    for thread in [slow, *queued]:
        thread.join(timeout=40)
    assert answers[slow_path][0].status_code == 200
    return [answers[path] for path in paths]


@pytest.mark.lifecycle
def test_a_request_that_waited_past_queue_timeout_gets_a_503_with_retry_after_without_running_the_app(
    one_worker_deadline_2s, load_report
):
    stack, marker = one_worker_deadline_2s, uuid.uuid4().hex
    # Within the deadline: queued for at most 1.2 s behind the slow request, then served.
    [(within, _)] = behind_a_slow_request(stack, 1.2, [f"/?within={marker}"])
    assert within.status_code == 200

    # Past it: queued behind a 5 s request (for over 3 s, however late it was seen busy), then answered 503 at once
    # when the worker reaches them. Each asks for the app's /slow view: had the app run one, it took a second.
    late = behind_a_slow_request(stack, 5, [f"/slow?seconds=1&late={marker}-{i}" for i in range(5)])
    for response, _ in late:
        assert response.status_code == 503, response.text
        assert response.headers["Retry-After"] == "5"
        assert response.json() == {
            "status": 503,
            "error": "app server busy",
            "request_id": response.headers["X-Request-ID"],
        }

    # The entry point answered, not the app: uWSGI logged each in less than the second the app's /slow takes (in
    # milliseconds, usually; a bound of 50 ms failed once on a machine starved by the suite's other workers, and a
    # fast app's answer would have passed it too).
    def late_logged() -> list[dict]:
        return [r for r in stack.records(stack.app_container, "uwsgi") if f"late={marker}" in r["path"]]

    logged = poll(lambda: len(late_logged()) >= len(late) and late_logged(), what="uWSGI's log of the late requests")
    assert sorted((r["status"], r["duration_ms"] < 1000) for r in logged) == [(503, True)] * len(late), logged
    load_report.append(
        "queue deadline (QUEUE_TIMEOUT=2, 1 worker, 5 requests queued behind a 5 s one): "
        + ", ".join(f"{response.status_code} in {seconds:.1f} s" for response, seconds in late)
    )
    # Nothing is left behind: the next request is served.
    assert requests.get(stack.base_url + "/", timeout=10).status_code == 200


UNREADABLE = [
    # (setting, value, what the entrypoint says after "NAME=value: ")
    *[("QUEUE_TIMEOUT", value, "use seconds, e.g. 10 (0: no deadline)") for value in ("abc", "-1", "1.2.3", "10s")],
    *[("WORKER_MAX_RSS_MB", value, "use whole megabytes, e.g. 512 (0: never)") for value in ("", "x", "-1", "9M")],
]


@pytest.mark.parametrize("name, value, advice", UNREADABLE, ids=[f"{name}={value}" for name, value, _ in UNREADABLE])
def test_a_queue_timeout_or_memory_limit_that_is_not_a_number_stops_the_app_container_at_start(name, value, advice):
    result = app_image_serving(name, value)
    assert result.returncode == 78, result.stdout + result.stderr
    assert result.stderr.strip().splitlines() == [f"app-entrypoint: {name}={value}: {advice}"]


@pytest.mark.lifecycle
def test_uwsgi_logs_only_4xx_5xx_and_slow_requests_by_default_and_nginx_logs_every_request(one_worker_deadline_2s):
    stack, marker = one_worker_deadline_2s, uuid.uuid4().hex
    paths = {
        "fast": f"/?quiet={marker}",
        "slow": f"/slow?seconds=1.5&quiet={marker}",
        "5xx": f"/?late={marker}",
        "4xx": f"/no-such-page?quiet={marker}",
    }
    assert requests.get(stack.base_url + paths["fast"], timeout=10).status_code == 200
    assert requests.get(stack.base_url + paths["4xx"], timeout=10).status_code == 404
    # A 503: the request waits over 3 s in the queue behind a slow one (QUEUE_TIMEOUT is 2 s).
    [(late, _)] = behind_a_slow_request(stack, 5, [paths["5xx"]])
    assert late.status_code == 503
    assert requests.get(stack.base_url + paths["slow"], timeout=10).status_code == 200

    def logged(container: str, source: str) -> list[dict]:
        return [r for r in stack.records(container, source) if marker in r.get("path", "")]

    # nginx's access log has every request; uWSGI's, where the fast request came first, only the other three.
    poll(lambda: len(logged(stack.nginx_container, "nginx")) == 4, what="nginx's log of every request")
    uwsgi = poll(
        lambda: len(logged(stack.app_container, "uwsgi")) >= 3 and logged(stack.app_container, "uwsgi"),
        what="uWSGI's log of the 404, the 503 and the slow request",
    )
    expected = [(paths["4xx"], 404), (paths["5xx"], 503), (paths["slow"], 200)]
    assert sorted((r["path"], r["status"]) for r in uwsgi) == sorted(expected)
    assert all(r["request_id"] not in ("", "-") for r in uwsgi), uwsgi
