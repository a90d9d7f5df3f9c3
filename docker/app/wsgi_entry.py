"""The WSGI callable uWSGI loads (uwsgi.ini `wsgi-file`): the app named by WSGI_MODULE, handed each field value
without its surrounding whitespace, as RFC 9110 5.5 reads it. nginx trims spaces around a value but not tabs, so a
value sent as "\tx\t" would otherwise reach the app with its tabs. Nothing else is changed.

One thing is answered without the app: a request that waited in the app server's queue for longer than
QUEUE_TIMEOUT seconds gets a 503 with Retry-After at once (docs/operations.md: Bursts). And one the app raised an
exception for, before its answer began (the first chunk of its body included), gets a 500 (app_error, below).

And each worker whose memory grows past WORKER_MAX_RSS_MB is recycled after the request in hand (below).

One header is added, for nginx only (which takes it out): an event stream (Server-Sent Events) is marked unbuffered,
so that nginx passes each event on as the app writes it (streamed_events, below).

And start_response takes PEP 3333's exc_info as the PEP says and refuses a header field the client would read
otherwise than the app wrote it (checked_start, below), the file wrapper sends a file from where the app left it
(from_position, below), and a chunk of the answer that is not bytes is refused (checked_body, below), none of which
uWSGI's own do. The request's body reads as a Python file does (Input, below): read(0) gives nothing; and what
the app leaves of it is read to its end before the connection closes (Input.drain).
"""

import contextlib
import functools
import importlib
import json
import os
import re
import signal
import stat
import sys
import threading
import time

# The app's own directory first, as check-app imports it.
sys.path.insert(0, os.environ.get("APP_DIR", "/srv/app"))
_module, _, _name = os.environ["WSGI_MODULE"].partition(":")
# module:factory(): the app is what the factory returns (Flask's create_app), made once in each worker.
_name, _factory, _ = _name.partition("(")
app = functools.reduce(getattr, (_name or "application").split("."), importlib.import_module(_module))
app = app() if _factory else app
WHITESPACE = " \t"


def number_setting(name: str, default: str, kind: type[int] | type[float], advice: str) -> float:
    """A setting that is a number, 0 or more, from the environment (`default` when unset or empty); otherwise an
    error naming the setting and what to write (the container's entrypoint refuses the same values first)."""
    raw = os.environ.get(name) or default
    try:
        value = kind(raw)
    except ValueError:
        value = -1
    if not 0 <= value < float("inf"):
        raise ValueError(f"{name}={raw!r}: {advice}")
    return value


# The queue's deadline. nginx stamps each request with QUEUE_START, its clock when it hands the request over
# (snippets/uwsgi-pass.conf; a parameter, not a header, so a client cannot set it). A request older than this when a
# worker takes it has waited behind a burst or a stall for long enough: it is answered 503 at once, without running
# the app, so that the workers catch up with the queue instead of serving answers that may come too late, and the
# client knows when to come back. Default 10 s, under nginx's uwsgi_read_timeout (35 s); 0 turns it off. A request
# without the stamp (no nginx in front) is never shed.
QUEUE_TIMEOUT = number_setting("QUEUE_TIMEOUT", "10", float, "use a number of seconds, e.g. 10 (0: no deadline)")
RETRY_AFTER = "5"


_clock = time.time


def waited_too_long(stamp: str) -> bool:
    """True when QUEUE_START (`stamp`) is further back than QUEUE_TIMEOUT; a stamp that is not a number never is."""
    try:
        return _clock() - float(stamp) > QUEUE_TIMEOUT
    except ValueError:
        return False


def json_error(environ, status: int, error: str, *extra: tuple[str, str]) -> tuple[bytes, list[tuple[str, str]]]:
    """An answer's body and headers in nginx's own JSON error shape (nginx/snippets/errors.conf), so that a client
    sees one shape whichever layer answered; `extra` headers go before Cache-Control."""
    answer = {"status": status, "error": error, "request_id": environ.get("HTTP_X_REQUEST_ID", "-")}
    body = json.dumps(answer).encode() + b"\n"
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body))), *extra]
    return body, [*headers, ("Cache-Control", "no-store")]


def busy(environ, start_response):
    """One 503 whichever queue was full (nginx's or this app server's)."""
    body, headers = json_error(environ, 503, "app server busy", ("Retry-After", RETRY_AFTER))
    start_response("503 Service Unavailable", headers)
    return [body]


def app_error(environ, start_response, error: Exception):
    """The app raised `error` instead of answering. uWSGI alone would close the connection without an answer: nginx
    took that for a worker that died, sent a GET (any method it may repeat) to the app a second time, and answered
    502 "app server unavailable". Here the client gets a 500 in nginx's JSON error shape, and the app ran once.
    The exception is raised again once the answer is out, so uWSGI logs its traceback and counts it (its stats'
    `exceptions`, the uwsgi_exceptions_total metric) as for any exception of the app's."""
    body, headers = json_error(environ, 500, "internal error")
    # Replaces the headers of a start_response the app called before it raised: none is sent before the first body
    # bytes, and uWSGI's start_response starts again from nothing until then.
    try:
        start_response("500 Internal Server Error", headers)
    except OSError:
        raise error from None  # the app's answer had begun (through write()): too late for a 500
    yield body
    raise error


# An event stream (text/event-stream, Server-Sent Events) holds its connection open and writes an event now and then.
# nginx buffers what the app server answers (its default, kept: a sync worker never waits on a slow client) and passed
# nothing on until the buffer filled or the answer ended, so a browser's EventSource got every event at the end. nginx
# passes an answer on as it comes when the app server's header says `X-Accel-Buffering: no` (nginx takes the header
# out), which few apps send: it is added to an event stream's answer, unless the app chose for itself. Looked for only
# when the request accepts an event stream, as every EventSource's does (its Accept field), so that other requests
# pay one dict lookup for it.
EVENT_STREAM = "text/event-stream"


def streamed_events(start_response):
    """start_response, with `X-Accel-Buffering: no` added to an answer whose Content-Type is an event stream."""

    def start(status, headers, exc_info=None):
        names = {name.lower(): value for name, value in headers}
        content_type = names.get("content-type", "").partition(";")[0].strip().lower()
        if content_type == EVENT_STREAM and "x-accel-buffering" not in names:
            headers = [*headers, ("X-Accel-Buffering", "no")]
        return start_response(status, headers, exc_info)

    return start


# An app that answers an error it caught (its own error page) may give start_response the exception's exc_info, as
# PEP 3333 asks: until the answer's headers are sent, the status and headers replace any given before, and after, the
# exception is raised again. uWSGI's start_response (2.0, unbit/uwsgi#2278) sets the exception as pending and returns
# with it set, so Python raised a SystemError in the app at the call: the answer's status and headers went out with
# no body (Trac's 404 and 500 pages came empty), or the app's error handling gave way to app_error's 500 (Bottle's
# own error page and its @error(500) handlers were never seen). Here uWSGI's is called without it, and the exception
# is raised again where uWSGI says the headers have gone ("headers already sent").
#
# And an answer's head the client would read otherwise than the app wrote it is refused (ValueError), as gunicorn
# refuses it. A control character in the status or a value (RFC 9110 5.5: any but a tab): uWSGI wrote a CR or LF out
# as it was and nginx read it as the field's end, so an app that puts its client's text into a field (a plain WSGI
# app's redirect target, say) let the client add fields of its own to the answer, or end its header early (response
# splitting); the others reached the client raw. A name that is no token (RFC 9110 5.1): one with a colon came out as
# another field ("Set-Cookie: a" and its value as a Set-Cookie), and an empty one was dropped. And what nginx cannot
# frame: a name with a space or a tab, a Content-Length that is not one number or given twice, or a Transfer-Encoding
# but chunked (the server frames the answer, PEP 3333; nginx frames a body the app calls chunked as its own), each of
# which nginx answered with a 502 "app server unavailable" for what was the app's error; a status that is no "200 OK"
# went out as a 200. And a 1xx as the answer's status: an interim answer, which WSGI has no way to give (RFC 9110
# 15.2), went out as final with the body after it: a client waits on for the answer and reads the body as one, and a
# 101 tells it, and any proxy before it, that the connection now speaks another protocol. Refused, it gets
# app_error's 500 unless the app catches it.
# Django, Werkzeug and Bottle refuse a line break themselves; a plain WSGI app did not.
CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
NOT_TOKEN = re.compile(r"[^!#$%&'*+\-.^_`|~0-9A-Za-z]")
STATUS = re.compile(r"[2-5][0-9][0-9]( .*)?")
# Names (and statuses) seen to be sound, each with what it is, so that each is looked at once: an app has a few dozen.
# A status's kind is no field name ("(" is no token character), so a status is never taken for a name seen.
LENGTH, FRAMING, A_STATUS = "content-length", "transfer-encoding", "(status)"
SEEN: dict[str, str] = {}
SEEN_AT_MOST = 512


def seen(text: str, kind: str) -> str:
    if len(SEEN) < SEEN_AT_MOST:
        SEEN[text] = kind
    return kind


def broken_field(status: str, headers) -> str | None:
    """What of the answer's status line or header fields the client would not read as written, or None (also for
    what is no text, which uWSGI's start_response refuses with its own TypeError)."""
    try:
        if SEEN.get(status) != A_STATUS:
            if CONTROL.search(status):
                return "the status line holds a control character (CR, LF, NUL or another)"
            if not STATUS.fullmatch(status):
                return f"the status {status[:40]!r} is no final code 200-599 and reason, as in '200 OK' (PEP 3333)"
            seen(status, A_STATUS)
        lengths = 0
        for name, value in headers:
            kind = SEEN.get(name)
            if kind is None:
                if not name or NOT_TOKEN.search(name):
                    return f"the header field name {name[:40]!r} is no token (a space, a colon, a line break?)"
                kind = seen(name, name.lower())
            # isprintable(): the common case at C speed (a tab or a byte past ASCII takes the pattern).
            if not value.isprintable() and CONTROL.search(value):
                return f"the header field {name[:40]!r} holds a control character (CR, LF, NUL or another)"
            if kind == LENGTH:
                lengths += 1
                if lengths > 1 or not (value.isascii() and value.isdigit()):
                    return f"the Content-Length {value[:40]!r} is not one whole number, given once"
            elif kind == FRAMING and value.strip().lower() != "chunked":
                return f"the answer's Transfer-Encoding {value[:40]!r} is none nginx can frame: the server frames it"
    except (AttributeError, TypeError, ValueError):
        return None
    return None


def checked_start(start_response):
    """start_response, taking exc_info as PEP 3333 says and refusing a field the client would read otherwise; its
    `called` says whether the app has called it."""

    def start(status, headers, exc_info=None):
        if broken := broken_field(status, headers):
            raise ValueError(f"{broken}: the answer was not sent")
        if exc_info is None:
            write = start_response(status, headers)
        else:
            try:
                write = start_response(status, headers)
            except OSError:
                raise exc_info[1].with_traceback(exc_info[2]) from None
            finally:
                exc_info = None  # no reference cycle through the traceback (PEP 3333)
        start.called = True  # once uWSGI has taken it (a value it refuses raises its own TypeError)
        return checked_write(write)

    start.called = False
    return start


# PEP 3333: the app calls start_response before the first bytes of its body (a generator, before it yields them).
# uWSGI sends an answer without it as nothing at all: nginx took that for a worker that died, sent a GET to the app
# a second time, and answered 502 "app server unavailable". Here it gets app_error's 500, once.
def not_started() -> RuntimeError:
    return RuntimeError("the app answered without calling start_response (PEP 3333): nothing was sent")


# PEP 3333: the answer's body is bytes, each chunk of the iterable the app returns and each given to write(). uWSGI
# skips any other chunk and goes on (a str, a bytearray, a memoryview): the client got a 200 with those bytes missing
# from the middle, or no body at all (an app that returned text), and a write() of one was lost without a log line.
# Refused here with a TypeError naming the chunk's type, as gunicorn, mod_wsgi and Werkzeug refuse it: before the
# answer has begun it gets app_error's 500, after it the answer ends there (docs/bring-your-own-app.md). None, which
# uWSGI skips without a word, is skipped still (waitress too): nothing of the answer is in it.
def passes(chunk) -> bool:
    """Whether uWSGI is handed the chunk as it is: bytes, or None (nothing)."""
    return type(chunk) is bytes or chunk is None or isinstance(chunk, bytes)


def not_bytes(chunk, where: str) -> TypeError:
    if isinstance(chunk, str):
        fix = "encode text (.encode())"
    elif isinstance(chunk, (bytearray, memoryview)):
        fix = "copy it into bytes (bytes(...))"
    else:
        fix = "give bytes"
    name = type(chunk).__name__
    return TypeError(f"the app's answer {where} a {name}, not bytes (PEP 3333): not sent; {fix}")


@functools.cache
def checked_write(server_write):
    """The write() start_response returns: uWSGI's (`server_write`), for bytes only."""

    def write(data):
        if type(data) is not bytes and not isinstance(data, bytes):
            raise not_bytes(data, "given to write() holds")
        return server_write(data)

    return write


# PEP 3333: answering with wsgi.file_wrapper(file) is answering as if with iter(lambda: file.read(block_size), b""),
# the file from its current position. uWSGI's wrapper (uwsgi_sendfile) sends a real file with sendfile from its
# start whatever its position, and sends nothing at all of a pipe: Django's FileResponse of a file the app had read
# into or seeked (its Content-Length counts from the position) sent the file's first bytes in place of the rest, and
# an app streaming a command's output (its stdout pipe) answered an empty 200. A regular file at its start goes to
# uWSGI's wrapper, sent with sendfile as before; anything else is read from where it is, a block at a time.
class FromPosition:
    """The file's bytes from its current position, `block_size` at a time; closing the answer closes the file."""

    def __init__(self, filelike, block_size: int):
        self.filelike, self.block_size = filelike, block_size

    def __iter__(self):
        return iter(functools.partial(self.filelike.read, self.block_size), b"")

    def close(self) -> None:
        if close := getattr(self.filelike, "close", None):
            close()


def sendfile_whole(filelike) -> bool:
    """Whether uWSGI's wrapper sends the file as it is: a regular file, at its start."""
    try:
        return stat.S_ISREG(os.fstat(filelike.fileno()).st_mode) and filelike.tell() == 0
    except (AttributeError, OSError, ValueError):
        return False


def from_position(server_wrapper, handed: list):
    """wsgi.file_wrapper: the server's (`server_wrapper`) for a regular file at its start, else FromPosition. What
    the server's returns is added to `handed`: the app's answer when it returns that, which uWSGI sends with sendfile
    only if it is the very object (so it is passed on unwrapped)."""

    def wrap(filelike, block_size: int = 8192):
        if not sendfile_whole(filelike):
            return FromPosition(filelike, block_size)
        handed.append(answer := server_wrapper(filelike, block_size))
        return answer

    return wrap


# wsgi.input reads as Python's files do, and gunicorn's and waitress's: read(0) and readline(0) give b"", and a size
# of None means all of it (or the whole line), as -1 does. uWSGI's read(0) read the whole body, and its readline(0) a
# line, for an app that had asked for nothing and so looked at none of it: its next read found the body gone (Django's
# request.read(0), Flask's request.stream.read(0) and Falcon's bounded_stream.read(0) did so, and so would any reader
# of length-prefixed records with an empty one); a size of None raised a TypeError. uWSGI's readline(size) may still
# give a longer line than size (nothing of the body is lost) and readlines(hint) every line (PEP 3333 allows it).
#
# And what the app leaves unread of the body is read to its end before uWSGI closes the connection (drain): nginx
# sends the whole body at once (it has it whole), and a unix socket closed with bytes unread answers the other end's
# next read with a reset, which nginx took for a broken app server while it read the app's answer: an app that
# refused a large upload without reading it (a 401 for a missing token, a 403, a 413 of its own) had its answer
# turned into a 502 "app server unavailable" (seen: 11 of 20 concurrent 8 MB POSTs), as had the 503 of a request that
# waited too long in the queue. Bounded by MAX_BODY_SIZE, and read in memory a block at a time.
DRAIN_BLOCK = 65536


class Input:
    """uWSGI's wsgi.input (`server`), with Python's file semantics for a size of 0 or None."""

    __slots__ = ("server",)

    def __init__(self, server):
        self.server = server

    def read(self, size=-1):
        if size is None or size < 0:
            return self.server.read()
        return self.server.read(size) if size else b""

    def readline(self, size=-1):
        if size is None or size < 0:
            return self.server.readline()
        return self.server.readline(size) if size else b""

    def readlines(self, hint=-1):
        return self.server.readlines() if hint is None else self.server.readlines(hint)

    def __iter__(self):
        return self

    def __next__(self):
        return next(self.server)

    def drain(self) -> None:
        """Read what is left of the body, to its end; a connection broken meanwhile ends it."""
        read = self.server.read
        with contextlib.suppress(OSError):
            while read(DRAIN_BLOCK):
                pass

    def __getattr__(self, name: str):
        # Anything else uWSGI's has (fileno()) is its own. `server` itself comes here only while unset (a copy being
        # made): not looked up in itself again, which would recurse.
        if name == "server":
            raise AttributeError(name)
        return getattr(self.server, name)


# The app is handed an environ of its own, a copy of uWSGI's. uWSGI 2.0 fills one dict per worker for every request
# and clears it after each (its wsgi-env-behaviour "cheat"): an app that held on to a request's environ past its
# answer (Django's request.META, Werkzeug's request.environ, in a thread it started, a queued log record, a deferred
# task) read the next request's path, address and cookies there, another client's. Its "holy" one, a new dict for
# each request, keeps every one of them alive in 2.0.31 (measured: 48 MB in 20,000 requests of one worker).


def application(environ, start_response):
    # Runs on every request, so it does as little as it can in Python (docs/benchmark.md: Where the time goes): a
    # dict lookup for the stamp, the environ's copy, wsgi.input's wrapper, start_response's (its header checked), one
    # lookup and a closure for the file wrapper's, one lookup for Accept, then one comprehension over the environ that
    # finds the rare padded header; after the app, a look at each chunk of a list, or a generator around any other
    # answer, and, for a request with a body, a read of what the app left of it.
    body = None if (server_input := environ.get("wsgi.input")) is None else Input(server_input)
    unread = body if environ.get("CONTENT_LENGTH") else None  # a body the app may leave unread (drained)
    stamp = environ.get("QUEUE_START")
    if stamp and QUEUE_TIMEOUT and waited_too_long(stamp):
        return drained(unread, busy(environ, start_response))
    environ = environ.copy()
    if body is not None:
        environ["wsgi.input"] = body
    start_response = checked = checked_start(start_response)
    handed = []
    if server_wrapper := environ.get("wsgi.file_wrapper"):
        environ["wsgi.file_wrapper"] = from_position(server_wrapper, handed)
    if EVENT_STREAM in environ.get("HTTP_ACCEPT", ""):
        start_response = streamed_events(start_response)
    padded = [k for k, v in environ.items() if k[:5] == "HTTP_" and v and (v[0] in WHITESPACE or v[-1] in WHITESPACE)]
    for key in padded:
        environ[key] = environ[key].strip(WHITESPACE)
    try:
        answer = app(environ, start_response)
    except Exception as error:  # noqa: BLE001 (any exception of the app's: answered, then raised again)
        return drained(unread, app_error(environ, start_response, error))
    kind = type(answer)
    if kind is list or kind is tuple:
        # The common answer, whole: looked at before any of it goes.
        for chunk in answer:
            if not passes(chunk):
                return drained(unread, app_error(environ, start_response, not_bytes(chunk, "holds")))
    elif not (kind is bytes or (handed and answer is handed[-1])):
        return checked_body(answer, environ, start_response, checked, unread)
    # A list, bytes (which uWSGI sends whole) or the file uWSGI's own wrapper took (which it sends with sendfile).
    return drained(unread, answer if checked.called else app_error(environ, start_response, not_started()))


def drained(unread: Input | None, answer):
    """`answer`, once what the app left of the request's body (`unread`: None without one) is read (Input.drain)."""
    if unread is not None:
        unread.drain()
    return answer


def checked_body(answer, environ, start_response, checked, unread: Input | None = None):
    """The app's answer (a generator, a framework's response object, FromPosition), a chunk at a time as uWSGI takes
    it. An exception before the answer has begun (its first bytes included: a generator runs only as its chunks are
    taken) gets app_error's 500, as one before the app returned does: uWSGI alone sent the status given to
    start_response (200) with an empty body, a failure the client took for an empty answer. So does a chunk that is
    not bytes (not_bytes), and an answer without start_response (`checked`, not_started); after the answer has
    begun, either ends it there, raised for uWSGI to log. Closing this closes the app's answer (PEP 3333's close()),
    then reads what the app left of the request's body (`unread`, drained)."""
    failure = None
    try:
        for chunk in answer:
            if not passes(chunk):
                failure = not_bytes(chunk, "holds")
                break
            if chunk and not checked.called:
                failure = not_started()
                break
            yield chunk
        else:
            if not checked.called:
                failure = not_started()
    except Exception as error:  # noqa: BLE001 (as in application)
        failure = error
    finally:
        if close := getattr(answer, "close", None):
            close()
        # Only now: the app may read the body as it answers, a chunk at a time.
        drained(unread, None)
    if failure is not None:
        yield from app_error(environ, start_response, failure)


# --- memory recycling -------------------------------------------------------------------------------------------
# uWSGI's reload-on-rss reads the worker's memory from /proc after every request, which cost about a quarter of the
# hello app's CPU per request (docs/benchmark.md: Where the time goes). Here a thread in each worker reads it once a
# second instead, and past the limit asks the worker to stop as a chain reload does (SIGHUP to its main thread):
# it finishes the request in hand, exits, and the master starts a fresh one. Nothing is added to a request's path.
RSS_CHECK_EVERY = 1.0  # seconds


def rss_bytes(statm: int) -> int:
    """The worker's resident memory, from /proc/self/statm (opened once: `statm`), as uWSGI's reload-on-rss reads it."""
    return int(os.pread(statm, 64, 0).split()[1]) * os.sysconf("SC_PAGE_SIZE")


def watch_memory(limit_mb: int, main_thread: int, worker: int) -> None:
    statm = os.open("/proc/self/statm", os.O_RDONLY)
    while True:
        time.sleep(RSS_CHECK_EVERY)
        rss = rss_bytes(statm)
        if rss > limit_mb * 2**20:
            break
    message = f"{rss / 2**20:.0f} MB of memory, over WORKER_MAX_RSS_MB={limit_mb}: recycled after the request in hand"
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    if os.environ.get("LOG_FORMAT", "json") == "text":
        line = f"{stamp} uwsgi worker={worker} pid={os.getpid()} warning: {message}"
    else:
        # uWSGI's event records (docs/observability.md: Logs): no request, so request_id is "-".
        record = {"time": stamp, "source": "uwsgi", "level": "warning", "request_id": "-"}
        line = json.dumps({**record, "worker": worker, "pid": os.getpid(), "message": message})
    print(line, file=sys.stderr, flush=True)
    signal.pthread_kill(main_thread, signal.SIGHUP)


def start_memory_watch() -> None:
    """In a uWSGI worker only (where the `uwsgi` module exists), when a limit is set."""
    # Set by uwsgi.ini unless the environment has it; unset only outside it (0: no limit).
    limit_mb = int(number_setting("WORKER_MAX_RSS_MB", "0", int, "use whole megabytes, e.g. 512 (0: never)"))
    try:
        import uwsgi  # there only in a uWSGI worker
    except ImportError:
        return
    if not limit_mb:
        return
    args = (limit_mb, threading.main_thread().ident, uwsgi.worker_id())
    threading.Thread(target=watch_memory, args=args, name="rss-watch", daemon=True).start()


start_memory_watch()
