"""HTTP/1.1 on the wire, for the conformance suite: a raw client that reads whole responses, and a strict reference
parser of requests (RFC 9112) that says what the app should be handed for a valid one.

The reference parser is deliberately small and strict: it reads only well-formed messages (CRLF or bare LF line
ends, Content-Length or chunked framing) and raises ValueError on anything else.
"""

from __future__ import annotations

import io
import re
import socket
from dataclasses import dataclass, field

TOKEN = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_TOKEN = rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_QUOTED = rb'"(?:[^"\\\x00-\x08\x0a-\x1f\x7f]|\\[\t\x20-\x7e\x80-\xff])*"'
# RFC 9112 7.1 and 7.1.1: chunk-size [ chunk-ext ], each extension a token with an optional token or quoted value.
CHUNK_LINE = re.compile(
    rb"([0-9A-Fa-f]{1,15})(?:[ \t]*;[ \t]*" + _TOKEN + rb"(?:[ \t]*=[ \t]*(?:" + _TOKEN + rb"|" + _QUOTED + rb"))?)*"
)
# Headers the chain sets itself, whatever the client sent (nginx/snippets/uwsgi-params.conf): the app is told what
# nginx saw, and the request ID nginx kept or made.
SET_BY_CHAIN = {"HTTP_HOST", "HTTP_X_FORWARDED_FOR", "HTTP_X_REAL_IP", "HTTP_X_FORWARDED_PROTO", "HTTP_X_REQUEST_ID"}
# Hop-by-hop and framing headers, and Expect (answered by nginx) and Proxy (httpoxy): never handed to the app.
NOT_FORWARDED = {
    "HTTP_TRANSFER_ENCODING",
    "HTTP_CONNECTION",
    "HTTP_KEEP_ALIVE",
    "HTTP_PROXY_CONNECTION",
    "HTTP_TE",
    "HTTP_TRAILER",
    "HTTP_UPGRADE",
    "HTTP_EXPECT",
    "HTTP_CONTENT_LENGTH",
    "HTTP_CONTENT_TYPE",
    "HTTP_PROXY",
}
# Field names that are tokens but not made of letters, digits and hyphens (X_Auth) are dropped by nginx
# (ignore_invalid_headers): X_Forwarded_For must never pose as X-Forwarded-For, as both are HTTP_X_FORWARDED_FOR.
FORWARDED_NAME = re.compile(r"[A-Za-z0-9-]+")


@dataclass
class Request:
    """One request as a strict parser reads it, and the WSGI environ values the app should get from it."""

    method: str
    target: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    @property
    def path(self) -> str:
        """PATH_INFO (with the mount's SCRIPT_NAME): the target's path, percent-decoded, as latin-1 text."""
        path = self.target.split("?", 1)[0]
        if "://" in path:
            path = "/" + path.split("://", 1)[1].partition("/")[2]
        decoded = re.sub(r"%([0-9A-Fa-f]{2})", lambda m: chr(int(m.group(1), 16)), path)
        # Repeated slashes as one: nginx's merge_slashes, kept on (nginx/conf.d/request-target.conf).
        return remove_dot_segments(re.sub("/{2,}", "/", decoded))

    @property
    def query(self) -> str:
        return self.target.split("?", 1)[1] if "?" in self.target else ""

    def environ_headers(self) -> dict[str, str]:
        """The HTTP_* variables the app should see, less those the chain sets itself."""
        found: dict[str, str] = {}
        for name, value in self.headers:
            key = "HTTP_" + name.upper().replace("-", "_")
            if not FORWARDED_NAME.fullmatch(name) or key in SET_BY_CHAIN or key in NOT_FORWARDED:
                continue
            joiner = "; " if key == "HTTP_COOKIE" else ", "
            found[key] = found[key] + joiner + value if key in found else value
        return found

    def header(self, name: str) -> str | None:
        values = [v for n, v in self.headers if n.lower() == name.lower()]
        return ", ".join(values) if values else None


def remove_dot_segments(path: str) -> str:
    """RFC 3986 5.2.4, for an absolute path: "/a/./b/../c" is "/a/c"."""
    output: list[str] = []
    for segment in path.split("/")[1:]:
        if segment == "..":
            if output:
                output.pop()
        elif segment != ".":
            output.append(segment)
    trailing = path.endswith(("/.", "/..")) and output
    return "/" + "/".join(output) + ("/" if trailing else "")


def _line(data: bytes, pos: int) -> tuple[bytes, int]:
    end = data.find(b"\n", pos)
    if end < 0:
        raise ValueError("incomplete line")
    line = data[pos:end]
    if line.endswith(b"\r"):
        line = line[:-1]
    if b"\r" in line or b"\0" in line:
        raise ValueError("CR or NUL inside a line")
    return line, end + 1


def parse_requests(data: bytes) -> list[Request]:
    """Every request in data, strictly (RFC 9112 2-7); ValueError on anything a strict parser must refuse."""
    requests, pos = [], 0
    while pos < len(data):
        line, pos = _line(data, pos)
        method, target, version = line.split(b" ") if line.count(b" ") == 2 else (b"", b"", b"")
        if not TOKEN.fullmatch(method) or not re.fullmatch(rb"HTTP/1\.[01]", version) or not target or b"#" in target:
            raise ValueError(f"bad request line {line!r}")
        request = Request(method.decode(), target.decode("latin-1"))
        while True:
            line, pos = _line(data, pos)
            if not line:
                break
            name, colon, value = line.partition(b":")
            if not colon or not TOKEN.fullmatch(name):
                raise ValueError(f"bad field line {line!r}")
            request.headers.append((name.decode(), value.strip(b" \t").decode("latin-1")))
        lengths = {v for n, v in request.headers if n.lower() == "content-length"}
        coding = request.header("transfer-encoding")
        if coding is not None:
            if lengths or coding.lower() != "chunked":
                raise ValueError("ambiguous or unknown framing")
            request.body, pos = _chunked(data, pos)
        elif lengths:
            if len(lengths) != 1 or not next(iter(lengths)).isdigit():
                raise ValueError("bad Content-Length")
            size = int(next(iter(lengths)))
            request.body, pos = data[pos : pos + size], pos + size
            if len(request.body) != size:
                raise ValueError("body shorter than Content-Length")
        requests.append(request)
    return requests


def _chunked(data: bytes, pos: int) -> tuple[bytes, int]:
    body = b""
    while True:
        line, pos = _line(data, pos)
        match = CHUNK_LINE.fullmatch(line)
        if not match:
            raise ValueError(f"bad chunk size line {line!r}")
        size_text = match.group(1)
        size = int(size_text, 16)
        if size == 0:
            while True:  # trailer section, then the final CRLF
                line, pos = _line(data, pos)
                if not line:
                    return body, pos
        body += data[pos : pos + size]
        pos += size
        if data[pos : pos + 2] == b"\r\n":
            pos += 2
        elif data[pos : pos + 1] == b"\n":
            pos += 1
        else:
            raise ValueError("chunk data not followed by a line end")


@dataclass
class Response:
    status: int
    headers: dict[str, str]  # by lower-case name, the last of a repeated field
    body: bytes
    # Every field line as sent, in order (name as sent, value trimmed).
    lines: list[tuple[str, str]] = field(default_factory=list)

    def fields(self, name: str) -> list[str]:
        """The values of every line of the field `name` (any case): one item when it was sent once."""
        return [value for sent, value in self.lines if sent.lower() == name.lower()]


def exchange(port: int, data: bytes, responses: int = 1, timeout: float = 5) -> list[Response]:
    """Send raw bytes to the loopback port and read up to `responses` final responses (1xx are skipped); fewer when
    the server closes the connection first (an empty list: it closed without answering)."""
    found: list[Response] = []
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        reader = sock.makefile("rb")
        try:
            while len(found) < responses:
                response = _read_response(reader)
                if response is None:
                    break
                if response.status >= 200:
                    found.append(response)
                if response.headers.get("connection", "").lower() == "close":
                    break
        except ConnectionResetError:
            pass
    return found


def parse_response(data: bytes) -> Response | None:
    """One response read from bytes already received (None when there are none)."""
    return _read_response(io.BytesIO(data))


def _read_response(reader) -> Response | None:
    status_line = reader.readline()
    if not status_line:
        return None
    status = int(status_line.split(b" ")[1])
    lines: list[tuple[str, str]] = []
    while (line := reader.readline()) not in (b"\r\n", b"\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        lines.append((name.strip(), value.strip()))
    headers = {name.lower(): value for name, value in lines}
    if "content-length" in headers:
        body = reader.read(int(headers["content-length"]))
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        body = b""
        while (size := int(reader.readline().split(b";")[0].strip() or b"0", 16)) > 0:
            body += reader.read(size)
            reader.readline()
        while reader.readline() not in (b"\r\n", b"\n", b""):
            pass
    elif 100 <= status < 200 or status in (204, 304):
        body = b""
    else:
        body = reader.read()
    return Response(status, headers, body, lines)
