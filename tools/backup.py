"""Back up the app's data and bring it back while the stack serves: `python -m tools.backup backup|restore FILE`.

- SQLite (the app's DATABASE_URL unset): SQLite's online backup API, run inside the app container, copies the live
  database in one step, a consistent snapshot even while the workers write (in WAL mode readers never block the
  writer). The copy is checked (PRAGMA integrity_check) and streamed out.
- PostgreSQL (DATABASE_URL set): pg_dump's custom format, one consistent snapshot. pg_dump runs in the stack's
  `postgres` service when it has one (the compose profile: the server's own version), else on this host against
  BACKUP_DATABASE_URL, the database as this host reaches it (default: the app's DATABASE_URL).

- The files an app keeps in its data volume beside the database (uploads, media, its own SQLite files), or instead of
  one: an archive of them beside the database's backup (tools/backup_files.py).

A backup lands in BACKUP_DIR (default backups/) as <project>-<UTC time>.sqlite3 or .pgdump, and .files.tar.gz when
the data volume holds other files, each under a temporary name until it is complete and checked. A restore (one file
at a time) checks the file before anything else (a SQLite database that passes integrity_check, or a pg_dump archive,
sharing a table with the app's database, of the kind the stack runs on; or an archive of the app's files) and refuses
anything else without changing a thing. It then backs up what it is about to replace (<project>-<UTC
time>-before-restore.<suffix>, and says so: a restore of the wrong file is undone by restoring that one), replaces the
data in place (SQLite's backup API into the live
database; pg_restore --clean in a single transaction; the files moved into place) and runs the app's pre-start hook
(its migrations), which brings an older backup's schema up to date.

It acts on the stack that runs in COMPOSE_PROJECT_NAME (default wsgi-chain), whichever its topology. Settings from
the environment: COMPOSE_PROJECT_NAME, BACKUP_DIR, BACKUP_DATABASE_URL.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import shlex
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote, urlsplit

from tools import backup_files
from tools.compose import ROOT, Compose
from tools.stack import StackError, env, project_name, running_stack, server_service

SQLITE_MAGIC = b"SQLite format 3\x00"
PGDUMP_MAGIC = b"PGDMP"
SUFFIXES = {"sqlite": ".sqlite3", "postgres": ".pgdump", "files": backup_files.SUFFIX}
# A pg_restore --list line of a table's definition ("215; 1259 16386 TABLE public notes app"), not of its data.
PG_TABLE = re.compile(r"^\d+; \d+ \d+ TABLE (\S+) (\S+) ", re.MULTILINE)

# Run by the app's Python in its container. The copy goes next to the database (the app's data volume, not the
# small /tmp), leaves in rollback-journal mode (one self-contained file), and is removed whatever happens.
SQLITE_BACKUP = (
    backup_files.SNAPSHOT
    + r"""
import os, shutil, sqlite3, sys
path = os.environ.get("SQLITE_PATH") or "db.sqlite3"
if not os.path.isfile(path):
    sys.exit(3)  # NO_DATABASE in tools/backup.py
copy = os.path.join(os.path.dirname(path), f".backup-{os.getpid()}.sqlite3")
try:
    snapshot(path, copy)
    with open(copy, "rb") as f:
        shutil.copyfileobj(f, sys.stdout.buffer)
finally:
    for name in (copy, copy + "-journal"):
        if os.path.exists(name):
            os.unlink(name)
"""
)

# SQLITE_BACKUP's exit status when the app has no SQLite database at SQLITE_PATH.
NO_DATABASE = 3

# The backup arrives on stdin, already checked on the host; it is checked again here, then copied into the live
# database in one step (the writers wait for the lock meanwhile, up to the timeout).
SQLITE_RESTORE = r"""
import os, shutil, sqlite3, sys
path = os.environ.get("SQLITE_PATH") or "db.sqlite3"
incoming = os.path.join(os.path.dirname(path), f".restore-{os.getpid()}.sqlite3")
try:
    with open(incoming, "wb") as f:
        shutil.copyfileobj(sys.stdin.buffer, f)
    source = sqlite3.connect(incoming)
    check = source.execute("PRAGMA integrity_check").fetchone()[0]
    if check != "ok":
        sys.exit(f"the backup fails integrity_check in the container: {check}; nothing was changed")
    target = sqlite3.connect(path, timeout=60)
    source.backup(target)
    target.close()
    source.close()
finally:
    for name in (incoming, incoming + "-journal"):
        if os.path.exists(name):
            os.unlink(name)
"""


@dataclass
class Database:
    """Where the running app keeps its data, and how to reach it for a dump or a restore."""

    stack: Compose
    service: str  # the app's service
    url: str  # the app's DATABASE_URL; empty: SQLite
    pg_service: bool  # the stack runs PostgreSQL itself (the `postgres` service of the compose profile)

    @property
    def kind(self) -> str:
        return "postgres" if self.url else "sqlite"

    def pg_names(self) -> tuple[str, str]:
        """The role and database in the app's DATABASE_URL."""
        parts = urlsplit(self.url)
        return unquote(parts.username or ""), unquote(parts.path.lstrip("/"))

    def python(self, script: str, *args: str) -> list[str]:
        """A script run by the app's Python in its container (stdin and stdout passed through)."""
        return self.stack.command("exec", "-T", self.service, "python", "-c", script, *args)

    def host_url(self) -> str:
        return env("BACKUP_DATABASE_URL", self.url)

    def pg_command(self, tool: str, *args: str, connect: bool = True) -> list[str]:
        """pg_dump or pg_restore, in the postgres service (local socket, its own version) or on this host."""
        if self.pg_service:
            role, name = self.pg_names()
            target = ("--username", role, "--dbname", name) if connect else ()
            return self.stack.command("exec", "-T", "postgres", tool, *target, *args)
        if shutil.which(tool) is None:
            raise StackError(
                f"{tool} is not installed on this host: install PostgreSQL's client tools (Debian: postgresql-client), "
                "of the server's major version or newer"
            )
        return [tool, *(("--dbname", self.host_url()) if connect else ()), *args]


def locate() -> Database:
    """The stack that runs (its topology read off its containers, as `make shell` does) and its app's database."""
    stack = running_stack()
    if stack is None:
        raise StackError(f"no stack runs in compose project {project_name()}: start one with `make up`")
    service = server_service(stack)
    running = {c.service: c.name for c in stack.containers() if c.status == "running"}
    if service not in running:
        raise StackError(f"the stack's {service} service is not running: start it with `make up` first")
    environment = subprocess.run(
        ["docker", "inspect", "-f", "{{range .Config.Env}}{{println .}}{{end}}", running[service]],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    url = next((line.partition("=")[2] for line in environment if line.startswith("DATABASE_URL=")), "")
    if url and urlsplit(url).scheme not in ("postgres", "postgresql", "pgsql"):
        raise StackError(
            f"the app's DATABASE_URL is a {urlsplit(url).scheme} database: backups cover SQLite and PostgreSQL"
        )
    return Database(stack=stack, service=service, url=url, pg_service="postgres" in running)


# --- checks ------------------------------------------------------------------------------------------------------

# Run by the app's Python in its container: the tables of the app's live SQLite database, as JSON (none: no database).
LIVE_TABLES = r"""
import json, os, sqlite3
path = os.environ.get("SQLITE_PATH") or "db.sqlite3"
tables = []
if os.path.isfile(path):
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=60) as db:
        tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
print(json.dumps(tables))
"""


def kind_of(path: Path) -> str | None:
    with path.open("rb") as f:
        head = f.read(len(SQLITE_MAGIC))
    if head == SQLITE_MAGIC:
        return "sqlite"
    if head.startswith(PGDUMP_MAGIC):
        return "postgres"
    if backup_files.is_archive(head):
        return "files"
    return None


def not_the_apps(path: Path, kind: str, tables: set[str], live: set[str]) -> None:
    """A database backup shares a table with the app's live database (any app's: no framework's table is assumed),
    unless that has none yet."""
    if live and not tables & live:
        held = ", ".join(sorted(tables)[:5]) or "none"
        raise StackError(
            f"{path} is a {kind}, but not of the app's database: none of its tables ({held}) is in the app's"
        )


def check_sqlite(path: Path, live: set[str] | None = None) -> None:
    """A SQLite database that passes integrity_check, and (live: the app's tables now) one of the app's; read only."""
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            check = db.execute("PRAGMA integrity_check").fetchone()[0]
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.DatabaseError as exc:
        raise StackError(f"{path} is not a usable SQLite database ({exc})") from None
    if check != "ok":
        raise StackError(f"{path} fails SQLite's integrity_check: {check}")
    if live is not None:
        not_the_apps(path, "SQLite database", tables, live)


def check_pgdump(path: Path, database: Database, live: set[str] | None = None) -> None:
    """An archive pg_restore can read, and (live: the app's tables now) one of the app's database."""
    with path.open("rb") as archive:
        listing = subprocess.run(
            database.pg_command("pg_restore", "--list", connect=False),
            stdin=archive,
            capture_output=True,
            text=True,
        )
    if listing.returncode != 0:
        raise StackError(f"{path} is not an archive pg_restore can read: {listing.stderr.strip()[:300]}")
    if live is not None:
        tables = {f"{schema}.{name}" for schema, name in PG_TABLE.findall(listing.stdout)}
        not_the_apps(path, "pg_dump archive", tables, live)


def live_tables(database: Database) -> set[str]:
    """The tables of the app's database now (PostgreSQL: schema.name)."""
    if database.kind == "sqlite":
        command = database.python(LIVE_TABLES)
        return set(json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout))
    query = (
        "SELECT schemaname || '.' || tablename FROM pg_tables "
        "WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"
    )
    command = database.pg_command("psql", "--no-psqlrc", "--tuples-only", "--no-align", "--command", query)
    listed = subprocess.run(command, capture_output=True, text=True)
    if listed.returncode != 0:
        raise StackError(f"the app's database could not be read: {listed.stderr.strip()[:300]}")
    return set(listed.stdout.split())


# --- backup ------------------------------------------------------------------------------------------------------


def backup_dir() -> Path:
    directory = Path(env("BACKUP_DIR", str(ROOT / "backups")))
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def new_name(directory: Path, kind: str, label: str = "") -> Path:
    """<project>-<UTC time>[-<label>][-<n>]<the kind's suffix>, a name no file in directory has."""
    project = project_name()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + (f"-{label}" if label else "")
    for n in range(100):
        path = directory / f"{project}-{stamp}{f'-{n}' if n else ''}{SUFFIXES[kind]}"
        if not path.exists():
            return path
    raise StackError(f"100 backups named {project}-{stamp}* already in {directory}")


def backup() -> list[tuple[Path, str]]:
    """Each file written (the database's, then the files'), with what it holds."""
    database = locate()
    directory = backup_dir()
    written: list[tuple[Path, str]] = []
    try:
        dumped = dump_database(database, directory)
        if dumped:
            written.append((dumped, f"the app's {'PostgreSQL' if database.kind == 'postgres' else 'SQLite'} database"))
        beside = uncovered(database)
        if beside:
            stem = dumped.name.removesuffix(SUFFIXES[database.kind]) if dumped else None
            target = directory / f"{stem}{backup_files.SUFFIX}" if stem else new_name(directory, "files")
            written.append((archive_files(database, directory, target), beside))
        elif not dumped:
            raise StackError(
                "the app has no database (DATABASE_URL is unset, and there is no SQLite database at its SQLITE_PATH) "
                "and its data volume holds no file, so there is nothing to back up (or its pre-start hook never ran); "
                "nothing was written"
            )
    except BaseException:
        for path, _ in written:
            path.unlink(missing_ok=True)  # a backup is whole or not there
        raise
    return written


@contextlib.contextmanager
def written_by(command: list[str], directory: Path) -> Iterator[tuple[Path, subprocess.CompletedProcess]]:
    """The command's output in a temporary file in BACKUP_DIR, and its result (stderr kept); the file is removed after,
    unless kept() renamed it."""
    with tempfile.NamedTemporaryFile(dir=directory, prefix=".partial-", delete=False) as partial:
        result = subprocess.run(command, stdout=partial, stderr=subprocess.PIPE, text=False)
    path = Path(partial.name)
    try:
        yield path, result
    finally:
        path.unlink(missing_ok=True)


def kept(partial: Path, target: Path) -> Path:
    """A complete, checked backup under its final name."""
    partial.chmod(0o600)  # the app's data: its owner's only
    partial.rename(target)
    return target


def dump_database(database: Database, directory: Path, label: str = "") -> Path | None:
    """The database's backup, checked; None for an app with no SQLite database at SQLITE_PATH."""
    if database.kind == "sqlite":
        command = database.python(SQLITE_BACKUP)
    else:
        command = database.pg_command("pg_dump", "--format", "custom")
    with written_by(command, directory) as (partial, result):
        if database.kind == "sqlite" and result.returncode == NO_DATABASE:
            return None
        if result.returncode != 0:
            raise StackError(f"the {database.kind} backup failed: {result.stderr.decode(errors='replace').strip()}")
        if kind_of(partial) != database.kind:
            raise StackError(f"the {database.kind} backup came out as something else; nothing was kept")
        if database.kind == "sqlite":
            check_sqlite(partial)
        else:
            check_pgdump(partial, database)
        return kept(partial, new_name(directory, database.kind, label))


def archive_files(database: Database, directory: Path, target: Path) -> Path:
    """The archive of the data volume's files but the database (tools/backup_files.py), checked, at target."""
    args = (database.kind, backup_files.MANIFEST, backup_files.FORMAT)
    with written_by(database.python(backup_files.BACKUP, *args), directory) as (partial, result):
        if result.returncode != 0:
            said = result.stderr.decode(errors="replace").strip().splitlines()
            raise StackError(f"the backup of the app's files failed: {said[-1] if said else result.returncode}")
        backup_files.check(partial)
        return kept(partial, target)


def uncovered(database: Database) -> str:
    """What the app's data volume holds beside its database (the files' archive), summed up by top entry ("media/ (3
    files, 1.2 MB)"); empty when nothing."""
    command = database.python(backup_files.LISTING, database.kind)
    listing = json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout)
    return backup_files.summed_up(listing, database.service)


# --- restore -----------------------------------------------------------------------------------------------------


# What a restore replaces is backed up first, under this label: a restore of the wrong file, or one that fails half
# way through the files, loses nothing.
BEFORE_RESTORE = "before-restore"


def keep_what_it_replaces(database: Database, kind: str) -> Path | None:
    """A backup of the data a restore of `kind` is about to replace (BEFORE_RESTORE in its name); None when there is
    none (no SQLite database yet, no file beside it)."""
    directory = backup_dir()
    if kind != "files":
        return dump_database(database, directory, BEFORE_RESTORE)
    if not uncovered(database):
        return None
    return archive_files(database, directory, new_name(directory, "files", BEFORE_RESTORE))


def restore(file: str, replaced: Callable[[Path], None] = lambda path: None) -> str:
    """What of the app's data is now the backup's. Once the backup passed its checks, and before anything changes,
    what it replaces is backed up and handed to `replaced`."""
    if not file:
        raise StackError("name the backup to restore: make restore BACKUP=backups/<file>")
    path = Path(file)
    if not path.is_file():
        raise StackError(f"{file}: no such file; nothing was changed")
    kind = kind_of(path)
    if kind is None:
        raise StackError(
            f"{file} is not a backup (neither a SQLite database, a pg_dump archive nor an archive of the app's files); "
            "nothing was changed"
        )
    if kind == "files":
        held = backup_files.check(path)
    database = locate()
    if kind not in ("files", database.kind):
        running = "PostgreSQL (DATABASE_URL)" if database.url else "SQLite"
        raise StackError(f"{file} is a {kind} backup, but the app runs on {running}; nothing was changed")
    if kind == "files":
        args = (database.kind, backup_files.MANIFEST)
        command = database.python(backup_files.RESTORE, *args)
        what = f"files ({held}) are now those"
    elif kind == "sqlite":
        check_sqlite(path, live_tables(database))
        command = database.python(SQLITE_RESTORE)
        what = "SQLite database is now that"
    else:
        check_pgdump(path, database, live_tables(database))
        args = ("--clean", "--if-exists", "--single-transaction", "--exit-on-error", "--no-owner", "--no-privileges")
        command = database.pg_command("pg_restore", *args)
        what = "PostgreSQL database is now that"
    before = keep_what_it_replaces(database, kind)
    if before:
        replaced(before)
    with path.open("rb") as data:
        result = subprocess.run(command, stdin=data, capture_output=True)
    if result.returncode != 0:
        raise StackError(f"the restore failed: {result.stderr.decode(errors='replace').strip()[-1000:]}")
    # The backup may predate the app's latest migrations: its pre-start hook brings the schema up to date.
    hook = database.stack.run("exec", "-T", database.service, "app-entrypoint", "prestart", check=False, capture=True)
    if hook.returncode != 0:
        raise StackError(f"restored, but the app's pre-start hook (migrations) failed: {hook.stderr.strip()[-1000:]}")
    return what


def said_kept(path: Path) -> None:
    # The command as a shell takes it, quoted where the path needs it (a BACKUP_DIR with a space).
    command = f"make restore {shlex.quote(f'BACKUP={path}')}"
    print(f"restore: what it replaces is kept in {path} ({command} brings it back)", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.backup")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("backup", help="write a consistent backup of the app's data to BACKUP_DIR")
    restore_parser = sub.add_parser("restore", help="bring the app's data back from a backup")
    restore_parser.add_argument("file", nargs="?", default="")
    args = parser.parse_args(argv)
    try:
        if args.command == "backup":
            written = backup()
            for target, held in written:
                print(f"backup: {target} ({target.stat().st_size} bytes, checked): {held}")
            if len(written) > 1:
                print("backup: to bring all of it back, restore each (make restore BACKUP=<file>, one at a time)")
        else:
            what = restore(args.file, replaced=said_kept)
            print(f"restore: the app's {what} of {args.file}")
        return 0
    except StackError as exc:
        print(f"{args.command}: error: {exc}", file=sys.stderr)
        return 1
    except subprocess.CalledProcessError as exc:
        print(f"{args.command}: error: {' '.join(map(str, exc.cmd[:4]))} ... exited {exc.returncode}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
