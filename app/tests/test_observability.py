"""The app's side of observability: the request ID on its log records, JSON or text lines, request metrics by view."""

from __future__ import annotations

import io
import json
import logging
import re
import sys
from collections.abc import Iterator

import pytest
from django.core.exceptions import ImproperlyConfigured
from microposts import observability
from microposts import settings as app_settings
from prometheus_client import REGISTRY


@pytest.fixture
def captured() -> Iterator[tuple[io.StringIO, logging.Handler]]:
    """A handler like the app's console handler (the request-ID filter), writing to a buffer, on the root logger."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.addFilter(observability.RequestIdFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield buffer, handler
    finally:
        root.removeHandler(handler)


def lines(buffer: io.StringIO) -> list[str]:
    return [line for line in buffer.getvalue().splitlines() if line]


def test_an_app_warning_is_a_json_line_carrying_the_requests_id(client, captured):
    buffer, handler = captured
    handler.setFormatter(observability.JsonFormatter())
    response = client.get("/no-such-page?x=1", HTTP_X_REQUEST_ID="ops-1234-abcd")
    assert response.status_code == 404
    records = [json.loads(line) for line in lines(buffer)]
    assert records == [
        {
            "time": records[0]["time"],
            "source": "app",
            "level": "warning",
            "logger": "django.request",
            "message": "Not Found: /no-such-page",
            "request_id": "ops-1234-abcd",
            "pid": records[0]["pid"],
            "method": "GET",
            "path": "/no-such-page?x=1",
            "status": 404,
        }
    ]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", records[0]["time"])


def test_the_text_format_carries_the_request_id_too(client, captured):
    buffer, handler = captured
    handler.setFormatter(logging.Formatter(app_settings.LOGGING["formatters"]["text"]["format"]))
    client.get("/no-such-page", HTTP_X_REQUEST_ID="ops-5678-efgh")
    [line] = lines(buffer)
    assert not line.startswith("{")
    assert line.endswith("WARNING django.request request_id=ops-5678-efgh Not Found: /no-such-page")


@pytest.mark.parametrize("incoming", ["short", "x" * 129, "has space12", 'quote"1234', "", "ünïcödé-id"])
def test_a_malformed_request_id_is_never_used_and_the_app_makes_its_own(client, captured, incoming):
    buffer, handler = captured
    handler.setFormatter(observability.JsonFormatter())
    assert client.get("/no-such-page", HTTP_X_REQUEST_ID=incoming).status_code == 404
    [record] = [json.loads(line) for line in lines(buffer)]
    assert re.fullmatch(r"[0-9a-f]{32}", record["request_id"])


def test_records_outside_a_request_say_so():
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello", None, None)
    observability.RequestIdFilter().filter(record)
    assert json.loads(observability.JsonFormatter().format(record))["request_id"] == "-"


def test_an_exception_goes_into_the_json_line_whole():
    try:
        raise ValueError("boom\nsecond line")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    line = observability.JsonFormatter().format(record)
    assert "\n" not in line
    assert "ValueError: boom\nsecond line" in json.loads(line)["exception"]


@pytest.mark.parametrize("name, value", [("LOG_FORMAT", "xml"), ("LOG_LEVEL", "loud")], ids=["format", "level"])
def test_an_unknown_log_format_or_level_is_refused(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    choices = ("json", "text") if name == "LOG_FORMAT" else ("debug", "info")
    with pytest.raises(ImproperlyConfigured, match=name):
        app_settings.env_choice(name, "json", choices)


def test_log_format_and_level_default_to_json_and_info(monkeypatch):
    monkeypatch.delenv("LOG_FORMAT", raising=False)
    assert app_settings.env_choice("LOG_FORMAT", "json", ("json", "text")) == "json"
    assert app_settings.LOGGING["handlers"]["console"]["formatter"] == app_settings.LOG_FORMAT
    assert app_settings.LOGGING["root"]["level"] == app_settings.LOG_LEVEL


def sample(view: str, method: str, status: str) -> float:
    labels = {"view": view, "method": method, "status": status}
    return REGISTRY.get_sample_value("app_http_requests_total", labels) or 0.0


@pytest.mark.django_db
def test_requests_are_counted_and_timed_by_view_not_by_path(client):
    before = sample("index", "GET", "200"), sample("unmatched", "GET", "404"), sample("readyz", "other", "405")
    durations = REGISTRY.get_sample_value("app_http_request_duration_seconds_count", {"view": "index", "method": "GET"})
    client.get("/")
    client.get("/")
    client.get("/no-such-page-1")
    client.get("/no-such-page-2")
    client.generic("BREW", "/readyz")
    assert sample("index", "GET", "200") == before[0] + 2
    assert sample("unmatched", "GET", "404") == before[1] + 2
    assert sample("readyz", "other", "405") == before[2] + 1
    after = REGISTRY.get_sample_value("app_http_request_duration_seconds_count", {"view": "index", "method": "GET"})
    assert after == (durations or 0) + 2
