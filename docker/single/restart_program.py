#!/usr/bin/python3
"""`restart-program NAME`: stop one of supervisord's programs gracefully, then start it without waiting `startsecs`.

`supervisorctl restart` returns only once supervisord calls the started program RUNNING, `startsecs` after its start
(5 s for uWSGI: docker/single/supervisord.conf), however soon the program serves. `make restart` waits for the app
server's health check itself (tools/stack.py), so that wait only delayed its answer. Here the stop waits as
supervisorctl's does (the program finishes its requests in flight), and the start returns once supervisord has
spawned the program. A program that then fails to start is supervisord's to retry and, past `startretries`, to mark
FATAL (exit-on-fatal then stops the container), as with supervisorctl.

Talks to supervisord over the socket its config names for supervisorctl; says what it did on stdout, as
supervisorctl does, and exits 1 with one line on stderr when supervisord refuses.
"""

from __future__ import annotations

import configparser
import sys
import xmlrpc.client

from supervisor.xmlrpc import Faults, SupervisorTransport

CONFIG = "/etc/supervisor/supervisord.conf"


def supervisord() -> xmlrpc.client.ServerProxy:
    """supervisord's XML-RPC interface, at the [supervisorctl] serverurl of its config."""
    config = configparser.RawConfigParser(strict=False)
    config.read(CONFIG)
    url = config.get("supervisorctl", "serverurl")
    # The host part is unused over a unix socket, as in supervisorctl.
    return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=SupervisorTransport(None, None, url))


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: restart-program NAME (one of supervisord's programs)", file=sys.stderr)
        return 2
    name = argv[0]
    rpc = supervisord().supervisor
    try:
        try:
            rpc.stopProcess(name, True)
            print(f"{name}: stopped", flush=True)
        except xmlrpc.client.Fault as fault:
            if fault.faultCode != Faults.NOT_RUNNING:
                raise
            print(f"{name}: was not running", flush=True)
        rpc.startProcess(name, False)
    except xmlrpc.client.Fault as fault:
        print(f"restart-program: supervisord refused to restart {name}: {fault.faultString}", file=sys.stderr)
        return 1
    print(f"{name}: starting (its health check tells when it serves)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
