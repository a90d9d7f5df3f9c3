"""The chain hands the app exactly the request the client meant: the conformance table (tests/conformance_cases.py)
sent as raw bytes through nginx and uWSGI to the plain echo app, in both topologies.

- Valid requests: the echo (method, PATH_INFO, QUERY_STRING, every HTTP_* variable, CONTENT_TYPE/LENGTH and the
  body) matches what a strict parser reads from the bytes sent, header values trimmed of spaces and tabs, and no
  hop-by-hop or framing header beside the body nginx already decoded.
- Tolerated requests: the app gets exactly the one reading nginx makes (given as a well-formed request).
- Refused requests: a 4xx or a closed connection; never a 5xx, never the app's echo.
"""

from __future__ import annotations

import base64
import json

import pytest

from tests.conformance_cases import REFUSED, TOLERATED, VALID, Case
from tests.harness import Deployment
from tests.http_wire import SET_BY_CHAIN, Request, exchange, parse_requests


def port_of(deployment: Deployment) -> int:
    return int(deployment.base_url.rsplit(":", 1)[1])


def assert_echoed(response, request: Request) -> None:
    assert response.status == 200, (response.status, response.body[:300])
    echo = json.loads(response.body)
    assert echo["framework"] == "plain"
    got = {key: value for key, value in echo["headers"].items() if key not in SET_BY_CHAIN}
    assert got == request.environ_headers()
    assert echo["method"] == request.method
    assert echo["script_name"] + echo["path"] == request.path
    assert echo["query"] == request.query
    assert echo["content_type"] == (request.header("content-type") or "")
    assert echo["content_length"] in ((str(len(request.body)),) if request.body else ("", "0"))
    assert base64.b64decode(echo["body_b64"]) == request.body


def test_the_table_has_at_least_sixty_cases_with_an_rfc_section_each():
    assert len(VALID) + len(TOLERATED) + len(REFUSED) >= 60
    names = [case.name for case in VALID + TOLERATED + REFUSED]
    assert len(names) == len(set(names)), "case names are unique"
    for case in VALID:
        parse_requests(case.raw)  # the reference parser reads every valid case: the table itself is well-formed


@pytest.mark.parametrize("case", VALID, ids=lambda case: case.name)
def test_a_valid_request_reaches_the_app_as_sent(echo: Deployment, case: Case):
    expected = parse_requests(case.raw)
    responses = exchange(port_of(echo), case.raw, responses=len(expected))
    assert len(responses) == len(expected), [r.status for r in responses]
    for response, request in zip(responses, expected, strict=True):
        assert_echoed(response, request)


@pytest.mark.parametrize("case", TOLERATED, ids=lambda case: case.name)
def test_a_tolerated_request_reaches_the_app_in_its_one_reading(echo: Deployment, case: Case):
    (expected,) = parse_requests(case.reads)
    with pytest.raises(ValueError):
        parse_requests(case.raw)  # not well-formed as sent
    (response,) = exchange(port_of(echo), case.raw)
    assert_echoed(response, expected)


@pytest.mark.parametrize("case", REFUSED, ids=lambda case: case.name)
def test_an_ambiguous_or_malformed_request_is_refused_with_a_4xx_or_a_close(echo: Deployment, case: Case):
    responses = exchange(port_of(echo), case.raw, responses=case.requests)
    statuses = [response.status for response in responses]
    assert all(400 <= status < 500 for status in statuses), statuses
    for response in responses:
        assert b'"framework"' not in response.body, "the app's echo: the request reached the app"
        assert response.headers.get("content-type") == "application/json", "the stack's own JSON error"
