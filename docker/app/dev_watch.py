#!/usr/bin/env python3
"""`make dev` only: watch the app's working copy and chain-reload the workers when it changes.

Run by the uWSGI master (uwsgi/dev.ini, attach-daemon2), beside the workers. Every DEV_POLL_INTERVAL seconds (0.2)
it lists the files under APP_DIR (the working copy, mounted read-only) with their modification time and size; when
one changes it waits until the files are still (an editor's save is several writes), then writes `c` to the master
FIFO: a chain reload, the workers replaced one at a time with freshly loaded code, none failing a request. Files
under DEV_STATIC_DIRS (served by nginx straight from the working copy) need no reload.

requirements.txt, and the requirement files it names, are compared with the ones the image was built with
(/opt/venv/app-requirements/, docker/app/requirement_files.py): while one differs the watcher refuses to reload, and
says so loudly in the log at every change: new code could need the new dependencies, which only a rebuild (`make dev`
again) installs. Never served with stale dependencies silently.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from uwsgi_ctl import FIFO, stats

APP_DIR = Path(os.environ.get("APP_DIR", "/srv/app"))
BUILT_REQUIREMENTS = Path("/opt/venv/app-requirements")
# Not the app's code: never a reason to reload.
SKIPPED_DIRS = {"__pycache__", ".git", ".hg", ".venv", "venv", "node_modules", ".mypy_cache", ".pytest_cache"}
SKIPPED_SUFFIXES = (".pyc", ".pyo", ".swp", ".swx", "~")
# How long a save may take to settle, and a reload to finish, before the watcher moves on.
SETTLE_LIMIT = 2.0
# A save is over when two listings this far apart agree (an editor's writes are milliseconds apart).
SETTLE_STEP = 0.05
RELOAD_LIMIT = 60.0
# How long the first worker may stay the same before `c` is asked again.
ASK_AGAIN = 0.2
# How often the master is woken during a chain reload.
POKE = 0.05

Snapshot = dict[str, tuple[int, int]]


def log(level: str, message: str) -> None:
    """One line in the container's log, in LOG_FORMAT like uWSGI's and the app's."""
    if os.environ.get("LOG_FORMAT", "json") == "text":
        line = f"{datetime.now(UTC).isoformat(timespec='seconds')} dev {level}: {message}"
    else:
        stamp = datetime.now(UTC).isoformat(timespec="milliseconds")
        line = json.dumps({"time": stamp, "source": "dev", "level": level, "message": message})
    # One write for the line and its newline (print makes two under PYTHONUNBUFFERED): the workers' lines go to the
    # same log, and one written between them was glued to this one.
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def snapshot(root: Path) -> Snapshot:
    """relative path -> (mtime in ns, size) of every file under root, skipping caches and editor leftovers."""
    found: Snapshot = {}
    for directory, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in SKIPPED_DIRS]
        for name in files:
            if name.endswith(SKIPPED_SUFFIXES):
                continue
            path = os.path.join(directory, name)
            try:
                info = os.stat(path)
            except OSError:
                continue  # removed while listing: the next snapshot tells
            found[os.path.relpath(path, root)] = (info.st_mtime_ns, info.st_size)
    return found


def changed(before: Snapshot, after: Snapshot) -> list[str]:
    return sorted(path for path in before.keys() | after.keys() if before.get(path) != after.get(path))


def settle(root: Path, current: Snapshot) -> Snapshot:
    """The snapshot once two in a row agree (or SETTLE_LIMIT passed): one reload per save, not one per write."""
    deadline = time.monotonic() + SETTLE_LIMIT
    while time.monotonic() < deadline:
        time.sleep(SETTLE_STEP)
        again = snapshot(root)
        if again == current:
            break
        current = again
    return current


def requirements_problem() -> str | None:
    """Why the running image's dependencies may not be the working copy's, or None when they are."""
    if not (BUILT_REQUIREMENTS / "requirements.txt").is_file():
        return f"the image does not record the requirements it was built with ({BUILT_REQUIREMENTS}): rebuild it"
    # requirements.txt first: a file it names anew changes it too.
    top = BUILT_REQUIREMENTS / "requirements.txt"
    for path in [top, *sorted(path for path in BUILT_REQUIREMENTS.rglob("*") if path.is_file() and path != top)]:
        name = path.relative_to(BUILT_REQUIREMENTS).as_posix()
        try:
            current = (APP_DIR / name).read_bytes()
        except OSError:
            return f"{name} is missing from the working copy"
        if current != path.read_bytes():
            return f"{name} changed since the image was built"
    return None


def shout(problem: str, paths: list[str]) -> None:
    rule = "!" * 100
    log("error", rule)
    log("error", f"DEPENDENCIES ARE STALE: {problem}; NOT reloading, still serving the code loaded before.")
    if paths:
        log("error", f"changed meanwhile and not loaded: {', '.join(paths[:10])}")
    log("error", "run `make dev` again (with the same settings) to rebuild the image with the new requirements.")
    log("error", rule)


def worker_state() -> dict[int, tuple[int, int]]:
    """worker id -> (pid, accepting): accepting once it has loaded the app (lazy-apps) and takes requests."""
    try:
        return {w["id"]: (w["pid"], w["accepting"]) for w in stats()["workers"]}
    except (OSError, ValueError, KeyError):
        return {}


def tell_master(command: bytes, within: float = 1.0) -> bool:
    """Write a command to the master FIFO. The master replaces the FIFO (unlink, mkfifo) each time a writer closes
    it: in between it is missing (ENOENT) or has no reader (ENXIO), so a write is tried again for `within` s."""
    deadline = time.monotonic() + within
    while True:
        try:
            fifo = os.open(FIFO, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
            continue
        try:
            os.write(fifo, command)
            return True
        finally:
            os.close(fifo)


def forget_compiled_app() -> None:
    """Drop the app's compiled modules from the dev cache (PYTHONPYCACHEPREFIX, compose.dev.yaml): Python trusts a
    .pyc whose source has the same size and the same mtime in whole seconds, so a second save within a second of
    the first, of the same length, would load the first one's code. The dependencies' stay cached."""
    prefix = os.environ.get("PYTHONPYCACHEPREFIX")
    if prefix:
        shutil.rmtree(Path(prefix) / APP_DIR.relative_to(APP_DIR.anchor), ignore_errors=True)


def chain_reload(paths: list[str]) -> None:
    """Ask the master for a chain reload and wait until every worker is new and accepting, so that a change during
    the reload gets a reload of its own rather than being folded into one already half done.

    The master ignores `c` while a chain reload runs ("chain reload already running"), and it may still count the
    previous one as running for a moment after its last worker took requests: `c` is asked again until the first
    worker is replaced. Meanwhile the master is woken every POKE seconds with a byte that is no command (a newline):
    it reaps a stopped worker and moves the chain on in its loop, which otherwise runs once a second (check-interval);
    that tick cost up to a second per worker."""
    shown = ", ".join(paths[:5]) + (f" and {len(paths) - 5} more" if len(paths) > 5 else "")
    log("info", f"changed: {shown}; chain reload of the workers")
    forget_compiled_app()
    before = worker_state()
    started = asked = time.monotonic()
    if not tell_master(b"c"):
        log("error", f"could not write to the master FIFO {FIFO}: no reload")
        return
    if not before:
        return
    first = min(before)
    while time.monotonic() - started < RELOAD_LIMIT:
        time.sleep(POKE)
        tell_master(b"\n", within=0)
        now = worker_state()
        if not now:
            continue
        if all(i in now and now[i][0] not in (0, before[i][0]) and now[i][1] for i in before):
            log("info", f"reloaded: {len(now)} workers replaced in {time.monotonic() - started:.2f} s")
            return
        if now.get(first, (0, 0))[0] == before[first][0] and time.monotonic() - asked >= ASK_AGAIN:
            tell_master(b"c")
            asked = time.monotonic()
    log("warning", f"the chain reload did not finish within {RELOAD_LIMIT:.0f} s")


def banner() -> None:
    source = os.environ.get("DEV_SOURCE") or str(APP_DIR)
    static = os.environ.get("DEV_STATIC_DIRS", "")
    log("info", "=" * 100)
    log("info", "wsgi-chain DEVELOPMENT stack (make dev): the working copy is served live; not for production")
    log("info", f"live: {source} mounted read-only at {APP_DIR}; an edit chain-reloads the workers")
    if static:
        log("info", f"live: static files served by nginx from the working copy: {static}")
    log("info", "a change to requirements.txt needs `make dev` again; leave with `make down`")
    log("info", "=" * 100)


def main() -> int:
    interval = float(os.environ.get("DEV_POLL_INTERVAL") or "0.2")
    static = [part.strip().strip("/") for part in os.environ.get("DEV_STATIC_DIRS", "").split(",") if part.strip()]
    banner()
    seen = snapshot(APP_DIR)
    pending: list[str] = []
    stale = requirements_problem()
    if stale:
        shout(stale, [])
    while True:
        time.sleep(interval)
        now = snapshot(APP_DIR)
        paths = changed(seen, now)
        if not paths:
            continue
        now = settle(APP_DIR, now)
        paths = changed(seen, now)
        seen = now
        code = [p for p in paths if not any(p == s or p.startswith(s + "/") for s in static)]
        if not code:
            log("info", f"static files changed: {', '.join(paths[:5])}; served by nginx as they are, no reload")
            continue
        stale = requirements_problem()
        if stale:
            pending = sorted(set(pending) | set(code))
            shout(stale, pending)
            continue
        if pending:
            log("info", "requirements.txt matches the image again: reloading")
        chain_reload(sorted(set(pending) | set(code)))
        pending = []


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(0)
