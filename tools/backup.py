"""Back up the app's data and bring it back while the stack serves: `python -m tools.backup backup|restore FILE`.

- SQLite (the app's DATABASE_URL unset): SQLite's online backup API, run inside the app container, copies the live
  database in one step, a consistent snapshot even while the workers write (in WAL mode readers never block the
  writer). The copy is checked (PRAGMA integrity_check) and streamed out.
- PostgreSQL (DATABASE_URL set): pg_dump's custom format, one consistent snapshot. pg_dump runs in the stack's
  `postgres` service when it has one (the compose profile: the server's own version), else on this host against
  BACKUP_DATABASE_URL, the database as this host reaches it (default: the app's DATABASE_URL).

Files an app keeps beside the database in its data volume (uploads, media) are not in a backup: `backup` names them
in a warning on stderr.

A backup lands in BACKUP_DIR (default backups/) as <project>-<UTC time>.sqlite3 or .pgdump, under a temporary name
until it is complete and checked. A restore checks the file before anything else (a SQLite database of the app that
passes integrity_check, or a pg_dump archive with the app's tables, of the kind the stack runs on) and refuses
anything else without changing a thing. It then replaces the data in place (SQLite's backup API into the live
database; pg_restore --clean in a single transaction) and runs the app's pre-start hook (its migrations), which brings
an older backup's schema up to date.

It acts on the stack that runs in COMPOSE_PROJECT_NAME (default wsgi-chain), whichever its topology. Settings from
the environment: COMPOSE_PROJECT_NAME, BACKUP_DIR, BACKUP_DATABASE_URL.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote, urlsplit

from tools.compose import ROOT, Compose
from tools.stack import StackError, env, project_name, running_stack, server_service

# A table every backup of the app has: Django's record of the migrations applied, read back by the pre-start hook.
APP_TABLE = "django_migrations"
SQLITE_MAGIC = b"SQLite format 3\x00"
PGDUMP_MAGIC = b"PGDMP"
SUFFIXES = {"sqlite": ".sqlite3", "postgres": ".pgdump"}

# Run by the app's Python in its container. The copy goes next to the database (the app's data volume, not the
# small /tmp), leaves in rollback-journal mode (one self-contained file), and is removed whatever happens.
SQLITE_BACKUP = r"""
import os, shutil, sqlite3, sys
path = os.environ.get("SQLITE_PATH") or "db.sqlite3"
if not os.path.isfile(path):
    print(path, file=sys.stderr)
    sys.exit(3)  # NO_DATABASE in tools/backup.py
copy = os.path.join(os.path.dirname(path), f".backup-{os.getpid()}.sqlite3")
try:
    source, target = sqlite3.connect(path, timeout=60), sqlite3.connect(copy)
    source.backup(target)
    target.execute("PRAGMA journal_mode=DELETE")
    check = target.execute("PRAGMA integrity_check").fetchone()[0]
    target.close()
    source.close()
    if check != "ok":
        sys.exit(f"the copy of {path} fails integrity_check: {check}")
    with open(copy, "rb") as f:
        shutil.copyfileobj(f, sys.stdout.buffer)
finally:
    for name in (copy, copy + "-journal"):
        if os.path.exists(name):
            os.unlink(name)
"""

# SQLITE_BACKUP's exit status when the app has no SQLite database at SQLITE_PATH (its stderr: that path).
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


# Run by the app's Python in its container: the files of the app's data volume (the directory of SQLITE_PATH) other
# than what the backup holds (the SQLite database and its journals, on SQLite; nothing, on PostgreSQL), as JSON
# [path, bytes] pairs. An app's uploads or media kept there are not in a backup: the backup says so.
UNCOVERED = r"""
import json, os, sys
path = os.path.abspath(os.environ.get("SQLITE_PATH") or "db.sqlite3")
root, name = os.path.split(path)
covered = {name, name + "-wal", name + "-shm", name + "-journal"} if sys.argv[1] == "sqlite" else set()
found = []
for directory, _, files in os.walk(root):
    for file in files:
        relative = os.path.relpath(os.path.join(directory, file), root)
        if relative in covered or relative.startswith((".backup-", ".restore-")):
            continue
        try:
            found.append([relative, os.lstat(os.path.join(directory, file)).st_size])
        except OSError:
            pass
print(json.dumps({"root": root, "files": found}))
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


def kind_of(path: Path) -> str | None:
    with path.open("rb") as f:
        head = f.read(len(SQLITE_MAGIC))
    if head == SQLITE_MAGIC:
        return "sqlite"
    if head.startswith(PGDUMP_MAGIC):
        return "postgres"
    return None


def check_sqlite(path: Path) -> None:
    """A SQLite database that passes integrity_check and holds the app's tables; read only, nothing written."""
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            check = db.execute("PRAGMA integrity_check").fetchone()[0]
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.DatabaseError as exc:
        raise StackError(f"{path} is not a usable SQLite database ({exc})") from None
    if check != "ok":
        raise StackError(f"{path} fails SQLite's integrity_check: {check}")
    if APP_TABLE not in tables:
        raise StackError(f"{path} is a SQLite database, but not the app's (it has no {APP_TABLE} table)")


def check_pgdump(path: Path, database: Database) -> None:
    """An archive pg_restore can read, with the app's tables."""
    with path.open("rb") as archive:
        listing = subprocess.run(
            database.pg_command("pg_restore", "--list", connect=False),
            stdin=archive,
            capture_output=True,
            text=True,
        )
    if listing.returncode != 0:
        raise StackError(f"{path} is not an archive pg_restore can read: {listing.stderr.strip()[:300]}")
    if f" TABLE public {APP_TABLE} " not in listing.stdout:
        raise StackError(f"{path} is a pg_dump archive, but not of the app's database (no {APP_TABLE} table)")


# --- backup ------------------------------------------------------------------------------------------------------


def backup_dir() -> Path:
    directory = Path(env("BACKUP_DIR", str(ROOT / "backups")))
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def new_name(directory: Path, kind: str) -> Path:
    project = project_name()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    for n in range(100):
        path = directory / f"{project}-{stamp}{f'-{n}' if n else ''}{SUFFIXES[kind]}"
        if not path.exists():
            return path
    raise StackError(f"100 backups named {project}-{stamp}* already in {directory}")


def backup() -> tuple[Path, str]:
    """The backup's path, and what of the app's data volume it leaves out (uncovered())."""
    database = locate()
    directory = backup_dir()
    if database.kind == "sqlite":
        command = database.stack.command("exec", "-T", database.service, "python", "-c", SQLITE_BACKUP)
    else:
        command = database.pg_command("pg_dump", "--format", "custom")
    with tempfile.NamedTemporaryFile(dir=directory, prefix=".partial-", delete=False) as partial:
        result = subprocess.run(command, stdout=partial, stderr=subprocess.PIPE, text=False)
    partial_path = Path(partial.name)
    try:
        if database.kind == "sqlite" and result.returncode == NO_DATABASE:
            raise StackError(no_database(database, result.stderr.decode(errors="replace").strip()))
        if result.returncode != 0:
            raise StackError(f"the {database.kind} backup failed: {result.stderr.decode(errors='replace').strip()}")
        if kind_of(partial_path) != database.kind:
            raise StackError(f"the {database.kind} backup came out as something else; nothing was kept")
        if database.kind == "sqlite":
            check_sqlite(partial_path)
        else:
            check_pgdump(partial_path, database)
        target = new_name(directory, database.kind)
        partial_path.chmod(0o600)  # the app's data: its owner's only
        partial_path.rename(target)
    finally:
        partial_path.unlink(missing_ok=True)
    return target, uncovered(database)


def no_database(database: Database, path: str) -> str:
    """Why there is nothing to back up: an app without a database (any app but Django's may be one), or one whose
    migrations never ran; and what its data volume holds instead, which `make backup` does not copy."""
    held = uncovered(database)
    return (
        f"no SQLite database at {path} (DATABASE_URL is unset), so there is nothing for make backup to copy: the app "
        "keeps no database there, or its pre-start hook (migrations) never ran; nothing was written. "
        + (f"Its data volume holds {held}: copy those instead" if held else "Its data volume is empty")
        + " (docs/operations.md: Backups)"
    )


def uncovered(database: Database) -> str:
    """What of the app's data volume the backup leaves out, summed up by top entry ("media/ (3 files, 1.2 MB)"); empty
    when nothing is."""
    command = database.stack.command("exec", "-T", database.service, "python", "-c", UNCOVERED, database.kind)
    listing = json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout)
    entries: dict[str, list[int]] = {}
    for relative, size in listing["files"]:
        top, _, rest = relative.partition("/")
        counted = entries.setdefault(f"{top}/" if rest else top, [0, 0])
        counted[0], counted[1] = counted[0] + 1, counted[1] + size
    if not entries:
        return ""
    parts = [
        f"{name} ({n} file{'s' if n != 1 else ''}, {size / 1e6:.1f} MB)" for name, (n, size) in sorted(entries.items())
    ]
    return ", ".join(parts) + f" in {listing['root']} (the {database.service} service's data volume)"


# --- restore -----------------------------------------------------------------------------------------------------


def restore(file: str) -> str:
    if not file:
        raise StackError("name the backup to restore: make restore BACKUP=backups/<file>")
    path = Path(file)
    if not path.is_file():
        raise StackError(f"{file}: no such file; nothing was changed")
    kind = kind_of(path)
    if kind is None:
        raise StackError(
            f"{file} is not a backup (neither a SQLite database nor a pg_dump archive); nothing was changed"
        )
    database = locate()
    if kind != database.kind:
        running = "PostgreSQL (DATABASE_URL)" if database.url else "SQLite"
        raise StackError(f"{file} is a {kind} backup, but the app runs on {running}; nothing was changed")
    if kind == "sqlite":
        check_sqlite(path)
        command = database.stack.command("exec", "-T", database.service, "python", "-c", SQLITE_RESTORE)
        with path.open("rb") as data:
            result = subprocess.run(command, stdin=data, capture_output=True)
    else:
        check_pgdump(path, database)
        args = ("--clean", "--if-exists", "--single-transaction", "--exit-on-error", "--no-owner", "--no-privileges")
        command = database.pg_command("pg_restore", *args)
        with path.open("rb") as data:
            result = subprocess.run(command, stdin=data, capture_output=True)
    if result.returncode != 0:
        raise StackError(f"the restore failed: {result.stderr.decode(errors='replace').strip()[-1000:]}")
    # The backup may predate the app's latest migrations: its pre-start hook brings the schema up to date.
    hook = database.stack.run("exec", "-T", database.service, "app-entrypoint", "prestart", check=False, capture=True)
    if hook.returncode != 0:
        raise StackError(f"restored, but the app's pre-start hook (migrations) failed: {hook.stderr.strip()[-1000:]}")
    return kind


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.backup")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("backup", help="write a consistent backup of the app's data to BACKUP_DIR")
    restore_parser = sub.add_parser("restore", help="bring the app's data back from a backup")
    restore_parser.add_argument("file", nargs="?", default="")
    args = parser.parse_args(argv)
    try:
        if args.command == "backup":
            target, left_out = backup()
            print(f"backup: {target} ({target.stat().st_size} bytes, checked)")
            if left_out:
                print(
                    f"backup: warning: the backup holds the app's database only, not {left_out}: back those up as "
                    "well (docs/operations.md: Backups)",
                    file=sys.stderr,
                )
        else:
            kind = restore(args.file)
            print(f"restore: the app's {kind} data is now that of {args.file}")
        return 0
    except StackError as exc:
        print(f"{args.command}: error: {exc}", file=sys.stderr)
        return 1
    except subprocess.CalledProcessError as exc:
        print(f"{args.command}: error: {' '.join(map(str, exc.cmd[:4]))} ... exited {exc.returncode}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
