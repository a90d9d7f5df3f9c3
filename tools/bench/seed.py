"""The microposts database the API endpoints read and write, seeded in the chain's app container before any run.

Every Django server of the bench (the chain, bare uWSGI, gunicorn, granian) shares the app-data volume, so they all
serve the same database: the reader (plan.READER) with `posts` posts, and the writer (plan.WRITER) whose token the
write endpoint sends. The users come from the app's own `manage.py createuser` (as an operator makes them); the posts
from one bulk insert in `manage.py shell`, with distinct timestamps so that the newest-first page is well defined.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field

from tools.bench.plan import READ_PATH, READER, WRITE_PATH, WRITER

# Runs in the app container (`manage.py shell -c`); argv carries nothing, the values are formatted in.
BULK = """
import datetime
from django.contrib.auth import get_user_model
from django.utils import timezone
from microposts.models import Micropost
user = get_user_model().objects.get(username={reader!r})
start = timezone.now() - datetime.timedelta(seconds={posts})
Micropost.objects.bulk_create(
    (Micropost(user=user, text=f"post {{i}} of the bench", created=start + datetime.timedelta(seconds=i))
     for i in range({posts})),
    batch_size=500,
)
print(Micropost.objects.filter(user=user).count())
"""

# What the read and the write answer, checked once in the app itself before any load: wrk only counts statuses of
# 400 and up, so a redirect or an empty page would otherwise pass for a fast read.
PROBE = """
import json
from django.test import Client
client = Client(HTTP_HOST="localhost")
read = client.get({read!r})
write = client.post({write!r}, {{"text": "probe"}}, content_type="application/json",
                    HTTP_AUTHORIZATION="Token " + {token!r})
page = read.json() if read.status_code == 200 else {{}}
print(json.dumps({{"read_status": read.status_code, "read_count": page.get("count"),
                  "read_results": len(page.get("results", [])), "write_status": write.status_code}}))
"""

COUNT = """
from microposts.models import Micropost
print(Micropost.objects.filter(user__username={user!r}).count())
"""


class SeedError(RuntimeError):
    """The database could not be seeded: the read and the write would measure errors."""


@dataclass(frozen=True)
class Seeded:
    posts: int
    writer_token: str
    probe: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        # The token stays out of the results: it is a credential, even of a throwaway user.
        return {"reader": READER, "writer": WRITER, "reader_posts": self.posts, "probe": self.probe}


def _manage(container: str, *args: str, timeout: float = 300) -> str:
    command = ["docker", "exec", container, "python", "manage.py", *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    if result.returncode != 0:
        raise SeedError(f"manage.py {args[0]} in {container} exited {result.returncode}: {result.stderr[-1500:]}")
    return result.stdout.strip()


def seed(container: str, posts: int) -> Seeded:
    """Create the reader with `posts` posts and the writer; return the writer's API token."""
    _manage(container, "createuser", READER)
    token = _manage(container, "createuser", WRITER)
    if len(token) != 40:
        raise SeedError(f"createuser {WRITER} printed {token[:60]!r}, not a token")
    counted = _manage(container, "shell", "-c", BULK.format(reader=READER, posts=posts))
    if counted.splitlines()[-1:] != [str(posts)]:
        raise SeedError(f"seeded {READER} with {posts} posts, but the collection counts {counted[-200:]!r}")
    out = _manage(container, "shell", "-c", PROBE.format(read=READ_PATH, write=WRITE_PATH, token=token))
    probe = json.loads(out.splitlines()[-1])
    expected = {"read_status": 200, "read_count": posts, "write_status": 201}
    if any(probe.get(k) != v for k, v in expected.items()) or not probe.get("read_results"):
        raise SeedError(f"the API does not answer as measured: {probe}, expected {expected} and a non-empty page")
    return Seeded(posts=posts, writer_token=token, probe=probe)


def count(container: str, username: str) -> int:
    """How many posts a user has (after the runs: the writes that landed)."""
    return int(_manage(container, "shell", "-c", COUNT.format(user=username)).splitlines()[-1])
