"""What every echo app reports: the request as the WSGI server handed it over, and the body as the framework read it.

The report is JSON: the method, PATH_INFO, QUERY_STRING, every HTTP_* variable, CONTENT_TYPE and CONTENT_LENGTH,
and the body's size and SHA-256 (plus the body itself, base64, when it is small, and, for the query ZERO_FIRST, the
length of what a read of 0 bytes gave before it). Strings are the environ's
latin-1 "bytes as text", so JSON carries them unchanged.
"""

import base64
import hashlib
import json
import os
import tempfile

# Bodies up to this size are echoed whole; larger ones by size and hash only.
ECHO_BODY_MAX = 65536
# The query that has an echo app ask its framework's stream for 0 bytes before it reads the body, as a reader of
# length-prefixed records does for an empty one (Python's files, and so every framework's stream, give b"" for it).
ZERO_FIRST = "zero-first"


def report(framework: str, environ: dict, body: bytes, zero_read: bytes | None = None) -> bytes:
    """`zero_read`: what the framework's stream gave when asked for 0 bytes before the body (ZERO_FIRST)."""
    answer = {
        "framework": framework,
        "method": environ.get("REQUEST_METHOD", ""),
        "script_name": environ.get("SCRIPT_NAME", ""),
        "path": environ.get("PATH_INFO", ""),
        "query": environ.get("QUERY_STRING", ""),
        "content_type": environ.get("CONTENT_TYPE", ""),
        "content_length": environ.get("CONTENT_LENGTH", ""),
        "headers": {key: value for key, value in sorted(environ.items()) if key.startswith("HTTP_")},
        "size": len(body),
        "sha256": hashlib.sha256(body).hexdigest(),
    }
    if zero_read is not None:
        answer["zero_read"] = len(zero_read)
    if len(body) <= ECHO_BODY_MAX:
        answer["body_b64"] = base64.b64encode(body).decode()
    return json.dumps(answer).encode()


# A file of known bytes an app answers with, from where it seeks to (tests/test_any_app.py: the file wrapper).
SERVED_BYTES = bytes(range(256)) * 400


def served_file(offset: int):
    """The file of SERVED_BYTES, opened and moved on to `offset`, as an app that read into it leaves it."""
    path = os.path.join(tempfile.gettempdir(), "echo-served.bin")
    if not os.path.exists(path):
        with open(path + f".{os.getpid()}", "wb") as out:
            out.write(SERVED_BYTES)
        os.replace(path + f".{os.getpid()}", path)
    filelike = open(path, "rb")  # closed by the server with the answer
    filelike.seek(offset)
    return filelike
