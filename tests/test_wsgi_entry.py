"""The WSGI entry point's handling of an app's generator body (docker/app/wsgi_entry.py: first_chunk_checked), on the
host, with a stand-in app: what uWSGI would be handed, chunk by chunk, and that closing it closes the app's own; and
the header it adds to an event stream's answer for nginx (streamed_events); start_response's exc_info as PEP 3333 has
it and its refusal of a line break in the answer's header (checked_start); and the file wrapper from where the app
left a file (from_position)."""

from __future__ import annotations

import io
import json
import os
import sys

import pytest

from tests.harness import image_module

APP = """
closed = []


def chunks(count, fail_at=None):
    try:
        for number in range(count):
            if number == fail_at:
                raise RuntimeError("raised by the app")
            yield f"chunk {number}\\n".encode()
    finally:
        closed.append(count)


def application(environ, start_response):
    kind, _, count = environ["PATH_INFO"].strip("/").partition("/")
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


def test_an_answer_that_is_not_a_generator_reaches_uwsgi_as_it_is(entry):
    """A list, a framework's response object or a file wrapper (which uWSGI sends with sendfile) is not wrapped."""
    module, _ = entry
    body, _ = call(module, "/list")
    assert body == [b"whole"] and type(body) is list


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
    return ("the server's", filelike, block_size)


@pytest.mark.parametrize("offset", [0, 3, 10])
def test_the_file_wrapper_sends_a_file_from_where_the_app_left_it(entry, tmp_path, offset):
    """At its start, the server's wrapper (uWSGI's sendfile); moved on, its bytes from there, closed with the answer."""
    module, _ = entry
    (tmp_path / "data").write_bytes(b"0123456789")
    filelike = (tmp_path / "data").open("rb")
    filelike.seek(offset)
    answer = module.from_position(server_wrapper)(filelike, 4)
    if offset == 0:
        assert answer == ("the server's", filelike, 4)
        return
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
        answer = module.from_position(server_wrapper)(filelike, 4)
        assert b"".join(answer) == expected
        answer.close()
        assert filelike.closed


# (status, headers) -> what start_response refuses, or None: a CR, LF or NUL anywhere in the answer's header.
LINE_BREAK_CASES = {
    "a plain answer": ("200 OK", [("Content-Type", "text/plain"), ("X-Tab", "a\tb"), ("X-Latin", "café")], None),
    "CRLF in a value": ("200 OK", [("Location", "/a\r\nSet-Cookie: x=1")], "the header field 'Location'"),
    "LF in a value": ("302 Found", [("Location", "/a\nX: y")], "the header field 'Location'"),
    "NUL in a value": ("200 OK", [("X-A", "a\0b")], "the header field 'X-A'"),
    "CRLF in a name": ("200 OK", [("X-A\r\nX-B", "1")], "the header field 'X-A\\r\\nX-B'"),
    "CRLF in the status": ("200 OK\r\nX-B: 1", [], "the status line"),
    "a bytes value (uWSGI's own TypeError)": ("200 OK", [("X-A", b"1")], None),
}


@pytest.mark.parametrize("case", list(LINE_BREAK_CASES))
def test_a_line_break_in_the_answers_header_is_refused_before_uwsgi_writes_it(entry, case):
    module, _ = entry
    status, headers, refused = LINE_BREAK_CASES[case]
    assert module.broken_line(status, headers) == refused
    uwsgi = UwsgiStart()
    start = module.checked_start(uwsgi)
    if refused is None:
        start(status, headers)
        assert uwsgi.calls == [(status, headers)]
        return
    with pytest.raises(ValueError, match="holds a CR, LF or NUL"):
        start(status, headers)
    assert uwsgi.calls == [], "nothing reached uWSGI"
