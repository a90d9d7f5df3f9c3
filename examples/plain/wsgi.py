"""A plain WSGI app, no framework: WSGI_MODULE=wsgi:application, STATIC_DIR=assets, STATIC_URL=/assets/."""

import hashlib
import json
import time
from urllib.parse import parse_qs


def respond(start_response, status, body, content_type="application/json"):
    start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(body)))])
    return [body]


def stream(count):
    for i in range(count):
        yield f"line {i}\n".encode()


def upload(environ):
    digest, size = hashlib.sha256(), 0
    remaining = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"]
    while remaining > 0:
        chunk = body.read(min(65536, remaining))
        if not chunk:
            break
        digest.update(chunk)
        size += len(chunk)
        remaining -= len(chunk)
    return {"sha256": digest.hexdigest(), "size": size}


def application(environ, start_response):
    method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "/")
    if path == "/" and method == "GET":
        return respond(start_response, "200 OK", b"<h1>plain WSGI example</h1>", "text/html; charset=utf-8")
    if path == "/healthz" and method == "GET":
        return respond(start_response, "200 OK", b'{"status": "ok"}')
    if path == "/stream" and method == "GET":
        # No Content-Length: the server sends it chunked, line by line.
        start_response("200 OK", [("Content-Type", "text/plain")])
        return stream(100)
    if path == "/host" and method == "GET":
        # The Host the server was told, for checking what the proxy passes.
        return respond(start_response, "200 OK", json.dumps({"host": environ.get("HTTP_HOST")}).encode())
    if path == "/client" and method == "GET":
        # The client's address and the forwarding headers the server was told, for checking what the proxy passes.
        names = ("REMOTE_ADDR", "HTTP_X_FORWARDED_FOR", "HTTP_X_REAL_IP", "HTTP_X_FORWARDED_PROTO")
        return respond(start_response, "200 OK", json.dumps({name: environ.get(name) for name in names}).encode())
    if path == "/slow" and method == "GET":
        # A request that takes a while, for graceful shutdown and reload checks (at most 60 s).
        seconds = min(float(parse_qs(environ.get("QUERY_STRING", "")).get("seconds", ["1"])[0]), 60.0)
        time.sleep(seconds)
        return respond(start_response, "200 OK", json.dumps({"slept": seconds}).encode())
    if path == "/upload" and method == "POST":
        return respond(start_response, "200 OK", json.dumps(upload(environ)).encode())
    return respond(start_response, "404 Not Found", b'{"error": "not found"}')
