"""Bring your own app: the example apps (Flask, plain WSGI) served through the chain, in both topologies."""

from __future__ import annotations

import hashlib
import os
import re
import sqlite3
import time
import uuid

import pytest
import requests

from tests.harness import OwnStack, app_sql, backup_env, docker, make, poll, send_raw, verify_passes
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


# An operator's own Content-Security-Policy on the examples' stacks: `make verify` expects the deployment's, not the
# stack's default (it failed on CONTENT_SECURITY_POLICY=off or any other policy before).
EXAMPLES_CSP = "default-src 'self'; style-src 'self' 'unsafe-inline'"


def example_env(name: str) -> dict[str, str]:
    """Build settings plus image names of the example's own, so the default app's images are left alone, and an
    operator's own Content-Security-Policy."""
    return {
        **EXAMPLES[name]["env"],
        "CONTENT_SECURITY_POLICY": EXAMPLES_CSP,
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
    try:
        poll(lambda: any(f"{marker}-app" in line for line in deployment.uwsgi_log(sent)), what="uWSGI's line")
    except AssertionError as missing:
        # Seen once in 30 runs (flask-single, 2026-12-05), unexplained: what the log holds goes with the failure.
        log = deployment.logs(deployment.app_container, sent).splitlines()
        with_marker = [line for line in log if marker in line]
        raise AssertionError(f"{missing}; lines with the marker: {with_marker}; the last lines: {log[-20:]}") from None
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


def test_make_backup_of_an_app_without_a_database_archives_its_files_and_a_restore_brings_back_their_state(
    example, tmp_path
):
    """Neither example keeps a database: with nothing in its data volume, `make backup` says there is nothing to back
    up and writes nothing, not even a partial file; with files there, it archives them alone, and `make restore` of
    the archive brings back their state (a file changed since as it was, one added since gone), after an archive of
    the files it replaces (none, into an empty data volume)."""
    _, deployment = example
    backups = tmp_path / "backups"
    env = backup_env(deployment, backups)
    container = deployment.app_container
    empty = make("backup", env)
    assert empty.returncode != 0, empty.stdout + empty.stderr
    [line] = empty.stderr.strip().splitlines()[:1]
    assert line.startswith("backup: error: the app has no database (DATABASE_URL is unset"), line
    assert "nothing was written" in line, line
    assert not list(backups.iterdir()), "nothing written, not even a partial file"

    docker("exec", container, "sh", "-c", "mkdir -p /var/lib/app/notes && echo kept > /var/lib/app/notes/a")
    try:
        result = make("backup", env)
        assert result.returncode == 0, result.stdout + result.stderr
        [archive] = backups.iterdir()
        assert archive.name.endswith(".files.tar.gz"), archive
        assert f"backup: {archive} (" in result.stdout and "notes/ (1 file, 0.0 MB) in /var/lib/app" in result.stdout

        docker("exec", container, "sh", "-c", "echo changed > /var/lib/app/notes/a && echo new > /var/lib/app/notes/b")
        restored = make("restore", {**env, "BACKUP": str(archive)})
        assert restored.returncode == 0, restored.stdout + restored.stderr
        assert docker("exec", container, "cat", "/var/lib/app/notes/a") == "kept\n"
        assert docker("exec", container, "ls", "/var/lib/app/notes").split() == ["a"]
        [kept] = set(backups.iterdir()) - {archive}
        assert f"restore: what it replaces is kept in {kept} (" in restored.stdout, restored.stdout

        # Into an empty data volume: nothing to keep, and no copy written.
        docker("exec", container, "rm", "-rf", "/var/lib/app/notes")
        restored = make("restore", {**env, "BACKUP": str(archive)})
        assert restored.returncode == 0, restored.stdout + restored.stderr
        assert "what it replaces" not in restored.stdout and set(backups.iterdir()) == {archive, kept}
        assert docker("exec", container, "cat", "/var/lib/app/notes/a") == "kept\n"
    finally:
        docker("exec", container, "rm", "-rf", "/var/lib/app/notes")


# One stack shows it: no framework's table is assumed, whichever the app and the topology.
@pytest.mark.parametrize("example", [("plain", "split")], indirect=True, ids=["plain-split"])
def test_an_apps_own_sqlite_database_is_backed_up_and_restored_whatever_its_tables(example, tmp_path):
    """The database at SQLITE_PATH with the app's own tables (no Django's) is backed up, and a restore takes a
    backup that shares a table with it and refuses one that shares none, changing nothing."""
    _, deployment = example
    backups = tmp_path / "backups"
    container, env = deployment.app_container, backup_env(deployment, backups)
    app_sql(container, "CREATE TABLE notes (text TEXT); INSERT INTO notes VALUES ('before the backup');")
    try:
        result = make("backup", env)
        assert result.returncode == 0, result.stdout + result.stderr
        [backup] = backups.iterdir()
        assert backup.suffix == ".sqlite3", backup
        app_sql(container, "DELETE FROM notes")

        other = tmp_path / "other.sqlite3"
        with sqlite3.connect(other) as db:
            db.execute("CREATE TABLE orders (id INTEGER)")
        refused = make("restore", {**env, "BACKUP": str(other)})
        assert refused.returncode != 0
        assert "none of its tables (orders) is in the app's" in refused.stderr, refused.stderr
        assert app_sql(container, query="SELECT count(*) FROM notes") == "0", "nothing was changed"

        restored = make("restore", {**env, "BACKUP": str(backup)})
        assert restored.returncode == 0, restored.stdout + restored.stderr
        assert app_sql(container, query="SELECT group_concat(text) FROM notes") == "before the backup"
    finally:
        docker("exec", container, "rm", "-f", "/var/lib/app/db.sqlite3")


# `make verify` is for any deployment, of any app: the chain checks ask the deployment what its app has
# (tests/served_app.py) and skip only the default app's own pages, routes and settings. One stack shows it: an app with
# static files for nginx at a STATIC_URL of its own, no health route, and its framework's 404.
VERIFY_SKIPS_ONLY = (
    re.compile(r"is the default app's; this deployment serves app:app$"),
    re.compile(r"app:app names no (HEALTHCHECK|READINESS)_PATH$"),
    re.compile(r"a given deployment: its interval is its own$"),
)


@pytest.mark.parametrize("example", [("flask", "split")], indirect=True, ids=["flask-split"])
def test_make_verify_of_another_apps_deployment_passes_and_skips_only_the_default_apps_own_checks(example):
    _, deployment = example
    out, skips = verify_passes(deployment.verify_target())
    assert skips, out[-3000:]
    unexpected = [reason for reason in skips if not any(allowed.search(reason) for allowed in VERIFY_SKIPS_ONLY)]
    assert not unexpected, f"chain checks that did not run on another app: {unexpected}"
    passed = int(re.search(r"(\d+) passed", out).group(1))
    assert passed > len(skips), out[-3000:]
    # The deployment's own policy, which the security headers' check expected of nginx's answers and the app's.
    response = requests.get(f"{deployment.base_url}/no-such-page", timeout=10)
    assert response.headers["Content-Security-Policy"] == EXAMPLES_CSP
