#!/usr/bin/python3
"""supervisord event listener: when a program dies for good (FATAL), stop supervisord so the container exits.

Speaks supervisor's listener protocol on stdin/stdout; says what happened on stderr.
"""

import os
import signal
import sys


def fields(text: str) -> dict[str, str]:
    return dict(item.split(":", 1) for item in text.split())


def main() -> None:
    while True:
        sys.stdout.write("READY\n")
        sys.stdout.flush()
        header = fields(sys.stdin.readline())
        payload = fields(sys.stdin.read(int(header["len"])).split("\n", 1)[0])
        # One write (print makes two under PYTHONUNBUFFERED): the programs' lines go to the same log.
        sys.stderr.write(
            f"exit-on-fatal: {payload.get('processname', '?')} entered {header.get('eventname', '?')}; "
            "stopping supervisord so the container exits\n"
        )
        sys.stdout.write("RESULT 2\nOK")
        sys.stdout.flush()
        os.kill(os.getppid(), signal.SIGTERM)


if __name__ == "__main__":
    main()
