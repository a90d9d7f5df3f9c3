"""Falcon: the body as req.bounded_stream reads it."""

import falcon
from echo_core import report


class Echo:
    def on_get(self, req, resp, **_):
        resp.data = report("falcon", req.env, req.bounded_stream.read())
        resp.content_type = "application/json"

    on_post = on_put = on_patch = on_delete = on_options = on_get


app = falcon.App()
app.add_sink(Echo().on_get, prefix="/")
