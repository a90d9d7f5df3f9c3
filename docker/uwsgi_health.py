#!/usr/bin/env python3
"""Container health check: one GET to the app over uWSGI's own socket and protocol, as nginx would send it.

Healthy when the app answers 200. Settings: UWSGI_SOCKET (/run/uwsgi/uwsgi.sock; or [host]:port, as the Swarm
stack sets it, checked on 127.0.0.1 when the host is empty), HEALTHCHECK_PATH (/healthz),
HEALTHCHECK_HOST (localhost: must be one of the app's allowed hosts).
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


def main() -> int:
    path = os.environ.get("HEALTHCHECK_PATH", "/healthz")
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
    }
    try:
        family, address = socket_address(os.environ.get("UWSGI_SOCKET", "/run/uwsgi/uwsgi.sock"))
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.settimeout(float(os.environ.get("HEALTHCHECK_TIMEOUT", "2.5")))
            sock.connect(address)
            sock.sendall(packet(variables))
            status_line = sock.makefile("rb").readline().decode("latin-1").strip()
    except OSError as exc:
        print(f"unhealthy: {exc}")
        return 1
    if status_line.split(" ")[1:2] == ["200"]:
        print(f"healthy: {path} -> {status_line}")
        return 0
    print(f"unhealthy: {path} -> {status_line or 'no answer'}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
