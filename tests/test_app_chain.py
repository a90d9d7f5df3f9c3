"""The default app (microposts) through the chain: its API on the published port, its SQLite database on the
volume in WAL mode, and concurrent writers that lose nothing.

These write users and posts, so they run only on a stack of the module's own (`own`), never against a given
deployment.
"""

from __future__ import annotations

import re

import pytest
import requests

from tests.harness import docker
from tests.microposts_api import CLIENTS, POSTS_EACH, create_user, create_users, listed_texts, post_concurrently, unique

SQLITE_PATH = "/var/lib/app/db.sqlite3"


@pytest.fixture(scope="module")
def author(own) -> tuple[str, str]:
    username = unique("author")
    return username, create_user(own.app_container, username)


def test_a_post_goes_through_its_whole_life_over_the_published_port(own, author):
    username, token = author
    auth = {"Authorization": f"Token {token}"}
    collection = f"{own.base_url}/api/users/{username}/collection"

    created = requests.post(collection, json={"text": "through the chain"}, headers=auth, timeout=10)
    assert created.status_code == 201, created.text
    href = created.json()["href"]
    assert href == f"{collection}/{created.json()['id']}", "links point at the published address"
    assert created.headers["Location"] == href

    listed = requests.get(collection, timeout=10).json()
    assert listed["results"][0]["href"] == href

    edited = requests.patch(href, json={"text": "edited through the chain"}, headers=auth, timeout=10)
    assert edited.status_code == 200
    assert edited.json()["timestamp"] == created.json()["timestamp"]
    assert requests.get(href, timeout=10).json()["text"] == "edited through the chain"

    assert requests.delete(href, headers=auth, timeout=10).status_code == 204
    assert requests.get(href, timeout=10).status_code == 404


def test_writes_without_a_token_get_401_and_as_someone_else_403(own, author):
    username, _ = author
    collection = f"{own.base_url}/api/users/{username}/collection"
    anonymous = requests.post(collection, json={"text": "anonymous"}, timeout=10)
    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"] == "Token"
    other_name = unique("other")
    other = create_user(own.app_container, other_name)
    forbidden = requests.post(collection, json={"text": "x"}, headers={"Authorization": f"Token {other}"}, timeout=10)
    assert forbidden.status_code == 403


def test_an_unknown_users_collection_is_404_not_500(own):
    response = requests.get(f"{own.base_url}/api/users/{unique('nobody')}/collection", timeout=10)
    assert response.status_code == 404


def test_the_browsable_api_renders_with_its_stylesheets_served_by_nginx(own, author):
    username, _ = author
    page = requests.get(f"{own.base_url}/api/users/{username}/collection", headers={"Accept": "text/html"}, timeout=10)
    assert page.status_code == 200
    stylesheets = re.findall(r'<link rel="stylesheet" type="text/css" href="([^"]+)"', page.text)
    assert any("rest_framework" in href for href in stylesheets), stylesheets
    for href in stylesheets:
        css = requests.get(f"{own.base_url}{href}", timeout=10)
        assert css.status_code == 200, href
        assert css.headers["Content-Type"].startswith("text/css"), href


def test_the_database_is_sqlite_on_the_volume_in_wal_mode(own):
    script = f"import sqlite3; print(sqlite3.connect('{SQLITE_PATH}').execute('PRAGMA journal_mode').fetchone()[0])"
    assert docker("exec", own.app_container, "python3", "-c", script).strip() == "wal"
    mounts = docker("inspect", "-f", "{{range .Mounts}}{{.Type}}:{{.Destination}} {{end}}", own.app_container)
    assert "volume:/var/lib/app" in mounts.split()


def test_concurrent_writers_through_the_chain_lose_no_post_and_get_no_5xx(own):
    usernames = [unique(f"writer{n}") for n in range(CLIENTS)]
    result = post_concurrently(own.base_url, create_users(own.app_container, usernames))
    assert result.errors == []
    assert result.statuses == {201: CLIENTS * POSTS_EACH}, f"statuses: {result.statuses} in {result.elapsed:.1f} s"
    assert len(set(result.created_ids)) == CLIENTS * POSTS_EACH
    for username in usernames:
        texts = listed_texts(own.base_url, username)
        assert sorted(texts) == sorted(f"{username} post {n}" for n in range(POSTS_EACH)), username
    locked = [line for line in own.logs(own.app_container).splitlines() if "database is locked" in line]
    assert locked == []
