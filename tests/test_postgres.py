"""The default app on PostgreSQL (DATABASE_URL), through the whole chain: a stack of its own whose app and
migrations use a throwaway PostgreSQL server on the host, reached through its unix socket. Also: the compose
profile `postgres`, for deployments with a registry (the official image).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import requests

from tests.harness import ROOT, docker, make
from tests.host_postgres import stack_on
from tests.microposts_api import CLIENTS, POSTS_EACH, create_user, create_users, listed_texts, post_concurrently, unique
from tests.test_examples import example_env
from tools import cluster
from tools.compose import Compose

pytestmark = pytest.mark.lifecycle


@pytest.fixture(scope="module")
def pg_stack(postgres, tmp_path_factory):
    stack = stack_on(postgres, tmp_path_factory.mktemp("pg-stack"), prefix="wct-pg")
    try:
        yield stack.start()
    finally:
        stack.stop()


def test_the_migrations_ran_once_against_postgresql(pg_stack, postgres):
    applied = postgres.psql("SELECT count(*) FROM django_migrations WHERE app = 'microposts'", database="microposts")
    assert int(applied) >= 1
    migrate = [c for c in pg_stack.compose.containers() if c.service == "migrate"]
    assert [(c.status, c.exit_code) for c in migrate] == [("exited", 0)]
    assert requests.get(f"{pg_stack.base_url}/readyz", timeout=10).json() == {"status": "ok"}


def test_the_app_keeps_no_sqlite_database_when_given_a_database_url(pg_stack):
    """Its data volume holds nothing but MEDIA_ROOT, the empty directory the entry point makes for uploads."""
    listing = subprocess.run(
        ["docker", "exec", pg_stack.app_container, "find", "/var/lib/app", "-mindepth", "1"],
        capture_output=True,
        text=True,
    )
    assert listing.returncode == 0, listing.stderr
    assert listing.stdout.split() == ["/var/lib/app/media"]


def test_a_post_goes_through_its_whole_life_on_postgresql(pg_stack, postgres):
    username = unique("pg-author")
    auth = {"Authorization": f"Token {create_user(pg_stack.app_container, username)}"}
    collection = f"{pg_stack.base_url}/api/users/{username}/collection"
    created = requests.post(collection, json={"text": "stored in postgres"}, headers=auth, timeout=10)
    assert created.status_code == 201, created.text
    post_id = str(created.json()["id"])
    stored = "SELECT text FROM microposts_micropost WHERE id = :'id'"
    assert postgres.psql(stored, database="microposts", id=post_id) == "stored in postgres"
    href = created.json()["href"]
    assert href == f"{collection}/{post_id}", "links point at the published address"
    assert requests.patch(href, json={"text": "edited"}, headers=auth, timeout=10).status_code == 200
    assert requests.get(collection, timeout=10).json()["results"][0]["text"] == "edited"
    assert requests.delete(href, headers=auth, timeout=10).status_code == 204
    assert postgres.psql(stored, database="microposts", id=post_id) == ""


def test_concurrent_writers_on_postgresql_lose_no_post_and_get_no_5xx(pg_stack, postgres):
    run = unique("pg")
    usernames = [f"{run}-writer{n}" for n in range(CLIENTS)]
    result = post_concurrently(pg_stack.base_url, create_users(pg_stack.app_container, usernames))
    assert result.errors == []
    assert result.statuses == {201: CLIENTS * POSTS_EACH}, f"statuses: {result.statuses} in {result.elapsed:.1f} s"
    stored = postgres.psql(
        "SELECT count(*) FROM microposts_micropost p JOIN auth_user u ON u.id = p.user_id"
        " WHERE u.username LIKE :'writers'",
        database="microposts",
        writers=f"{run}-writer%",
    )
    assert int(stored) == CLIENTS * POSTS_EACH
    for username in usernames:
        assert sorted(listed_texts(pg_stack.base_url, username)) == sorted(
            f"{username} post {n}" for n in range(POSTS_EACH)
        )


def test_the_apps_unit_tests_pass_on_postgresql(postgres):
    """The app's own suite (app/tests), with its test database on PostgreSQL instead of SQLite."""
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-c", "app/pytest.ini", "app/tests", "-q", "-p", "no:cacheprovider"],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": postgres.url(postgres.socket_dir)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout


def test_the_postgres_profile_runs_the_official_image_on_the_internal_network_only():
    env = {"POSTGRES_PASSWORD": "not-used", "DATABASE_URL": "postgres://microposts:not-used@postgres/microposts"}
    with_profile = Compose(env={**env, "COMPOSE_PROFILES": "postgres"}, files=("compose.yaml",))
    config = json.loads(with_profile.run("config", "--format", "json", capture=True).stdout)
    postgres = config["services"]["postgres"]
    assert postgres["image"] == "postgres:17"
    assert "ports" not in postgres
    assert set(postgres["networks"]) == {"backend"}
    assert config["networks"]["backend"]["internal"] is True
    assert postgres["healthcheck"]["test"][:2] == ["CMD", "pg_isready"]
    assert any(v["type"] == "volume" and v["source"] == "postgres-data" for v in postgres["volumes"])
    for service in ("migrate", "app"):
        assert config["services"][service]["environment"]["DATABASE_URL"] == env["DATABASE_URL"]
    without = Compose(env=env, files=("compose.yaml",))
    assert "postgres" not in without.run("config", "--services", capture=True).stdout.split()


@pytest.fixture(scope="module")
def profile_postgres_image() -> str:
    """A PostgreSQL image for the compose profile: this machine has no registry to pull the official one from, so the
    local cluster's, which keeps the official image's contract (deploy/cluster/postgres.Dockerfile), under a tag of
    the tests' own (the cluster's `down` removes its own)."""
    image = "wsgi-chain-test/postgres:17"
    cluster.images_compose(postgres_image=image).run("build", "postgres", capture=True)
    return image


def test_an_apps_own_pre_start_hook_starts_once_the_postgres_profiles_database_answers(
    make_env, profile_postgres_image
):
    """On a first start, PostgreSQL initialises its data before it takes a TCP connection: an app's own pre-start
    hook that tries the database once (PRESTART_CMD: `manage.py migrate`) was refused, and `make up` failed until it
    was run again. The migrate one-shot now starts once PostgreSQL passes its health check."""
    password = "pw-" + make_env["COMPOSE_PROJECT_NAME"]
    once = "import socket; socket.create_connection(('postgres', 5432), timeout=3); print('prestart: database reached')"
    env = {
        **make_env,
        **example_env("plain"),
        "COMPOSE_PROFILES": "postgres",
        "POSTGRES_IMAGE": profile_postgres_image,
        "POSTGRES_PASSWORD": password,
        "DATABASE_URL": f"postgres://microposts:{password}@postgres/microposts",
        "PRESTART_CMD": f'python3 -c "{once}"',
    }
    up = make("up", env, timeout=600)
    assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
    assert "prestart: database reached" in docker("logs", f"{make_env['COMPOSE_PROJECT_NAME']}-migrate-1")
