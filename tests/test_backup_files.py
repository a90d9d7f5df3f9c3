"""The archive of the app's files (tools/backup_files.py) without a stack: its scripts run by this host's Python on a
directory standing in for the data volume, and the host's check of an archive before a restore touches anything.
tests/test_backup.py runs them through `make backup` and `make restore` in the app's container."""

from __future__ import annotations

import gzip
import io
import json
import os
import sqlite3
import stat
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from tools import backup_files, progress
from tools.backup import kind_of, said_kept
from tools.stack import StackError


def run(script: str, root: Path, *args: str, stdin: bytes = b"") -> bytes:
    # As the app image's environment has them (docker/app/Dockerfile): the database and the uploads on the data volume.
    env = {**os.environ, "SQLITE_PATH": str(root / "db.sqlite3"), "MEDIA_ROOT": str(root / "uploads" / "media")}
    done = subprocess.run([sys.executable, "-c", script, *args], input=stdin, capture_output=True, env=env)
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout


def backup(root: Path, kind: str = "sqlite") -> bytes:
    return run(backup_files.BACKUP, root, kind, backup_files.MANIFEST, backup_files.FORMAT)


def restore(root: Path, archive: bytes, kind: str = "sqlite") -> None:
    run(backup_files.RESTORE, root, kind, backup_files.MANIFEST, stdin=archive)


def rows(path: Path) -> list[str]:
    with sqlite3.connect(path) as db:
        return [row[0] for row in db.execute("SELECT text FROM notes ORDER BY rowid")]


def database(path: Path, *texts: str) -> sqlite3.Connection:
    """A SQLite database in WAL mode, left open (its -wal file stays beside it, as under a running app)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE IF NOT EXISTS notes (text TEXT)")
    for text in texts:
        db.execute("INSERT INTO notes VALUES (?)", (text,))
    return db


def test_the_files_archive_holds_the_data_volume_but_the_database_and_a_restore_brings_back_that_state(tmp_path):
    """Backed up: every file, directory and link beside the app's database, and a snapshot of each other SQLite
    database (its journals left out). Restored: files changed or removed since are back, files added since are gone,
    a SQLite database the app holds open is copied into (not replaced), and the app's own database is left alone."""
    root = tmp_path / "data"
    app_db = database(root / "db.sqlite3", "the app's own, before")
    own_db = database(root / "cache" / "app.db", "kept in the backup")
    (root / "media").mkdir()
    (root / "media" / "a.bin").write_bytes(os.urandom(300_000))
    (root / "index.json").write_text('{"v": 1}')
    (root / "empty").mkdir()
    (root / "latest").symlink_to("media/a.bin")
    original = (root / "media" / "a.bin").read_bytes()
    assert (root / "cache" / "app.db-wal").exists() and (root / "db.sqlite3-wal").exists()

    archive = backup(root)
    listed = json.loads(run(backup_files.LISTING, root, "sqlite"))
    path = tmp_path / "b.files.tar.gz"
    path.write_bytes(archive)
    assert kind_of(path) == "files"
    held = backup_files.check(path)
    with tarfile.open(path) as tar:
        names = set(tar.getnames())
    assert names == {
        backup_files.MANIFEST,
        "cache",
        "cache/app.db",
        "media",
        "media/a.bin",
        "index.json",
        "empty",
        "latest",
    }
    assert held.files == 3 == len(listed["files"]), listed
    assert sorted(name for name, _ in listed["files"]) == ["cache/app.db", "index.json", "media/a.bin"]

    (root / "media" / "a.bin").unlink()
    (root / "index.json").write_text('{"v": 2}')
    (root / "media" / "added.bin").write_bytes(b"after the backup")
    (root / "added-dir").mkdir()
    (root / "added-dir" / "x").write_text("after")
    own_db.execute("INSERT INTO notes VALUES ('after the backup')")
    app_db.execute("INSERT INTO notes VALUES ('the app''s own, after')")

    restore(root, archive)
    assert (root / "media" / "a.bin").read_bytes() == original
    assert (root / "index.json").read_text() == '{"v": 1}'
    assert not (root / "media" / "added.bin").exists() and not (root / "added-dir").exists()
    assert (root / "empty").is_dir() and os.readlink(root / "latest") == "media/a.bin"
    assert [row[0] for row in own_db.execute("SELECT text FROM notes")] == ["kept in the backup"], (
        "seen by the open one"
    )
    assert rows(root / "db.sqlite3") == ["the app's own, before", "the app's own, after"], "the database's own backup"
    assert not [p for p in root.iterdir() if p.name.startswith((".backup-", ".restore-"))]
    own_db.close()
    app_db.close()


def test_a_restore_keeps_media_roots_directory_though_the_backup_did_not_hold_it(tmp_path):
    """The entry point makes MEDIA_ROOT for the app (uwsgi config 0.7.19), which may write there at any time: a backup
    made before it (or before the directory was made) restores its files, and leaves the directory, emptied."""
    root = tmp_path / "data"
    (root / "notes").mkdir(parents=True)
    (root / "notes" / "a").write_text("kept")
    archive = backup(root)
    media = root / "uploads" / "media"
    media.mkdir(parents=True)
    (media / "after.bin").write_bytes(b"uploaded after the backup")
    (root / "added-dir").mkdir()

    restore(root, archive)
    assert (root / "notes" / "a").read_text() == "kept"
    assert media.is_dir() and not list(media.iterdir())
    assert not (root / "added-dir").exists(), "any other directory the backup did not hold goes"


# Permission bits as an app leaves them: a read-only file (git's objects), a private one, an executable; a private
# directory and a shared one.
FILE_MODES = {"repo/objects/ab/cdef": 0o444, "keys/private.pem": 0o600, "hooks/run": 0o755}
DIRECTORY_MODES = {"keys": 0o700, "repo": 0o750}


def test_a_restore_gives_each_file_and_directory_its_permission_bits_as_backed_up(tmp_path):
    """Python's data filter unpacks with permission bits of its own: a read-only file came back writable, and a
    directory kept the bits it had. Each now has the bits it was backed up with."""
    root = tmp_path / "data"
    for relative in FILE_MODES:
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(relative)
    modes = {**FILE_MODES, **DIRECTORY_MODES}
    for relative, mode in modes.items():
        (root / relative).chmod(mode)
    archive = backup(root)
    for relative in modes:
        (root / relative).chmod(0o777 if relative in DIRECTORY_MODES else 0o666)
    (root / "keys" / "private.pem").unlink()

    restore(root, archive)
    assert {relative: stat.S_IMODE((root / relative).stat().st_mode) for relative in modes} == modes
    assert (root / "keys" / "private.pem").read_text() == "keys/private.pem"


def test_on_postgresql_the_files_archive_holds_every_file_of_the_data_volume(tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    (root / "db.sqlite3").write_text("not the database on PostgreSQL: an app's file like any other")
    path = tmp_path / "b.files.tar.gz"
    path.write_bytes(backup(root, "postgres"))
    with tarfile.open(path) as tar:
        assert tar.getnames() == [backup_files.MANIFEST, "db.sqlite3"]


def test_a_files_second_name_is_archived_as_a_link_to_the_first_and_restored_as_one(tmp_path):
    """A hard link (Mercurial's store and a clone beside it share files so): the check refused the archive, and `make
    backup` of such an app failed. A second name of a SQLite database links to its snapshot."""
    root = tmp_path / "data"
    (root / "repos" / "a").mkdir(parents=True)
    (root / "repos" / "a" / "data.i").write_bytes(os.urandom(100_000))
    (root / "repos" / "b").mkdir()
    os.link(root / "repos" / "a" / "data.i", root / "repos" / "b" / "data.i")
    database(root / "cache.db", "one database, two names").close()
    os.link(root / "cache.db", root / "cache-link.db")
    original = (root / "repos" / "a" / "data.i").read_bytes()

    path = tmp_path / "b.files.tar.gz"
    path.write_bytes(backup(root))
    with tarfile.open(path) as tar:
        links = {member.name: member.linkname for member in tar.getmembers() if member.islnk()}
    assert links == {"repos/b/data.i": "repos/a/data.i", "cache.db": "cache-link.db"}, links
    assert str(backup_files.check(path)) == "4 files, 0.1 MB"
    listed = dict(json.loads(run(backup_files.LISTING, root, "sqlite"))["files"])
    assert sum(listed.values()) == 100_000 + (root / "cache.db").stat().st_size, "a second name holds no bytes"

    (root / "repos" / "b" / "data.i").unlink()
    (root / "repos" / "a" / "data.i").write_bytes(b"changed")
    restore(root, path.read_bytes())
    first, second = root / "repos" / "a" / "data.i", root / "repos" / "b" / "data.i"
    assert first.read_bytes() == second.read_bytes() == original
    assert os.path.samefile(first, second) and first.stat().st_nlink == 2
    assert rows(root / "cache.db") == rows(root / "cache-link.db") == ["one database, two names"]


def archive(tmp_path: Path, *members: tuple[tarfile.TarInfo, bytes], manifest: dict | None = None) -> Path:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        if manifest is not None:
            data = json.dumps(manifest).encode()
            info = tarfile.TarInfo(backup_files.MANIFEST)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for info, data in members:
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    path = tmp_path / "x.files.tar.gz"
    path.write_bytes(buffer.getvalue())
    return path


def member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    return info, b"data" if kind == tarfile.REGTYPE else b""


OURS = {"format": backup_files.FORMAT, "root": "/var/lib/app"}

# (archive, the refusal's words)
REFUSED = {
    "a gzipped text": (lambda tmp: gz(tmp, b"not a backup\n" * 100), "is not a readable backup of the app's files"),
    "an archive without the manifest": (lambda tmp: archive(tmp, member("a")), f"no {backup_files.MANIFEST} first"),
    "another format's manifest": (
        lambda tmp: archive(tmp, member("a"), manifest={"format": "something else"}),
        "an archive of another format",
    ),
    "half an archive": (lambda tmp: truncated(archive(tmp, member("a"), manifest=OURS)), "is not a readable backup"),
    "a member above the data volume": (
        lambda tmp: archive(tmp, member("../etc/cron.d/x"), manifest=OURS),
        "outside the data volume",
    ),
    "an absolute member": (lambda tmp: archive(tmp, member("/etc/passwd"), manifest=OURS), "outside the data volume"),
    "a device": (
        lambda tmp: archive(tmp, member("null", tarfile.CHRTYPE), manifest=OURS),
        "neither a file, a directory nor a link",
    ),
    "a hard link to no file before it": (
        lambda tmp: archive(tmp, member("a", tarfile.LNKTYPE, "b"), member("b"), manifest=OURS),
        "holds a hard link a -> b, not to a file before it",
    ),
    "a hard link out of the data volume": (
        lambda tmp: archive(tmp, member("shadow", tarfile.LNKTYPE, "/etc/shadow"), manifest=OURS),
        "holds a hard link shadow -> /etc/shadow, not to a file",
    ),
    "a link out of the data volume": (
        lambda tmp: archive(tmp, member("shadow", tarfile.SYMTYPE, "/etc/shadow"), manifest=OURS),
        "out of the data volume",
    ),
}


def gz(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "x.gz"
    path.write_bytes(gzip.compress(data))
    return path


def truncated(path: Path) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


@pytest.mark.parametrize("case", list(REFUSED))
def test_an_archive_that_is_not_a_whole_backup_of_the_apps_files_is_refused_before_anything_is_unpacked(tmp_path, case):
    make, words = REFUSED[case]
    with pytest.raises(StackError) as refused:
        backup_files.check(make(tmp_path))
    assert words in str(refused.value), refused.value


def test_a_whole_archive_of_ours_passes_the_check_with_its_count_and_size(tmp_path):
    path = archive(tmp_path, member("a"), member("media/b"), member("c"), manifest=OURS)
    assert str(backup_files.check(path)) == "3 files, 0.0 MB"


# A name in the data volume as an app's user may choose it (an upload's) -> as make backup's lines show it.
SHOWN = {
    "media": "media",
    "café ✓.txt": "café ✓.txt",
    "caf\udce9-latin1.txt": "caf\\xe9-latin1.txt",  # the byte 0xE9, not UTF-8: Python's surrogate escape
    "\x1b[31mRED\x1b[0m": "\\x1b[31mRED\\x1b[0m",
    "a\nb\tc\r": "a\\x0ab\\x09c\\x0d",
    "evil\u202etxt.exe": "evil\\u202etxt.exe",  # a right-to-left override
    "back\\slash": "back\\\\slash",
}


@pytest.mark.parametrize("name", list(SHOWN))
def test_a_name_is_shown_with_its_control_characters_and_undecodable_bytes_escaped(name):
    assert progress.printable(name) == SHOWN[name]


def test_the_summary_names_each_top_entry_printably():
    listing = {
        "root": "/var/lib/app",
        "files": [["\x1b[2Jx.txt", 10], ["media/\x1b]0;title\x07/a.png", 2_000_000], ["media/b", 500_000]],
    }
    summary = backup_files.summed_up(listing, "app")
    assert summary == (
        "\\x1b[2Jx.txt (1 file, 0.0 MB), media/ (2 files, 2.5 MB) in /var/lib/app (the app service's data volume)"
    )
    assert backup_files.summed_up({"root": "/var/lib/app", "files": []}, "app") == ""


def test_a_refusal_shows_the_archives_names_printably(tmp_path):
    path = archive(tmp_path, member("\x1b[31m/../../x"), manifest=OURS)
    with pytest.raises(StackError) as refused:
        backup_files.check(path)
    assert "holds \\x1b[31m/../../x, outside the data volume" in str(refused.value), refused.value
    assert "\x1b" not in str(refused.value)


def test_the_command_that_undoes_a_restore_is_quoted_for_a_shell_where_its_path_needs_it(capsys):
    """A BACKUP_DIR with a space: the command said was cut there when pasted into a shell."""
    said_kept(Path("/srv/my backups/app-20261208T000000Z-before-restore.sqlite3"))
    said = capsys.readouterr().out
    assert "(make restore 'BACKUP=/srv/my backups/app-20261208T000000Z-before-restore.sqlite3' brings it back)" in said
    said_kept(Path("backups/app-before-restore.sqlite3"))
    assert "(make restore BACKUP=backups/app-before-restore.sqlite3 brings it back)" in capsys.readouterr().out
