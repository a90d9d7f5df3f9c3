"""Python imports this at its start wherever it is on the path (the site module's sitecustomize): for
tests/test_operations.py only, through tests/compose.listener-races.yaml, which puts it on the app server's path.
In uWSGI's master, Python starts after the master attached to the listener's socket and before its master loop:
when armed, this holds the master there until released, so that a test can replace the listener in that moment.
Armed by the file ARMED (used once), held until the file RELEASE exists (then removed), for at most HOLD_AT_MOST
seconds; HELD exists while it holds. The files are on the app-data volume, so they outlive a restart. Any other
Python (the entrypoint's check-app, wait-listener, docker exec) passes straight through."""

import os
import time

DIR = "/var/lib/app"
ARMED, HELD, RELEASE = (os.path.join(DIR, name) for name in ("hold-armed", "hold-held", "hold-release"))
HOLD_AT_MOST = 60.0

if os.path.basename(os.readlink("/proc/self/exe")) == "uwsgi" and os.path.exists(ARMED):
    os.remove(ARMED)
    open(HELD, "w").close()
    deadline = time.monotonic() + HOLD_AT_MOST
    while not os.path.exists(RELEASE) and time.monotonic() < deadline:
        time.sleep(0.05)
    for name in (RELEASE, HELD):
        if os.path.exists(name):
            os.remove(name)
