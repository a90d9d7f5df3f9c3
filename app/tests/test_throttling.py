"""API throttling: anonymous clients per address, users per account, past the rate 429 with Retry-After; the
rates come from the environment and a bad one stops the app at start."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured
from microposts import settings as app_settings
from rest_framework.test import APIClient
from rest_framework.throttling import SimpleRateThrottle

from tests.conftest import client_for

pytestmark = pytest.mark.django_db

RATE = 3


@pytest.fixture(autouse=True)
def low_rates(settings, monkeypatch, tmp_path):
    """A low rate for both scopes, counted in a file cache of this test's own (the production backend).

    DRF copies the rates into SimpleRateThrottle.THROTTLE_RATES when it is imported, so a settings override alone
    would not reach them: the copy is patched too."""
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache", "LOCATION": str(tmp_path)}
    }
    rates = {"anon": f"{RATE}/min", "user": f"{RATE * 2}/min"}
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", rates)


def statuses(client: APIClient, path: str, count: int, **extra) -> list[int]:
    return [client.get(path, **extra).status_code for _ in range(count)]


def test_an_anonymous_client_past_its_rate_gets_429_with_retry_after(alice):
    client = APIClient(REMOTE_ADDR="203.0.113.7")
    path = "/api/users/alice/collection"
    assert statuses(client, path, RATE) == [200] * RATE
    refused = client.get(path)
    assert refused.status_code == 429
    assert 0 < int(refused["Retry-After"]) <= 60
    assert APIClient(REMOTE_ADDR="203.0.113.8").get(path).status_code == 200, "another address is not counted"


def test_an_anonymous_client_cannot_reset_its_count_with_x_forwarded_for(alice):
    client = APIClient(REMOTE_ADDR="203.0.113.9")
    path = "/api/users/alice/collection"
    sent = [client.get(path, HTTP_X_FORWARDED_FOR=f"198.51.100.{n}").status_code for n in range(RATE + 1)]
    assert sent == [200] * RATE + [429]


def test_a_user_past_their_rate_gets_429_and_other_users_are_not_counted(alice, bob):
    path = "/api/users/alice/collection"
    as_alice = client_for(alice)
    assert statuses(as_alice, path, RATE * 2) == [200] * (RATE * 2), "users get the user rate, not the anonymous one"
    assert as_alice.get(path).status_code == 429
    assert client_for(bob).get(path).status_code == 200


def test_pages_outside_the_api_are_not_throttled(client):
    assert [client.get("/healthz").status_code for _ in range(RATE * 3)] == [200] * (RATE * 3)


@pytest.mark.parametrize(
    ("value", "rate"),
    [("", "120/min"), ("5/min", "5/min"), ("100/Hour", "100/hour"), ("2/s", "2/s"), ("OFF", None)],
)
def test_a_rate_is_read_from_the_environment_with_a_default(monkeypatch, value, rate):
    monkeypatch.setenv("API_THROTTLE_ANON", value)
    assert app_settings.env_rate("API_THROTTLE_ANON", "120/min") == rate


@pytest.mark.parametrize("value", ["5", "five/min", "0/min", "5/fortnight", "5/min/extra", "-1/s", "5 /min"])
def test_a_rate_that_is_not_one_is_refused_at_start(monkeypatch, value):
    monkeypatch.setenv("API_THROTTLE_ANON", value)
    with pytest.raises(ImproperlyConfigured, match="API_THROTTLE_ANON"):
        app_settings.env_rate("API_THROTTLE_ANON", "120/min")


def test_the_counts_are_kept_in_one_directory_for_all_of_a_containers_workers(monkeypatch, tmp_path):
    monkeypatch.delenv("CACHE_DIR", raising=False)
    default = app_settings.cache()
    assert default["BACKEND"] == "django.core.cache.backends.filebased.FileBasedCache"
    assert default["LOCATION"].endswith("/microposts-cache")
    monkeypatch.setenv("CACHE_DIR", str(tmp_path))
    assert app_settings.cache()["LOCATION"] == str(tmp_path)
