"""Bad input at the front door: malformed, oversized, slow and hostile requests get a clear status from nginx (or, for
what only the app can judge, from the app), short error bodies without versions or stack traces, and none of them
reaches or ties up a uWSGI worker. Raw sockets throughout: HTTP clients refuse to send most of these.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import pytest
import requests

from tests.harness import (
    Deployment,
    busy_workers,
    docker,
    health_verdict,
    inspected,
    passes_its_check,
    poll,
    send_raw,
    serving,
)
from tests.microposts_api import create_user, unique

HOST = b"Host: localhost\r\nConnection: close\r\n"
# What must never appear in any answer: versions, stack traces, the framework's name, a file outside the root.
LEAKS = (b"nginx/", b"Traceback", b"Django", b"django", b"uWSGI", b"root:x:0:0", b'File "')
# nginx's JSON error bodies are one short line (snippets/errors.conf).
MAX_ERROR_BODY = 200


@dataclass
class Case:
    """One bad request: `build(marker)` makes its bytes, with the marker in its path wherever the input allows."""

    name: str
    build: Callable[[str], bytes]
    statuses: set[int]
    # Answered by nginx itself: its JSON error body, and the request never shows in uWSGI's request log.
    by_nginx: bool = True
    extra: dict = field(default_factory=dict)


def get(target: str, headers: bytes = HOST, method: bytes = b"GET", version: bytes = b"HTTP/1.1") -> bytes:
    return method + b" " + target.encode() + b" " + version + b"\r\n" + headers + b"\r\n"


def body_over_limit(marker: str) -> bytes:
    # 10 MB is the limit (conf.d/limits.conf): one byte more is refused from the header alone, nothing is sent.
    return get(f"/api/{marker}", HOST + b"Content-Length: 10485761\r\nContent-Type: text/plain\r\n", b"POST")


CASES = [
    # Malformed request lines.
    Case("a request line that is not HTTP", lambda m: f"GARBAGE {m}\r\n\r\n".encode(), {400}),
    Case("a lowercase method", lambda m: get(f"/{m}", method=b"get"), {400}),
    Case("a control character in the target", lambda m: get(f"/{m}\x01"), {400}),
    # nginx's own 505 is answered as 400 (snippets/errors.conf): bad input never gets a 5xx.
    Case("an unknown HTTP version", lambda m: get(f"/{m}", version=b"HTTP/9.9"), {400}),
    Case("a malformed percent-escape", lambda m: get(f"/{m}%zz"), {400}),
    # Too long.
    Case("a URL over the header buffers", lambda m: get(f"/{m}/" + "a" * 9000), {414}),
    Case(
        "one header over the header buffers", lambda m: get(f"/{m}", HOST + b"X-Big: " + b"a" * 9000 + b"\r\n"), {400}
    ),
    Case(
        "too many large headers",
        lambda m: get(f"/{m}", HOST + b"".join(b"X-H%d: %s\r\n" % (i, b"a" * 4000) for i in range(12))),
        {400},
    ),
    # Malformed headers.
    Case("a NUL byte in a header", lambda m: get(f"/{m}", HOST + b"X-A: a\x00b\r\n"), {400}),
    Case("a space in a header name", lambda m: get(f"/{m}", HOST + b"X A: b\r\n"), {400}),
    Case("HTTP/1.1 without a Host", lambda m: get(f"/{m}", b"Connection: close\r\n"), {400}),
    Case("two Host headers", lambda m: get(f"/{m}", b"Host: localhost\r\nHost: evil.example\r\n"), {400}),
    Case("a Host with a slash", lambda m: get(f"/{m}", b"Host: a/b\r\nConnection: close\r\n"), {400}),
    # Unknown hosts: nginx's default server, never the app.
    Case("an unknown Host", lambda m: get(f"/{m}", b"Host: evil.example\r\nConnection: close\r\n"), {421}),
    Case(
        "a Host that only starts like a served name",
        lambda m: get(f"/{m}", b"Host: localhost.evil.example\r\nConnection: close\r\n"),
        {421},
    ),
    Case("HTTP/1.0 without a Host", lambda m: get(f"/{m}", b"", version=b"HTTP/1.0"), {421}),
    Case("an absolute-form target for another host", lambda m: get(f"http://evil.example/{m}"), {421}),
    # Bodies.
    Case("a body over the limit", body_over_limit, {413}),
    # nginx judges a chunk's declared size once the chunk's data starts arriving: 1 KB of it, never the 11 MB.
    Case(
        "a chunked body whose first chunk is over the limit",
        lambda m: get(f"/api/{m}", HOST + b"Transfer-Encoding: chunked\r\n", b"POST") + b"B00000\r\n" + b"a" * 1024,
        {413},
    ),
    Case(
        "both Content-Length and Transfer-Encoding",
        lambda m: get(f"/{m}", HOST + b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n", b"POST") + b"0\r\n\r\n",
        {400},
    ),
    Case(
        "a Content-Length that is not a number",
        lambda m: get(f"/{m}", HOST + b"Content-Length: abc\r\n", b"POST"),
        {400},
    ),
    Case(
        "a malformed chunk",
        lambda m: get(f"/{m}", HOST + b"Transfer-Encoding: chunked\r\n", b"POST") + b"zz\r\n",
        {400},
    ),
    # Methods nginx refuses itself.
    Case("TRACE", lambda m: get(f"/{m}", method=b"TRACE"), {405}),
    # Path traversal under /static/: refused, or a plain 404 inside the static root; never a file outside it.
    Case("raw ../ under /static/", lambda m: get(f"/static/{m}/../../../../etc/passwd"), {400}),
    Case("../ below a real static directory", lambda m: get(f"/static/admin/{m}/../../../../../etc/passwd"), {400}),
    Case("%2e%2e under /static/", lambda m: get(f"/static/{m}/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd"), {400}),
    Case(".%2e under /static/", lambda m: get(f"/static/{m}/.%2e/.%2e/.%2e/.%2e/etc/passwd"), {400}),
    Case("..%2f under /static/", lambda m: get(f"/static/{m}/..%2f..%2f..%2f..%2fetc/passwd"), {400}),
    Case("double-encoded ../ under /static/", lambda m: get(f"/static/{m}/%252e%252e/%252e%252e/etc/passwd"), {404}),
    Case("double-encoded slashes under /static/", lambda m: get(f"/static/{m}/..%252f..%252fetc/passwd"), {404}),
    Case("backslashes under /static/", lambda m: get(f"/static/{m}\\..\\..\\..\\etc\\passwd"), {404}),
    Case("a NUL escape under /static/", lambda m: get(f"/static/admin/css/base.css%00{m}"), {400}),
    # What only the app can judge: it answers, briefly, without a traceback (DEBUG is off).
    Case(
        "more query fields than the app accepts",
        lambda m: get(f"/api/users/{m}/collection?" + "&".join(f"f{i}=1" for i in range(1100))),
        {400},
        by_nginx=False,
    ),
]


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    raw: bytes


def port_of(deployment: Deployment) -> int:
    return urlsplit(deployment.base_url).port or 80


def parse(raw: bytes) -> Answer:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return Answer(status, headers, body, raw)


def reached_app(deployment: Deployment, marker: str, sent: float, request_id: str | None = None) -> bool:
    """Whether a request carrying the marker, sent at `sent` (time.time()), was passed to uWSGI: nginx's access log
    names an upstream status for it, or uWSGI's request log has it (it keeps 4xx, and a marked path is no route of the
    app: a 404); the logs are read from `sent` on. With the request ID nginx answered with, its access line is waited
    for first (nginx writes the log a buffer at a time)."""
    if request_id:
        poll(
            lambda: deployment.with_request_id(deployment.nginx_container, "nginx", request_id, since=sent),
            what=f"nginx's access line for request {request_id}",
        )
    passed = any(
        (marker in record.get("path", "") or record.get("request_id") == request_id)
        and record.get("upstream_status") not in ("", "-")
        for record in deployment.records(deployment.nginx_container, "nginx", since=sent)
    )
    return passed or any(marker in line for line in deployment.uwsgi_log(since=sent))


@pytest.fixture(scope="module")
def port(own: Deployment) -> int:
    return port_of(own)


@dataclass
class Sent:
    """One case's request as sent: its marker, when (time.time()), and nginx's answer."""

    marker: str
    at: float
    answer: Answer


@pytest.fixture(scope="module")
def sent(own: Deployment, port: int) -> dict[str, Sent]:
    """Every case sent once, one after another, before the first is checked. nginx writes its access log a buffer at a
    time, at least once a second, and each case's check that it never reached the app waits for its line: case by
    case, about a second each (31 s of the module's 55 alone); so, the first check waits and the others find theirs."""
    found = {}
    for case in CASES:
        marker = unique("bad")
        at = time.time()
        found[case.name] = Sent(marker, at, parse(send_raw(port, case.build(marker))))
    return found


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_bad_input_gets_a_clear_short_status_and_leaks_nothing(case: Case, own: Deployment, sent: dict[str, Sent]):
    marker, at, answer = sent[case.name].marker, sent[case.name].at, sent[case.name].answer
    assert answer.status in case.statuses, answer.raw[:500]
    for leak in LEAKS:
        assert leak not in answer.raw, f"{leak!r} in the answer to {case.name}: {answer.raw[:500]!r}"
    if case.by_nginx:
        assert answer.headers.get("content-type") == "application/json", answer.raw[:500]
        assert len(answer.body) < MAX_ERROR_BODY
        error = json.loads(answer.body)
        assert error["status"] == answer.status
        assert error["error"] and error["request_id"] == answer.headers["x-request-id"]
        assert not reached_app(own, marker, at, error["request_id"]), f"{case.name} reached the app server"
    else:
        assert len(answer.body) < 1000, answer.body


def test_a_method_the_app_does_not_support_gets_405_from_the_app(own: Deployment):
    username = unique("methods")
    token = create_user(own.app_container, username)
    response = requests.delete(
        f"{own.base_url}/api/users/{username}/collection", headers={"Authorization": f"Token {token}"}, timeout=10
    )
    assert response.status_code == 405, response.text
    assert "DELETE" not in response.headers["Allow"] and "GET" in response.headers["Allow"]
    assert "Traceback" not in response.text


def test_debug_is_off_in_the_running_app(own: Deployment):
    out = docker("exec", own.app_container, "python", "-c", "from django.conf import settings; print(settings.DEBUG)")
    assert out.strip() == "False"


class SlowClient(threading.Thread):
    """Opens a connection, sends `head`, then trickles `trickle` one byte every `every` seconds (bounded by
    `budget`), and records when nginx closed the connection."""

    def __init__(self, port: int, head: bytes, trickle: bytes, every: float, budget: float):
        super().__init__(daemon=True)
        self.port, self.head, self.trickle, self.every, self.budget = port, head, trickle, every, budget
        self.closed_after: float | None = None
        self.answer = b""

    def run(self) -> None:
        started = time.monotonic()
        with socket.create_connection(("127.0.0.1", self.port), timeout=self.budget) as sock:
            sock.sendall(self.head)
            for byte in self.trickle:
                if time.monotonic() - started > self.budget:
                    return
                try:
                    sock.sendall(bytes([byte]))
                except OSError:
                    break
                sock.settimeout(self.every)
                try:
                    chunk = sock.recv(65536)
                except TimeoutError:
                    continue
                except OSError:
                    break
                self.answer += chunk
                if not chunk:
                    break
            sock.settimeout(max(0.1, self.budget - (time.monotonic() - started)))
            try:
                while chunk := sock.recv(65536):
                    self.answer += chunk
            except OSError:
                pass
        self.closed_after = time.monotonic() - started


# conf.d/limits.conf: client_header_timeout and client_body_timeout.
CLIENT_TIMEOUT = 15


def test_slow_clients_are_cut_off_by_nginx_without_tying_up_a_worker(own: Deployment, port: int):
    marker = unique("slow")
    sent = time.time()
    # Slowloris: a header line a byte every 2 s, never finished. The header timeout counts from the first byte.
    slowloris = SlowClient(port, f"GET /{marker}-headers HTTP/1.1\r\nHost: localhost\r\n".encode(), b"X" * 100, 2, 40)
    # A slow body: the headers at once, then nothing of the promised body: the body timeout runs between reads.
    slow_body = SlowClient(
        port, get(f"/{marker}-body", HOST + b"Content-Length: 1000\r\n", b"POST") + b"a" * 10, b"", 1, 40
    )
    slowloris.start()
    slow_body.start()
    # While they hang on, no worker is in either request: nginx buffers the request before the app server sees it.
    # (A worker may be busy meanwhile with the health probe's request: a warm run, 2026-12-04.)
    samples = 0
    while slowloris.is_alive() or slow_body.is_alive():
        assert not serving(own.app_container, marker), "a uWSGI worker was tied up by a slow client"
        samples += 1
        time.sleep(1)
    slowloris.join()
    slow_body.join()
    assert samples >= 5
    for client in (slowloris, slow_body):
        assert client.closed_after is not None
        assert CLIENT_TIMEOUT - 1 <= client.closed_after <= CLIENT_TIMEOUT + 10, client.closed_after
        for leak in LEAKS:
            assert leak not in client.answer

    # nginx logs both, a 408 each, as it cuts them off (its access log is written a buffer at a time: waited for).
    def cut_off() -> list[tuple[str, int]]:
        records = own.records(own.nginx_container, "nginx", since=sent)
        return sorted((r["path"], r["status"]) for r in records if marker in r.get("path", ""))

    expected = [(f"/{marker}-body", 408), (f"/{marker}-headers", 408)]
    poll(lambda: cut_off() == expected, what=f"nginx's access lines {expected}")
    assert not reached_app(own, marker, sent), "a slow client's request reached the app server"


def test_after_the_bad_input_the_app_is_healthy_and_every_worker_is_idle(own: Deployment):
    assert health_verdict(own.app_container) == "healthy"
    # And its check passes now, after all of the bad input (Docker's last may have come before some of it).
    assert passes_its_check(inspected(own.app_container))
    poll(lambda: busy_workers(own.app_container) == 0, timeout=10, what="every uWSGI worker idle")
    assert requests.get(f"{own.base_url}/healthz", timeout=10).status_code == 200
