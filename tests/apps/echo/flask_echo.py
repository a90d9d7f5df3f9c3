"""Flask (Werkzeug): the body as request.get_data() reads it, which honours Transfer-Encoding when it is set."""

from echo_core import report
from flask import Flask, Response, request

app = Flask(__name__)


@app.route("/", defaults={"path": ""}, methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
@app.route("/<path:path>", methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
def echo(path):
    return Response(report("flask", request.environ, request.get_data()), mimetype="application/json")
