"""Bottle: the body as request.body reads it (Bottle decodes chunked bodies itself when it sees the header)."""

import bottle
from echo_core import report

app = bottle.Bottle()
# Read bodies of any size into memory (default 100 KB, larger ones spill to a temp file): 10 MB, nginx's limit.
bottle.BaseRequest.MEMFILE_MAX = 10 * 1024 * 1024


@app.route("/raise/<token>")
def raises(token):
    raise RuntimeError(f"raised in a Bottle route for {token}")


@app.error(500)
def own_error_page(error):
    """Bottle's error handler: its answer goes out with the exception's exc_info (Bottle.wsgi, PEP 3333)."""
    bottle.response.content_type = "text/plain"
    return f"Bottle's own error page: {error.exception}\n"


@app.route("/", method=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
@app.route("/<path:path>", method=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
def echo(path=""):
    bottle.response.content_type = "application/json"
    return report("bottle", bottle.request.environ, bottle.request.body.read())
