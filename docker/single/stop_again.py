#!/usr/bin/python3
"""supervisord event listener: send a program supervisord is stopping its stop signal again until it has stopped.

supervisord sends a program's stop signal once. A program it started a few milliseconds before is not running its
command yet: the forked child is still supervisord's own Python code, whose signal handlers catch the signal and
drop it. Stopped as it started (a `docker stop` in the container's first second), a program then ran on until the
stop timeout killed it, and the programs after it in the stop order waited. Here each program supervisord stops in
its first YOUNG seconds gets its stopsignal (read from supervisord's config, the only argument) again every RESEND
seconds until it is gone. The programs stop gracefully on the first signal they hear and ignore the ones after it.

Speaks supervisor's listener protocol on stdin/stdout; says what it did on stderr.
"""

from __future__ import annotations

import configparser
import os
import signal
import sys
import time

# How long a program supervisord is stopping goes without its stop signal again.
RESEND = 1.0
# Only a program stopped this young may have missed the signal (it is lost in the moments before its command runs,
# and uWSGI ignores it until its own first instructions ran: uwsgi/uwsgi.ini); an older one heard it, and stopping
# gracefully may take it a while, with no need to be told again.
YOUNG = 5.0


def say(message: str) -> None:
    # One write (print makes two under PYTHONUNBUFFERED): nginx's and uWSGI's lines go to the same log.
    sys.stderr.write(f"stop-again: {message}\n")


def stop_signals(config_file: str) -> dict[str, signal.Signals]:
    """Each program's stopsignal in supervisord's config (supervisord's default when unset: TERM)."""
    config = configparser.RawConfigParser(strict=False)
    config.read(config_file)
    return {
        section.split(":", 1)[1]: signal.Signals["SIG" + config.get(section, "stopsignal", fallback="TERM").upper()]
        for section in config.sections()
        if section.startswith("program:")
    }


def next_event() -> dict[str, str]:
    """The next event's payload (its first line's fields), once told supervisord this listener is done with it."""
    sys.stdout.write("READY\n")
    sys.stdout.flush()
    header = dict(item.split(":", 1) for item in sys.stdin.readline().split())
    payload = sys.stdin.read(int(header["len"])).split("\n", 1)[0]
    sys.stdout.write("RESULT 2\nOK")
    sys.stdout.flush()
    return dict(item.split(":", 1) for item in payload.split())


def stat_fields(pid: int) -> list[str]:
    """The process's /proc stat fields after its command's name, the state first; OSError once it is gone."""
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()


def age(pid: int) -> float:
    """Seconds since the process started (its exec'd command or the fork before it: the same process)."""
    started = int(stat_fields(pid)[19]) / os.sysconf("SC_CLK_TCK")
    with open("/proc/uptime") as uptime:
        return float(uptime.read().split()[0]) - started


def gone(pid: int) -> bool:
    """No such process, or a zombie: it keeps its pid until supervisord reaps it, but has stopped all the same."""
    try:
        return stat_fields(pid)[0] == "Z"
    except OSError:
        return True


def stop_again(name: str, pid: int, sig: signal.Signals) -> None:
    """Until the program is gone: its signal every RESEND seconds (said once: a graceful stop may take a while)."""
    said = False
    while True:
        time.sleep(RESEND)
        if gone(pid):
            return
        if not said:
            say(f"{name} (pid {pid}) is still stopping: its {sig.name} again every {RESEND:.0f} s until it is gone")
            said = True
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return


def main() -> None:
    signals = stop_signals(sys.argv[1])
    while True:
        event = next_event()
        name, pid = event.get("processname", ""), int(event.get("pid", "0"))
        try:
            young = name in signals and pid > 0 and age(pid) < YOUNG
        except OSError:
            continue  # gone already
        if young:
            stop_again(name, pid, signals[name])


if __name__ == "__main__":
    main()
