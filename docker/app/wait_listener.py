#!/usr/bin/env python3
"""Before uWSGI attaches to the listener (uwsgi.ini runs it first on a lent socket, UWSGI_ZERG): wait until the
listener lends a socket that nginx reaches.

wait-listener ZERG NGINX SEEN        before uWSGI attaches (hook-asap): wait for the listener, then write down in
                                     the file SEEN which socket is at NGINX
wait-listener --unchanged NGINX SEEN as uWSGI's master loop starts (hook-master-start): exit 1 if NGINX is another
                                     socket by now
ZERG: the listener's private socket; NGINX: the path nginx connects to.

The listener (uwsgi/listener.ini) binds ZERG, then its socket beside NGINX, and renames that onto NGINX once it
listens. Ready means both: NGINX is no older than ZERG (the rename has happened: an app server started before it
would watch the old socket's time and stop again at the rename), and ZERG answers with the socket (a listener is
running: uWSGI leaves ZERG behind when the listener stops). Looked at every 0.1 s for up to ZERG_WAIT seconds
(default 30; empty is unset); then one line naming what was missing, and exit 78 (EX_CONFIG).

The second form closes the gap between the two: uWSGI notes NGINX's time for its touch-exec when its master loop
starts, so a listener replaced after the attach and before that went unseen, and the app server served a socket nginx
no longer reached. A new socket at NGINX by the master-start hook means such a listener: uWSGI stops, and starts again
on the new one; one after it, uWSGI's own touch-exec sees.
"""

import array
import math
import os
import socket
import sys
import time

EX_CONFIG = 78
INTERVAL = 0.1


def say(message: str) -> None:
    """A line in uWSGI's log, in one write (print makes two under PYTHONUNBUFFERED: another process's line could come
    between them, glued to this one)."""
    sys.stderr.write(f"wait-listener: {message}\n")


def lends(zerg: str) -> bool:
    """True when the listener's private socket answers with its header and at least one file descriptor."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(1)
        sock.connect(zerg)
        fds = array.array("i")
        data, ancillary, _, _ = sock.recvmsg(64, socket.CMSG_SPACE(8 * fds.itemsize))
        for level, kind, payload in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.frombytes(payload[: len(payload) - len(payload) % fds.itemsize])
        for fd in fds:
            os.close(fd)
        return data.startswith(b"uwsgi-zerg") and len(fds) > 0


def missing(zerg: str, nginx: str) -> str | None:
    """None when the listener is ready, else what it lacks, in words."""
    try:
        zerg_time = os.stat(zerg).st_mtime_ns
    except OSError as exc:
        return f"no private socket at {zerg} ({exc.strerror})"
    try:
        if os.stat(nginx).st_mtime_ns < zerg_time:
            return f"{nginx} is still the old socket (the listener has not renamed its new one onto it)"
    except OSError as exc:
        return f"no socket at {nginx} ({exc.strerror})"
    try:
        if not lends(zerg):
            return f"{zerg} answered without a socket to lend"
    except OSError as exc:
        return f"{zerg} does not answer ({exc.strerror or exc}): is the listener running?"
    return None


def identity(path: str) -> str:
    """Which file is at `path`: its device and inode, as text."""
    found = os.stat(path)
    return f"{found.st_dev} {found.st_ino}\n"


def unchanged(nginx: str, seen: str) -> int:
    try:
        with open(seen) as noted:
            if noted.read() == identity(nginx):
                return 0
    except OSError as exc:
        say(f"{exc.filename}: {exc.strerror}")
        return 1
    say(f"{nginx} is a new listener's socket since uWSGI attached: stopping, to start on it")
    return 1


def main(argv: list[str]) -> int:
    if len(argv) == 3 and argv[0] == "--unchanged":
        return unchanged(*argv[1:])
    if len(argv) != 3:
        say("usage: wait-listener ZERG NGINX SEEN | wait-listener --unchanged NGINX SEEN")
        return 2
    zerg, nginx, seen = argv
    setting = os.environ.get("ZERG_WAIT") or "30"  # empty is unset, as for the image's other settings
    try:
        wait = float(setting)
    except ValueError:
        wait = math.nan
    if not 0 < wait < math.inf:
        say(f"ZERG_WAIT={setting}: use seconds above 0, e.g. 30")
        return EX_CONFIG
    deadline = time.monotonic() + wait
    while problem := missing(zerg, nginx):
        if time.monotonic() > deadline:
            say(f"after {setting} s (ZERG_WAIT): {problem}")
            return EX_CONFIG
        time.sleep(INTERVAL)
    with open(seen, "w") as note:
        note.write(identity(nginx))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
