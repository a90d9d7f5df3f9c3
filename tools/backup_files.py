"""The files in the app's data volume, backed up and brought back beside its database (tools/backup.py).

The data volume is the directory of SQLITE_PATH (/var/lib/app): whatever an app keeps there (uploads, media, a
package index, its own SQLite files) other than the database `make backup` dumps on its own. The archive is a gzipped
tar written by the app's Python in its container, its first member a manifest (MANIFEST); each SQLite database in it
is a snapshot taken with SQLite's online backup API (as the app's own database is), every other file is copied as it
is when read. A file's second name (a hard link: Mercurial's store, a repository cloned beside another) is a link to
the first in the archive, and comes back as one.

A restore checks the archive on the host first (check()), then unpacks it in the container beside the live files
(`.restore-<pid>/`, the same filesystem), moves each file into place, copies each SQLite database into the live one
with the backup API (the app may hold it open), and removes the files the backup did not hold: the data volume's
files are then those of the backup. The app's own database and its journals are left alone (they have their own
backup).
"""

from __future__ import annotations

import json
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from tools.progress import printable
from tools.stack import StackError

MANIFEST = "wsgi-chain-backup.json"
FORMAT = "wsgi-chain data volume files 1"
SUFFIX = ".files.tar.gz"
GZIP_MAGIC = b"\x1f\x8b"

# A consistent copy of a live SQLite database (SQLite's online backup API), checked, in rollback-journal mode (one
# self-contained file): the app's own database's backup (tools/backup.py) and each one in the files' archive.
SNAPSHOT = r"""
import sqlite3, sys

def snapshot(path, copy):
    source, target = sqlite3.connect(path, timeout=60), sqlite3.connect(copy)
    source.backup(target)
    target.execute("PRAGMA journal_mode=DELETE")
    check = target.execute("PRAGMA integrity_check").fetchone()[0]
    target.close()
    source.close()
    if check != "ok":
        sys.exit(f"the copy of {path} fails integrity_check: {check}")
"""

# Shared by both scripts below (run by the app's Python in its container): where the data volume is, which names are
# the app's database (left to its own backup) and which are the backup's own scratch files.
_COMMON = (
    SNAPSHOT
    + r"""
import json, os, shutil, sqlite3, sys, tarfile
MAGIC = b"SQLite format 3\x00"
JOURNALS = ("-wal", "-shm", "-journal")
OWN = (".backup-", ".restore-")
path = os.path.abspath(os.environ.get("SQLITE_PATH") or "db.sqlite3")
root, name = os.path.split(path)
database = {name, *(name + suffix for suffix in JOURNALS)} if sys.argv[1] == "sqlite" else set()

def is_sqlite(file):
    try:
        with open(file, "rb") as f:
            return f.read(len(MAGIC)) == MAGIC
    except OSError:
        return False

def a_journal(file):
    # A journal of a SQLite database beside it: its snapshot holds what the journal does.
    return file.endswith(JOURNALS) and is_sqlite(file.rsplit("-", 1)[0])

def ours(relative):
    return relative.split("/", 1)[0].startswith(OWN)

def data_volume():
    # What the archive holds, in order, as (kind, path, path in the archive): each directory, link and regular file
    # of the data volume but the app's database and its journals, the backup's scratch files and other SQLite
    # databases' journals (their snapshots hold them); sockets and FIFOs are not data.
    for directory, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith(OWN))
        here = os.path.relpath(directory, root)
        if here != ".":
            yield "dir", directory, here
        for file in sorted(files):
            full, relative = os.path.join(directory, file), os.path.normpath(os.path.join(here, file))
            if relative in database or file.startswith(OWN) or a_journal(full):
                continue
            if os.path.islink(full):
                yield "link", full, relative
            elif os.path.isfile(full):
                yield "file", full, relative
"""
)

# What the archive holds, as JSON {"root": the data volume, "files": [[path, bytes], ...]}. argv[1] as BACKUP's.
LISTING = (
    _COMMON
    + r"""
found, seen = [], set()
for kind, full, relative in data_volume():
    if kind == "file":
        try:
            status = os.lstat(full)
        except OSError:
            continue  # removed meanwhile
        # A second name of a file (a hard link) holds no bytes of its own.
        inode = (status.st_dev, status.st_ino)
        found.append([relative, 0 if inode in seen else status.st_size])
        seen.add(inode)
print(json.dumps({"root": root, "files": found}))
"""
)

# The archive, on stdout. argv[1]: the app's database kind (sqlite: its file and journals are left out).
BACKUP = (
    _COMMON
    + r"""
MANIFEST, FORMAT = sys.argv[2], sys.argv[3]
out = tarfile.open(fileobj=sys.stdout.buffer, mode="w|gz")
manifest = json.dumps({"format": FORMAT, "root": root, "left out": sorted(database)}).encode()
info = tarfile.TarInfo(MANIFEST)
info.size, info.mode, info.mtime = len(manifest), 0o600, __import__("time").time()
out.addfile(info, __import__("io").BytesIO(manifest))
copy = os.path.join(root, f".backup-files-{os.getpid()}.sqlite3")
for kind, full, relative in data_volume():
    if kind != "file":
        out.add(full, arcname=relative, recursive=False)
        continue
    try:
        # A second name of a file already in the archive (a hard link) is a link member to the first, without data
        # (tarfile's gettarinfo tells them apart by inode).
        if is_sqlite(full):
            info = out.gettarinfo(full, arcname=relative)
            if info.islnk():
                out.addfile(info)
                continue
            snapshot(full, copy)
            info.size = os.path.getsize(copy)
            with open(copy, "rb") as f:
                out.addfile(info, f)
        else:
            with open(full, "rb") as f:
                out.addfile(out.gettarinfo(arcname=relative, fileobj=f), f)
    except FileNotFoundError:
        continue  # removed since it was listed: not in the backup
    except OSError as exc:
        sys.exit(f"{full} could not be copied ({exc}); if it changed while it was read, run make backup again")
    finally:
        for scratch in (copy, copy + "-journal"):
            if os.path.exists(scratch):
                os.unlink(scratch)
out.close()
"""
)

# The archive on stdin, already checked on the host (check()); argv as BACKUP's.
RESTORE = (
    _COMMON
    + r"""
MANIFEST = sys.argv[2]
staging = os.path.join(root, f".restore-files-{os.getpid()}")
os.mkdir(staging, 0o700)
modes = {}

def as_backed_up(member, path):
    # The data filter refuses what would leave the volume, and unpacks with permission bits of its own (a read-only
    # file made writable, a private directory the umask's); the bits as backed up go back once each is in place.
    modes[os.path.normpath(member.name)] = member.mode & 0o777  # not setuid, setgid or sticky
    return tarfile.data_filter(member, path)

try:
    with tarfile.open(fileobj=sys.stdin.buffer, mode="r|gz") as archive:
        archive.extractall(staging, filter=as_backed_up)
    os.unlink(os.path.join(staging, MANIFEST))
    kept = set()
    for directory, dirs, files in os.walk(staging):
        here = os.path.relpath(directory, staging)
        for d in dirs:
            relative = os.path.normpath(os.path.join(here, d))
            kept.add(relative)
            live = os.path.join(root, relative)
            if os.path.lexists(live) and not os.path.isdir(live):
                os.unlink(live)
            os.makedirs(live, exist_ok=True)
        for file in files:
            relative = os.path.normpath(os.path.join(here, file))
            if relative in database or ours(relative):
                continue
            kept.add(relative)
            staged, live = os.path.join(directory, file), os.path.join(root, relative)
            if is_sqlite(staged) and is_sqlite(live):
                source, target = sqlite3.connect(staged), sqlite3.connect(live, timeout=60)
                source.backup(target)
                target.close()
                source.close()
                continue
            if os.path.isdir(live) and not os.path.islink(live):
                shutil.rmtree(live)
            os.replace(staged, live)
    # MEDIA_ROOT's directory stays whatever the backup held (one from before uwsgi config 0.7.19 may not hold it): the
    # entry point makes it for the app, which may write there at any time. Its files are the backup's.
    media = os.path.relpath(os.path.abspath(os.environ.get("MEDIA_ROOT") or root), root)
    while media and media != "." and not media.startswith(".."):
        kept.add(media)
        media = os.path.dirname(media)
    # What the backup did not hold goes: the files are those of the backup.
    for directory, dirs, files in os.walk(root, topdown=False):
        here = os.path.relpath(directory, root)
        if here != "." and ours(here):
            continue
        for file in files:
            relative = os.path.normpath(os.path.join(here, file))
            full = os.path.join(directory, file)
            if relative in kept or relative in database or ours(relative):
                continue
            if file.endswith(JOURNALS) and relative.rsplit("-", 1)[0] in kept:
                continue  # the journal of a database just restored, which SQLite itself keeps
            os.unlink(full)
        for d in dirs:
            relative = os.path.normpath(os.path.join(here, d))
            if relative not in kept and not ours(relative):
                full = os.path.join(directory, d)
                if os.path.islink(full):
                    os.unlink(full)
                else:
                    try:
                        os.rmdir(full)
                    except OSError:
                        pass  # still holds the app's database
    # Each file's and directory's permission bits as backed up, the deepest first; a directory's owner can still enter
    # and change it (the next restore).
    for relative, mode in sorted(modes.items(), key=lambda item: -item[0].count("/")):
        live = os.path.join(root, relative)
        if relative in database or ours(relative) or os.path.islink(live) or not os.path.exists(live):
            continue
        os.chmod(live, mode | 0o700 if os.path.isdir(live) else mode)
finally:
    shutil.rmtree(staging, ignore_errors=True)
"""
)


@dataclass(frozen=True)
class Archive:
    """What a checked archive holds."""

    files: int
    size: int  # bytes, unpacked

    def __str__(self) -> str:
        return f"{self.files} file{'s' if self.files != 1 else ''}, {self.size / 1e6:.1f} MB"


def summed_up(listing: dict, service: str) -> str:
    """LISTING's output summed up by top entry ("media/ (3 files, 1.2 MB)"), each name printable; empty when
    nothing."""
    entries: dict[str, list[int]] = {}
    for relative, size in listing["files"]:
        top, _, rest = relative.partition("/")
        counted = entries.setdefault(f"{printable(top)}/" if rest else printable(top), [0, 0])
        counted[0], counted[1] = counted[0] + 1, counted[1] + size
    if not entries:
        return ""
    parts = [
        f"{name} ({n} file{'s' if n != 1 else ''}, {size / 1e6:.1f} MB)" for name, (n, size) in sorted(entries.items())
    ]
    return ", ".join(parts) + f" in {listing['root']} (the {service} service's data volume)"


def is_archive(head: bytes) -> bool:
    return head.startswith(GZIP_MAGIC)


def check(path: Path) -> Archive:
    """An archive of ours, read to its end (a truncated or corrupt one fails): the manifest first, then only regular
    files, directories and links, each inside the data volume (a hard link to a file before it). Nothing is
    unpacked."""
    try:
        with tarfile.open(path, "r:gz") as archive:
            first = archive.next()
            if first is None or first.name != MANIFEST or not first.isfile():
                raise StackError(f"{path} is a gzip archive, but not a backup of the app's files (no {MANIFEST} first)")
            manifest = json.load(archive.extractfile(first))
            if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
                raise StackError(f"{path} is an archive of another format than `make backup` writes ({FORMAT})")
            members = archive.getmembers()[1:]
    except (tarfile.TarError, EOFError, OSError, zlib.error, ValueError) as exc:
        raise StackError(f"{path} is not a readable backup of the app's files ({exc})") from None
    regular: set[str] = set()
    for member in members:
        where = PurePosixPath(member.name)
        if where.is_absolute() or ".." in where.parts:
            raise StackError(
                f"{path} holds {printable(member.name)}, outside the data volume: not a backup of the app's files"
            )
        if member.islnk() and member.linkname not in regular:
            raise StackError(
                f"{path} holds a hard link {printable(member.name)} -> {printable(member.linkname)}, not to a file"
                " before it in the archive"
            )
        if not (member.isfile() or member.isdir() or member.issym() or member.islnk()):
            raise StackError(f"{path} holds {printable(member.name)}, which is neither a file, a directory nor a link")
        if member.isfile():
            regular.add(member.name)
        if member.issym():
            target = PurePosixPath(member.linkname)
            if target.is_absolute() or ".." in (where.parent / target).parts:
                raise StackError(
                    f"{path} holds a link {printable(member.name)} -> {printable(member.linkname)}, out of the data"
                    " volume"
                )
    files = [member for member in members if member.isfile() or member.islnk()]
    return Archive(files=len(files), size=sum(member.size for member in files if member.isfile()))
