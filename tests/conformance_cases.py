"""The conformance table: raw HTTP/1.x requests sent over a socket through the chain to the plain echo app
(tests/apps/echo), as data. Each case names the RFC section it exercises.

VALID requests must reach the app exactly as a strict parser reads them (tests/http_wire.py computes what that is).
TOLERATED requests are not well-formed, but nginx reads them one unambiguous way that RFC 9112 allows a lenient
recipient (or that nginx's config cannot refuse): the app must get exactly that reading, given as a well-formed
request in `reads`. REFUSED requests are ambiguous or smuggling-shaped: the answer must be a 4xx or a closed
connection, never a 5xx and never the app's echo.
"""

from __future__ import annotations

from dataclasses import dataclass

from tests.harness import ECHO_MAX_BODY_MB

CRLF = b"\r\n"
HOST = b"Host: 127.0.0.1"


@dataclass(frozen=True)
class Case:
    name: str
    raw: bytes
    # Requests on the connection (pipelined cases have several).
    requests: int = 1
    # TOLERATED only: the well-formed request the chain reads this one as.
    reads: bytes = b""


def wire(*lines: str | bytes, body: bytes = b"", end: bytes = CRLF) -> bytes:
    """A request from its lines (the request line first, then field lines), CRLF-terminated unless `end` says."""
    encoded = [line.encode("latin-1") if isinstance(line, str) else line for line in lines]
    return end.join(encoded) + end + end + body


def chunked(*chunks: bytes, ext: bytes = b"", trailers: tuple[bytes, ...] = ()) -> bytes:
    body = b"".join(b"%x%s\r\n%s\r\n" % (len(c), ext, c) for c in chunks)
    return body + b"0" + ext + CRLF + b"".join(t + CRLF for t in trailers) + CRLF


def post(path: str, *headers: str | bytes, body: bytes = b"", method: str = "POST") -> bytes:
    return wire(f"{method} {path} HTTP/1.1", HOST, *headers, body=body)


BINARY = bytes(range(256))
PROPFIND = (
    b'<?xml version="1.0" encoding="utf-8"?>\n<D:propfind xmlns:D="DAV:"><D:prop><D:getetag/>'
    b"<D:displayname/></D:prop></D:propfind>\n"
)

VALID = [
    # RFC 9112 3: the simplest request line; origin-form target.
    Case("get-origin-form", wire("GET /plain/a HTTP/1.1", HOST)),
    # RFC 9112 3.2.1 / RFC 3986 3.4: a query string, passed as it was sent.
    Case("get-query", wire("GET /plain/q?a=1&b=two&c HTTP/1.1", HOST)),
    # RFC 3986 2.1: percent-encoded octets in the path are decoded into PATH_INFO (as latin-1 text, PEP 3333).
    Case("get-percent-encoded-path", wire("GET /plain/caf%C3%A9/%20x HTTP/1.1", HOST)),
    # RFC 3986 3.4: reserved characters and percent-encoding in the query stay as sent.
    Case("get-query-encoded", wire("GET /plain/q?x=%2F%3F%26&y=a+b&z=%C3%A9 HTTP/1.1", HOST)),
    # RFC 3986 3.3: sub-delimiters (;,=) are data in a path segment.
    Case("get-path-params", wire("GET /plain/a;b=c,d HTTP/1.1", HOST)),
    # RFC 9112 3.2.2: absolute-form target (the Host header agrees).
    Case("get-absolute-form", wire("GET http://127.0.0.1/plain/abs?x=1 HTTP/1.1", HOST)),
    # RFC 9112 2.3: HTTP/1.0 with a Host header.
    Case("get-http-1.0", wire("GET /plain/old HTTP/1.0", HOST)),
    # RFC 9110 5.5: surrounding whitespace, spaces and tabs, is not part of a field value.
    Case("header-whitespace-trimmed", wire("GET /plain/ws HTTP/1.1", HOST, "X-Pad:   spaced   ", "X-Tab:\ttabbed\t")),
    # RFC 9110 5.5: whitespace inside a value is kept.
    Case("header-inner-whitespace", wire("GET /plain/ws HTTP/1.1", HOST, "X-Inner: a  b\tc")),
    # RFC 9110 5.5: an empty field value.
    Case("header-empty-value", wire("GET /plain/e HTTP/1.1", HOST, "X-Empty:")),
    # RFC 9110 5.1: field names are case-insensitive.
    Case("header-name-case", wire("GET /plain/c HTTP/1.1", HOST, "x-LoWeR-uPpEr: v", "ACCEPT: */*")),
    # RFC 9110 5.3: a repeated field is the comma-joined list of its values, in order.
    Case("header-repeated", wire("GET /plain/r HTTP/1.1", HOST, "X-Multi: one", "X-Multi: two", "X-Multi: three")),
    # RFC 6265 5.4: several Cookie fields join with "; ".
    Case("header-repeated-cookie", wire("GET /plain/k HTTP/1.1", HOST, "Cookie: a=1", "Cookie: b=2")),
    # RFC 9110 5.5: quotes, commas, semicolons and equals signs are data.
    Case("header-value-punctuation", wire("GET /plain/p HTTP/1.1", HOST, 'X-Punct: a="b, c"; d=e, f')),
    # RFC 9110 5.5: obs-text (octets 0x80-0xFF) in a value is passed through as latin-1 text.
    Case("header-obs-text", wire("GET /plain/o HTTP/1.1", HOST, b"X-Latin: caf\xc3\xa9 \xff")),
    # RFC 9110 5.4: many fields (nginx takes up to 4 x 8 KB of header lines).
    Case("header-many", wire("GET /plain/m HTTP/1.1", HOST, *(f"X-Field-{i}: value {i}" for i in range(60)))),
    # RFC 9110 5.4: a long field value (7 KB, within nginx's 8 KB line buffer).
    Case("header-long-value", wire("GET /plain/l HTTP/1.1", HOST, "X-Long: " + "v" * 7000)),
    # RFC 9110 5.4 + RFC 9112 3: a request head at nginx's limits, a target of nearly one 8 KB buffer and three field
    # lines of as much (uWSGI's buffer-size must hold nginx's packet of it: ~50 KB, the target in it four times).
    Case(
        "head-at-the-limits",
        wire("GET /plain/limits?" + "q" * 7900 + " HTTP/1.1", HOST, *(f"X-Full-{i}: " + "f" * 7900 for i in range(3))),
    ),
    # RFC 9110 5.1: a token with every allowed special character in the name.
    Case("header-name-specials", wire("GET /plain/n HTTP/1.1", HOST, "X-A.b+c!d#e$f%g&h'i*j^k`l|m~n: v")),
    # RFC 9110 8.6: an explicit zero-length body.
    Case("post-empty-body", post("/plain/e0", "Content-Length: 0")),
    # RFC 9112 6.2: a body framed by Content-Length.
    Case(
        "post-content-length", post("/plain/cl", "Content-Length: 11", "Content-Type: text/plain", body=b"hello world")
    ),
    # RFC 9112 6.2: every octet value survives in a body.
    Case("post-binary-body", post("/plain/bin", f"Content-Length: {len(BINARY)}", body=BINARY)),
    # RFC 9110 8.3: media type parameters are part of CONTENT_TYPE.
    Case(
        "post-content-type-params",
        post("/plain/ct", "Content-Type: application/json; charset=utf-8", "Content-Length: 2", body=b"{}"),
    ),
    # RFC 9112 7.1: one chunk.
    Case("post-chunked-one", post("/plain/ch1", "Transfer-Encoding: chunked", body=chunked(b"hello"))),
    # RFC 9112 7.1: several chunks, reassembled in order.
    Case(
        "post-chunked-many", post("/plain/chn", "Transfer-Encoding: chunked", body=chunked(b"a", b"bc", b"def" * 500))
    ),
    # RFC 9112 7.1: chunk sizes in upper-case hex with leading zeros.
    Case(
        "post-chunked-hex-case",
        post("/plain/chx", "Transfer-Encoding: chunked", body=b"000A\r\n0123456789\r\n0\r\n\r\n"),
    ),
    # RFC 9112 7.1.1: chunk extensions are ignored.
    Case(
        "post-chunked-extensions", post("/plain/che", "Transfer-Encoding: chunked", body=chunked(b"abc", ext=b";n=v"))
    ),
    # RFC 9112 7.1.1: a quoted chunk extension value.
    Case(
        "post-chunked-quoted-extension",
        post("/plain/chq", "Transfer-Encoding: chunked", body=b'3;name="a b"\r\nxyz\r\n0\r\n\r\n'),
    ),
    # RFC 9112 7.1.2: a trailer section is discarded (not merged into the headers).
    Case(
        "post-chunked-trailers",
        post(
            "/plain/cht", "Transfer-Encoding: chunked", "Trailer: X-Sum", body=chunked(b"data", trailers=(b"X-Sum: 1",))
        ),
    ),
    # RFC 9112 7.1: binary chunk data.
    Case("post-chunked-binary", post("/plain/chb", "Transfer-Encoding: chunked", body=chunked(BINARY, BINARY))),
    # RFC 9112 7.1: an empty chunked body (the last chunk only).
    Case("post-chunked-empty", post("/plain/ch0", "Transfer-Encoding: chunked", body=b"0\r\n\r\n")),
    # RFC 9110 9.3.4: PUT with a body.
    Case("put-body", post("/plain/put", "Content-Length: 3", body=b"put", method="PUT")),
    # RFC 5789 2: PATCH with a chunked body.
    Case("patch-chunked", post("/plain/pat", "Transfer-Encoding: chunked", body=chunked(b"patch"), method="PATCH")),
    # draft-ietf-httpapi-idempotency-key-header: a POST or PATCH with an Idempotency-Key takes nginx's retrying
    # route (nginx/conf.d/idempotency.conf); its body, query and headers arrive exactly as through the plain one.
    Case(
        "post-idempotency-key-binary",
        post("/plain/ik?a=1", 'Idempotency-Key: "8e03978e-40d5"', f"Content-Length: {len(BINARY)}", body=BINARY),
    ),
    Case(
        "post-idempotency-key-chunked",
        post("/plain/ikc", "Idempotency-Key: k1", "Transfer-Encoding: chunked", body=chunked(BINARY, b"x" * 9000)),
    ),
    Case(
        "patch-idempotency-key",
        post("/plain/ikp", "Idempotency-Key: k2", "Content-Length: 5", body=b"patch", method="PATCH"),
    ),
    # RFC 9110 9.3.5: DELETE.
    Case("delete", wire("DELETE /plain/del HTTP/1.1", HOST)),
    # RFC 9110 9.3.7: OPTIONS for a path.
    Case("options", wire("OPTIONS /plain/opt HTTP/1.1", HOST)),
    # RFC 9110 9.1: an extension method is a token like any other.
    Case("extension-method", wire("PURGE /plain/ext HTTP/1.1", HOST)),
    # RFC 4918 9.1 (WebDAV, as CalDAV and CardDAV clients send it): an extension method with a body and fields of
    # its own.
    Case(
        "extension-method-with-body",
        post(
            "/plain/dav/",
            "Depth: 1",
            "Content-Type: application/xml; charset=utf-8",
            f"Content-Length: {len(PROPFIND)}",
            body=PROPFIND,
            method="PROPFIND",
        ),
    ),
    # RFC 4918 9.9: MOVE names its target in a Destination field, an absolute URI.
    Case(
        "extension-method-destination",
        wire("MOVE /plain/dav/a.ics HTTP/1.1", HOST, "Destination: http://127.0.0.1/plain/dav/b%20c", "Overwrite: F"),
    ),
    # RFC 9110 7.6.1: Connection and the fields it names are hop-by-hop: not handed to the app.
    Case(
        "hop-by-hop-connection", wire("GET /plain/hop HTTP/1.1", HOST, "Connection: keep-alive, X-Hop", "Keep-Alive: 5")
    ),
    # RFC 9110 10.1.4: TE is hop-by-hop.
    Case("hop-by-hop-te", wire("GET /plain/te HTTP/1.1", HOST, "TE: trailers", "Connection: TE")),
    # RFC 9110 7.8: Upgrade is hop-by-hop; the server may ignore it (nginx does not upgrade to h2c).
    Case("hop-by-hop-upgrade", wire("GET /plain/up HTTP/1.1", HOST, "Upgrade: h2c", "Connection: Upgrade")),
    # RFC 9112 (obsolete Proxy-Connection, RFC 7230 A.1.2): never forwarded.
    Case("hop-by-hop-proxy-connection", wire("GET /plain/pc HTTP/1.1", HOST, "Proxy-Connection: keep-alive")),
    # RFC 9110 10.1.1: Expect: 100-continue is answered by nginx; the app gets the body, not the expectation.
    Case("expect-100-continue", post("/plain/exp", "Expect: 100-continue", "Content-Length: 4", body=b"body")),
    # RFC 3875 4.1.18 / httpoxy: a Proxy request header must never become the app's HTTP_PROXY.
    Case("httpoxy-proxy-header", wire("GET /plain/px HTTP/1.1", HOST, "Proxy: http://evil.example:3128")),
    # RFC 9110 5.1 with nginx's ignore_invalid_headers: a name with "_" is dropped (it would alias a "-" name).
    Case("underscore-name-dropped", wire("GET /plain/us HTTP/1.1", HOST, "X_Forwarded_User: admin", "X-Kept: 1")),
    # RFC 9112 9.3: two requests pipelined on one connection, answered in order.
    Case(
        "pipelined-two",
        wire("GET /plain/one HTTP/1.1", HOST) + post("/plain/two", "Content-Length: 3", body=b"two"),
        requests=2,
    ),
    # RFC 9112 9.3: a chunked request pipelined after another; the framing of each is honoured.
    Case(
        "pipelined-chunked-then-get",
        post("/plain/c1", "Transfer-Encoding: chunked", body=chunked(b"first")) + wire("GET /plain/c2 HTTP/1.1", HOST),
        requests=2,
    ),
    # RFC 9112 2.2: a recipient may accept a bare LF as a line terminator; then it must read the same message.
    Case("bare-lf-line-ends", wire("GET /plain/lf HTTP/1.1", HOST, "X-Lf: yes", end=b"\n")),
    # RFC 9110 8.6 + RFC 9112 6.3: Content-Length on a GET is a body like any other.
    Case("get-with-body", post("/plain/gb", "Content-Length: 5", body=b"hello", method="GET")),
    # RFC 9110 5.6.2: a well-formed client request ID is kept and handed to the app (the chain checks its form).
    Case("request-id-kept", wire("GET /plain/rid HTTP/1.1", HOST, "X-Request-ID: 0123456789abcdef0123456789abcdef")),
    # RFC 3986 5.2.4: dot segments are removed from the path before routing.
    Case("dot-segments-removed", wire("GET /plain/a/./b/../c HTTP/1.1", HOST)),
    # RFC 3986 3.3 allows empty segments; the chain merges repeated slashes, encoded ones too (documented, kept).
    Case("repeated-slashes-merged", wire("GET /plain/a//b/%2F/c HTTP/1.1", HOST)),
]

TOLERATED = [
    # RFC 9112 3: a recipient MAY parse the request line on whitespace-delimited word boundaries.
    Case(
        "request-line-extra-spaces",
        wire("GET  /plain/sp  HTTP/1.1", HOST),
        reads=wire("GET /plain/sp HTTP/1.1", HOST),
    ),
    # RFC 9112 7.1.1: a recipient MUST ignore chunk extensions it does not understand; the size still frames the data.
    Case(
        "chunk-ext-control",
        post("/plain/cx", "Transfer-Encoding: chunked", body=b"3;\x01\r\nabc\r\n0\r\n\r\n"),
        reads=post("/plain/cx", "Transfer-Encoding: chunked", body=b"3\r\nabc\r\n0\r\n\r\n"),
    ),
    # RFC 9110 5.1: a field line without a colon is invalid; nginx reads it as a field with an empty value (no
    # setting refuses it). Framing is not affected: it cannot hide a second request.
    Case(
        "field-without-colon",
        wire("GET /plain/nc HTTP/1.1", HOST, "X-No-Colon"),
        reads=wire("GET /plain/nc HTTP/1.1", HOST, "X-No-Colon:"),
    ),
]

REFUSED = [
    # RFC 9112 6.1: Content-Length with Transfer-Encoding is a smuggling vector; a server may reject it, and we do.
    Case("cl-and-te", post("/plain/x", "Content-Length: 4", "Transfer-Encoding: chunked", body=b"0\r\n\r\n")),
    # RFC 9112 6.1: the same, Transfer-Encoding first.
    Case("te-and-cl", post("/plain/x", "Transfer-Encoding: chunked", "Content-Length: 4", body=b"0\r\n\r\n")),
    # RFC 9112 6.3 (5): two different Content-Length values.
    Case("cl-conflicting", post("/plain/x", "Content-Length: 3", "Content-Length: 4", body=b"abcd")),
    # RFC 9112 6.3 (5): a Content-Length list.
    Case("cl-list", post("/plain/x", "Content-Length: 3, 3", body=b"abc")),
    # RFC 9112 6.3 (5): a negative Content-Length.
    Case("cl-negative", post("/plain/x", "Content-Length: -1", body=b"abc")),
    # RFC 9112 6.3 (5): a signed Content-Length.
    Case("cl-plus-sign", post("/plain/x", "Content-Length: +3", body=b"abc")),
    # RFC 9112 6.3 (5): a Content-Length that is not a number.
    Case("cl-not-a-number", post("/plain/x", "Content-Length: abc", body=b"abc")),
    # RFC 9112 6.3 (5): a Content-Length beyond any integer.
    Case("cl-overflow", post("/plain/x", "Content-Length: 99999999999999999999999", body=b"abc")),
    # RFC 9112 6.3 (5): hex in Content-Length.
    Case("cl-hex", post("/plain/x", "Content-Length: 0x3", body=b"abc")),
    # RFC 9112 6.3 (5): whitespace inside the number.
    Case("cl-inner-space", post("/plain/x", "Content-Length: 1 0", body=b"0123456789")),
    # RFC 9112 6.1: a transfer coding nginx does not implement (must not reach the app undecoded).
    Case("te-unknown-coding", post("/plain/x", "Transfer-Encoding: gzip, chunked", body=b"0\r\n\r\n")),
    # RFC 9112 6.1: identity is no longer a transfer coding.
    Case("te-identity", post("/plain/x", "Transfer-Encoding: identity", "Content-Length: 3", body=b"abc")),
    # RFC 9112 6.1: chunked applied twice.
    Case("te-chunked-twice", post("/plain/x", "Transfer-Encoding: chunked, chunked", body=b"0\r\n\r\n")),
    # RFC 9112 6.1: a repeated Transfer-Encoding field.
    Case(
        "te-repeated", post("/plain/x", "Transfer-Encoding: chunked", "Transfer-Encoding: chunked", body=b"0\r\n\r\n")
    ),
    # RFC 9112 6.1: a near-miss coding name.
    Case("te-xchunked", post("/plain/x", "Transfer-Encoding: xchunked", body=b"0\r\n\r\n")),
    # RFC 9112 5.1: whitespace between a field name and the colon must be rejected.
    Case("te-space-before-colon", post("/plain/x", "Transfer-Encoding : chunked", body=b"0\r\n\r\n")),
    # RFC 9112 6.1: chunked in an HTTP/1.0 request (1.0 has no chunked framing).
    Case("te-in-http-1.0", wire("POST /plain/x HTTP/1.0", HOST, "Transfer-Encoding: chunked", body=b"0\r\n\r\n")),
    # RFC 9112 7.1: a chunk size that is not hex.
    Case("chunk-size-not-hex", post("/plain/x", "Transfer-Encoding: chunked", body=b"zz\r\nabc\r\n0\r\n\r\n")),
    # RFC 9112 7.1: a negative chunk size.
    Case("chunk-size-negative", post("/plain/x", "Transfer-Encoding: chunked", body=b"-3\r\nabc\r\n0\r\n\r\n")),
    # RFC 9112 7.1: a chunk size beyond any integer.
    Case(
        "chunk-size-overflow",
        post("/plain/x", "Transfer-Encoding: chunked", body=b"ffffffffffffffffffff\r\nabc\r\n0\r\n\r\n"),
    ),
    # RFC 9112 7.1: chunk data longer than its size.
    Case("chunk-data-too-long", post("/plain/x", "Transfer-Encoding: chunked", body=b"3\r\nabcdef\r\n0\r\n\r\n")),
    # RFC 9112 7.1: a chunk size line with a hex prefix.
    Case("chunk-size-0x", post("/plain/x", "Transfer-Encoding: chunked", body=b"0x3\r\nabc\r\n0\r\n\r\n")),
    # RFC 9110 7.2: two Host fields.
    Case("host-repeated", wire("GET /plain/x HTTP/1.1", HOST, "Host: evil.example")),
    # RFC 9112 3.2: HTTP/1.1 without Host.
    Case("host-missing", wire("GET /plain/x HTTP/1.1", "X-No-Host: 1")),
    # RFC 9110 7.2: a Host that is not a host.
    Case("host-invalid", wire("GET /plain/x HTTP/1.1", "Host: bad host/name")),
    # RFC 9110 15.5.20: a Host this server does not serve (421, from the default server).
    Case("host-unknown", wire("GET /plain/x HTTP/1.1", "Host: evil.example")),
    # RFC 9112 5.2: obs-fold (a line starting with whitespace) must be rejected or replaced; we reject.
    Case("obs-fold", wire("GET /plain/x HTTP/1.1", HOST, "X-Fold: a", " folded")),
    # RFC 9112 2.2: whitespace between the request line and the first field.
    Case("whitespace-before-first-field", wire("GET /plain/x HTTP/1.1", " X-Lead: 1", HOST)),
    # RFC 9110 5.5: a bare CR in a field value.
    Case("cr-in-value", wire("GET /plain/x HTTP/1.1", HOST, b"X-Cr: a\rb")),
    # RFC 9110 5.5: a NUL in a field value.
    Case("nul-in-value", wire("GET /plain/x HTTP/1.1", HOST, b"X-Nul: a\x00b")),
    # RFC 9110 5.1: a NUL in a field name.
    Case("nul-in-name", wire("GET /plain/x HTTP/1.1", HOST, b"X-N\x00ul: a")),
    # RFC 9112 3: a NUL in the request target.
    Case("nul-in-target", wire(b"GET /plain/x\x00y HTTP/1.1", HOST)),
    # RFC 9112 3: a bare CR ending the request line.
    Case("bare-cr-request-line", b"GET /plain/x HTTP/1.1\r" + HOST + CRLF + CRLF),
    # RFC 9112 3: a method with characters outside token.
    Case("method-not-token", wire("G@T /plain/x HTTP/1.1", HOST)),
    # RFC 9112 3.2: a target that is none of the four forms.
    Case("target-not-a-path", wire("GET plain/x HTTP/1.1", HOST)),
    # RFC 9112 3.2: a fragment is no part of a request target (origin-form is a path and a query); nginx would cut it
    # off PATH_INFO and QUERY_STRING alone, and a DELETE of /a/#b would remove /a/.
    Case("fragment-in-target", wire("DELETE /plain/frag/#ment HTTP/1.1", HOST)),
    # RFC 9112 3.2: the same after a query.
    Case("fragment-after-query", wire("GET /plain/x?a=1#frag HTTP/1.1", HOST)),
    # RFC 9112 2.3: a malformed version.
    Case("version-malformed", wire("GET /plain/x HTTP/1.x", HOST)),
    # RFC 9112 2.3: a major version this server does not speak over HTTP/1 framing.
    Case("version-2-over-1", wire("GET /plain/x HTTP/2.0", HOST)),
    # RFC 3986 5.2.4: dot segments that climb above the root.
    Case("path-traversal", wire("GET /../../etc/passwd HTTP/1.1", HOST)),
    # RFC 9110 5.4: one field line larger than the server accepts (nginx: 8 KB buffers).
    Case("field-too-large", wire("GET /plain/x HTTP/1.1", HOST, "X-Big: " + "b" * 20000)),
    # RFC 9112 3: a request target longer than the server accepts.
    Case("target-too-long", wire("GET /plain/" + "a" * 20000 + " HTTP/1.1", HOST)),
    # RFC 9110 8.6: a body larger than the server accepts (the echo stack's MAX_BODY_SIZE), announced.
    Case("body-too-large", post("/plain/x", f"Content-Length: {ECHO_MAX_BODY_MB * 2**20 + 1}", body=b"abc")),
    # RFC 9112 6.1 + 9.3: a smuggled second request inside a body whose framing is ambiguous.
    Case(
        "smuggle-cl-te-pipeline",
        post(
            "/plain/x",
            "Content-Length: 40",
            "Transfer-Encoding: chunked",
            body=b"0\r\n\r\nGET /plain/smuggled HTTP/1.1\r\n\r\n",
        ),
        requests=2,
    ),
]
