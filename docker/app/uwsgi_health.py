#!/usr/bin/env python3
"""Container health check: GETs to the app over uWSGI's own socket and protocol, as nginx would send them.

uwsgi-health           liveness. By default a GET of / that gets any answer below 500: a worker loaded the app and
                       answered, whatever routes the app has (most apps have no health route). With
                       HEALTHCHECK_PATH set, that path must answer 2xx (a stricter probe the app opts into).
uwsgi-health --ready   liveness, then readiness when READINESS_PATH is set: that path must answer 2xx (the default
                       app's /readyz: database reachable, migrations applied). Unset: liveness decides.

The default app's image sets HEALTHCHECK_PATH=/healthz and READINESS_PATH=/readyz (tools/stack.py); an empty value
is the same as unset. Settings: HEALTHCHECK_SOCKET (/tmp/uwsgi-probe.sock: uwsgi.ini's probe-only socket, so the
probe never queues behind a burst on nginx's; or [host]:port, checked on 127.0.0.1 when the host is empty),
HEALTHCHECK_HOST (localhost: must be one of the app's allowed hosts), HEALTHCHECK_TIMEOUT (2.5 s per request).
Every line it prints names the path, the answer and the setting to change.
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
        # The variables nginx sends for a GET (nginx/snippets/uwsgi-params.conf), empty ones too: an app may read
        # environ["SCRIPT_NAME"] as PEP 3333's servers all give it.
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "CONTENT_TYPE": "",
        "CONTENT_LENGTH": "",
        "REQUEST_SCHEME": "http",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "SERVER_NAME": host,
        "SERVER_PORT": "80",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": host,
        "HTTP_USER_AGENT": "wsgi-chain-healthcheck",
        # Marks the probe for uwsgi.ini, which keeps it out of the request log (nginx never sends this variable).
        "HEALTHCHECK": "1",
    }
    family, address = socket_address(os.environ.get("HEALTHCHECK_SOCKET", "/tmp/uwsgi-probe.sock"))  # noqa: S108
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(float(os.environ.get("HEALTHCHECK_TIMEOUT", "2.5")))
        sock.connect(address)
        sock.sendall(packet(variables))
        return sock.makefile("rb").readline().decode("latin-1").strip()


# Said of a socket nothing answers on (uWSGI not started yet, or gone), unlike an answer that fails.
NOT_ANSWERING = "uWSGI is not answering on its socket"


def status(status_line: str) -> int | None:
    """The status code of a status line ("HTTP/1.1 404 Not Found" -> 404); None when there is none."""
    code = (status_line.split(" ")[1:2] or [""])[0]
    return int(code) if code.isdigit() else None


def probe(path: str, strict: bool, setting: str) -> str | None:
    """None when the answer passes, else one line saying what was asked, what came back, and what to change."""
    try:
        status_line = get(path)
    except OSError as exc:
        return f"unhealthy: GET {path}: {exc} ({NOT_ANSWERING})"
    code = status(status_line)
    if code is None:
        return f"unhealthy: GET {path} -> no HTTP status ({status_line!r}): the app's worker did not answer"
    if strict and not 200 <= code < 300:
        hint = "unset it to accept any answer below 500" if setting == "HEALTHCHECK_PATH" else "unset it to skip it"
        return f"unhealthy: GET {path} -> {status_line}: {setting}={path} must answer 2xx ({hint})"
    if code >= 500:
        return f"unhealthy: GET {path} -> {status_line}: a server error (HEALTHCHECK_PATH names a path to probe)"
    return None


def checks(ready: bool) -> list[tuple[str, bool, str]]:
    """What is probed, in order, as (path, 2xx required, the setting that names it): liveness, then readiness."""
    live = os.environ.get("HEALTHCHECK_PATH") or ""
    found = [(live or "/", bool(live), "HEALTHCHECK_PATH")]
    readiness = os.environ.get("READINESS_PATH") or ""
    if ready and readiness:
        found.append((readiness, True, "READINESS_PATH"))
    return found


def first_problem(ready: bool) -> str | None:
    """None when every check passes, else the first failing one's line (try-app asks this too)."""
    for path, strict, setting in checks(ready):
        problem = probe(path, strict, setting)
        if problem:
            return problem
    return None


def main(argv: list[str]) -> int:
    ready = "--ready" in argv
    problem = first_problem(ready)
    if problem:
        print(problem)
        return 1
    done = checks(ready)
    print("healthy: " + ", ".join(f"GET {path} -> {'2xx' if strict else 'below 500'}" for path, strict, _ in done))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
