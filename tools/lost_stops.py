"""A stop signal a container lost as it started is sent again while a stop runs (`make down`, `make restart`).

Docker sends a container's stop signal once, to the container's first process (Docker's init, in this stack). A
container stopped in the moment it starts, as `make down` does while `make up` starts the stack, can lose it: the
signal reaches the init before the init has set up its signal handling, and the kernel drops a signal that the first
process of a PID namespace has no handler for. The container then runs on until the stop timeout's SIGKILL: 35 s for
nginx and the app server (`make down` during `make up` took 38 s about once in a hundred; the signal was sent 2 to
4 ms before nginx's entrypoint ran its first line).

So while a stop runs, `resending(project)` follows the project's containers' `kill` events: a container that was
sent its stop signal within `young` seconds of its start gets the same signal again every `every` seconds, until it
is gone. The stack's programs ignore a repeated stop signal once they are stopping (nginx, uWSGI, supervisord,
PostgreSQL), so one that heard the first is not hurried. The single container's supervisord does the same for its
programs (docker/single/stop_again.py).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

from tools.compose import PROJECT_LABEL, timestamp

# Only a container stopped this young may have lost the signal (it is lost before the container's init runs its
# first instructions); an older one heard it, and stopping gracefully may take it a while, with no need to be told
# again.
YOUNG = 5.0
# How long a young container that is being stopped goes without its stop signal again.
EVERY = 1.0


@dataclass(frozen=True)
class Kill:
    """A signal Docker sent a container (`docker events`' kill event)."""

    container: str  # its id
    name: str
    signal: int
    at: float  # POSIX time

    @classmethod
    def parse(cls, line: str) -> Kill | None:
        """The kill in one line of `docker events --format '{{json .}}'`; None for any other event."""
        event = json.loads(line)
        attributes = event.get("Actor", {}).get("Attributes", {})
        if event.get("Action") != "kill" or not attributes.get("signal", "").isdigit():
            return None
        return cls(event["Actor"]["ID"], attributes.get("name", ""), int(attributes["signal"]), event["timeNano"] / 1e9)


def started_at(container: str) -> float:
    """When the container last started (POSIX time); 0 when it no longer runs or is gone."""
    out = subprocess.run(
        ["docker", "inspect", "-f", "{{.State.Running}} {{.State.StartedAt}}", container],
        capture_output=True,
        text=True,
    ).stdout.split()
    return timestamp(out[1]) if out[:1] == ["true"] else 0.0


def may_be_lost(sent: float, started: float, young: float) -> bool:
    """Whether a stop signal sent at `sent` may have been lost by the container running since `started` (0: it runs no
    more): sent in its first `young` seconds. One sent before that start, read late, after a restart had started it
    again (`make restart`), was the run before's, and sent again it would stop the new one."""
    return bool(started) and 0 <= sent - started < young


def still_stopping(sent: float, started: float) -> bool:
    """Whether the container a stop signal was sent to at `sent` still runs the run it was sent to: not gone, nor
    started again since (a restart), which that stop must not reach."""
    return bool(started) and started <= sent


@contextlib.contextmanager
def resending(project: str, young: float = YOUNG, every: float = EVERY) -> Iterator[list[str]]:
    """Within the block, each container of `project` that is sent a stop signal in its first `young` seconds gets it
    again every `every` seconds until it no longer runs. Yields the names of the containers it was sent again, as it
    goes. Says nothing: a young container that heard its signal may just take longer than `every` to stop gracefully
    (the app server takes about 2 s), so a repeat is no sign that a signal was lost."""
    filters = ["--filter", "type=container", "--filter", "event=kill", "--filter", f"label={PROJECT_LABEL}={project}"]
    follower = ["docker", "events", "--since", f"{time.time() - 1:.3f}", "--format", "{{json .}}", *filters]
    # setpriv (util-linux, in every Debian): the follower gets SIGTERM when this process ends, so a `make down` that
    # is killed leaves none behind.
    with_parent = ["setpriv", "--pdeathsig", "TERM"] if shutil.which("setpriv") else []
    events = subprocess.Popen(
        [*with_parent, *follower],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    young_kills: dict[str, Kill] = {}
    resent: list[str] = []
    seen: set[str] = set()  # containers whose first kill was looked at (the resent ones are theirs too)
    lock = threading.Lock()
    done = threading.Event()

    def follow() -> None:
        for line in events.stdout or ():
            kill = Kill.parse(line)
            if kill is None or kill.signal == signal.SIGKILL or kill.container in seen:
                continue
            seen.add(kill.container)
            if may_be_lost(kill.at, started_at(kill.container), young):
                with lock:
                    young_kills[kill.container] = kill

    def resend() -> None:
        while not done.wait(every):
            with lock:
                pending = list(young_kills.values())
            for kill in pending:
                if not still_stopping(kill.at, started_at(kill.container)):
                    with lock:
                        young_kills.pop(kill.container, None)
                    continue
                if kill.name not in resent:
                    resent.append(kill.name)
                subprocess.run(["docker", "kill", "-s", str(kill.signal), kill.container], capture_output=True)

    threads = [threading.Thread(target=follow, daemon=True), threading.Thread(target=resend, daemon=True)]
    for thread in threads:
        thread.start()
    try:
        yield resent
    finally:
        done.set()
        events.terminate()
        events.wait()
        for thread in threads:
            thread.join()
