"""Bring your own app: the example apps (Flask, plain WSGI) served through the chain, in both topologies."""

from __future__ import annotations

import hashlib
import os
import time
import uuid

import pytest
import requests

from tests.harness import OwnStack, backup_env, docker, make, poll, send_raw
from tools import settings

EXAMPLES = {
    "flask": {
        "env": {
            "APP_SRC": "examples/flask",
            "WSGI_MODULE": "app:app",
            "STATIC_DIR": "static",
            "STATIC_URL": "/assets/",
        },
        "home": "flask example",
    },
    "plain": {
        "env": {
            "APP_SRC": "examples/plain",
            "WSGI_MODULE": "wsgi:application",
            "STATIC_DIR": "assets",
            "STATIC_URL": "/assets/",
        },
        "home": "plain WSGI example",
    },
}


def example_env(name: str) -> dict[str, str]:
    """Build settings plus image names of the example's own, so the default app's images are left alone."""
    return {
        **EXAMPLES[name]["env"],
        "APP_IMAGE": f"wsgi-chain-test/{name}-app:dev",
        "NGINX_IMAGE": f"wsgi-chain-test/{name}-nginx:dev",
        "SINGLE_IMAGE": f"wsgi-chain-test/{name}-single:dev",
    }


@pytest.fixture(
    scope="module",
    params=[(name, topology) for name in EXAMPLES for topology in settings.TOPOLOGIES],
    ids=lambda param: f"{param[0]}-{param[1]}",
)
def example(request, tmp_path_factory):
    name, topology = request.param
    stack = OwnStack(tmp_path_factory.mktemp(name), topology=topology, prefix=f"wct-{name}", env=example_env(name))
    with stack.running() as deployment:
        yield name, deployment


def test_the_example_app_is_served_through_nginx_and_uwsgi(example):
    name, deployment = example
    response = requests.get(deployment.base_url + "/", timeout=10)
    assert response.status_code == 200
    assert EXAMPLES[name]["home"] in response.text
    assert response.headers["Server"] == "nginx"
    assert "X-Request-ID" in response.headers, "the request went through nginx's uwsgi_pass"


def test_the_example_static_files_are_served_by_nginx_from_static_dir_at_static_url(example):
    _, deployment = example
    marker = uuid.uuid4().hex
    sent = time.time()
    response = requests.get(f"{deployment.base_url}/assets/site.css?m={marker}", timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/css")
    # A 404, so that uWSGI logs it (its request log keeps 4xx, 5xx and slow requests: uwsgi/uwsgi.ini).
    assert requests.get(f"{deployment.base_url}/no-such-page?m={marker}-app", timeout=10).status_code == 404
    poll(lambda: any(f"{marker}-app" in line for line in deployment.uwsgi_log(sent)), what="uWSGI logs the app request")
    assert not any(
        r["path"].endswith(f"m={marker}") for r in deployment.records(deployment.app_container, "uwsgi", sent)
    )


def test_a_streamed_response_arrives_chunked_and_whole(example):
    _, deployment = example
    with requests.get(deployment.base_url + "/stream", stream=True, timeout=10) as response:
        assert response.status_code == 200
        assert response.headers.get("Transfer-Encoding") == "chunked"
        lines = [line.decode() for line in response.iter_lines()]
    assert lines == [f"line {i}" for i in range(100)]


def test_a_post_body_of_several_megabytes_arrives_intact(example):
    _, deployment = example
    body = os.urandom(8 * 1024 * 1024)
    response = requests.post(
        deployment.base_url + "/upload", data=body, headers={"Content-Type": "application/octet-stream"}, timeout=30
    )
    assert response.status_code == 200
    assert response.json() == {"sha256": hashlib.sha256(body).hexdigest(), "size": len(body)}


def test_no_django_step_runs_for_an_app_that_is_not_django(example):
    _, deployment = example
    container = deployment.app_container
    env = docker("exec", container, "sh", "-c", 'echo "DSM=${DJANGO_SETTINGS_MODULE:-}"')
    assert env.strip() == "DSM="
    probe = docker("exec", container, "python3", "-c", "import importlib.util as u; print(u.find_spec('django'))")
    assert probe.strip() == "None", "Django is not even installed in the example's image"


def test_the_app_is_told_the_host_with_the_clients_port_but_never_a_smuggled_one(example):
    name, deployment = example
    if name != "plain":
        pytest.skip("the plain example echoes the Host it was told")
    port = int(deployment.base_url.rsplit(":", 1)[1])
    assert requests.get(deployment.base_url + "/host", timeout=10).json() == {"host": f"127.0.0.1:{port}"}
    # An absolute-form target with another Host header: the app is told the target's host, not the header's.
    answer = send_raw(
        port, f"GET http://127.0.0.1:{port}/host HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n".encode()
    )
    assert answer.split(b"\r\n", 1)[0] == b"HTTP/1.1 200 OK"
    assert answer.rstrip().endswith(b'{"host": "127.0.0.1"}'), answer[-200:]


def test_make_backup_of_an_app_without_a_database_says_so_names_its_files_and_writes_nothing(example, tmp_path):
    """Neither example keeps a database: `make backup` (which copies an app's database) fails with one line saying
    there is none, naming what the data volume holds instead, and leaves no file in BACKUP_DIR."""
    _, deployment = example
    env = backup_env(deployment, tmp_path)
    container = deployment.app_container
    docker("exec", container, "sh", "-c", "mkdir -p /var/lib/app/notes && echo kept > /var/lib/app/notes/a")
    try:
        result = make("backup", env)
    finally:
        docker("exec", container, "rm", "-rf", "/var/lib/app/notes")
    assert result.returncode != 0, result.stdout + result.stderr
    [line] = result.stderr.strip().splitlines()[:1]
    assert line.startswith("backup: error: no SQLite database at /var/lib/app/db.sqlite3 (DATABASE_URL is unset)"), line
    assert "Its data volume holds notes/ (1 file, 0.0 MB) in /var/lib/app" in line, line
    assert "(docs/operations.md: Backups)" in line, line
    assert not list(tmp_path.iterdir()), "nothing written, not even a partial file"
