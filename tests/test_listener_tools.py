"""The two tools between the listener and the app server, run on the host against sockets of the test's own:

- wait-listener (docker/app/wait_listener.py), which uwsgi.ini runs before an app server attaches to the listener:
  it passes only once the listener lends its socket and that socket is the one at nginx's path, and otherwise names
  what is missing (a listener stand-in speaks uWSGI's zerg protocol); and again as the master loop starts, when it
  fails if another socket has taken nginx's path meanwhile;
- listener-rename (docker/app/listener-rename.sh), the listener's last step: its new socket takes nginx's path, dated
  a whole second past the old one, which the app server's touch-exec compares.
"""

from __future__ import annotations

import array
import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.harness import ROOT
from tools.stack import LISTENER_INPUTS

TOOL = ROOT / "docker" / "app" / "wait_listener.py"
RENAME = ROOT / "docker" / "app" / "listener-rename.sh"
EX_CONFIG = 78


class Listener:
    """A stand-in for the listener's zerg pool: answers each connect to its private socket with uWSGI's header, the
    socket count and the lent socket's file descriptor, as uwsgi_manage_zerg does."""

    def __init__(self, zerg: Path, lent: socket.socket | None = None):
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(str(zerg))
        self.server.listen(8)
        self.lent = lent  # set before anyone connects, when the socket to lend is bound after the private one
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            with client:
                fds = array.array("i", [self.lent.fileno()])
                header = b"uwsgi-zerg" + (1).to_bytes(4, sys.byteorder)
                client.sendmsg([header], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds.tobytes())])

    def close(self) -> None:
        self.server.shutdown(socket.SHUT_RDWR)
        self.server.close()


def bound(path: Path, age: float = 0) -> socket.socket:
    """A listening socket at `path`, its file dated `age` seconds back (the older of two bound in a row)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    sock.listen(8)
    if age:
        then = os.stat(path).st_mtime_ns - int(age * 10**9)
        os.utime(path, ns=(then, then))
    return sock


def wait_listener(zerg: Path, nginx: Path, wait: str = "20") -> subprocess.CompletedProcess:
    """The tool as uwsgi.ini's hook-asap runs it, its note in `seen` beside the sockets. A ready listener passes at
    its first look, however long `wait`; a loaded machine may take a while over that look (three such cases failed at
    0.3 s beside a running make test)."""
    return subprocess.run(
        [sys.executable, str(TOOL), str(zerg), str(nginx), str(seen(nginx))],
        env={**os.environ, "ZERG_WAIT": wait},
        capture_output=True,
        text=True,
        timeout=30,
    )


def seen(nginx: Path) -> Path:
    return nginx.with_name("wait-listener.seen")


def unchanged(nginx: Path) -> subprocess.CompletedProcess:
    """The tool as uwsgi.ini's hook-master-start runs it."""
    command = [sys.executable, str(TOOL), "--unchanged", str(nginx), str(seen(nginx))]
    return subprocess.run(command, capture_output=True, text=True, timeout=30)


@pytest.fixture
def sockets(tmp_path):
    opened: list = []
    yield tmp_path / "zerg.sock", tmp_path / "uwsgi.sock", opened
    for thing in opened:
        thing.close()


def old_socket_then_listener(zerg: Path, nginx: Path, opened: list) -> None:
    """nginx's path holds a socket bound before the listener's private one: a new listener that has not renamed."""
    opened.append(bound(nginx, age=1))
    opened.append(Listener(zerg, opened[-1]))


def renamed_after_listener(zerg: Path, nginx: Path, opened: list, delay: float = 0.02) -> threading.Timer:
    """The listener's order (uWSGI's zergpool binds them so): its private socket, then its socket beside nginx's path,
    renamed onto the path after `delay` seconds (the returned timer's). The other way round, the two files' times
    differed whenever a clock tick fell between the binds, and the tool rightly took nginx's path for the old socket."""
    beside = nginx.with_name(nginx.name + ".new")
    listener = Listener(zerg)
    listener.lent = bound(beside)
    opened.extend([listener.lent, listener])
    rename = threading.Timer(delay, os.rename, (beside, nginx))
    rename.start()
    return rename


def stale_private_socket(zerg: Path, nginx: Path, opened: list) -> None:
    """A stopped listener's leftovers: its private socket's file, no one behind it, and its renamed socket."""
    bound(zerg, age=1).close()
    opened.append(bound(nginx))


def no_nginx_socket(zerg: Path, nginx: Path, opened: list) -> None:
    lent = bound(nginx.with_name(nginx.name + ".new"))
    opened.extend([lent, Listener(zerg, lent)])


REFUSED = [
    pytest.param(lambda zerg, nginx, opened: None, "no private socket at", id="no listener yet"),
    pytest.param(old_socket_then_listener, "is still the old socket", id="listener not renamed yet"),
    pytest.param(stale_private_socket, "does not answer", id="stopped listener's files"),
    pytest.param(no_nginx_socket, "no socket at", id="nothing at nginx's path"),
]


@pytest.mark.parametrize(("state", "named"), REFUSED)
def test_an_unready_listener_fails_after_zerg_wait_naming_what_is_missing(sockets, state, named):
    zerg, nginx, opened = sockets
    state(zerg, nginx, opened)
    result = wait_listener(zerg, nginx, wait="0.3")
    assert result.returncode == EX_CONFIG, result
    assert result.stderr.startswith("wait-listener: after 0.3 s (ZERG_WAIT): ") and named in result.stderr, result
    assert len(result.stderr.splitlines()) == 1


def test_a_listener_that_lent_its_renamed_socket_passes_and_the_socket_is_noted(sockets):
    zerg, nginx, opened = sockets
    renamed_after_listener(zerg, nginx, opened).join()
    result = wait_listener(zerg, nginx)
    assert (result.returncode, result.stderr) == (0, "")
    assert seen(nginx).read_text() == f"{os.stat(nginx).st_dev} {os.stat(nginx).st_ino}\n"


def test_at_the_master_loop_the_noted_socket_still_at_nginxs_path_passes(sockets):
    zerg, nginx, opened = sockets
    renamed_after_listener(zerg, nginx, opened).join()
    assert wait_listener(zerg, nginx).returncode == 0
    result = unchanged(nginx)
    assert (result.returncode, result.stderr) == (0, "")


def test_at_the_master_loop_a_new_listeners_socket_at_nginxs_path_stops_uwsgi_saying_why(sockets):
    """A listener replaced between the attach and the master loop: the master-start hook fails, so uWSGI stops."""
    zerg, nginx, opened = sockets
    renamed_after_listener(zerg, nginx, opened).join()
    assert wait_listener(zerg, nginx).returncode == 0
    replacement = nginx.with_name("replacement.sock")
    opened.append(bound(replacement))
    os.rename(replacement, nginx)
    result = unchanged(nginx)
    assert result.returncode == 1
    assert result.stderr == (
        f"wait-listener: {nginx} is a new listener's socket since uWSGI attached: stopping, to start on it\n"
    )


def test_at_the_master_loop_without_a_note_it_stops_uwsgi_naming_the_file(sockets):
    _, nginx, opened = sockets
    opened.append(bound(nginx))
    result = unchanged(nginx)
    assert result.returncode == 1
    assert result.stderr == f"wait-listener: {seen(nginx)}: No such file or directory\n"


def test_behind_a_restarted_listener_it_waits_for_the_rename_and_passes_once_it_comes(sockets):
    zerg, nginx, opened = sockets
    opened.append(bound(nginx, age=1))  # the previous listener's socket, which the app server held
    started = time.monotonic()
    rename = renamed_after_listener(zerg, nginx, opened, delay=1.0)
    result = wait_listener(zerg, nginx)
    rename.join()
    assert (result.returncode, result.stderr) == (0, "")
    assert 1.0 <= time.monotonic() - started < 10


@pytest.mark.parametrize("wait", ["0", "-1", "soon", "nan", "inf"])
def test_a_zerg_wait_that_is_not_a_positive_number_is_refused_by_name(sockets, wait):
    zerg, nginx, _ = sockets
    result = wait_listener(zerg, nginx, wait=wait)
    assert result.returncode == EX_CONFIG
    assert result.stderr == f"wait-listener: ZERG_WAIT={wait}: use seconds above 0, e.g. 30\n"


def listener_rename(new: Path, path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["sh", str(RENAME), str(new), str(path)], capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize(
    ("old_offset", "expected"),
    [
        pytest.param(0, "old + 1", id="bound in the same second as the old socket: dated a second past it"),
        pytest.param(2, "old + 1", id="the old socket dated ahead (an earlier bump): a second past it"),
        pytest.param(-5, "its own", id="bound later: keeps its own time"),
        pytest.param(None, "its own", id="no old socket: keeps its own time"),
    ],
)
def test_the_new_socket_takes_nginxs_path_dated_a_whole_second_past_the_old_one(sockets, old_offset, expected):
    _, nginx, opened = sockets
    new = nginx.with_name(nginx.name + ".new")
    opened.append(bound(new))
    own = os.stat(new).st_mtime_ns
    if old_offset is not None:
        opened.append(bound(nginx))
        old = own + old_offset * 10**9
        os.utime(nginx, ns=(old, old))
    result = listener_rename(new, nginx)
    assert (result.returncode, result.stderr) == (0, ""), result
    assert not new.exists(), "renamed, not copied"
    renamed = os.stat(nginx)
    if expected == "its own":
        assert renamed.st_mtime_ns == own
    else:
        assert int(renamed.st_mtime) == old // 10**9 + 1
    # The path reaches the new socket: a connect to it is accepted there.
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.connect(str(nginx))
        opened[0].settimeout(5)
        accepted, _ = opened[0].accept()
        accepted.close()


def test_every_command_the_listener_runs_is_among_the_inputs_that_name_its_image():
    """The listener runs an image tagged by the content of its inputs (tools/stack.py: LISTENER_INPUTS), so that a new
    app alone does not replace it: a command its config runs that is not among them would change without it."""
    listener_ini = (ROOT / "uwsgi" / "listener.ini").read_text()
    dockerfile = (ROOT / "docker" / "app" / "Dockerfile").read_text()
    commands = set(re.findall(r"^hook-[a-z-]+ = exec:(\S+)", listener_ini, re.MULTILINE))
    copies = re.findall(r"^COPY (docker/app/\S+) /usr/local/bin/(\S+)$", dockerfile, re.MULTILINE)
    shipped = {command: source for source, command in copies}
    assert commands == {"listener-rename"}, commands
    assert {shipped[command] for command in commands} <= set(LISTENER_INPUTS)
    assert {"uwsgi/listener.ini", "docker/app/app-entrypoint.sh"} <= set(LISTENER_INPUTS)
