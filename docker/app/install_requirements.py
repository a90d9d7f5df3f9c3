#!/usr/bin/env python3
"""Builder stage only: install the app's requirements into /opt/venv, beside what the app server runs on.

  install-requirements APP_REQUIREMENTS STACK_REQUIREMENTS

The stack's own requirements (uwsgi/requirements.txt: uWSGI, built by build_uwsgi.py, and what its metrics exporter
imports) are installed first, and pin what the app's may ask for (pip's constraints): an app that lists `uwsgi` gets
the stack's, and one that pins another version is refused. Before, pip replaced the stack's uWSGI with the app's pin,
a plain build (no static Python) of a version uwsgi.ini was not written for, and the app server did not start
("unknown config directive"), with nothing saying why.

pip's output is passed on as it comes (both its streams, on standard output). When it fails, a last line there
starting "app image: " says what to change, which `make up` shows as the build's failure (tools/stack.py).
"""

from __future__ import annotations

import re
import subprocess
import sys

PIP = "/opt/venv/bin/pip"
# pip's report of a conflict with a constraint (its resolver: "The user requested (constraint) uwsgi==2.0.31").
CONSTRAINT = re.compile(r"The user requested \(constraint\) (\S+)")


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    app, stack = argv
    pinned = []
    with subprocess.Popen(
        [PIP, "install", "--constraint", stack, "--requirement", app],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
    ) as pip:
        assert pip.stdout is not None
        for line in pip.stdout:
            sys.stdout.write(line)
            if match := CONSTRAINT.search(line):
                pinned.append(match[1])
        code = pip.wait()
    if code == 0:
        return 0
    if pinned:
        why = (
            f"the app's requirements ask for another version of what the app server runs on ({', '.join(pinned)},"
            " the stack's uwsgi/requirements.txt): take it out of them"
        )
    else:
        why = (
            "pip could not install the app's requirements.txt (its error is above); one built from source may need a"
            " system library's headers: name their Debian packages in APP_BUILD_PACKAGES (psycopg2: libpq-dev;"
            " mysqlclient: default-libmysqlclient-dev pkg-config)"
        )
    # On pip's stream, after its last line: BuildKit reads stdout and stderr apart, and a line on the other one could
    # be shown before pip's output, out of the last lines make up keeps.
    print(f"app image: {why}", flush=True)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
