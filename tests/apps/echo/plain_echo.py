"""A plain WSGI callable (PEP 3333, no framework): reads exactly CONTENT_LENGTH bytes of wsgi.input (after a read of
0 bytes for the query ZERO_FIRST)."""

from echo_core import ZERO_FIRST, report


def application(environ, start_response):
    stream = environ["wsgi.input"]
    zero_read = stream.read(0) if environ.get("QUERY_STRING") == ZERO_FIRST else None
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = stream.read(length) if length else b""
    payload = report("plain", environ, body, zero_read)
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))])
    return [payload]
