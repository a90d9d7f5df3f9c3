"""Helpers for checks of the default app (microposts) through the chain: users made with its management command
inside the app container, and a bounded concurrent write load on the published port."""

from __future__ import annotations

import secrets
import subprocess
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import requests

# The load the issue asks for: 8 clients, 50 posts each, all at once.
CLIENTS = 8
POSTS_EACH = 50


def create_user(container: str, username: str, password: str | None = None, superuser: bool = False) -> str:
    """Create a user with `manage.py createuser` in the app container; return their API token."""
    command = ["docker", "exec", "-i", container, "python", "manage.py", "createuser", username]
    if password is not None:
        command.append("--password-stdin")
    if superuser:
        command.append("--superuser")
    result = subprocess.run(
        command, input=f"{password}\n" if password else "", capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, f"createuser {username} failed: {result.stderr}"
    token = result.stdout.strip()
    assert len(token) == 40, f"createuser printed {result.stdout!r}, not a token"
    return token


# Many users in one process: `manage.py createuser`'s own code once per name, after one Django start (each
# `docker exec` of the command starts Django anew: about 0.5 s of CPU). One token per line, in the names' order.
CREATE_USERS = (
    "import sys, django\n"
    "django.setup()\n"
    "from django.core.management import call_command\n"
    "for name in sys.argv[1:]:\n"
    "    call_command('createuser', name)\n"
)


def create_users(container: str, usernames: list[str]) -> dict[str, str]:
    """Create users (username -> API token) in the app container, with one Django start for all of them."""
    result = subprocess.run(
        ["docker", "exec", container, "python", "-c", CREATE_USERS, *usernames],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, f"createuser {usernames} failed: {result.stderr}"
    tokens = result.stdout.split()
    assert len(tokens) == len(usernames) and all(len(token) == 40 for token in tokens), result.stdout
    return dict(zip(usernames, tokens, strict=True))


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


def session_for(token: str) -> requests.Session:
    session = requests.Session()
    session.headers["Authorization"] = f"Token {token}"
    return session


@dataclass
class LoadResult:
    statuses: dict[int, int] = field(default_factory=dict)
    created_ids: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    elapsed: float = 0.0

    @property
    def sent(self) -> int:
        return sum(self.statuses.values()) + len(self.errors)


def post_concurrently(base_url: str, users: dict[str, str], posts_each: int = POSTS_EACH, budget: float = 180):
    """Each user (username -> token) posts `posts_each` posts from a client of its own, all clients at once.

    Bounded: at most len(users) * posts_each requests, each with a timeout, and no new request after `budget` s.
    """
    deadline = time.monotonic() + budget

    def client(username: str, token: str) -> Iterable[tuple[int | None, int | None, str | None]]:
        outcomes = []
        with session_for(token) as session:
            for n in range(posts_each):
                if time.monotonic() > deadline:
                    outcomes.append((None, None, f"{username}: budget of {budget} s spent before post {n}"))
                    break
                try:
                    response = session.post(
                        f"{base_url}/api/users/{username}/collection",
                        json={"text": f"{username} post {n}"},
                        timeout=30,
                    )
                except requests.RequestException as exc:
                    outcomes.append((None, None, f"{username} post {n}: {exc}"))
                    continue
                created = response.json()["id"] if response.status_code == 201 else None
                outcomes.append((response.status_code, created, None))
        return outcomes

    result = LoadResult()
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=len(users)) as pool:
        for outcomes in pool.map(lambda item: client(*item), users.items()):
            for status, created, error in outcomes:
                if error:
                    result.errors.append(error)
                else:
                    result.statuses[status] = result.statuses.get(status, 0) + 1
                if created is not None:
                    result.created_ids.append(created)
    result.elapsed = time.monotonic() - started
    return result


def listed_texts(base_url: str, username: str) -> list[str]:
    """Every post text in a user's collection, following the pages."""
    texts: list[str] = []
    url: str | None = f"{base_url}/api/users/{username}/collection?page_size=100"
    for _ in range(100):  # bounded: 100 pages of 100
        if url is None:
            return texts
        page = requests.get(url, timeout=10)
        assert page.status_code == 200, page.text
        texts += [post["text"] for post in page.json()["results"]]
        url = page.json()["next"]
        assert url is None or url.startswith(f"{base_url}/"), f"a next link off the published address: {url}"
    raise AssertionError(f"{username}'s collection has more than 100 pages")
