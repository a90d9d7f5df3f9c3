"""One WSGI app that mounts the echo apps by path prefix (/plain/, /flask/, /django/, /falcon/, /bottle/), so one
image and one stack serve every framework. `/` answers 200 and everything else 404: there is no health route.
`/crash-once/<token>` and `/crash` are the faults the retry tests need (crash_once; every request to /crash kills its
worker); `/text-file/<name>` writes and reads back a file as an app does, with Python's default encodings;
`/env/<NAME>` answers {NAME: its value in the app's environment, or null}; `/grow/<MB>` makes its worker hold that
much more memory, as a leaking app does, and answers {"pid", "held_mb"}; `/bytes/<MB>/<token>` answers that many MB
of BYTES_PATTERN and, once it has handed over the last, leaves a file named for the token in its /tmp (SENT), so a
test knows the whole answer has left the app; `/spool/` copies the body into a temporary file, as a framework spools
a large upload (tempfile's directory), and answers its {"size", "sha256"} read back from there, and {"dir"};
`/environ/` answers what `environ_check` finds in the environ the server gave, 200 when nothing, else 500;
`/raise/<token>` raises an exception instead of answering, `/raise-after-start/<token>` does so once it has
called start_response, `/raise-in-body/<token>` answers with a generator that does so before its first chunk, as a
generator function written as a WSGI app does, and `/raise-mid-body/<token>` with one that does so after its first
(RuntimeError: raised by the app for <token>). `/events/<token>` is an event stream (text/event-stream) that writes
`data: 0`, then waits (up to 30 s) for a file named for the token in its /tmp (EVENTS_GO) before `data: 1` and the
end, so a test knows whether the first event reached it while the stream was still open. `/cookies/<n>` answers
with n Set-Cookie fields of COOKIE_BYTES each, as an app with a large session does. `/answer-headers/?Name=value`
answers with the header fields its query names. `/probe-only/` answers the marks the stack's health probe gives its
requests ({"HEALTHCHECK", "user_agent", "remote_addr"}): 200 when they are the probe's (docs/bring-your-own-app.md),
else 403. `/not-bytes/<shape>/<kind>` answers with a chunk that is not bytes (NOT_BYTES), as a plain app may by
mistake: first in a list or a generator, given to write(), or after a first chunk with a Content-Length ("late").
`/unstarted/<shape>/<token>` answers without calling start_response (a list, or a generator), as a plain app may by
mistake, and writes a line with the token to its log each time it runs. `/keep-environ/` holds on to its request's
environ, as an app that uses it after its answer does (a thread of its, a deferred task), and `/kept-environ/`
answers what that environ holds now ({"pid", "kept": its PATH_INFO and X-Who}), in the worker that answers (its "pid").
`/read/<call>` reads the body through wsgi.input as READS names, and answers what each read gave (a JSON list).
`/refuse-unread/` answers 403 without reading the request's body, as an app that checks a token first does.

WSGI_MODULE=dispatch:create_app(), the app factory (each worker calls it once), as Flask's create_app is named.
"""

import hashlib
import json
import os
import sys
import tempfile
import threading
import time
import warnings
from urllib.parse import parse_qsl
from wsgiref.validate import check_environ

import bottle_echo
import django_echo
import falcon_echo
import flask_echo
import plain_echo
from echo_core import SERVED_BYTES, served_file

MOUNTS = {
    "plain": plain_echo.application,
    "flask": flask_echo.app,
    "django": django_echo.application,
    "falcon": falcon_echo.app,
    "bottle": bottle_echo.app,
}


# The environ keys PEP 3333 lists for every request. It lets a server leave out a CGI variable whose value is empty,
# but the common servers (gunicorn, mod_wsgi, waitress, wsgiref) give them all, and apps read environ["SCRIPT_NAME"].
PEP3333_KEYS = (
    *("REQUEST_METHOD", "SCRIPT_NAME", "PATH_INFO", "QUERY_STRING", "CONTENT_TYPE", "CONTENT_LENGTH"),
    *("SERVER_NAME", "SERVER_PORT", "SERVER_PROTOCOL"),
    *("wsgi.version", "wsgi.url_scheme", "wsgi.input", "wsgi.errors"),
    *("wsgi.multithread", "wsgi.multiprocess", "wsgi.run_once"),
)


def environ_check(environ, start_response):
    """The environ as the server gave it, before any mount: the PEP 3333 keys it lacks, what the standard library's
    WSGI validator (wsgiref.validate.check_environ) asserts or warns of, and the CGI values it holds."""
    with warnings.catch_warnings(record=True) as warned:
        warnings.simplefilter("always")
        try:
            check_environ(environ)
            refused = None
        except (AssertionError, KeyError) as exc:
            # The validator itself fails on a missing SCRIPT_NAME with a KeyError (Python 3.13).
            refused = f"{type(exc).__name__}: {exc}"
    report = {
        "missing": [key for key in PEP3333_KEYS if key not in environ],
        "validator": refused,
        "warnings": [str(warning.message) for warning in warned],
        "cgi": {key: environ[key] for key in PEP3333_KEYS if key in environ and "." not in key},
        "url_scheme": environ.get("wsgi.url_scheme"),
    }
    failed = report["missing"] or refused or report["warnings"]
    return json_answer(start_response, report, "500 Internal Server Error" if failed else "200 OK")


# Shared by the workers of one app server: its temporary directory (the container's tmpfs /tmp).
CRASHED = os.path.join(tempfile.gettempdir(), "echo-crashed-")


def crash_once(environ, start_response):
    """The first request for a token kills its worker before it answers (the connection closes unanswered, as when
    a worker stops under a request); every later one answers 200 "answered on a retry". A POST's body is read
    first, so the request counts as received."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    if length:
        environ["wsgi.input"].read(length)
    token = "".join(c for c in environ.get("PATH_INFO", "").rsplit("/", 1)[-1] if c.isalnum())[:64]
    try:
        os.close(os.open(CRASHED + token, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "19")])
        return [b"answered on a retry"]
    os._exit(1)


def text_file(environ, start_response):
    """Write a file named by the path's last part, holding that name as text, with open()'s default encoding, then
    list the directory and read the file back: what an app storing an upload does. Answers {"listed", "read"}."""
    # PATH_INFO carries the path's bytes as latin-1 characters (PEP 3333); the name is their UTF-8.
    name = environ["PATH_INFO"].rsplit("/", 1)[-1].encode("latin-1").decode("utf-8")
    folder = tempfile.mkdtemp(prefix="echo-files-")
    with open(os.path.join(folder, name), "w") as f:
        f.write(name)
    with open(os.path.join(folder, name)) as f:
        return json_answer(start_response, {"listed": os.listdir(folder), "read": f.read()})


# What /grow/ holds on to, for as long as the worker lives.
HELD: list[bytearray] = []
GROW_AT_MOST_MB = 1024


def grow(environ, start_response):
    digits = "".join(c for c in environ["PATH_INFO"].rsplit("/", 1)[-1] if c.isdigit())
    megabytes = min(int(digits or 0), GROW_AT_MOST_MB)
    HELD.append(bytearray(megabytes * 2**20))  # zero-filled: every page written, so resident
    return json_answer(start_response, {"pid": os.getpid(), "held_mb": sum(map(len, HELD)) // 2**20})


# /bytes/: a megabyte of this pattern, repeated; the marker left once the last one has been handed to the server.
BYTES_PATTERN = bytes(range(256)) * 4096
SENT = os.path.join(tempfile.gettempdir(), "echo-sent-")
BYTES_AT_MOST_MB = 2048


def many_bytes(environ, start_response):
    size, _, token = environ["PATH_INFO"].removeprefix("/bytes/").partition("/")
    megabytes = min(int("".join(c for c in size if c.isdigit()) or 0), BYTES_AT_MOST_MB)
    token = "".join(c for c in token if c.isalnum())[:64]
    start_response("200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", str(megabytes * 2**20))])

    def chunks():
        yield from (BYTES_PATTERN for _ in range(megabytes))
        if token:
            os.close(os.open(SENT + token, os.O_CREAT | os.O_WRONLY))

    return chunks()


def spool(environ, start_response):
    left, digest, size = int(environ.get("CONTENT_LENGTH") or 0), hashlib.sha256(), 0
    with tempfile.TemporaryFile() as spooled:
        while left and (chunk := environ["wsgi.input"].read(min(left, 2**20))):
            spooled.write(chunk)
            left -= len(chunk)
        spooled.seek(0)
        while chunk := spooled.read(2**20):
            digest.update(chunk)
            size += len(chunk)
    return json_answer(start_response, {"size": size, "sha256": digest.hexdigest(), "dir": tempfile.gettempdir()})


def raise_in_body(path, start_response):
    """A generator: nothing of it runs until the server takes its first chunk, and it raises then."""
    start_response("200 OK", [("Content-Type", "text/plain"), ("X-Started", "yes")])
    raise RuntimeError(f"raised by the app for {path.rsplit('/', 1)[1]}")
    yield b"never"


def raise_mid_body(path, start_response):
    """A generator that raises after its first chunk: 12 of the 100 bytes its Content-Length promised."""
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "100")])
    yield b"first chunk\n"
    raise RuntimeError(f"raised by the app for {path.rsplit('/', 1)[1]}")


EVENTS_GO = os.path.join(tempfile.gettempdir(), "echo-events-")


def events(path, start_response):
    """An event stream held open between its two events until the test says go (bounded: 30 s)."""
    go = EVENTS_GO + "".join(c for c in path.rsplit("/", 1)[1] if c.isalnum())[:64]
    start_response("200 OK", [("Content-Type", "text/event-stream"), ("Cache-Control", "no-store")])
    yield b"data: 0\n\n"
    deadline = time.monotonic() + 30
    while not os.path.exists(go) and time.monotonic() < deadline:
        time.sleep(0.05)
    yield b"data: 1\n\n"


COOKIE_BYTES = 4000  # about a browser's limit for one cookie (4096 bytes, name and value)


def cookies(path, start_response):
    count = min(int("".join(c for c in path.rsplit("/", 1)[1] if c.isdigit()) or 0), 64)
    fields = [("Set-Cookie", f"c{n}={str(n) * (COOKIE_BYTES - 4)}; Path=/") for n in range(count)]
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "3"), *fields])
    return [b"ok\n"]


# How the stack's health probe (uwsgi-health) marks its requests, as docs/bring-your-own-app.md tells apps.
PROBE_MARKS = {"HEALTHCHECK": "1", "user_agent": "wsgi-chain-healthcheck", "remote_addr": "127.0.0.1"}


def probe_only(environ, start_response):
    """The marks an app can tell the stack's health probe by, as the request holds them: 200 when they are all the
    probe's, 403 for any other request (a client's must never pass for the probe)."""
    marks = {
        "HEALTHCHECK": environ.get("HEALTHCHECK"),
        "user_agent": environ.get("HTTP_USER_AGENT"),
        "remote_addr": environ.get("REMOTE_ADDR"),
    }
    return json_answer(start_response, marks, "200 OK" if marks == PROBE_MARKS else "403 Forbidden")


def answer_headers(environ, start_response):
    """An answer carrying the header fields its query names (?Name=value&...), as an app that passes its client's
    values into its answer does (httpbin's /response-headers): a body of 1,000 bytes after them, with its length
    unless the query gives the framing (a Content-Length or a Transfer-Encoding), and a status if it names one
    (?status=204, left out of the fields)."""
    fields = parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    status = next((value for name, value in fields if name == "status"), "200 OK")
    fields = [(name, value) for name, value in fields if name != "status"]
    body = b"answer-headers\n" + b"x" * 984 + b"\n"
    framed = any(name.lower() in ("content-length", "transfer-encoding") for name, _ in fields)
    own = [] if framed else [("Content-Length", str(len(body)))]
    start_response(status, [("Content-Type", "text/plain"), *own, *fields])
    return [body]


def error_page(path, start_response):
    """An app's own error page for an exception it caught, given with the exception's exc_info as PEP 3333 has it
    (Trac's, Bottle's): a 503 that replaces the 200 started before it; its body returned (/error-page/), written
    through write() (/error-page-written/), or after body bytes already written (/error-page-late/: too late,
    PEP 3333 has start_response raise the caught exception again)."""
    token = path.rsplit("/", 1)[1]
    write = start_response("200 OK", [("Content-Type", "text/plain")])
    if path.startswith("/error-page-late/"):
        write(b"begun\n")
    try:
        raise LookupError(f"caught by the app for {token}")
    except LookupError:
        body = f"the app's own error page for {token}\n".encode()
        headers = [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))]
        write = start_response("503 Service Unavailable", headers, sys.exc_info())
    if path.startswith("/error-page-written/"):
        write(body)
        return []
    return [body]


def file_from(environ, path, start_response):
    """A file answered through wsgi.file_wrapper from where the app left it (/file-from/<offset>)."""
    filelike = served_file(int(path.rsplit("/", 1)[1]))
    length = len(SERVED_BYTES) - filelike.tell()
    start_response("200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", str(length))])
    return environ["wsgi.file_wrapper"](filelike, 8192)


def pipe_answer(environ, start_response):
    """SERVED_BYTES answered through wsgi.file_wrapper from a pipe, as an app streaming a command's output does."""
    read_end, write_end = os.pipe()

    def feed():
        with os.fdopen(write_end, "wb") as out:
            out.write(SERVED_BYTES)

    threading.Thread(target=feed, daemon=True).start()
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return environ["wsgi.file_wrapper"](os.fdopen(read_end, "rb"), 8192)


# What an app may hand the server as a chunk of its answer by mistake (PEP 3333 asks for bytes), and None, which has
# nothing of the answer in it.
NOT_BYTES = {"str": "text", "bytearray": bytearray(b"a bytearray"), "memoryview": memoryview(b"a view"), "none": None}


def not_bytes(path, start_response):
    shape, _, kind = path.removeprefix("/not-bytes/").partition("/")
    chunk, before, after = NOT_BYTES[kind], b"before\n", b"after\n"
    if shape == "write":
        start_response("200 OK", [("Content-Type", "text/plain")])(chunk)
        return [after]
    if shape == "late":
        length = len(before) + len(chunk) + len(after)  # what the app meant to send
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(length))])
        return (part for part in (before, chunk, after))
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [chunk, after] if shape == "list" else (part for part in (chunk, after))


def unstarted(path):
    shape, _, token = path.removeprefix("/unstarted/").partition("/")
    print(f"unstarted answer for {token[:64]!r}", file=sys.stderr, flush=True)
    return [b"no start_response\n"] if shape == "list" else (part for part in (b"no start_response\n",))


# Reads of wsgi.input with a size Python's files give a meaning to (0: nothing; None: all, or the whole line), each
# then the rest of the body, as an app may ask for them.
READS = {
    "read-0": lambda body: [body.read(0), body.read()],
    "readline-0": lambda body: [body.readline(0), body.read()],
    "read-none": lambda body: [body.read(None), body.read()],
    "readline-none": lambda body: [body.readline(None), body.read()],
    "readlines-none": lambda body: [*body.readlines(None), body.read()],
    "read-3-then-0": lambda body: [body.read(3), body.read(0), body.read()],
}


def reads(environ, start_response):
    gave = READS[environ["PATH_INFO"].removeprefix("/read/")](environ["wsgi.input"])
    return json_answer(start_response, [chunk.decode("latin-1") for chunk in gave])


# The environ /keep-environ/ held on to, in this worker.
KEPT: dict[str, dict] = {}


def kept_environ(environ, start_response):
    if environ["PATH_INFO"] == "/keep-environ/":
        KEPT["environ"] = environ
        return json_answer(start_response, {"pid": os.getpid()})
    kept = KEPT.get("environ")
    now = kept and {"PATH_INFO": kept.get("PATH_INFO"), "HTTP_X_WHO": kept.get("HTTP_X_WHO")}
    return json_answer(start_response, {"pid": os.getpid(), "kept": now})


def json_answer(start_response, value, status: str = "200 OK") -> list[bytes]:
    body = json.dumps(value).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def application(environ, start_response):
    path = environ.get("PATH_INFO", "")
    if path.startswith("/text-file/"):
        return text_file(environ, start_response)
    if path.startswith("/env/"):
        name = path.removeprefix("/env/")
        return json_answer(start_response, {name: os.environ.get(name)})
    if path.startswith("/grow/"):
        return grow(environ, start_response)
    if path.startswith("/bytes/"):
        return many_bytes(environ, start_response)
    if path == "/spool/":
        return spool(environ, start_response)
    if path == "/environ/":
        return environ_check(environ, start_response)
    if path == "/probe-only/":
        return probe_only(environ, start_response)
    if path.startswith("/raise-in-body/"):
        return raise_in_body(path, start_response)
    if path.startswith("/raise-mid-body/"):
        return raise_mid_body(path, start_response)
    if path.startswith(("/error-page/", "/error-page-written/", "/error-page-late/")):
        return error_page(path, start_response)
    if path == "/file-from-pipe/":
        return pipe_answer(environ, start_response)
    if path.startswith("/file-from/"):
        return file_from(environ, path, start_response)
    if path.startswith("/events/"):
        return events(path, start_response)
    if path.startswith("/cookies/"):
        return cookies(path, start_response)
    if path == "/answer-headers/":
        return answer_headers(environ, start_response)
    if path.startswith("/not-bytes/"):
        return not_bytes(path, start_response)
    if path.startswith("/unstarted/"):
        return unstarted(path)
    if path in ("/keep-environ/", "/kept-environ/"):
        return kept_environ(environ, start_response)
    if path.startswith("/read/"):
        return reads(environ, start_response)
    if path == "/refuse-unread/":
        return json_answer(start_response, {"error": "refused, the body unread"}, "403 Forbidden")
    if path.startswith(("/raise/", "/raise-after-start/")):
        if path.startswith("/raise-after-start/"):
            start_response("200 OK", [("Content-Type", "text/plain"), ("X-Started", "yes")])
        raise RuntimeError(f"raised by the app for {path.rsplit('/', 1)[1]}")
    if path.startswith("/crash-once/"):
        return crash_once(environ, start_response)
    if path == "/crash":
        # Every request kills its worker unanswered: a retry fails too.
        os._exit(1)
    if path == "/":
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
        return [b"echo\n"]
    name, _, rest = path[1:].partition("/")
    if name in MOUNTS:
        # The prefix moves from PATH_INFO to SCRIPT_NAME, as any WSGI mount does (PEP 3333).
        environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + "/" + name
        environ["PATH_INFO"] = "/" + rest
        return MOUNTS[name](environ, start_response)
    start_response("404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", "10")])
    return [b"not found\n"]


def create_app():
    """The app factory WSGI_MODULE names: the stack calls it once in each worker (and check-app once) for the app."""
    return application
