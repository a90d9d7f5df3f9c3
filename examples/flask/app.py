"""A Flask app for wsgi-chain: WSGI_MODULE=app:app, STATIC_DIR=static, STATIC_URL=/assets/."""

import hashlib

from flask import Flask, Response, jsonify, request, stream_with_context

app = Flask(__name__, static_folder=None)


@app.get("/")
def index():
    return "<h1>flask example</h1><link rel='stylesheet' href='/assets/site.css'>"


@app.get("/stream")
def stream():
    """A chunked response: lines produced one at a time."""
    count = request.args.get("n", default=100, type=int)
    return Response(stream_with_context(f"line {i}\n" for i in range(count)), mimetype="text/plain")


@app.post("/upload")
def upload():
    """The SHA-256 and size of the request body, read in chunks."""
    digest, size = hashlib.sha256(), 0
    while chunk := request.stream.read(65536):
        digest.update(chunk)
        size += len(chunk)
    return jsonify(sha256=digest.hexdigest(), size=size)


@app.get("/healthz")
def healthz():
    return jsonify(status="ok")
