"""Request IDs, structured logs and request metrics for the app.

- RequestMiddleware (first in MIDDLEWARE): takes the request's X-Request-ID header when it is well-formed (the
  proxy in front validates or sets it), else makes one, and keeps it in a context variable for the log records
  of that request; counts each request and times it, by view (the URL pattern's name, never the raw path, so the
  label values stay few), method and status.
- RequestIdFilter puts the request ID on every log record (`-` outside a request); JsonFormatter writes a record
  as one JSON line in the schema of docs/observability.md's "Logs" section.

The metrics use prometheus-client. When PROMETHEUS_MULTIPROC_DIR is set (the container's entrypoint sets it),
every worker process writes its values to a file there, and whoever exposes them sums them up: the counts are
right with any number of worker processes. This module only records; it serves nothing.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from django.http import HttpRequest, HttpResponse
from prometheus_client import Counter, Histogram

# The same rule as the proxy's: 8 to 128 characters that never need escaping in a log line or a header.
REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{8,128}")
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

REQUESTS = Counter("app_http_requests", "Requests the app answered", ["view", "method", "status"])
DURATION = Histogram(
    "app_http_request_duration_seconds",
    "Time the app took to answer, from the first middleware to the response",
    ["view", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)


def valid_request_id(value: str | None) -> str | None:
    return value if value and REQUEST_ID.fullmatch(value) else None


def view_label(request: HttpRequest) -> str:
    match = getattr(request, "resolver_match", None)
    return match.view_name if match is not None and match.view_name else "unmatched"


class RequestMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        rid = valid_request_id(request.META.get("HTTP_X_REQUEST_ID")) or uuid.uuid4().hex
        request.request_id = rid  # type: ignore[attr-defined]
        token = request_id.set(rid)
        started = time.perf_counter()
        status = 500
        try:
            response = self.get_response(request)
            status = response.status_code
            return response
        finally:
            method = request.method if request.method in METHODS else "other"
            view = view_label(request)
            REQUESTS.labels(view, method, str(status)).inc()
            DURATION.labels(view, method).observe(time.perf_counter() - started)
            request_id.reset(token)


class RequestIdFilter(logging.Filter):
    """Adds `request_id` to every record: the current request's, or that of the request a record is about."""

    def filter(self, record: logging.LogRecord) -> bool:
        rid = request_id.get()
        if rid == "-":
            request = getattr(record, "request", None)
            rid = getattr(request, "request_id", None) or "-"
        record.request_id = rid
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, source, level, logger, message, request_id, pid, and what is known of
    the request (method, path, status) and the exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "source": "app",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
            "pid": record.process,
        }
        request = getattr(record, "request", None)
        if isinstance(request, HttpRequest):
            entry["method"] = request.method
            entry["path"] = request.get_full_path()
        status = getattr(record, "status_code", None)
        if isinstance(status, int):
            entry["status"] = status
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, separators=(",", ":"), default=str)
