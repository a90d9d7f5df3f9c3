"""Keeping out who doesn't belong, in both topologies: password guessing on the login paths is slowed down per client
at nginx (429 with Retry-After in the JSON error body) while the same client's other requests go through; the
default app throttles its API (429); ADMIN_ALLOW keeps the admin to the listed networks (403 in the JSON error
body), by the real client address, which a client's own X-Forwarded-For never changes.

One stack per topology carries every case: ADMIN_ALLOW=10.0.0.0/8, which the test client (the docker gateway,
172.x or 192.168.x) is not in, and a low anonymous API rate.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.harness import Deployment, OwnStack, poll
from tests.microposts_api import create_user, unique
from tools import settings

pytestmark = pytest.mark.lifecycle

ANON_RATE = 5
LIMITED = {"ADMIN_ALLOW": "10.0.0.0/8", "API_THROTTLE_ANON": f"{ANON_RATE}/min"}
# nginx/snippets/access-limits.conf: burst=10, then one request every 6 s (rate=10r/m).
BURST = 10
GUESSES = 30


@pytest.fixture(scope="module", params=list(settings.TOPOLOGIES))
def limited(request, tmp_path_factory) -> Iterator[Deployment]:
    topology = request.param
    stack = OwnStack(tmp_path_factory.mktemp(f"limits-{topology}"), topology=topology, prefix="wct-lim", env=LIMITED)
    # The split images are `make test`'s; the single one is built (as `make build TOPOLOGY=single` would).
    with stack.running(build=topology == "single") as deployment:
        yield deployment


def assert_json_error(response: requests.Response, status: int) -> None:
    assert response.status_code == status, response.text[:300]
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    assert body["status"] == status
    assert body["request_id"] == response.headers["X-Request-ID"]


def test_password_guessing_gets_429_after_the_burst_while_the_same_client_is_served_elsewhere(limited: Deployment):
    base = limited.base_url
    # /api-auth/login/: the default's other login path (ADMIN_ALLOW keeps this client off /admin/login/ already).
    login = f"{base}/api-auth/login/"
    guesser = requests.Session()
    form = guesser.get(login, timeout=10)
    assert form.status_code == 200
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text)
    assert token, "the login form carries a CSRF token"
    data = {"csrfmiddlewaretoken": token.group(1), "username": "admin", "password": "wrong"}

    guesses: list[requests.Response] = []
    elsewhere: list[int] = []
    started = time.monotonic()
    for n in range(GUESSES):
        guesses.append(guesser.post(login, data={**data, "password": f"wrong-{n}"}, timeout=10))
        # The same client, at the same time, on a path that is not a login path.
        elsewhere.append(requests.get(f"{base}/" if n % 2 else f"{base}/healthz", timeout=10).status_code)
    elapsed = time.monotonic() - started

    statuses = [response.status_code for response in guesses]
    assert 429 in statuses, f"{GUESSES} guesses in {elapsed:.1f} s and none refused: {statuses}"
    first_refused = statuses.index(429)
    # 1 + burst at once (the form's GET was one of them), then one more for each 6 s spent guessing.
    passed = BURST + int(elapsed // 6)
    assert set(statuses[:first_refused]) == {200}, f"wrong passwords re-render the form: {statuses}"
    assert BURST <= first_refused <= passed, f"{statuses} in {elapsed:.1f} s"
    assert statuses.count(429) >= GUESSES - passed, f"{statuses} in {elapsed:.1f} s"
    assert elsewhere == [200] * GUESSES, "another path of the same client is never limited"

    refused = guesses[first_refused]
    assert_json_error(refused, 429)
    assert refused.json()["error"] == "too many requests"
    assert refused.headers["Retry-After"] == "6"
    assert "Retry-After" not in guesses[0].headers
    # A forged X-Forwarded-For is not another client: refused as well (one may pass if a 6 s slot comes round).
    spoofed = [
        guesser.post(login, data=data, headers={"X-Forwarded-For": f"10.1.2.{n}"}, timeout=10).status_code
        for n in range(5)
    ]
    assert spoofed.count(429) >= 4, spoofed

    request_id = refused.headers["X-Request-ID"]
    record = poll(
        lambda: limited.with_request_id(limited.nginx_container, "nginx", request_id),
        what="nginx logs the refused guess with its request ID",
    )[0]
    # (Its "method" says GET: nginx turns a request it answers with an error page into a GET before logging it.)
    assert (record["status"], record["path"]) == (429, "/api-auth/login/")


def test_a_burst_from_one_client_on_other_paths_is_served_in_full(limited: Deployment):
    paths = ["/", "/healthz", "/static/admin/css/base.css"] * 100

    def get(path: str) -> int:
        return requests.get(f"{limited.base_url}{path}", timeout=30).status_code

    with ThreadPoolExecutor(max_workers=32) as pool:
        statuses = list(pool.map(get, paths))
    assert statuses == [200] * len(paths), {status: statuses.count(status) for status in set(statuses)}


def test_the_api_throttles_anonymous_clients_at_their_rate_and_not_users(limited: Deployment):
    username = unique("reader")
    token = create_user(limited.app_container, username)
    collection = f"{limited.base_url}/api/users/{username}/collection"

    anonymous = [requests.get(collection, timeout=10) for _ in range(ANON_RATE + 2)]
    assert [response.status_code for response in anonymous] == [200] * ANON_RATE + [429, 429]
    throttled = anonymous[-1]
    assert 0 < int(throttled.headers["Retry-After"]) <= 60
    assert "throttled" in throttled.json()["detail"], "the app's own 429, passed through by nginx"

    as_user = [
        requests.get(collection, headers={"Authorization": f"Token {token}"}, timeout=10).status_code
        for _ in range(ANON_RATE + 2)
    ]
    assert as_user == [200] * (ANON_RATE + 2), "an authenticated user is counted at the user rate"


@pytest.mark.parametrize("path", ["/admin/", "/admin/login/", "/admin/microposts/micropost/", "/admin//login/"])
def test_admin_paths_answer_403_to_clients_outside_admin_allow(limited: Deployment, path):
    response = requests.get(f"{limited.base_url}{path}", allow_redirects=False, timeout=10)
    assert_json_error(response, 403)
    assert response.json()["error"] == "forbidden"


@pytest.mark.parametrize("path", ["/", "/healthz", "/static/admin/css/base.css", "/static/admin/img/icon-yes.svg"])
def test_everything_but_the_admin_stays_open_to_them(limited: Deployment, path):
    assert requests.get(f"{limited.base_url}{path}", timeout=10).status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Forwarded-For": "10.1.2.3"},
        {"X-Forwarded-For": "10.1.2.3, 10.1.2.4"},
        {"X-Real-IP": "10.1.2.3"},
        {"X-Forwarded-For": "10.1.2.3", "X-Real-IP": "10.1.2.3", "Forwarded": "for=10.1.2.3"},
    ],
    ids=["xff", "xff-chain", "x-real-ip", "all-at-once"],
)
def test_a_spoofed_address_in_an_allowed_network_does_not_get_in(limited: Deployment, headers):
    response = requests.get(f"{limited.base_url}/admin/", headers=headers, allow_redirects=False, timeout=10)
    assert_json_error(response, 403)
