"""`make backup` and `make restore` of the default app's data, while the stack serves: SQLite in both topologies
(the online backup API inside the app container) and PostgreSQL (pg_dump of a throwaway server on the host, as in
tests/test_postgres.py). Each stack is the tests' own; backups go to a temporary BACKUP_DIR.
"""

from __future__ import annotations

import gzip
import json
import shlex
import sqlite3
import subprocess
import threading
from pathlib import Path

import pytest
import requests

from tests.harness import OwnStack, app_sql, backup_env, docker, make, poll
from tests.host_postgres import stack_on
from tests.microposts_api import create_user, create_users, listed_texts, post_concurrently, unique
from tools import settings

pytestmark = pytest.mark.lifecycle


def make_backup(env: dict[str, str]) -> Path:
    before = set(Path(env["BACKUP_DIR"]).glob("*"))
    result = make("backup", env)
    assert result.returncode == 0, result.stdout + result.stderr
    [backup] = set(Path(env["BACKUP_DIR"]).glob("*")) - before
    assert backup.name.startswith(env["COMPOSE_PROJECT_NAME"] + "-"), backup.name
    assert f"backup: {backup} (" in result.stdout, result.stdout
    # The default app keeps nothing in its data volume but its database: one file, nothing else to archive.
    assert not result.stderr.strip(), result.stderr
    assert backup.stat().st_mode & 0o077 == 0, "a backup is its owner's only"
    return backup


def make_restore(env: dict[str, str], backup: Path | str) -> subprocess.CompletedProcess:
    return make("restore", {**env, "BACKUP": str(backup)})


class Author:
    """A user of the app with an API token, posting through the published port."""

    def __init__(self, deployment, container: str):
        self.base_url, self.name = deployment.base_url, unique("backup-author")
        self.auth = {"Authorization": f"Token {create_user(container, self.name)}"}

    def post(self, text: str) -> str:
        response = requests.post(
            f"{self.base_url}/api/users/{self.name}/collection", json={"text": text}, headers=self.auth, timeout=10
        )
        assert response.status_code == 201, response.text
        return response.json()["href"]

    def delete(self, href: str) -> None:
        assert requests.delete(href, headers=self.auth, timeout=10).status_code == 204

    def texts(self) -> list[str]:
        return listed_texts(self.base_url, self.name)


def kept_before_restore(restored: subprocess.CompletedProcess, env: dict[str, str], suffix: str) -> Path:
    """The backup of what a restore replaced, as its output names it: written before it, in BACKUP_DIR."""
    [line] = [line for line in restored.stdout.splitlines() if line.startswith("restore: what it replaces is kept in ")]
    path = Path(line.removeprefix("restore: what it replaces is kept in ").split(" (")[0])
    assert path.parent == Path(env["BACKUP_DIR"]) and path.name.endswith(f"-before-restore{suffix}"), line
    assert f"(make restore {shlex.quote(f'BACKUP={path}')} brings it back)" in line, line
    assert path.stat().st_mode & 0o077 == 0, "a backup is its owner's only"
    return path


def round_trip(deployment, container: str, env: dict[str, str], restored_check=lambda: None) -> Path:
    """A post made before the backup and deleted after it is back after the restore; one made after it is gone
    (`restored_check` then looks further). Restoring the copy the restore kept of what it replaced undoes it."""
    author = Author(deployment, container)
    kept = author.post("made before the backup")
    backup = make_backup(env)
    author.delete(kept)
    author.post("made after the backup")
    assert author.texts() == ["made after the backup"]

    restored = make_restore(env, backup)
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert author.texts() == ["made before the backup"]
    assert requests.get(kept, timeout=10).status_code == 200
    restored_check()

    undone = make_restore(env, kept_before_restore(restored, env, backup.suffix))
    assert undone.returncode == 0, undone.stdout + undone.stderr
    assert author.texts() == ["made after the backup"], "the restore of the copy it kept undoes it"
    return backup


# --- SQLite ------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=list(settings.TOPOLOGIES))
def sqlite_stack(request, tmp_path_factory):
    topology = request.param
    stack = OwnStack(tmp_path_factory.mktemp(f"backup-{topology}"), topology=topology, prefix="wct-backup")
    with stack.running(build=topology == "single") as deployment:
        yield topology, deployment


def test_a_post_deleted_after_a_sqlite_backup_is_back_after_the_restore(sqlite_stack, tmp_path):
    _, deployment = sqlite_stack
    backup = round_trip(deployment, deployment.app_container, backup_env(deployment, tmp_path))
    assert backup.suffix == ".sqlite3"
    with sqlite3.connect(f"file:{backup}?mode=ro", uri=True) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        texts = [row[0] for row in db.execute("SELECT text FROM microposts_micropost")]
    assert "made before the backup" in texts


def post_count(container: str) -> int:
    return int(app_sql(container, query="SELECT count(*) FROM microposts_micropost"))


def test_a_sqlite_backup_taken_under_write_load_is_consistent_and_restores_to_a_sound_database(
    sqlite_stack, tmp_path, load_report
):
    topology, deployment = sqlite_stack
    container, env = deployment.app_container, backup_env(deployment, tmp_path)
    writers = create_users(container, [unique("load-writer") for _ in range(4)])
    before = post_count(container)
    results: list = []
    load = threading.Thread(target=lambda: results.append(post_concurrently(deployment.base_url, writers, 100)))
    load.start()
    try:
        poll(lambda: post_count(container) > before, timeout=60, what="the write load under way")
        backup = make_backup(env)
    finally:
        load.join(timeout=200)
    [written] = results
    assert written.statuses == {201: 400}, written.statuses
    after = post_count(container)
    with sqlite3.connect(f"file:{backup}?mode=ro", uri=True) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        in_backup = db.execute("SELECT count(*) FROM microposts_micropost").fetchone()[0]
    # A snapshot from some moment of the load: every post before it, some of the load's, none from after.
    assert before < in_backup <= after == before + 400
    load_report.append(
        f"backup under write load ({topology}, 4 writers x 100 posts): the backup holds {in_backup - before} of the "
        f"load's 400 posts, integrity_check ok"
    )

    restored = make_restore(env, backup)
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert app_sql(container, query="PRAGMA integrity_check") == "ok"
    assert post_count(container) == in_backup


# Written into the app's data volume by the app's own Python (its user, its container), as an app's uploads would be.
WRITE_FILES = (
    "import os, sys\n"
    "for path, size in zip(sys.argv[1::2], sys.argv[2::2]):\n"
    "    path = os.path.join('/var/lib/app', path); os.makedirs(os.path.dirname(path), exist_ok=True)\n"
    "    open(path, 'wb').write(os.urandom(int(size)))"
)
# The data volume's files but the app's database, as {path: (bytes, sha256, names of the file)}.
READ_FILES = (
    "import hashlib, json, os\n"
    "found = {}\n"
    "for directory, _, files in os.walk('/var/lib/app'):\n"
    "    for file in files:\n"
    "        path = os.path.join(directory, file); relative = os.path.relpath(path, '/var/lib/app')\n"
    "        if not relative.startswith('db.sqlite3'):\n"
    "            data = open(path, 'rb').read()\n"
    "            found[relative] = [len(data), hashlib.sha256(data).hexdigest(), os.stat(path).st_nlink]\n"
    "print(json.dumps(found))"
)


def write_files(container: str, files: dict[str, int]) -> None:
    docker("exec", container, "python", "-c", WRITE_FILES, *(str(x) for item in files.items() for x in item))


def read_files(container: str) -> dict[str, list]:
    return json.loads(docker("exec", container, "python", "-c", READ_FILES))


def new_backups(env: dict[str, str], target: str) -> tuple[subprocess.CompletedProcess, list[Path]]:
    before = set(Path(env["BACKUP_DIR"]).glob("*"))
    result = make(target, env)
    return result, sorted(set(Path(env["BACKUP_DIR"]).glob("*")) - before)


def test_the_files_beside_the_database_are_archived_beside_its_backup_and_a_restore_brings_back_their_state(
    sqlite_stack, tmp_path
):
    """An app's uploads or media in its data volume: `make backup` writes an archive of them beside the database's
    backup, named alike, and says what it holds. Restoring it brings back a file removed since, removes one added
    since, and leaves the database as it is (it has its own backup). A file's second name (a hard link) comes back
    as one."""
    _, deployment = sqlite_stack
    container, env = deployment.app_container, backup_env(deployment, tmp_path)
    author = Author(deployment, container)
    write_files(container, {"media/avatars/a.png": 2_000_000, "media/b.pdf": 500_000, "index.json": 10})
    docker("exec", container, "ln", "/var/lib/app/media/avatars/a.png", "/var/lib/app/media/a-again.png")
    try:
        backed_up = read_files(container)
        result, written = new_backups(env, "backup")
        assert result.returncode == 0, result.stdout + result.stderr
        files, database = written  # sorted: <stem>.files.tar.gz before <stem>.sqlite3
        assert database.suffix == ".sqlite3" and files.name == database.name.removesuffix(".sqlite3") + ".files.tar.gz"
        assert f"backup: {files} (" in result.stdout
        assert "index.json (1 file, 0.0 MB), media/ (3 files, 2.5 MB) in /var/lib/app" in result.stdout, result.stdout
        assert "restore each" in result.stdout and not result.stderr.strip(), result.stderr
        assert files.stat().st_mode & 0o077 == 0, "a backup is its owner's only"

        docker("exec", container, "rm", "/var/lib/app/media/b.pdf", "/var/lib/app/media/a-again.png")
        write_files(container, {"media/added.bin": 1000, "index.json": 20})
        author.post("made after the backup")
        replaced = read_files(container)
        restored = make_restore(env, files)
        assert restored.returncode == 0, restored.stdout + restored.stderr
        assert f"restore: the app's files (4 files, 2.5 MB) are now those of {files}" in restored.stdout
        assert read_files(container) == backed_up
        assert author.texts() == ["made after the backup"], "the database is left as it is"
        # The files it replaced were archived first (the database, not replaced, was not): that archive undoes it.
        before = kept_before_restore(restored, env, ".files.tar.gz")
        assert not list(Path(env["BACKUP_DIR"]).glob("*-before-restore.sqlite3"))
        undone = make_restore(env, before)
        assert undone.returncode == 0, undone.stdout + undone.stderr
        assert read_files(container) == replaced
    finally:
        docker("exec", container, "rm", "-rf", "/var/lib/app/media", "/var/lib/app/index.json")
    make_backup(env)  # the files gone, the database's backup alone


def not_the_apps_database(path: Path) -> Path:
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE notes (text TEXT)")
    return path


def truncated(backup: Path, path: Path) -> Path:
    data = backup.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


REFUSALS = {
    "no file named": (lambda backup, tmp: "", "name the backup to restore: make restore BACKUP=backups/<file>"),
    "a missing file": (lambda backup, tmp: tmp / "gone.sqlite3", "no such file; nothing was changed"),
    "a text file": (
        lambda backup, tmp: (tmp / "notes.txt").write_text("not a backup\n") and tmp / "notes.txt",
        "is not a backup (neither a SQLite database, a pg_dump archive nor an archive of the app's files); nothing "
        "was changed",
    ),
    "another program's SQLite database": (
        lambda backup, tmp: not_the_apps_database(tmp / "other.sqlite3"),
        "is a SQLite database, but not of the app's database: none of its tables (notes) is in the app's",
    ),
    "half a backup": (lambda backup, tmp: truncated(backup, tmp / "half.sqlite3"), "is not a usable SQLite database"),
    "a gzipped file that is not a backup": (
        lambda backup, tmp: (tmp / "x.files.tar.gz").write_bytes(gzip.compress(b"text")) and tmp / "x.files.tar.gz",
        "is not a readable backup of the app's files",
    ),
    "a PostgreSQL archive on a SQLite stack": (
        lambda backup, tmp: (tmp / "x.pgdump").write_bytes(b"PGDMP\x01\x0e\x00") and tmp / "x.pgdump",
        "is a postgres backup, but the app runs on SQLite; nothing was changed",
    ),
}


# The checks come before any container is touched: the split topology covers them.
@pytest.mark.parametrize("sqlite_stack", ["split"], indirect=True)
@pytest.mark.parametrize("case", list(REFUSALS))
def test_restore_refuses_what_is_not_a_backup_with_a_clear_message_and_changes_nothing(sqlite_stack, tmp_path, case):
    _, deployment = sqlite_stack
    env = backup_env(deployment, tmp_path / "backups")
    author = Author(deployment, deployment.app_container)
    author.post("made before the backup")
    backup = make_backup(env)
    author.post("made after the backup")
    count = post_count(deployment.app_container)

    make_file, message = REFUSALS[case]
    result = make_restore(env, make_file(backup, tmp_path))
    assert result.returncode != 0
    [line] = result.stderr.strip().splitlines()[:1]
    assert line.startswith("restore: error: ") and message in line, result.stderr
    assert author.texts() == ["made after the backup", "made before the backup"]
    assert post_count(deployment.app_container) == count
    assert list(Path(env["BACKUP_DIR"]).iterdir()) == [backup], "a refused restore writes no copy of the data either"


# --- PostgreSQL --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pg_stack(postgres, tmp_path_factory):
    stack = stack_on(postgres, tmp_path_factory.mktemp("backup-pg"), prefix="wct-backup-pg")
    try:
        yield stack.start()
    finally:
        stack.stop()


def pg_env(pg_stack, postgres, tmp_path) -> dict[str, str]:
    # pg_dump runs on this host: the database as the host reaches it (the socket's host directory). The stack's
    # compose files need PG_SOCKET_DIR to be read.
    url = postgres.url(postgres.socket_dir)
    return backup_env(pg_stack, tmp_path, BACKUP_DATABASE_URL=url, PG_SOCKET_DIR=str(postgres.socket_dir))


def test_a_post_deleted_after_a_postgresql_backup_is_back_after_the_restore(pg_stack, postgres, tmp_path):
    env = pg_env(pg_stack, postgres, tmp_path)

    def stored_in_postgresql() -> None:
        query = "SELECT count(*) FROM microposts_micropost WHERE text = 'made before the backup'"
        assert postgres.psql(query, database="microposts") == "1"

    backup = round_trip(pg_stack, pg_stack.app_container, env, stored_in_postgresql)
    assert backup.suffix == ".pgdump"
    listing = subprocess.run(["pg_restore", "--list", str(backup)], capture_output=True, text=True, check=True)
    assert " TABLE public microposts_micropost " in listing.stdout


def test_a_sqlite_backup_is_refused_by_a_postgresql_stack(pg_stack, postgres, tmp_path):
    env = pg_env(pg_stack, postgres, tmp_path)
    fake = tmp_path / "x.sqlite3"
    with sqlite3.connect(fake) as db:
        db.execute("CREATE TABLE django_migrations (id INTEGER)")
    result = make_restore(env, fake)
    assert result.returncode != 0
    assert "is a sqlite backup, but the app runs on PostgreSQL (DATABASE_URL); nothing was changed" in result.stderr
