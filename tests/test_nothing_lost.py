"""Nothing lost: container logs stay within their bound on disk, however many requests are logged.

The log test starts a stack of its own with a tiny bound (LOG_MAX_SIZE, LOG_MAX_FILES), sends a burst of requests
whose log lines are several times that bound, and measures the containers' log files on the host, where docker keeps
them (the tests run as root on the host).
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path

import pytest
import requests

from tests.harness import ROOT, OwnStack, docker, poll, project_containers
from tests.load import Load

pytestmark = pytest.mark.lifecycle

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
    files = [arg for name in COMPOSE_FILES[topology] for arg in ("-f", name)]
    env = {"LOG_MAX_SIZE": "7m", "LOG_MAX_FILES": "3", "POSTGRES_PASSWORD": "x", "COMPOSE_PROFILES": "postgres"}
    out = subprocess.run(
        ["docker", "compose", "--project-directory", str(ROOT), *files, "config", "--format", "json"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    services = json.loads(out)["services"]
    assert services
    logging = {name: service.get("logging") for name, service in services.items()}
    expected = {"driver": "json-file", "options": {"max-size": "7m", "max-file": "3"}}
    assert logging == dict.fromkeys(services, expected)


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
    env = {"LOG_MAX_SIZE": LOG_MAX_SIZE, "LOG_MAX_FILES": str(LOG_MAX_FILES)}
    stack = OwnStack(tmp_path_factory.mktemp("small-logs"), prefix="wct-logs", env=env)
    with stack.running(build=False) as deployment:
        yield deployment


def test_a_containers_log_on_disk_stays_within_its_bound_after_a_burst_several_times_larger(small_logs, load_report):
    marker = uuid.uuid4().hex
    containers = {name: ident.split("@")[0] for name, ident in project_containers(small_logs.compose.project).items()}
    for ident in containers.values():
        config = json.loads(docker("inspect", "-f", "{{json .HostConfig.LogConfig}}", ident))
        assert config == {"Type": "json-file", "Config": {"max-size": LOG_MAX_SIZE, "max-file": str(LOG_MAX_FILES)}}

    with Load(f"{small_logs.base_url}/healthz?burst={marker}", clients=8, duration=60, max_requests=BURST) as load:
        load.run_out()
    assert load.result.ok == BURST, str(load.result)

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
    # ... while `docker logs` still shows the newest.
    last = uuid.uuid4().hex
    assert requests.get(f"{small_logs.base_url}/healthz?last={last}", timeout=10).status_code == 200
    poll(lambda: last in small_logs.logs(small_logs.nginx_container), what="the newest request in docker logs")
    load_report.append(
        f"bounded logs ({LOG_MAX_FILES} x {LOG_MAX_SIZE}, {BURST} requests): on disk "
        + ", ".join(f"{name.rsplit('-', 2)[-2]} {size} bytes" for name, size in sizes.items())
        + f" (bound {LOG_MAX_FILES} x {MAX_FILE_BYTES} + the last record of each file)"
    )
