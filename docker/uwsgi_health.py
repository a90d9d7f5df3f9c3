#!/usr/bin/env python3
"""Container health check: GETs to the app over uWSGI's own socket and protocol, as nginx would send them.

uwsgi-health           liveness: HEALTHCHECK_PATH (/healthz) answers 200
uwsgi-health --ready   liveness, then readiness: READINESS_PATH (/readyz: database reachable, migrations applied)
                       answers 200; a 404 there means the app has no readiness endpoint, and liveness decides

Settings: UWSGI_SOCKET (/run/uwsgi/uwsgi.sock; or [host]:port, as the Swarm stack sets it, checked on 127.0.0.1
when the host is empty), HEALTHCHECK_PATH, READINESS_PATH, HEALTHCHECK_HOST (localhost: must be
one of the app's allowed hosts), HEALTHCHECK_TIMEOUT (2.5 s per request).
"""

import os
import socket
import struct
import sys


def packet(variables: dict[str, str]) -> bytes:
    body = b"".join(
        struct.pack("<H", len(k)) + k + struct.pack("<H", len(v)) + v
        for k, v in ((key.encode(), value.encode()) for key, value in variables.items())
    )
    return struct.pack("<BHB", 0, len(body), 0) + body


def socket_address(value: str) -> tuple[socket.AddressFamily, str | tuple[str, int]]:
    """A path is a unix socket; [host]:port is TCP (uWSGI's own notation, where ":3031" means every address)."""
    host, colon, port = value.rpartition(":")
    if colon and port.isdigit():
        return socket.AF_INET, (host or "127.0.0.1", int(port))
    return socket.AF_UNIX, value


def get(path: str) -> str:
    """The status line of a GET to path; raises OSError when the socket does not answer."""
    host = os.environ.get("HEALTHCHECK_HOST", "localhost")
    variables = {
        "REQUEST_METHOD": "GET",
        "REQUEST_URI": path,
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "SERVER_NAME": host,
        "SERVER_PORT": "80",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": host,
        "HTTP_USER_AGENT": "wsgi-chain-healthcheck",
        # Marks the probe for uwsgi.ini, which keeps it out of the request log (nginx never sends this variable).
        "HEALTHCHECK": "1",
    }
    family, address = socket_address(os.environ.get("UWSGI_SOCKET", "/run/uwsgi/uwsgi.sock"))
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(float(os.environ.get("HEALTHCHECK_TIMEOUT", "2.5")))
        sock.connect(address)
        sock.sendall(packet(variables))
        return sock.makefile("rb").readline().decode("latin-1").strip()


def status(status_line: str) -> str:
    return (status_line.split(" ")[1:2] or [""])[0]


def main(argv: list[str]) -> int:
    checks = [("live", os.environ.get("HEALTHCHECK_PATH", "/healthz"))]
    if "--ready" in argv:
        checks.append(("ready", os.environ.get("READINESS_PATH", "/readyz")))
    for kind, path in checks:
        try:
            status_line = get(path)
        except OSError as exc:
            print(f"unhealthy: {exc}")
            return 1
        if kind == "ready" and status(status_line) == "404":
            print(f"healthy: {path} -> 404: the app has no readiness endpoint; liveness decides")
            return 0
        if status(status_line) != "200":
            print(f"unhealthy: {path} -> {status_line or 'no answer'}")
            return 1
    print(f"healthy: {', '.join(path for _, path in checks)} -> 200")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
