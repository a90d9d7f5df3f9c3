"""Any WSGI app, byte-exact: request bodies reach four frameworks from PyPI and a plain WSGI callable whole, however
they are framed, in both topologies; and a stock app with no health route comes up with APP_SRC and WSGI_MODULE
alone.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import socket
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote, urlencode, urlsplit

import pytest
import requests

from tests.apps.echo.echo_core import SERVED_BYTES, ZERO_FIRST
from tests.harness import (
    ECHO_APP_ENV,
    ECHO_CSP,
    ECHO_MAX_BODY_MB,
    ECHO_MAX_RSS_MB,
    PROJECT_APP,
    ROOT,
    Deployment,
    app_image_serving,
    docker,
    health_verdict,
    json_lines,
    made_up,
    make,
    networks_of,
    own_settings,
    poll,
    running_workers,
    send_raw,
    uwsgi_stats,
)
from tests.http_wire import NOT_FORWARDED, Response, exchange, parse_response
from tests.load import Load
from tools import settings
from tools.swarm import byte_count

FRAMEWORKS = ["plain", "flask", "django", "falcon", "bottle"]
SIZES = {"0": 0, "1": 1, "64KiB": 64 * 1024, "8MiB": 8 * 1024 * 1024}
CHUNK = 64 * 1024


def framed(framing: str, path: str, body: bytes) -> bytes:
    """A POST of body, framed by Content-Length, or chunked (64 KiB chunks), or chunked with an extension on every
    chunk and a trailer section."""
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/octet-stream\r\n".encode()
    if framing == "content-length":
        return head + b"Content-Length: %d\r\n\r\n" % len(body) + body
    ext, trailers = (b";ext=1", b"X-Checksum: none\r\n") if framing == "chunked+ext+trailers" else (b"", b"")
    chunks = b"".join(
        b"%x%s\r\n%s\r\n" % (len(body[i : i + CHUNK]), ext, body[i : i + CHUNK]) for i in range(0, len(body), CHUNK)
    )
    return head + b"Transfer-Encoding: chunked\r\n\r\n" + chunks + b"0" + ext + b"\r\n" + trailers + b"\r\n"


@pytest.mark.parametrize("size", SIZES, ids=lambda size: f"{size}B" if size.isdigit() else size)
@pytest.mark.parametrize("framing", ["content-length", "chunked", "chunked+ext+trailers"])
@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_a_request_body_reaches_every_framework_byte_exact(echo: Deployment, framework: str, framing: str, size: str):
    body = os.urandom(SIZES[size])
    port = urlsplit(echo.base_url).port
    (response,) = exchange(port, framed(framing, f"/{framework}/upload", body), timeout=30)
    assert response.status == 200, response.body[:300]
    got = json.loads(response.body)
    assert got["framework"] == framework
    assert (got["size"], got["sha256"]) == (len(body), hashlib.sha256(body).hexdigest())
    # The length of the body as decoded, and no framing header beside it that would make the app decode it again.
    assert got["content_length"] in ((str(len(body)),) if body else ("", "0"))
    assert not NOT_FORWARDED & set(got["headers"]), got["headers"]


# PEP 3333's environ, as the app gets it through the chain (the echo app's /environ/: the keys it lists, and the
# standard library's validator, wsgiref.validate). SCRIPT_NAME was missing until nginx config 0.6.3: WsgiDAV, which
# reads environ["SCRIPT_NAME"], answered every request 500 and never got healthy.
@pytest.mark.parametrize(
    ("method", "target", "body"),
    [
        ("GET", "/environ/", b""),
        ("GET", "/environ/?q=1&r=%C3%A9", b""),
        ("POST", "/environ/", b"text=hello"),
        ("DELETE", "/environ/", b""),
    ],
    ids=["GET", "GET with a query", "POST with a body", "DELETE"],
)
def test_the_app_gets_every_environ_key_pep_3333_lists_and_the_wsgi_validator_finds_nothing(
    echo: Deployment, method: str, target: str, body: bytes
):
    response = requests.request(method, echo.base_url + target, data=body or None, timeout=10)
    report = response.json()
    assert response.status_code == 200, report
    cgi = report["cgi"]
    # Mounted at the root: SCRIPT_NAME is there, empty, and PATH_INFO the whole path.
    assert (cgi["SCRIPT_NAME"], cgi["PATH_INFO"]) == ("", "/environ/")
    assert (cgi["REQUEST_METHOD"], cgi["QUERY_STRING"]) == (method, urlsplit(target).query)
    assert cgi["CONTENT_LENGTH"] in ((str(len(body)),) if body else ("", "0"))
    assert cgi["SERVER_PROTOCOL"] == "HTTP/1.1" and report["url_scheme"] == "http"


# (request line, Host, SERVER_NAME, SERVER_PORT): the name and port the client addressed, as Apache gives them. Until
# nginx config 0.6.9 SERVER_PORT was nginx's own port in its container (8080) whatever the client used: Mercurial's
# hgweb, which builds its feeds' links from the two, pointed clients at http://localhost:8080/.
ADDRESSED = [
    ("GET /environ/ HTTP/1.1", "127.0.0.1:{port}", "127.0.0.1", "{port}"),
    ("GET /environ/ HTTP/1.1", "LocalHost:4321", "localhost", "4321"),
    ("GET /environ/ HTTP/1.1", "localhost", "localhost", "80"),
    ("GET http://localhost/environ/ HTTP/1.1", "127.0.0.1:{port}", "localhost", "80"),
]


@pytest.mark.parametrize(
    ("line", "host", "name", "port"), ADDRESSED, ids=["loopback port", "other port", "no port", "absolute-form"]
)
def test_server_name_and_port_are_what_the_client_addressed(echo: Deployment, line, host, name, port):
    published = urlsplit(echo.base_url).port
    request = f"{line}\r\nHost: {host.format(port=published)}\r\nConnection: close\r\n\r\n".encode()
    (response,) = exchange(published, request)
    assert response.status == 200, response
    cgi = json.loads(response.body)["cgi"]
    assert (cgi["SERVER_NAME"], cgi["SERVER_PORT"]) == (name, port.format(port=published))


@pytest.mark.parametrize("path", ["/", "/no-such-page"], ids=["the app's page", "the app's 404"])
def test_nginx_sends_the_operators_content_security_policy_where_the_app_sends_none(echo: Deployment, path: str):
    """CONTENT_SECURITY_POLICY at make up (the echo stacks': ECHO_CSP); the other security headers as ever."""
    response = requests.get(echo.base_url + path, timeout=10)
    assert response.headers["Content-Security-Policy"] == ECHO_CSP
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def probed(echo: Deployment, path: str) -> str:
    """What the app server's health probe says of `path` (its HEALTHCHECK_PATH), run in the container as Docker runs
    it; it must pass."""
    assert echo.app_container
    probe = subprocess.run(
        ["docker", "exec", "-e", f"HEALTHCHECK_PATH={path}", echo.app_container, "uwsgi-health"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert probe.returncode == 0, probe.stdout + probe.stderr
    return probe.stdout.strip()


def test_the_health_probe_gives_the_app_the_environ_nginx_gives(echo: Deployment):
    """uwsgi-health speaks to uWSGI's probe socket itself, without nginx: its requests must hold the same keys, or an
    app that reads environ["SCRIPT_NAME"] fails every probe and never gets healthy."""
    assert probed(echo, "/environ/") == "healthy: GET /environ/ -> 2xx"


def test_the_health_probes_requests_carry_the_marks_an_app_can_leave_them_out_of_its_log_by(echo: Deployment):
    """docs/bring-your-own-app.md: the probe's requests reach the app every HEALTH_INTERVAL, told apart by HEALTHCHECK=1
    in the environ, its User-Agent and 127.0.0.1 (the echo app's /probe-only/ answers 2xx only to all three)."""
    assert probed(echo, "/probe-only/") == "healthy: GET /probe-only/ -> 2xx"


PROBE_FORGERIES = [
    # (what a client sends to pass for the health probe: its header fields, a query string)
    ({"HEALTHCHECK": "1", "User-Agent": "wsgi-chain-healthcheck"}, ""),
    ({"User-Agent": "wsgi-chain-healthcheck"}, "?HEALTHCHECK=1"),
    ({"User-Agent": "wsgi-chain-healthcheck", "X-Forwarded-For": "127.0.0.1", "X-Real-IP": "127.0.0.1"}, ""),
]


@pytest.mark.parametrize(
    "headers, query", PROBE_FORGERIES, ids=["a HEALTHCHECK field", "a HEALTHCHECK query", "a forwarded loopback"]
)
def test_no_client_request_carries_the_health_probes_marks(echo: Deployment, headers: dict, query: str):
    """HEALTHCHECK is a variable nginx never passes: an app that leaves the probe's requests out of its log by it
    never leaves a client's out."""
    response = requests.get(f"{echo.base_url}/probe-only/{query}", headers=headers, timeout=10)
    assert response.status_code == 403, response.text
    assert response.json()["HEALTHCHECK"] is None, response.text


RETRIES = [
    # (method, an Idempotency-Key or None, the answer): what nginx does when the worker that took a request dies
    # before answering (the echo app's /crash-once/: its first request for a token kills the worker).
    ("GET", None, 200),
    ("HEAD", None, 200),
    ("POST", None, 502),
    ("POST", "key-1", 200),
    ("PATCH", None, 502),
    ("PATCH", "key-2", 200),
    # Idempotent by HTTP (RFC 9110 9.2.2), as nginx counts them: sent again without a key.
    ("PUT", None, 200),
    ("DELETE", None, 200),
]


@pytest.mark.parametrize(
    "method, key, status", RETRIES, ids=[f"{m}-{'keyed' if k else 'plain'}" for m, k, _ in RETRIES]
)
def test_a_request_whose_worker_dies_unanswered_is_sent_again_only_if_it_may_be(echo, method, key, status):
    """An idempotent request (GET, HEAD, PUT, DELETE), or a POST or PATCH the client marked with an Idempotency-Key,
    goes once more to the app server (a worker that is up answers); any other POST or PATCH that was sent is never
    sent twice: a JSON 502, since the app may have acted on it."""
    token = os.urandom(8).hex()
    headers = {"Idempotency-Key": key} if key else {}
    response = requests.request(
        method,
        f"{echo.base_url}/crash-once/{token}",
        data=None if method in ("GET", "HEAD") else b"x" * 100,
        headers=headers,
        timeout=30,
    )
    assert response.status_code == status, response.text[:300]
    if status == 200 and method != "HEAD":
        assert response.text == "answered on a retry"
    if status == 502:
        assert response.json()["error"] == "app server unavailable"


@pytest.mark.parametrize("key", [None, "key-3"], ids=["plain", "keyed"])
def test_a_post_whose_worker_dies_every_time_gets_the_json_502_keyed_or_not(echo, key):
    """Sent again or not, a POST that never got an answer ends in nginx's JSON error, never its built-in page."""
    headers = {"Idempotency-Key": key} if key else {}
    response = requests.post(f"{echo.base_url}/crash", data=b"x", headers=headers, timeout=30)
    assert response.status_code == 502, response.text[:300]
    assert response.headers["Content-Type"] == "application/json"
    assert response.json()["error"] == "app server unavailable"


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize(
    "route",
    ["raise", "raise-after-start", "raise-in-body"],
    ids=["before start_response", "after it", "in a generator body before its first chunk"],
)
def test_an_exception_of_the_app_gets_a_500_once_and_its_traceback_is_logged_and_counted(echo, route, method):
    """uWSGI alone closed the connection without an answer: nginx took that for a worker that died, sent the GET to
    the app a second time, and answered 502 "app server unavailable" (docker/app/wsgi_entry.py: app_error)."""
    assert echo.app_container
    token = secrets.token_hex(6)
    raised = f"RuntimeError: raised by the app for {token}"
    before = sum(worker["exceptions"] for worker in uwsgi_stats(echo.app_container)["workers"])
    sent = time.time()
    response = requests.request(method, f"{echo.base_url}/{route}/{token}", data=b"x", timeout=30)
    assert response.status_code == 500, response.text[:300]
    assert response.headers["Content-Type"] == "application/json" and "X-Started" not in response.headers
    request_id = response.headers["X-Request-ID"]
    assert response.json() == {"status": 500, "error": "internal error", "request_id": request_id}
    poll(lambda: raised in echo.logs(echo.app_container, sent), what="the app's traceback in its log")
    after = sum(worker["exceptions"] for worker in uwsgi_stats(echo.app_container)["workers"])
    assert after == before + 1, "uWSGI counts the exception (uwsgi_exceptions_total)"
    # Once: the app ran once, and nginx did not send it again.
    assert echo.logs(echo.app_container, sent).count(raised) == 1
    # nginx's access log is buffered (nginx/conf.d/logging.conf): its line comes within a second or so.
    (logged,) = poll(
        lambda: echo.with_request_id(echo.nginx_container, "nginx", request_id, sent), what="nginx's line for it"
    )
    assert logged["upstream_status"] == "500", logged


def test_an_answer_whose_generator_raises_midway_is_seen_cut_short_when_it_has_a_content_length(echo):
    """Past its first chunk the status is out and an exception can only end the answer early. The uwsgi protocol has
    no end-of-body marker (the connection's close ends it), so only a Content-Length lets the client tell: nginx
    passes it on and closes the connection short of it (docs/bring-your-own-app.md)."""
    token = secrets.token_hex(6)
    with pytest.raises(requests.exceptions.ChunkedEncodingError, match="IncompleteRead"):
        requests.get(f"{echo.base_url}/raise-mid-body/{token}", timeout=30).raise_for_status()
    poll(lambda: f"raised by the app for {token}" in echo.logs(echo.app_container), what="the app's traceback")


# (shape, kind): an answer with a chunk that is not bytes, before any of it has gone (the echo app's /not-bytes/).
# uWSGI skipped the chunk and sent the rest with the app's 200 (a write() of it without a log line): the client got
# "after" alone and could not tell. docker/app/wsgi_entry.py: not_bytes.
NOT_BYTES = [("list", "str"), ("list", "bytearray"), ("generator", "memoryview"), ("write", "bytearray")]


@pytest.mark.parametrize(("shape", "kind"), NOT_BYTES, ids=[f"{kind} {shape}" for shape, kind in NOT_BYTES])
def test_a_chunk_of_the_answer_that_is_not_bytes_gets_a_500_naming_its_type_never_a_200_without_it(echo, shape, kind):
    sent = time.time()
    response = requests.get(f"{echo.base_url}/not-bytes/{shape}/{kind}", timeout=30)
    assert response.status_code == 500, response.text[:300]
    assert response.json()["error"] == "internal error"
    logged = f"TypeError: the app's answer {'given to write() holds' if shape == 'write' else 'holds'} a {kind}, not"
    poll(lambda: logged in echo.logs(echo.app_container, sent), what="the TypeError in the app server's log")


def test_a_chunk_that_is_not_bytes_once_the_answer_has_begun_ends_it_there_never_skipped(echo):
    """The status is out: the answer ends at the chunk, as for an exception, and with a Content-Length the client
    sees it cut short: "before" alone, never "before" and "after" with the chunk left out of the middle."""
    request = b"GET /not-bytes/late/str HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    head, _, body = send_raw(urlsplit(echo.base_url).port, request, timeout=30).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and b"Content-Length: 17" in head, head
    assert body == b"before\n"


@pytest.mark.parametrize("shape", ["list", "generator"])
def test_an_answer_without_start_response_gets_a_500_and_the_app_runs_once(echo, shape):
    """uWSGI sent nothing at all: nginx took that for a worker that died, sent the GET to the app a second time, and
    answered 502 "app server unavailable" (seen failing before)."""
    token = secrets.token_hex(6)
    sent = time.time()
    response = requests.get(f"{echo.base_url}/unstarted/{shape}/{token}", timeout=30)
    assert response.status_code == 500, response.text[:300]
    assert response.json()["error"] == "internal error"
    # uWSGI's request line for it comes last (after the app's own line and the traceback): the log is whole then.
    request_id = response.headers["X-Request-ID"]
    poll(
        lambda: echo.with_request_id(echo.app_container, "uwsgi", request_id, sent),
        what="uWSGI's request line in the app server's log",
    )
    logs = echo.logs(echo.app_container, sent)
    assert "RuntimeError: the app answered without calling start_response" in logs
    assert logs.count(f"unstarted answer for '{token}'") == 1, "the app ran once"


def test_none_among_the_chunks_is_skipped_as_before_it_holds_nothing_of_the_answer(echo):
    response = requests.get(f"{echo.base_url}/not-bytes/list/none", timeout=30)
    assert (response.status_code, response.text) == (200, "after\n")


def test_an_environ_the_app_holds_on_to_keeps_its_own_requests_values_after_the_next_request(echo):
    """The app gets an environ of its own (docker/app/wsgi_entry.py). uWSGI 2.0 cleared one dict per worker and filled
    it again for the next request, so an app that used a request's environ past its answer (Django's request.META in
    a thread it started) read the next request's path and headers there: another client's (seen failing before)."""
    token = secrets.token_hex(6)
    kept = requests.get(f"{echo.base_url}/keep-environ/", headers={"X-Who": f"first-{token}"}, timeout=30)
    pid = kept.json()["pid"]
    # The next request its worker takes: any of the app server's workers takes each one (bounded: 40 tries).
    for attempt in range(40):
        later = requests.get(f"{echo.base_url}/kept-environ/", headers={"X-Who": f"later-{attempt}"}, timeout=30)
        if later.json()["pid"] == pid:
            break
    else:
        pytest.fail(f"no request of 40 reached worker {pid} again")
    assert later.json()["kept"] == {"PATH_INFO": "/keep-environ/", "HTTP_X_WHO": f"first-{token}"}


@pytest.mark.parametrize("framework", ["plain", "django", "falcon"])
def test_reading_0_bytes_of_a_request_body_reads_none_of_it_in_every_framework(echo, framework):
    """The framework's own stream asked for 0 bytes before the body, as a reader of length-prefixed records asks for
    an empty one, gives b"" as Python's files do (gunicorn's and waitress's wsgi.input too). uWSGI's read(0) read the
    whole body, so the app's next read found none of it (seen failing before: Django's request.read(0) and Falcon's
    bounded_stream.read(0) gave the body there). Bottle reads the body into a buffer of its own first; Werkzeug
    (Flask) takes a read that gives nothing before the body's end for a client gone, a 400 on any server that gives
    b"" (uWSGI's gave it the body). docker/app/wsgi_entry.py: Input."""
    body = os.urandom(4096)
    response = requests.post(f"{echo.base_url}/{framework}/upload?{ZERO_FIRST}", data=body, timeout=30)
    assert response.status_code == 200, response.text[:300]
    got = response.json()
    assert (got["zero_read"], got["size"], got["sha256"]) == (0, len(body), hashlib.sha256(body).hexdigest())


# (call, what each read gave): the echo app's /read/<call>, wsgi.input read with a size of 0 (nothing) or None (all,
# or the whole line) and then for the rest, as Python's files read READ_BODY. uWSGI's read(0) and readline(0) read on
# (the body, a line) and None raised a TypeError (a 500).
READ_BODY = b"ab\ncdef\ng"
READS = [
    ("read-0", ["", "ab\ncdef\ng"]),
    ("readline-0", ["", "ab\ncdef\ng"]),
    ("read-none", ["ab\ncdef\ng", ""]),
    ("readline-none", ["ab\n", "cdef\ng"]),
    ("readlines-none", ["ab\n", "cdef\n", "g", ""]),
    ("read-3-then-0", ["ab\n", "", "cdef\ng"]),
]


@pytest.mark.parametrize(("call", "gave"), READS, ids=[call for call, _ in READS])
def test_wsgi_input_reads_a_size_of_0_or_none_as_pythons_files_do(echo, call, gave):
    response = requests.post(f"{echo.base_url}/read/{call}", data=READ_BODY, timeout=30)
    assert response.status_code == 200, response.text[:300]
    assert response.json() == gave


def test_an_answer_given_without_reading_a_large_body_reaches_every_client_never_a_502(echo):
    """16 clients at once each POST 8 MiB to a route that answers 403 without reading the body, as an app that checks
    a token first does. uWSGI closed the connection with the body unread, and the socket answered nginx's read of the
    app's answer with a reset: nginx answered 502 "app server unavailable" instead (seen failing before: 11 of 20).
    docker/app/wsgi_entry.py: Input.drain."""
    body = os.urandom(8 * 2**20)

    def post(_: int) -> int:
        return requests.post(f"{echo.base_url}/refuse-unread/", data=body, timeout=60).status_code

    with ThreadPoolExecutor(max_workers=16) as pool:
        statuses = Counter(pool.map(post, range(16)))
    assert statuses == {403: 16}, statuses


# (path, status, body): an app's own error page for an exception it caught, given to start_response with the
# exception's exc_info (PEP 3333). uWSGI's start_response raised a SystemError at that call (unbit/uwsgi#2278): the
# page's status went out with no body (Trac's 404 and 500 pages, tried), or the app's handling gave way to the
# stack's JSON 500 (Bottle's error pages: every @error(500) handler). docker/app/wsgi_entry.py: checked_start.
ERROR_PAGES = [
    ("/error-page/{token}", 503, "the app's own error page for {token}\n"),
    ("/error-page-written/{token}", 503, "the app's own error page for {token}\n"),
    ("/bottle/raise/{token}", 500, "Bottle's own error page: raised in a Bottle route for {token}\n"),
]


@pytest.mark.parametrize(
    ("path", "status", "body"), ERROR_PAGES, ids=["returned", "through write()", "Bottle's @error(500) handler"]
)
def test_an_error_page_the_app_gives_with_exc_info_reaches_the_client_whole(echo: Deployment, path, status, body):
    token = secrets.token_hex(6)
    response = requests.get(echo.base_url + path.format(token=token), timeout=30)
    assert (response.status_code, response.text) == (status, body.format(token=token))


def test_an_error_page_given_once_the_answer_has_begun_raises_the_apps_own_exception_as_pep_3333_says(echo):
    """Too late for another status: start_response raises the exception exc_info holds, which ends the answer (with
    no Content-Length the client cannot tell: docs/bring-your-own-app.md) and is logged (uWSGI's own raised its
    "headers already sent" instead, and the app's exception was lost)."""
    token = secrets.token_hex(6)
    sent = time.time()
    response = requests.get(f"{echo.base_url}/error-page-late/{token}", timeout=30)
    assert (response.status_code, response.text) == (200, "begun\n")
    caught = f"LookupError: caught by the app for {token}"
    poll(lambda: caught in echo.logs(echo.app_container, sent), what="the app's own exception in its log")
    assert "headers already sent" not in echo.logs(echo.app_container, sent)


# (path, offset): a file answered through wsgi.file_wrapper from where the app left it, by the plain app and by
# Django's FileResponse (whose Content-Length counts from the file's position). uWSGI's wrapper sent a real file from
# its start whatever its position: the first bytes in place of the rest (docker/app/wsgi_entry.py: from_position).
@pytest.mark.parametrize("offset", [0, 1000], ids=["from its start", "moved on"])
@pytest.mark.parametrize("path", ["/file-from/", "/django/file-from/"], ids=["plain", "Django's FileResponse"])
def test_a_file_answered_through_the_file_wrapper_is_sent_from_where_the_app_left_it(echo: Deployment, path, offset):
    response = requests.get(f"{echo.base_url}{path}{offset}", timeout=30)
    assert response.status_code == 200
    assert response.content == SERVED_BYTES[offset:], (len(response.content), response.content[:8])


def test_a_pipe_answered_through_the_file_wrapper_is_sent_whole(echo: Deployment):
    """An app streaming a command's output (its stdout pipe): uWSGI's wrapper answered an empty 200."""
    response = requests.get(f"{echo.base_url}/file-from-pipe/", timeout=30)
    assert response.status_code == 200
    assert response.content == SERVED_BYTES, (len(response.content), response.content[:8])


# A name and text beyond ASCII, as an upload's may be: the app's Python must take both with its defaults.
TEXT_FILE_NAME = "café-😀.txt"


def test_the_app_writes_and_reads_a_non_ascii_file_name_and_text_with_pythons_defaults(echo):
    """uWSGI's embedded Python does not switch the C locale to UTF-8 as the python3 command does (PEP 538, 540): the
    image sets LANG=C.UTF-8, else file names and open()'s default encoding are ASCII and this is a 500."""
    response = requests.get(f"{echo.base_url}/text-file/{quote(TEXT_FILE_NAME)}", timeout=10)
    assert response.status_code == 200, response.text[:300]
    assert response.json() == {"listed": [TEXT_FILE_NAME], "read": TEXT_FILE_NAME}


def test_the_app_gets_its_own_settings_from_app_env_file_and_the_stacks_own_keep_their_values(echo):
    """APP_ENV_FILE's lines reach the app as they are written; a name the stack sets keeps the stack's value (compose's
    order, as this stack is started: `make up` refuses such a line, tests/test_broken_app.py)."""
    own = requests.get(f"{echo.base_url}/env/ECHO_SETTING", timeout=10).json()
    assert own == {"ECHO_SETTING": ECHO_APP_ENV["ECHO_SETTING"]}
    assert requests.get(f"{echo.base_url}/env/DEBUG", timeout=10).json() == {"DEBUG": "false"}


# A stock Flask app from PyPI (httpbin), in a folder holding only its requirements.txt.
STOCK_APP = {
    "APP_SRC": "tests/apps/stock",
    "WSGI_MODULE": "httpbin:app",
    "APP_IMAGE": "wsgi-chain-test/stock-app:dev",
    "NGINX_IMAGE": "wsgi-chain-test/stock-nginx:dev",
    "SINGLE_IMAGE": "wsgi-chain-test/stock-single:dev",
}


@pytest.mark.lifecycle
@pytest.mark.parametrize("topology", list(settings.TOPOLOGIES), ids=[f"stock-{name}" for name in settings.TOPOLOGIES])
def test_a_stock_app_from_pypi_comes_up_with_app_src_and_wsgi_module_alone(make_env, topology: str):
    env = {**make_env, **STOCK_APP, "TOPOLOGY": topology}
    up = make("up", env, timeout=600)
    assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
    base = f"http://127.0.0.1:{env['HTTP_PORT']}"
    assert requests.get(base + "/healthz", timeout=10).status_code == 404, "httpbin has no health route"
    answer = requests.get(base + "/get?stock=1", timeout=10)
    assert answer.status_code == 200 and answer.json()["args"] == {"stock": "1"}
    # httpbin's own echo of a chunked body: whole, with no Transfer-Encoding left for Werkzeug to trip on.
    body = os.urandom(100_000)
    echoed = requests.post(base + "/anything", data=iter([body[:50_000], body[50_000:]]), timeout=30).json()
    assert "Transfer-Encoding" not in echoed["headers"]
    assert echoed["headers"]["Content-Length"] == str(len(body))


PROJECT_CSS = "body { color: #123456; }\n"


@pytest.fixture(scope="module", params=list(settings.TOPOLOGIES), ids=lambda name: f"project-{name}")
def project(request, tmp_path_factory) -> Iterator[dict[str, str]]:
    """The project, brought up with `make up` as a new user would (its settings: PRESTART_CMD, MEDIA_URL); its env."""
    env = {**PROJECT_APP, "TOPOLOGY": request.param, **own_settings(tmp_path_factory.mktemp("project"), "wct-project")}
    with made_up(env):
        yield {**env, "BASE_URL": f"http://127.0.0.1:{env['HTTP_PORT']}"}


@pytest.mark.lifecycle
def test_make_up_runs_prestart_cmd_before_the_app_serves(project):
    """The page reads a table the project's migrations create: a 500 without them, which it was, PRESTART_CMD
    reaching no container."""
    migrate = docker("logs", f"{project['COMPOSE_PROJECT_NAME']}-migrate-1")
    assert "prestart: running PRESTART_CMD" in migrate, migrate
    assert "Applying contenttypes.0001_initial... OK" in migrate, migrate
    page = requests.get(project["BASE_URL"] + "/", timeout=10)
    assert page.status_code == 200, page.text[:500]
    assert "content types: " in page.text, page.text


@pytest.mark.lifecycle
def test_a_django_projects_own_static_root_is_what_nginx_serves_under_the_hashed_names_its_pages_give(project):
    """Collected into the project's own STATIC_ROOT, where its pages find their manifest (ManifestStaticFilesStorage:
    a 500 without it), and served by nginx (its image failed to build before: no /srv/static)."""
    page = requests.get(project["BASE_URL"] + "/", timeout=10)
    [css] = re.findall(r'href="(/static/project/site\.[0-9a-f]{12}\.css)"', page.text)
    # nginx's: the app, not in DEBUG, serves no static file.
    served = requests.get(project["BASE_URL"] + css, timeout=10)
    assert served.status_code == 200 and served.text == PROJECT_CSS, (served.status_code, served.text[:200])


@pytest.mark.lifecycle
def test_the_files_the_app_keeps_in_media_root_are_served_under_media_url_and_nothing_outside_it(project):
    """MEDIA_URL: an upload the app saved in MEDIA_ROOT is served at the URL the app gives it (the project has no view
    that serves it), with its type and a sandbox policy; a missing file, and a link out of MEDIA_ROOT to the database,
    reach the app (its 404), as does a path that climbs out of MEDIA_URL."""
    # A PNG's signature and header chunk, as libmagic reads them (the project's upload view gives its finding).
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR\x00\x00\x00\x10\x00\x00\x00\x10\x08\x02\x00\x00\x00"
    base, body = project["BASE_URL"], png + os.urandom(300_000)
    saved = requests.post(base + "/upload/photo.png", data=body, timeout=10)
    assert saved.status_code == 201, saved.text[:500]
    assert saved.json()["type"] == "image/png", saved.text  # libmagic's reading of it (APP_PACKAGES)
    url = saved.json()["url"]
    assert url.startswith("/media/photo"), url
    served = requests.get(base + url, timeout=10)
    assert served.status_code == 200 and served.content == body, (served.status_code, len(served.content))
    assert served.headers["Content-Type"] == "image/png", served.headers
    assert served.headers["Content-Security-Policy"] == "sandbox", served.headers
    head = requests.head(base + url, timeout=10)
    assert head.status_code == 200 and head.headers["Content-Length"] == str(len(body)), head.headers

    container = f"{project['COMPOSE_PROJECT_NAME']}-{settings.TOPOLOGIES[project['TOPOLOGY']].server}-1"
    docker("exec", container, "ln", "-sf", "/var/lib/app/db.sqlite3", "/var/lib/app/media/db.png")
    port = int(project["HTTP_PORT"])
    for path in ("/media/missing.png", "/media/db.png", "/media/../db.sqlite3", "/media/%2e%2e/db.sqlite3"):
        answer = send_raw(port, f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode())
        assert answer.split(b"\r\n", 1)[0] == b"HTTP/1.1 404 Not Found", (path, answer[:300])
        assert b"SQLite format 3" not in answer, path


@pytest.mark.lifecycle
def test_with_app_egress_on_the_app_server_and_its_pre_start_hook_may_connect_out_of_the_stack(project):
    """APP_EGRESS=on: the app server and the migrate one-shot join the egress network, which is not internal (a way
    out: nothing of this test's goes beyond the host, so the app server connects to a listener of the test's at that
    network's gateway); nginx and the listener stay off it."""
    name, topology = project["COMPOSE_PROJECT_NAME"], settings.TOPOLOGIES[project["TOPOLOGY"]]
    egress = f"{name}_egress"
    server = f"{name}-{topology.server}-1"
    assert networks_of(server).get(egress) is False, networks_of(server)
    assert networks_of(f"{name}-migrate-1").get(egress) is False
    others = ("nginx", "listener") if topology.name == "split" else ()
    assert all(egress not in networks_of(f"{name}-{service}-1") for service in others)
    gateway = json.loads(docker("network", "inspect", egress, "--format", "{{json .IPAM.Config}}"))[0]["Gateway"]
    with socket.create_server((gateway, 0)) as listener:
        listener.settimeout(10)
        port = listener.getsockname()[1]
        hello = f"import socket; socket.create_connection(({gateway!r}, {port}), timeout=5).sendall(b'out')"
        docker("exec", server, "python3", "-c", hello)
        connection, _ = listener.accept()
        with connection:
            assert connection.recv(3) == b"out"


# What the app image's build says of a shared object that needs a library no package in the image holds
# (docker/app/system_packages.py: check).
NO_LIBRARY = re.compile(
    r"app image: lib/python3\.\d+/site-packages/psycopg2/_psycopg\S*\.so needs libpq\.so\.5, which no package in the"
    r" image holds: name the Debian package that has it in APP_PACKAGES \(the module fails to import without it\)"
)


@pytest.mark.lifecycle
def test_a_requirement_built_against_a_system_library_runs_with_the_library_and_without_its_headers(project):
    """APP_BUILD_PACKAGES=libpq-dev builds psycopg2 from source (before, a project requiring it could not be built:
    pg_config was nowhere, and nothing could bring it); the libpq5 its module links against came into the app image by
    itself, and libmagic1, which python-magic loads by name, by APP_PACKAGES; the headers stayed in the build stage."""
    base = project["BASE_URL"]
    page = requests.get(base + "/", timeout=10)
    assert page.status_code == 200 and re.search(r"libpq: [1-9]\d{5}<", page.text), page.text
    # psycopg[binary]'s module, whose bundled libpq finds its own bundled libraries (GSSAPI's) through the module.
    assert re.search(r"psycopg: binary [1-9]\d{5}<", page.text), page.text
    saved = requests.post(base + "/upload/paper.bin", data=b"%PDF-1.7\n" + os.urandom(1000), timeout=10)
    assert saved.status_code == 201 and saved.json()["type"] == "application/pdf", saved.text[:500]
    server = f"{project['COMPOSE_PROJECT_NAME']}-{settings.TOPOLOGIES[project['TOPOLOGY']].server}-1"
    headers = subprocess.run(["docker", "exec", server, "ls", "/usr/include/postgresql"], capture_output=True)
    assert headers.returncode != 0, headers.stdout


@pytest.mark.lifecycle
def test_a_project_listing_uwsgi_in_its_requirements_is_served_by_the_stacks_uwsgi(project):
    """The project's requirements list uWSGI (as a project deployed on uWSGI does): pip keeps the stack's build, with
    the base image's Python linked in statically (docker/app/build_uwsgi.py), of the version uwsgi/requirements.txt
    pins, instead of building the app's."""
    server = f"{project['COMPOSE_PROJECT_NAME']}-{settings.TOPOLOGIES[project['TOPOLOGY']].server}-1"
    [pinned] = re.findall(r"^uwsgi==(\S+)$", (ROOT / "uwsgi" / "requirements.txt").read_text(), re.M)
    assert docker("exec", server, "/opt/venv/bin/uwsgi", "--version").strip() == pinned
    assert "libpython" not in docker("exec", server, "ldd", "/opt/venv/bin/uwsgi")


@pytest.mark.lifecycle
def test_an_app_image_whose_module_needs_a_library_it_lacks_is_refused_naming_both(project):
    """The build's last check of the runtime image (docker/app/system_packages.py check), run on the project's image
    with libpq5 taken out of it: exit 1, and a line naming the module, the library and the setting that brings it.
    Left so, psycopg2 would have failed to import at run time."""
    script = ROOT / "docker" / "app" / "system_packages.py"
    check = subprocess.run(
        [
            *("docker", "run", "--rm", "--user", "0", "--entrypoint", "sh"),
            *("--volume", f"{script}:/tmp/system_packages.py:ro", project["APP_IMAGE"], "-c"),
            "dpkg --remove --force-depends libpq5 >/dev/null 2>&1 && python3 /tmp/system_packages.py check /opt/venv",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert check.returncode == 1, (check.stdout, check.stderr)
    assert NO_LIBRARY.fullmatch(check.stderr.strip()), check.stderr


SEGMENTS = "use segments of A-Z a-z 0-9 . _ - (none empty, . or ..), such as /media/"
NO_PATH = "use a path like /media/ (leading and trailing slash), or empty for none"
NO_VOLUME = (
    "MEDIA_ROOT=/var/lib/app/media cannot be made: it is on the data volume (/var/lib/app), which Kubernetes gives the"
    " app none of: keep uploads in object storage there, MEDIA_URL empty"
)
MEDIA_URL_REFUSED = {
    "no slashes": ("media", NO_PATH),
    "the root": ("/", NO_PATH),
    "a space": ("/my media/", SEGMENTS),
    "a dot-dot segment": ("/media/../", SEGMENTS),
    "an empty segment": ("/media//", SEGMENTS),
    "no data volume (Kubernetes)": ("/media/", NO_VOLUME),
}


@pytest.mark.parametrize("case", MEDIA_URL_REFUSED)
def test_a_media_url_the_app_server_cannot_serve_stops_the_app_container_at_start_with_one_line(case):
    """The app image's own check (Kubernetes runs it without make up's): exit 78 and one line naming the fix. The
    container's root is read-only, as everywhere, and without the data volume MEDIA_ROOT cannot be made."""
    value, advice = MEDIA_URL_REFUSED[case]
    result = app_image_serving("MEDIA_URL", value)
    assert result.returncode == 78, result.stdout + result.stderr
    assert result.stderr.strip().splitlines() == [f"app-entrypoint: MEDIA_URL={value}: {advice}"]


def test_a_worker_whose_memory_grows_past_the_limit_is_recycled_after_its_request_and_no_request_fails(
    echo, load_report
):
    """WORKER_MAX_RSS_MB (the echo stack's is ECHO_MAX_RSS_MB): the worker that grew answers its request, is replaced
    within seconds, and says why in the log; requests meanwhile are all served."""
    container = echo.app_container
    assert container
    count = len(poll(lambda: running_workers(container), what="workers up"))
    with Load(f"{echo.base_url}/", clients=2, duration=30, max_requests=5_000) as load:
        grown = requests.get(f"{echo.base_url}/grow/{ECHO_MAX_RSS_MB + 40}", timeout=30)
        assert grown.status_code == 200, grown.text[:300]
        pid = grown.json()["pid"]

        def replaced() -> bool:
            pids = running_workers(container)
            return pid not in pids.values() and len(pids) == count

        poll(replaced, timeout=15, what=f"worker pid {pid} replaced by a fresh one")
    # Each worker's memory, read from /proc when asked (uWSGI's stats carry it only with memory-report).
    assert all(w["rss"] > 0 for w in uwsgi_stats(container)["workers"] if w["pid"] > 0)
    load_report.append(f"memory recycling ({echo.nginx_container}): {load.result}")
    assert load.result.sent and load.result.failed == 0, load.result
    warnings = [r for r in json_lines(echo.logs(container)) if r.get("level") == "warning" and r.get("pid") == pid]
    assert len(warnings) == 1, warnings
    assert warnings[0]["source"] == "uwsgi" and warnings[0]["request_id"] == "-"
    assert f"over WORKER_MAX_RSS_MB={ECHO_MAX_RSS_MB}" in warnings[0]["message"]


# --- nginx's buffers: what a slow client or many uploads make it hold -------------------------------------------

MB = 2**20
UPLOAD = 9 * MB  # under MAX_BODY_SIZE's default (10m)


def buffer_room(container: str) -> int:
    """What a tmpfs /tmp could hold for a container's processes before the kernel steps in: the smaller of its memory
    limit and its /tmp's size (compose.yaml's limits and hardening)."""
    config = json.loads(docker("inspect", "-f", "{{json .HostConfig}}", container))
    bounds = [config["Memory"]] if config["Memory"] else []
    for option in (config.get("Tmpfs") or {}).get("/tmp", "").split(","):  # noqa: S108 - a mount point inspected
        if option.startswith("size="):
            bounds.append(byte_count(option.removeprefix("size=")))
    assert bounds, f"{container} has neither a memory limit nor a sized /tmp"
    return min(bounds)


def nginx_state(container: str) -> str:
    return docker("inspect", "-f", "started {{.State.StartedAt}}, OOM-killed {{.State.OOMKilled}}", container).strip()


def sent_whole(app: str, token: str) -> bool:
    """The echo app has handed its whole /bytes/ answer to the server (dispatch.SENT, in its temp directory)."""
    marker = f'test -e "${{TMPDIR:-/tmp}}/echo-sent-{token}"'
    return subprocess.run(["docker", "exec", app, "sh", "-c", marker], capture_output=True).returncode == 0


def test_a_response_larger_than_nginxs_memory_reaches_a_slow_client_whole_and_nginx_keeps_running(echo: Deployment):
    """nginx takes a large answer off the app at once and holds it until the client reads it (a sync worker is not
    kept waiting on a slow client): past its memory buffers on disk. In a tmpfs, as before nginx config 0.6.0, a
    response bigger than the container's memory limit got nginx OOM-killed, every connection it held with it."""
    nginx, app = echo.nginx_container, echo.app_container
    assert nginx and app
    before = nginx_state(nginx)
    megabytes, token = buffer_room(nginx) // MB + 64, secrets.token_hex(8)
    with socket.socket() as client:
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        client.settimeout(60)
        client.connect(("127.0.0.1", urlsplit(echo.base_url).port))
        client.sendall(
            f"GET /bytes/{megabytes}/{token} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()
        )
        # Not a byte read until the app has handed nginx the whole answer: nginx holds nearly all of it meanwhile.
        poll(lambda: sent_whole(app, token), timeout=120, interval=0.5, what=f"the app's {megabytes} MB handed over")
        received = client.makefile("rb")
        status = received.readline()
        headers = dict(line.decode().rstrip("\r\n").split(": ", 1) for line in iter(received.readline, b"\r\n"))
        first, size, same = received.read(MB), 0, True
        size += len(first)
        while block := received.read(MB):
            size, same = size + len(block), same and block == first[: len(block)]
    assert status.startswith(b"HTTP/1.1 200"), status
    assert int(headers["Content-Length"]) == size == megabytes * MB, (headers, size)
    assert same and first[:256] == bytes(range(256)), "the answer's bytes differ from the app's pattern"
    assert nginx_state(nginx) == before


def test_an_event_streams_first_event_reaches_the_client_while_the_app_still_holds_the_stream_open(echo: Deployment):
    """Server-Sent Events: the app writes an event and keeps the stream open. nginx buffers what the app server
    answers, and passed it on only at the end until the entry point marked an event stream unbuffered for it
    (docker/app/wsgi_entry.py): a browser's EventSource got every event at once, when the stream ended."""
    app, token = echo.app_container, secrets.token_hex(8)
    with socket.create_connection(("127.0.0.1", urlsplit(echo.base_url).port), timeout=10) as client:
        request = f"GET /events/{token} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n"
        client.sendall(f"{request}Connection: close\r\n\r\n".encode())
        received = b""
        # The app holds the stream open until told to go (30 s at most): the first event must come before that.
        while b"data: 0\n\n" not in received:
            try:
                chunk = client.recv(65536)
            except TimeoutError:
                pytest.fail(f"no first event within 10 s while the app held the stream open: {received[-300:]!r}")
            assert chunk, f"the stream ended before its first event was read: {received[-300:]!r}"
            received += chunk
        assert b"data: 1" not in received
        docker("exec", app, "sh", "-c", f'touch "${{TMPDIR:-/tmp}}/echo-events-{token}"')
        while chunk := client.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and b"text/event-stream" in head, head
    assert b"x-accel-buffering" not in head.lower(), "nginx takes the header meant for it out"
    assert b"data: 0\n\n" in body and body.index(b"data: 0") < body.index(b"data: 1\n\n"), body


@pytest.mark.parametrize("count, status", [(7, 200), (9, 502)], ids=["7 cookies (28 KB)", "9 cookies (36 KB)"])
def test_an_answer_with_up_to_32_kb_of_header_fields_reaches_the_client_whole(echo: Deployment, count, status):
    """An app's answer with a large header block (here cookies of 4 KB each, as a large session sets): up to 32 KB it
    reaches the client field for field. Past one memory page (4 KB, nginx's default) nginx answered 502 "upstream sent
    too big header" after the app had run; past 32 KB it still does, as for a request's header fields."""
    response = requests.get(f"{echo.base_url}/cookies/{count}", timeout=10)
    assert response.status_code == status, response.text[:300]
    if status == 200:
        sent = [f"c{n}={str(n) * 3996}; Path=/" for n in range(count)]
        assert response.raw.headers.getlist("Set-Cookie") == sent
        assert response.text == "ok\n"


# (query of /answer-headers/, which puts its fields, and a status, into the answer as they are): an answer's head an
# app lets its client break. uWSGI wrote a line break out and nginx read it as the field's end: the client added a
# field of its own (a cookie, here), or ended the header early (response splitting). A name with a colon came out as
# another field, an empty one was dropped, and other control characters reached the client raw; nginx answered a
# name with a space or a tab, a Content-Length that is no number or given twice, and a Transfer-Encoding but chunked
# with a 502 "app server unavailable"; a status that is no "200 OK" went out as a 200, and a 1xx as the final answer
# (a 101 telling the client the connection had switched protocols). docker/app/wsgi_entry.py: checked_start.
BROKEN_FIELDS = {
    "CRLF in a value": "X-Name=a%0D%0ASet-Cookie:%20planted=1",
    "LF in a value": "X-Name=a%0ASet-Cookie:%20planted=1",
    "CRLF in a name": "X-Name%0D%0ASet-Cookie:%20planted=1",
    "the header ended early": "X-Name=a%0D%0A%0D%0Aplanted",
    "a colon in a name": "Set-Cookie:%20planted=1",
    "a space in a name": "X%20planted=1",
    "a tab in a name": "X%09planted=1",
    "an empty name": "=planted",
    "a control character in a value": "X-Name=planted%01",
    "a status with no code": "status=planted",
    "a Content-Length that is no number": "Content-Length=planted",
    "two Content-Lengths": "Content-Length=1000&Content-Length=1000&X-Name=planted",
    "a Transfer-Encoding but chunked": "Transfer-Encoding=gzip&X-Name=planted",
    "an interim status": "status=100+Continue&X-Name=planted",
    "a switch of protocols": "status=101+Switching+Protocols&Upgrade=planted",
}


@pytest.mark.parametrize("case", BROKEN_FIELDS)
def test_an_answers_head_the_app_lets_its_client_break_gets_a_500_and_reaches_no_client(echo: Deployment, case):
    response = requests.get(f"{echo.base_url}/answer-headers/?{BROKEN_FIELDS[case]}", timeout=30)
    assert response.status_code == 500, (response.status_code, dict(response.headers), response.text[:200])
    assert response.json()["error"] == "internal error"
    assert "planted" not in str(response.headers) and "planted" not in response.text


def test_an_answer_the_app_calls_chunked_is_framed_by_nginx_and_reaches_the_client_whole(echo: Deployment):
    """An app that passes on another server's fields (a proxying view) may say "Transfer-Encoding: chunked" of a body
    it does not chunk: nginx frames the answer as its own (gunicorn drops the field), the body arrives as written."""
    response = requests.get(f"{echo.base_url}/answer-headers/?Transfer-Encoding=chunked", timeout=30)
    assert response.status_code == 200, response.text[:300]
    assert response.content == b"answer-headers\n" + b"x" * 984 + b"\n"


# X-Accel-* fields an answer may carry (here its client's, as an app that passes them on does) that nginx would act on.
X_ACCEL = {
    "X-Accel-Redirect": "/plain/redirected",  # answered with the echo of GET /plain/redirected instead
    "X-Accel-Limit-Rate": "1",  # the answer, its header too, at a byte a second
}


@pytest.mark.parametrize("field", X_ACCEL)
def test_an_answers_x_accel_fields_steer_nothing_and_its_own_answer_reaches_the_client(echo: Deployment, field):
    """nginx/conf.d/upstream-headers.conf: an app that passes its client's values into its answer's header fields
    (httpbin's /response-headers) let the client make nginx fetch another path in the answer's place, or slow it to a
    byte a second. The answer now comes as the app sent it, the field kept from the client (seen failing before)."""
    query = urlencode({field: X_ACCEL[field], "X-Mine": "kept"})
    request = f"GET /answer-headers/?{query} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode()
    received, deadline = b"", time.monotonic() + 5
    # Against the clock: a rate-limited answer (its header too) would take some 1,200 s, each byte in time for a
    # client's read timeout.
    with socket.create_connection(("127.0.0.1", urlsplit(echo.base_url).port), timeout=0.5) as client:
        client.sendall(request)
        while time.monotonic() < deadline:
            try:
                chunk = client.recv(65536)
            except TimeoutError:
                continue
            if not chunk:
                break
            received += chunk
        else:
            pytest.fail(f"{len(received)} bytes of the answer in 5 s: it was slowed")
    answer = parse_response(received)
    assert received.startswith(b"HTTP/1.1 200 ") and answer is not None, received[:300]
    assert answer.body.startswith(b"answer-headers\n") and len(answer.body) == 1000, answer.body[:200]
    assert answer.headers["content-type"] == "text/plain" and answer.headers["x-mine"] == "kept", answer.headers
    assert field.lower() not in answer.headers, answer.headers


def answer_with_fields(echo: Deployment, fields: dict[str, str], request_fields: str = "") -> Response:
    """The echo app's answer carrying `fields` (its /answer-headers/), as it reached a client sending
    `request_fields` (field lines), read off the wire: every field line as sent."""
    request = f"GET /answer-headers/?{urlencode(fields)} HTTP/1.1\r\nHost: localhost\r\n{request_fields}"
    [answer] = exchange(urlsplit(echo.base_url).port, f"{request}Connection: close\r\n\r\n".encode())
    assert answer.status == 200, answer
    return answer


# The fields nginx adds where the app sets none (nginx/conf.d/security-headers.conf): nginx's value, an app's own.
SECURITY_FIELDS = {
    "X-Frame-Options": ("DENY", "SAMEORIGIN"),
    "Referrer-Policy": ("same-origin", "no-referrer, strict-origin-when-cross-origin"),
    "X-Content-Type-Options": ("nosniff", "nosniff"),
}


@pytest.mark.parametrize("its_own", [False, True], ids=["none of its own", "its own"])
def test_an_answer_carries_the_apps_own_security_fields_or_nginxs_once_and_nginxs_server_field(
    echo: Deployment, its_own
):
    """nginx adds each security field the app did not set, and leaves the app's own as they are (pgAdmin 4 sets
    X-Frame-Options: SAMEORIGIN), each sent once. The app's Server field is kept from the client (nginx config
    0.6.11): pgAdmin 4 sent "Python", and nginx passed it on in place of its own (seen failing before)."""
    fields = {name: values[1] for name, values in SECURITY_FIELDS.items()} if its_own else {}
    answer = answer_with_fields(echo, {**fields, "Server": "gunicorn/23.0.0"})
    for name, (nginx_value, app_value) in SECURITY_FIELDS.items():
        assert answer.fields(name) == [app_value if its_own else nginx_value], (name, answer.headers)
    assert answer.fields("Server") == ["nginx"], answer.headers


# The answer's own coding fields (as the query gives them to the echo app) -> the fields the client must get.
ENCODINGS = {
    "an answer the app left plain": {},
    "an answer the app compressed": {"Content-Encoding": "gzip", "Vary": "Accept-Encoding"},
}


@pytest.mark.parametrize("case", ENCODINGS)
def test_an_answer_reaches_a_client_that_accepts_compression_in_the_apps_own_coding(echo: Deployment, case):
    """docs/bring-your-own-app.md: nginx compresses no answer of the app's, which may hold a secret beside what its
    client sent (BREACH), and passes on the coding the app chose (Dash's compress=True, Flask-Compress), its fields
    and its bytes untouched: the body is the app's 1,000 bytes, mostly one letter, which nginx's gzip would shrink."""
    answer = answer_with_fields(echo, ENCODINGS[case], "Accept-Encoding: gzip, deflate, br\r\n")
    assert answer.body == b"answer-headers\n" + b"x" * 984 + b"\n", answer.body[:100]
    coding = {name: answer.headers.get(name.lower()) for name in ("Content-Encoding", "Vary")}
    assert coding == {name: ENCODINGS[case].get(name) for name in coding}, answer.headers


def test_an_app_without_static_files_for_nginx_gets_the_static_url_paths_itself(echo: Deployment):
    """The echo app is neither Django nor given a STATIC_DIR: nginx claims no URL prefix for static files, so a path
    under STATIC_URL's default (/static/) reaches the app, which answers its own 404. nginx answered it before (its
    JSON 404), and a Flask app serving its own /static/ files (Flask's default) lost them all."""
    response = requests.get(f"{echo.base_url}/static/site.css", timeout=10)
    assert (response.status_code, response.text) == (404, "not found\n"), response.text


def test_the_app_has_a_home_it_can_write_to_on_the_temp_volume(echo: Deployment):
    """Libraries keep caches and settings in the home directory (~/.cache, ~/.config: matplotlib, fontconfig). The
    image's, the app's code on the read-only root, made matplotlib create a new temporary cache in every worker and
    say so in the log; the entry point now gives the app one on the temp volume."""
    home = requests.get(f"{echo.base_url}/env/HOME", timeout=10).json()["HOME"]
    assert home == "/var/tmp/home", home  # noqa: S108 - the app's home, compared
    app = echo.app_container
    docker("exec", app, "sh", "-c", f'mkdir -p "{home}/.cache/probe" && test -w "{home}/.cache/probe"')
    assert docker("exec", app, "stat", "-c", "%U %a", home).split() == ["app", "700"]


def test_the_app_finds_media_root_a_directory_it_can_write_to_without_media_url(echo: Deployment):
    """MEDIA_ROOT, where the app's environment says to keep its clients' files, is there on the data volume from the
    app's first import, MEDIA_URL set or not (the echo stack sets none). Only MEDIA_URL made it before: bepasty from
    PyPI, whose storage makes a file there as the app is created, stopped at start on FileNotFoundError."""
    root = requests.get(f"{echo.base_url}/env/MEDIA_ROOT", timeout=10).json()["MEDIA_ROOT"]
    assert root == "/var/lib/app/media", root
    app = echo.app_container
    assert docker("exec", app, "stat", "-c", "%U %F", root).split() == ["app", "directory"]
    docker("exec", app, "test", "-w", root)


def test_uploads_adding_up_past_nginxs_memory_are_all_served_whole_and_nginx_keeps_running(echo: Deployment):
    """nginx reads a request's whole body before it passes it on (bodies past its buffers go to disk), so bodies
    arriving at once add up in nginx: more of them than its container's memory limit (or its /tmp) holds. Before
    nginx config 0.6.0 they got nginx OOM-killed (split) or ran its tmpfs /tmp full (single)."""
    nginx = echo.nginx_container
    assert nginx
    before = nginx_state(nginx)
    body = os.urandom(UPLOAD)
    count = buffer_room(nginx) // UPLOAD + 4
    port = urlsplit(echo.base_url).port
    head = (
        f"POST /plain/upload HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/octet-stream\r\n"
        f"Content-Length: {UPLOAD}\r\nConnection: close\r\n\r\n"
    ).encode()
    clients = [socket.create_connection(("127.0.0.1", port), timeout=60) for _ in range(count)]
    try:
        for client in clients:
            client.sendall(head)
        # A megabyte to each in turn, so that no client waits on the others past nginx's client_body_timeout; all but
        # the last byte: every body is then in nginx at once.
        for start in range(0, UPLOAD - 1, MB):
            for client in clients:
                client.sendall(body[start : min(start + MB, UPLOAD - 1)])
        answers = []
        for client in clients:
            client.sendall(body[-1:])
            answers.append(b"".join(iter(lambda client=client: client.recv(65536), b"")))
    finally:
        for client in clients:
            client.close()
    expected = hashlib.sha256(body).hexdigest()
    statuses = [answer.split(b"\r\n", 1)[0] for answer in answers]
    assert statuses == [b"HTTP/1.1 200 OK"] * count, statuses
    reports = [json.loads(answer.split(b"\r\n\r\n", 1)[1]) for answer in answers]
    assert all(r["size"] == UPLOAD and r["sha256"] == expected for r in reports)
    assert nginx_state(nginx) == before


def test_a_body_up_to_max_body_size_reaches_an_app_that_spools_it_whole_and_a_larger_one_gets_413(echo: Deployment):
    """The echo stack runs with MAX_BODY_SIZE=<ECHO_MAX_BODY_MB>m. A body over what the app container's tmpfs /tmp holds
    reaches an app that spools it to a temporary file (as Werkzeug and Django do with large uploads): on disk, in
    TMPDIR (before, /tmp: a 500, no space left on device). One over the setting gets nginx's 413, from its
    Content-Length alone."""
    app = echo.app_container
    assert app
    size = buffer_room(app) + 32 * MB
    assert size < ECHO_MAX_BODY_MB * MB, "the echo stack's MAX_BODY_SIZE must take a body past the app's /tmp"
    body = os.urandom(size)
    answer = requests.post(f"{echo.base_url}/spool/", data=body, timeout=120)
    assert answer.status_code == 200, answer.text[:300]
    assert answer.json()["size"] == size and answer.json()["sha256"] == hashlib.sha256(body).hexdigest()

    head = f"POST /spool/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {ECHO_MAX_BODY_MB * MB + 1}\r\n\r\n"
    # The answer's first read, not send_raw's read to the close: nginx waits out its lingering close (5 s) first.
    with socket.create_connection(("127.0.0.1", urlsplit(echo.base_url).port), timeout=10) as client:
        client.sendall(head.encode())
        refused = client.recv(4096)
    assert refused.startswith(b"HTTP/1.1 413"), refused[:200]
    assert b'"error": "request body too large"' in refused


def test_an_app_without_health_routes_is_healthy_in_both_topologies(echo: Deployment):
    """The echo dispatcher answers 200 on / and 404 on everything else it does not mount: /healthz and /readyz too.
    Last in the module: by then Docker's first check of the stack (QUIET_HEALTH_INTERVAL after its start) has come."""
    for path in ("/healthz", "/readyz"):
        assert requests.get(echo.base_url + path, timeout=10).status_code == 404
    container = echo.app_container
    assert health_verdict(container) == "healthy"
    probe = docker("exec", container, "uwsgi-health", "--ready")
    assert probe.strip() == "healthy: GET / -> below 500", probe
