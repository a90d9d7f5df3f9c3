"""Falcon: the body as req.bounded_stream reads it (after a read of 0 bytes for the query ZERO_FIRST)."""

import falcon
from echo_core import ZERO_FIRST, report


class Echo:
    def on_get(self, req, resp, **_):
        zero_read = req.bounded_stream.read(0) if req.query_string == ZERO_FIRST else None
        resp.data = report("falcon", req.env, req.bounded_stream.read(), zero_read)
        resp.content_type = "application/json"

    on_post = on_put = on_patch = on_delete = on_options = on_get


app = falcon.App()
app.add_sink(Echo().on_get, prefix="/")
