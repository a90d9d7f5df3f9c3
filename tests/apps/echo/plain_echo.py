"""A plain WSGI callable (PEP 3333, no framework): reads exactly CONTENT_LENGTH bytes of wsgi.input."""

from echo_core import report


def application(environ, start_response):
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    payload = report("plain", environ, body)
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))])
    return [payload]
