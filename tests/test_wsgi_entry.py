"""The WSGI entry point's handling of an app's answer (docker/app/wsgi_entry.py: checked_body), on the host, with a
stand-in app: what uWSGI would be handed, chunk by chunk, that closing it closes the app's own, and that a chunk which
is not bytes is refused (not_bytes); the header it adds to an event stream's answer for nginx (streamed_events);
start_response's exc_info as PEP 3333 has it and its refusal of a field the client would read otherwise
(checked_start);
and the file wrapper from where the app left a file (from_position); and the request's body read with a size of 0 or
None (Input)."""

from __future__ import annotations

import contextlib
import copy
import io
import json
import operator
import os
import sys

import pytest

from tests.harness import image_module

APP = """
closed = []
seen = []


def chunks(count, fail_at=None):
    try:
        for number in range(count):
            if number == fail_at:
                raise RuntimeError("raised by the app")
            yield f"chunk {number}\\n".encode()
    finally:
        closed.append(count)


# Chunks that are not bytes, as apps have answered with them (none is: PEP 3333).
NOT_BYTES = {"str": "text", "bytearray": bytearray(b"buffer"), "memoryview": memoryview(b"view"), "int": 7}


class Answer:
    # A framework's response object: an iterable of its own, with close().

    def __init__(self, chunks):
        self.chunks = chunks

    def __iter__(self):
        return iter(self.chunks)

    def close(self):
        closed.append("answer")


def generator(chunks):
    yield from chunks


def lazy(start_response):
    # A generator that calls start_response itself, before its first bytes: as PEP 3333 allows.
    yield b""
    start_response("200 OK", [("Content-Type", "text/plain")])
    yield b"body"


read_lazily = []


def reading_lazily(environ, start_response, size):
    # A generator that reads the body as it answers: the body must still be there.
    start_response("200 OK", [("Content-Type", "text/plain")])
    read_lazily.append(environ["wsgi.input"].read(size))
    yield b"read"


def application(environ, start_response):
    kind, _, count = environ["PATH_INFO"].strip("/").partition("/")
    if kind == "unstarted":
        return {"list": [b"body"], "empty": [], "generator": generator([b"body"]), "nothing": generator([])}[count]
    if kind == "lazy":
        return lazy(start_response)
    if kind == "read-lazily":
        return reading_lazily(environ, start_response, int(count))
    if kind == "seen":
        seen.append(environ)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"seen"]
    if kind == "raise-object":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return Answer(chunks(3, 0))
    if kind == "file":
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return environ["wsgi.file_wrapper"](environ["TEST_FILE"], 4)
    if kind.startswith(("first-", "late-", "write-")):
        start_response("200 OK", [("Content-Type", "text/plain")])
        shape, bad = kind.partition("-")[2], NOT_BYTES.get(count, None)
        if kind.startswith("write-"):
            write = start_response("200 OK", [("Content-Type", "text/plain")])
            write(b"" if shape == "nothing" else b"written")
            write(bad)
            return []
        answer = [bad, b"after"] if kind.startswith("first-") else [b"before", bad, b"after"]
        return {"list": answer, "tuple": tuple(answer), "generator": generator(answer), "object": Answer(answer)}[shape]
    if kind == "typed":
        start_response("200 OK", [("Content-Type", environ["TEST_CONTENT_TYPE"]), *environ["TEST_HEADERS"]])
        return [b"data: 1\\n\\n"]
    start_response("200 OK", [("Content-Type", "text/plain")])
    if kind == "list":
        return [b"whole"]
    return chunks(int(count), 0 if kind == "raise" else None)
"""


@pytest.fixture
def entry(tmp_path, monkeypatch):
    (tmp_path / "standin.py").write_text(APP)
    monkeypatch.setenv("APP_DIR", str(tmp_path))
    monkeypatch.setenv("WSGI_MODULE", "standin:application")
    monkeypatch.delenv("WORKER_MAX_RSS_MB", raising=False)
    module = image_module("wsgi_entry")
    yield module, sys.modules["standin"]
    sys.modules.pop("standin", None)


def call(module, path: str, **environ):
    started: list[tuple[str, list]] = []
    body = module.application({"PATH_INFO": path, **environ}, lambda status, headers: started.append((status, headers)))
    return body, started


def internal_error(chunk: bytes) -> bool:
    return json.loads(chunk) == {"status": 500, "error": "internal error", "request_id": "-"}


def test_a_generator_body_passes_chunk_by_chunk_unchanged(entry):
    module, app = entry
    body, started = call(module, "/stream/3")
    assert list(body) == [b"chunk 0\n", b"chunk 1\n", b"chunk 2\n"]
    assert [status for status, _ in started] == ["200 OK"]
    assert app.closed == [3]


def test_closing_the_body_early_closes_the_apps_generator(entry):
    module, app = entry
    body, _ = call(module, "/stream/5")
    assert next(body) == b"chunk 0\n"
    body.close()  # as uWSGI does when the client has gone
    assert app.closed == [5], "the app's generator ran its finally"


def test_an_empty_generator_body_is_an_empty_answer_with_the_apps_status(entry):
    module, _ = entry
    body, started = call(module, "/stream/0")
    assert list(body) == []
    assert [status for status, _ in started] == ["200 OK"]


def test_a_generator_that_raises_before_its_first_chunk_answers_500_then_raises_again(entry):
    module, _ = entry
    body, started = call(module, "/raise/3")
    assert json.loads(next(body)) == {"status": 500, "error": "internal error", "request_id": "-"}
    assert [status for status, _ in started] == ["200 OK", "500 Internal Server Error"]
    with pytest.raises(RuntimeError, match="raised by the app"):
        next(body)


def test_the_app_gets_an_environ_of_its_own_which_the_server_cannot_clear_for_the_next_request(entry):
    module, app = entry
    servers = {"PATH_INFO": "/seen", "HTTP_X_WHO": "first"}
    module.application(servers, lambda status, headers: None)
    (kept,) = app.seen
    assert kept == servers
    servers.clear()  # what uWSGI 2.0 does to its own after each request, to fill it again for the next
    assert kept == {"PATH_INFO": "/seen", "HTTP_X_WHO": "first"}


@pytest.mark.parametrize("shape", ["list", "empty", "generator", "nothing"])
def test_an_answer_without_start_response_gets_the_500_where_uwsgi_sent_nothing_at_all(entry, shape):
    """nginx took uWSGI's nothing for a worker that died: a GET went to the app a second time, then a 502."""
    module, _ = entry
    body, started = call(module, f"/unstarted/{shape}")
    assert internal_error(next(iter(body)))
    assert [status for status, _ in started] == ["500 Internal Server Error"]


def test_a_generator_may_call_start_response_itself_before_its_first_bytes(entry):
    module, _ = entry
    body, started = call(module, "/lazy")
    assert list(body) == [b"", b"body"] and [status for status, _ in started] == ["200 OK"]


def test_a_framework_answer_that_raises_before_its_first_chunk_answers_500_then_raises_again(entry):
    """As a generator does (a streamed answer's iterator, say): uWSGI alone sent the app's 200 with an empty body."""
    module, app = entry
    body, started = call(module, "/raise-object")
    assert internal_error(next(body))
    assert [status for status, _ in started] == ["200 OK", "500 Internal Server Error"]
    with pytest.raises(RuntimeError, match="raised by the app"):
        next(body)
    assert app.closed == [3, "answer"]


def test_a_list_of_bytes_and_the_file_uwsgis_wrapper_took_reach_uwsgi_as_they_are(entry, tmp_path):
    """A list is looked at, not wrapped; the file wrapper's answer must stay the very object uWSGI's wrapper returned,
    or uWSGI no longer sends it with sendfile."""
    module, _ = entry
    body, _ = call(module, "/list")
    assert body == [b"whole"] and type(body) is list
    (tmp_path / "data").write_bytes(b"0123456789")
    with (tmp_path / "data").open("rb") as filelike:
        body, _ = call(module, "/file", TEST_FILE=filelike, **{"wsgi.file_wrapper": server_wrapper})
        assert body is filelike


def test_a_framework_answer_passes_chunk_by_chunk_and_is_closed_once(entry):
    module, app = entry
    body, _ = call(module, "/late-object/none")
    assert list(body) == [b"before", None, b"after"]
    body.close()
    assert app.closed == ["answer"]


SHAPES = ["list", "tuple", "generator", "object"]


@pytest.mark.parametrize("kind", ["str", "bytearray", "memoryview", "int"])
@pytest.mark.parametrize("shape", SHAPES)
def test_a_chunk_that_is_not_bytes_before_the_answer_begins_gets_the_500_then_its_error(entry, shape, kind):
    """uWSGI skipped it and sent the rest with the app's 200: the client could not tell."""
    module, app = entry
    body, started = call(module, f"/first-{shape}/{kind}")
    assert internal_error(next(body))
    assert [status for status, _ in started] == ["200 OK", "500 Internal Server Error"]
    with pytest.raises(TypeError, match=f"the app's answer holds a {kind}, not bytes"):
        next(body)
    assert app.closed == (["answer"] if shape == "object" else [])


@pytest.mark.parametrize("shape", ["generator", "object"])
def test_a_chunk_that_is_not_bytes_once_the_answer_has_begun_ends_it_there(entry, shape):
    """Too late for a 500 (uWSGI's start_response says so): the error is raised for uWSGI to log, and nothing after
    the chunk is sent (with a Content-Length the client sees it cut short)."""
    module, _ = entry
    uwsgi = UwsgiStart()
    body = module.application({"PATH_INFO": f"/late-{shape}/str"}, uwsgi)
    assert next(body) == b"before"
    uwsgi.sent = True
    with pytest.raises(TypeError, match="the app's answer holds a str, not bytes"):
        next(body)
    assert [call[0] for call in uwsgi.calls] == ["200 OK"]


def test_none_among_the_chunks_is_passed_on_as_uwsgi_skips_it(entry):
    """Nothing of the answer is in it; uWSGI and waitress skip it."""
    module, _ = entry
    body, _ = call(module, "/first-list/none")
    assert body == [None, b"after"]


@pytest.mark.parametrize("kind", ["str", "bytearray", "memoryview", "int"])
def test_write_refuses_what_is_not_bytes_where_uwsgis_dropped_it_without_a_word(entry, kind):
    """Before the first bytes, the app's TypeError gets the 500; uWSGI's write() was never given the chunk."""
    module, _ = entry
    uwsgi = UwsgiStart()
    body = module.application({"PATH_INFO": f"/write-nothing/{kind}"}, uwsgi)
    assert internal_error(next(body))
    assert [c if isinstance(c, bytes) else c[0] for c in uwsgi.calls] == [
        *("200 OK", "200 OK", b""),
        "500 Internal Server Error",
    ]
    with pytest.raises(TypeError, match=f"the app's answer given to write\\(\\) holds a {kind}, not bytes"):
        next(body)


UNBUFFERED = ("X-Accel-Buffering", "no")
# (the request's Accept, the answer's Content-Type, headers the app adds) -> whether X-Accel-Buffering: no is added.
EVENT_STREAMS = {
    "an EventSource's request, an event stream": ("text/event-stream", "text/event-stream", [], True),
    "with a charset, and among other types": (
        "text/event-stream, */*;q=0.1",
        "text/event-stream; charset=utf-8",
        [],
        True,
    ),
    "the type in capitals": ("text/event-stream", "Text/Event-Stream", [], True),
    "an answer of another type": ("text/event-stream", "application/json", [], False),
    "a request that does not accept one": ("*/*", "text/event-stream", [], False),
    "the app's own choice kept": ("text/event-stream", "text/event-stream", [("X-Accel-Buffering", "yes")], False),
}


@pytest.mark.parametrize("case", list(EVENT_STREAMS))
def test_an_event_stream_answer_is_marked_unbuffered_for_nginx_and_nothing_else_changes(entry, case):
    module, _ = entry
    accept, content_type, extra, marked = EVENT_STREAMS[case]
    environ = {"HTTP_ACCEPT": accept, "TEST_CONTENT_TYPE": content_type, "TEST_HEADERS": extra}
    body, [(status, headers)] = call(module, "/typed", **environ)
    assert status == "200 OK" and list(body) == [b"data: 1\n\n"]
    expected = [("Content-Type", content_type), *extra, *([UNBUFFERED] if marked else [])]
    assert headers == expected


class UwsgiStart:
    """Stands in for uWSGI's start_response as far as checked_start relies on it: it takes (status, headers), and
    raises OSError once the answer's headers have been sent."""

    def __init__(self):
        self.calls: list[tuple] = []
        self.sent = False

    def __call__(self, *args):
        if self.sent:
            raise OSError("headers already sent")
        self.calls.append(args)
        return self.calls.append


def caught() -> tuple:
    try:
        raise LookupError("caught by the app")
    except LookupError:
        return sys.exc_info()


def test_exc_info_before_the_headers_are_sent_replaces_the_status_and_headers_and_is_never_passed_on(entry):
    module, _ = entry
    uwsgi = UwsgiStart()
    start = module.checked_start(uwsgi)
    start("200 OK", [("A", "1")])
    write = start("503 Service Unavailable", [("B", "2")], caught())
    write(b"page")
    assert uwsgi.calls == [("200 OK", [("A", "1")]), ("503 Service Unavailable", [("B", "2")]), b"page"]


def test_exc_info_once_the_headers_are_sent_raises_the_apps_own_exception_again(entry):
    module, _ = entry
    uwsgi = UwsgiStart()
    start = module.checked_start(uwsgi)
    start("200 OK", [])
    uwsgi.sent = True
    exc_info = caught()
    with pytest.raises(LookupError, match="caught by the app") as raised:
        start("503 Service Unavailable", [], exc_info)
    assert raised.value is exc_info[1]
    with pytest.raises(OSError, match="headers already sent"):
        start("503 Service Unavailable", [])  # without exc_info, uWSGI's own answer, as before


def server_wrapper(filelike, block_size):
    """uWSGI's returns the file itself, and sends it with sendfile when the app's answer is that very object."""
    return filelike


@pytest.mark.parametrize("offset", [0, 3, 10])
def test_the_file_wrapper_sends_a_file_from_where_the_app_left_it(entry, tmp_path, offset):
    """At its start, the server's wrapper (uWSGI's sendfile); moved on, its bytes from there, closed with the answer."""
    module, _ = entry
    (tmp_path / "data").write_bytes(b"0123456789")
    filelike = (tmp_path / "data").open("rb")
    filelike.seek(offset)
    handed: list = []
    answer = module.from_position(server_wrapper, handed)(filelike, 4)
    if offset == 0:
        assert answer is filelike and handed == [filelike]
        return
    assert handed == []
    assert b"".join(answer) == b"0123456789"[offset:]
    answer.close()
    assert filelike.closed


def test_a_pipe_and_a_file_like_object_with_no_file_are_read_from_where_they_are(entry):
    """uWSGI's wrapper sent nothing of a pipe; one of no file (BytesIO) it read, as this does."""
    module, _ = entry
    read_end, write_end = os.pipe()
    os.write(write_end, b"from a pipe")
    os.close(write_end)
    for filelike, expected in ((os.fdopen(read_end, "rb"), b"from a pipe"), (io.BytesIO(b"in memory"), b"in memory")):
        answer = module.from_position(server_wrapper, [])(filelike, 4)
        assert b"".join(answer) == expected
        answer.close()
        assert filelike.closed


# (status, headers) -> what start_response refuses, or None: a control character (but a tab) in the status or a value,
# a name that is no token (RFC 9110 5.1, 5.5), and what nginx cannot frame.
CONTROL = "holds a control character"
FIELD_CASES = {
    "a plain answer": ("200 OK", [("Content-Type", "text/plain"), ("X-Tab", "a\tb"), ("X-Latin", "café")], None),
    "every token character in a name": ("200 OK", [("!#$%&'*+-.^_`|~09azAZ", "1")], None),
    "a reason phrase past ASCII": ("200 Très bien", [], None),
    "CRLF in a value": ("200 OK", [("Location", "/a\r\nSet-Cookie: x=1")], f"the header field 'Location' {CONTROL}"),
    "LF in a value": ("302 Found", [("Location", "/a\nX: y")], f"the header field 'Location' {CONTROL}"),
    "NUL in a value": ("200 OK", [("X-A", "a\0b")], f"the header field 'X-A' {CONTROL}"),
    "another control character in a value": ("200 OK", [("X-A", "a\x01b")], f"the header field 'X-A' {CONTROL}"),
    "DEL in a value": ("200 OK", [("X-A", "a\x7fb")], f"the header field 'X-A' {CONTROL}"),
    "CRLF in the status": ("200 OK\r\nX-B: 1", [], f"the status line {CONTROL}"),
    "CRLF in a name": ("200 OK", [("X-A\r\nX-B", "1")], "the header field name 'X-A\\r\\nX-B' is no token"),
    "a colon in a name": ("200 OK", [("Set-Cookie: a", "1")], "the header field name 'Set-Cookie: a' is no token"),
    "a space in a name": ("200 OK", [("X A", "1")], "the header field name 'X A' is no token"),
    "a tab in a name": ("200 OK", [("X\tA", "1")], "the header field name 'X\\tA' is no token"),
    "an empty name": ("200 OK", [("", "1")], "the header field name '' is no token"),
    "a name past ASCII": ("200 OK", [("X-é", "1")], "the header field name 'X-é' is no token"),
    "a status with no reason": ("204", [], None),
    "a status with no code": ("OK", [], "the status 'OK' is no final code 200-599"),
    "a status past 599": ("600 Odd", [], "the status '600 Odd' is no final code 200-599"),
    "a status with no space": ("200OK", [], "the status '200OK' is no final code 200-599"),
    "an interim status": ("100 Continue", [], "the status '100 Continue' is no final code 200-599"),
    "a switch of protocols": ("101 Switching Protocols", [], "the status '101 Switching Protocols' is no final"),
    "a Content-Length": ("200 OK", [("content-length", "10")], None),
    "a Content-Length that is no number": ("200 OK", [("Content-Length", "ten")], "the Content-Length 'ten' is not"),
    "a negative one": ("200 OK", [("Content-Length", "-1")], "the Content-Length '-1' is not"),
    "two Content-Lengths": (
        "200 OK",
        [("Content-Length", "10"), ("CONTENT-LENGTH", "10")],
        "the Content-Length '10' is not one whole number, given once",
    ),
    "a Transfer-Encoding nginx frames itself": ("200 OK", [("Transfer-Encoding", "Chunked")], None),
    "another Transfer-Encoding": ("200 OK", [("Transfer-Encoding", "gzip")], "the answer's Transfer-Encoding 'gzip'"),
    "a bytes value (uWSGI's own TypeError)": ("200 OK", [("X-A", b"1")], None),
}


@pytest.mark.parametrize("case", list(FIELD_CASES))
def test_a_field_the_client_would_read_otherwise_is_refused_before_uwsgi_writes_it(entry, case):
    module, _ = entry
    status, headers, refused = FIELD_CASES[case]
    broken = module.broken_field(status, headers)
    assert broken == refused if refused is None else broken.startswith(refused), broken
    uwsgi = UwsgiStart()
    start = module.checked_start(uwsgi)
    if refused is None:
        start(status, headers)
        assert uwsgi.calls == [(status, headers)]
        return
    with pytest.raises(ValueError, match="the answer was not sent"):
        start(status, headers)
    assert uwsgi.calls == [], "nothing reached uWSGI"


def test_what_was_seen_sound_is_remembered_by_kind_a_name_never_passing_for_a_status(entry):
    module, _ = entry
    assert module.broken_field("200 OK", [("Status", "1"), ("Content-Length", "1")]) is None
    assert module.broken_field("Status", []).startswith("the status 'Status' is no final code")
    assert module.broken_field("200 OK", [("Content-Length", "x")]).startswith("the Content-Length 'x' is not")


def test_start_response_counts_as_called_only_once_uwsgi_took_it(entry):
    """An app that catches uWSGI's refusal (a bytes value: its TypeError) and answers anyway has not started."""
    module, _ = entry

    def refusing(status, headers):
        raise TypeError("http header value must be a string")

    start = module.checked_start(refusing)
    with pytest.raises(TypeError):
        start("200 OK", [("X-A", b"1")])
    assert start.called is False
    start = module.checked_start(lambda status, headers: None)
    start("200 OK", [])
    assert start.called is True


@pytest.mark.parametrize(
    ("chunk", "fix"), [("text", "encode text"), (bytearray(b"a"), "copy it into bytes"), (7, "give bytes")]
)
def test_a_chunk_that_is_not_bytes_is_refused_with_the_fix_for_its_type(entry, chunk, fix):
    module, _ = entry
    assert str(module.not_bytes(chunk, "holds")).partition("; ")[2].startswith(fix)


class UwsgiInput:
    """uWSGI 2.0's wsgi.input as tried on the image: a size of 0 reads on (the whole body, a line), None raises a
    TypeError, and readline's size and readlines' hint are not kept to."""

    def __init__(self, body: bytes):
        self.stream = io.BytesIO(body)

    def read(self, size=0):
        return self.stream.read(operator.index(size) or -1)

    def readline(self, size=0):
        operator.index(size)
        return self.stream.readline()

    def readlines(self, hint=0):
        operator.index(hint)
        return self.stream.readlines()

    def __iter__(self):
        return self

    def __next__(self):
        if line := self.stream.readline():
            return line
        raise StopIteration

    def fileno(self):
        return 7


# (what the app asks of wsgi.input, what each read gives) for the body b"ab\ncdef\ng", as Python's files read it.
INPUT_READS = [
    (lambda body: [body.read(0), body.read()], [b"", b"ab\ncdef\ng"]),
    (lambda body: [body.readline(0), body.read()], [b"", b"ab\ncdef\ng"]),
    (lambda body: [body.read(None), body.read()], [b"ab\ncdef\ng", b""]),
    (lambda body: [body.read(-1), body.read()], [b"ab\ncdef\ng", b""]),
    (lambda body: [body.readline(None), body.read()], [b"ab\n", b"cdef\ng"]),
    (lambda body: [body.readline(-1), body.readline(), body.read()], [b"ab\n", b"cdef\n", b"g"]),
    (lambda body: [*body.readlines(None), body.read()], [b"ab\n", b"cdef\n", b"g", b""]),
    (lambda body: [*body.readlines(2), body.read()], [b"ab\n", b"cdef\n", b"g", b""]),
    (lambda body: [body.read(3), body.read(0), body.read(2), body.read()], [b"ab\n", b"", b"cd", b"ef\ng"]),
    (lambda body: [*body], [b"ab\n", b"cdef\n", b"g"]),
    (lambda body: [next(body), body.read()], [b"ab\n", b"cdef\ng"]),
]


@pytest.mark.parametrize(("reads", "gave"), INPUT_READS, ids=range(len(INPUT_READS)))
def test_the_request_body_reads_a_size_of_0_or_none_as_pythons_files_do(entry, reads, gave):
    module, _ = entry
    assert reads(module.Input(UwsgiInput(b"ab\ncdef\ng"))) == gave


def test_the_app_reads_the_servers_own_input_through_input_its_other_methods_as_they_are(entry):
    module, app = entry
    server = UwsgiInput(b"body")
    call(module, "/seen", **{"wsgi.input": server})
    (environ,) = app.seen
    assert environ["wsgi.input"].server is server
    assert environ["wsgi.input"].fileno() == 7
    assert (environ["wsgi.input"].read(0), environ["wsgi.input"].read()) == (b"", b"body")


def test_a_copy_of_the_request_body_reads_the_same_input(entry):
    """copy.copy, as a framework copying what it was handed may: no endless lookup of the unset wrapped input."""
    module, _ = entry
    body = module.Input(UwsgiInput(b"ab\ncdef\ng"))
    assert copy.copy(body).read(3) == b"ab\n"
    assert body.read() == b"cdef\ng"


def test_input_drain_reads_what_is_left_of_the_body_to_its_end(entry):
    module, _ = entry
    server = UwsgiInput(b"x" * 200_000)
    body = module.Input(server)
    assert body.read(10) == b"x" * 10
    body.drain()
    assert server.stream.tell() == 200_000


# (path, what the app reads of the body first): the stand-in's answers, each given without reading the whole body.
LEFT_UNREAD = [("/list/1", 0), ("/raise/3", 0), ("/first-list/str", 0), ("/unstarted/list", 0), ("/read-lazily/4", 4)]


@pytest.mark.parametrize(("path", "read_first"), LEFT_UNREAD, ids=[path for path, _ in LEFT_UNREAD])
def test_what_the_app_leaves_of_the_body_is_read_before_the_answer_is_handed_back_or_once_it_is_taken(
    entry, path, read_first
):
    """Before uWSGI closes the connection (Input.drain): a list answer at once, a generator once taken whole, so that
    an app reading the body as it answers still gets it."""
    module, app = entry
    server = UwsgiInput(b"0123456789" * 1000)
    body, _ = call(module, path, **{"wsgi.input": server, "CONTENT_LENGTH": "10000"})
    with contextlib.suppress(Exception):  # the errors' answers raise the app's error again once given
        for _ in body:
            pass
    assert server.stream.tell() == 10_000
    if read_first:
        assert app.read_lazily == [b"0123"]


def test_a_request_without_a_body_is_not_read(entry):
    module, _ = entry
    server = UwsgiInput(b"")
    server.read = None  # any read would fail
    body, _ = call(module, "/list/1", **{"wsgi.input": server, "CONTENT_LENGTH": ""})
    assert list(body) == [b"whole"]


def test_a_request_shed_for_its_wait_in_the_queue_has_its_body_read_before_its_503(entry, monkeypatch):
    module, _ = entry
    monkeypatch.setattr(module, "waited_too_long", lambda stamp: True)
    server = UwsgiInput(b"z" * 5000)
    _, started = call(module, "/list/1", **{"wsgi.input": server, "CONTENT_LENGTH": "5000", "QUEUE_START": "1"})
    assert [status for status, _ in started] == ["503 Service Unavailable"]
    assert server.stream.tell() == 5000
