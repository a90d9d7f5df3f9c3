"""`manage.py createuser`: creates a user and prints their token, and nothing else, on stdout."""

from __future__ import annotations

import io
import secrets

import pytest
from django.contrib.auth import get_user_model
from django.core import checks
from django.core.management import CommandError, call_command, execute_from_command_line
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db

PASSWORD = secrets.token_urlsafe(16)


def createuser(*args: str, stdin: str | None = None) -> str:
    out = io.StringIO()
    options = {"stdout": out}
    if stdin is not None:
        options["stdin"] = io.StringIO(stdin)
    call_command("createuser", *args, **options)
    return out.getvalue()


def test_it_prints_only_a_token_that_lets_the_user_post():
    token = createuser("carol").strip()
    assert len(token) == 40
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    response = client.post("/api/users/carol/collection", {"text": "hello"}, format="json")
    assert response.status_code == 201


def test_without_a_password_the_user_can_only_use_the_token():
    createuser("carol")
    assert not get_user_model().objects.get(username="carol").has_usable_password()


def test_a_password_from_stdin_lets_the_user_log_in():
    createuser("carol", "--password-stdin", stdin=PASSWORD + "\n")
    assert APIClient().login(username="carol", password=PASSWORD)


def test_a_superuser_can_use_the_admin():
    createuser("root", "--superuser", "--password-stdin", stdin=PASSWORD + "\n")
    user = get_user_model().objects.get(username="root")
    assert user.is_staff and user.is_superuser
    client = APIClient()
    client.force_login(user)
    assert client.get("/admin/microposts/micropost/").status_code == 200


def test_a_plain_user_is_not_an_admin():
    createuser("carol")
    user = get_user_model().objects.get(username="carol")
    assert not (user.is_staff or user.is_superuser)


def test_run_again_for_an_existing_user_it_prints_the_same_token_and_changes_nothing():
    first = createuser("carol").strip()
    user = get_user_model().objects.get(username="carol")
    again = createuser("carol").strip()
    assert again == first and len(again) == 40
    assert get_user_model().objects.filter(username="carol").count() == 1
    assert get_user_model().objects.get(username="carol").password == user.password


def test_an_existing_user_without_a_token_gets_one(alice):
    token = createuser("alice").strip()
    assert Token.objects.get(user=alice).key == token


@pytest.mark.parametrize(
    "options", [("--superuser",), ("--password-stdin",), ("--email", "a@example.com")], ids=lambda o: o[0]
)
def test_asked_to_change_an_existing_user_it_refuses(alice, options):
    with pytest.raises(CommandError, match="already exists: createuser changes nothing"):
        createuser("alice", *options, stdin=PASSWORD + "\n")
    alice.refresh_from_db()
    assert not alice.is_superuser and alice.email != "a@example.com"


def test_token_prints_an_existing_users_token_and_refuses_an_unknown_one():
    created = createuser("carol").strip()
    out = io.StringIO()
    call_command("token", "carol", stdout=out)
    assert out.getvalue().strip() == created
    with pytest.raises(CommandError, match="no user 'nobody'"):
        call_command("token", "nobody", stdout=io.StringIO())


@pytest.mark.parametrize("command", ["createuser", "token"])
def test_from_the_command_line_neither_runs_the_system_checks(command, monkeypatch, capsys):
    """As Django's own createsuperuser: the deploy's migrate ran them; here they would double the command's time."""
    createuser("dave")
    ran = []
    monkeypatch.setattr(checks.registry.registry, "registered_checks", {lambda **kwargs: ran.append(kwargs) or []})
    execute_from_command_line(["manage.py", command, "dave"])
    assert len(capsys.readouterr().out.strip()) == 40
    assert ran == []


def test_an_invalid_username_is_refused():
    with pytest.raises(CommandError, match="username"):
        createuser("not a valid name!")
    assert not get_user_model().objects.exists()


@pytest.mark.parametrize("password", ["", "password", "12345678901"], ids=["empty", "common", "numeric"])
def test_a_weak_or_missing_password_is_refused(password):
    with pytest.raises(CommandError):
        createuser("carol", "--password-stdin", stdin=password + "\n")
    assert not get_user_model().objects.exists()
