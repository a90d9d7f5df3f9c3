"""Fixtures for the app's unit tests: users with tokens, and API clients acting as them."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from microposts.models import Micropost
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient


@pytest.fixture
def anonymous() -> APIClient:
    return APIClient()


@pytest.fixture
def make_user(db):
    def make(username: str):
        user = get_user_model().objects.create_user(username=username)
        Token.objects.create(user=user)
        return user

    return make


@pytest.fixture
def alice(make_user):
    return make_user("alice")


@pytest.fixture
def bob(make_user):
    return make_user("bob")


def client_for(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {user.auth_token.key}")
    return client


@pytest.fixture
def as_alice(alice) -> APIClient:
    return client_for(alice)


@pytest.fixture
def as_bob(bob) -> APIClient:
    return client_for(bob)


@pytest.fixture
def alices_post(alice) -> Micropost:
    return Micropost.objects.create(user=alice, text="Alice's first post")


@pytest.fixture
def bobs_post(bob) -> Micropost:
    return Micropost.objects.create(user=bob, text="Bob's first post")
