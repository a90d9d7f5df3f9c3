"""The microposts API: every endpoint, status and validation rule."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from microposts.models import TEXT_MAX_LENGTH, Micropost
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db

FIELDS = {"href", "id", "text", "referenced", "timestamp", "user"}


def collection(username: str) -> str:
    return f"/api/users/{username}/collection"


def detail(post: Micropost, username: str | None = None) -> str:
    return f"{collection(username or post.user.username)}/{post.pk}"


# --- listing ------------------------------------------------------------------------------------------------------


def test_a_users_collection_lists_their_posts_newest_first(anonymous, alice):
    now = timezone.now()
    for age, text in [(3, "oldest"), (1, "newest"), (2, "middle")]:
        Micropost.objects.create(user=alice, text=text, created=now - timedelta(minutes=age))
    response = anonymous.get(collection("alice"))
    assert response.status_code == 200
    assert [post["text"] for post in response.json()["results"]] == ["newest", "middle", "oldest"]


def test_posts_created_in_the_same_instant_list_the_later_one_first(anonymous, alice):
    now = timezone.now()
    first = Micropost.objects.create(user=alice, text="first", created=now)
    second = Micropost.objects.create(user=alice, text="second", created=now)
    ids = [post["id"] for post in anonymous.get(collection("alice")).json()["results"]]
    assert ids == [second.pk, first.pk]


def test_a_collection_holds_only_that_users_posts(anonymous, alices_post, bobs_post):
    results = anonymous.get(collection("alice")).json()["results"]
    assert [post["id"] for post in results] == [alices_post.pk]


def test_a_collection_is_paginated_twenty_posts_a_page(anonymous, alice):
    Micropost.objects.bulk_create(Micropost(user=alice, text=f"post {n}") for n in range(25))
    first = anonymous.get(collection("alice")).json()
    assert first["count"] == 25
    assert len(first["results"]) == 20
    assert first["previous"] is None
    assert first["next"].endswith(f"{collection('alice')}?page=2")
    second = anonymous.get(first["next"]).json()
    assert len(second["results"]) == 5
    assert second["next"] is None
    ids = [post["id"] for post in first["results"] + second["results"]]
    assert len(set(ids)) == 25, "pages neither overlap nor skip posts"


def test_a_client_chooses_the_page_size_up_to_one_hundred(anonymous, alice):
    Micropost.objects.bulk_create(Micropost(user=alice, text=f"post {n}") for n in range(105))
    assert len(anonymous.get(collection("alice"), {"page_size": 5}).json()["results"]) == 5
    assert len(anonymous.get(collection("alice"), {"page_size": 1000}).json()["results"]) == 100


def test_a_page_past_the_end_is_404(anonymous, alices_post):
    assert anonymous.get(collection("alice"), {"page": 2}).status_code == 404


def test_an_unknown_users_collection_is_404(anonymous):
    assert anonymous.get(collection("nobody")).status_code == 404


def test_a_user_without_posts_has_an_empty_collection(anonymous, alice):
    assert anonymous.get(collection("alice")).json() == {"count": 0, "next": None, "previous": None, "results": []}


def test_a_post_has_exactly_href_id_text_referenced_timestamp_and_user(anonymous, alice, bob):
    post = Micropost.objects.create(user=alice, text="Hi Bob", referenced=bob)
    (shown,) = anonymous.get(collection("alice")).json()["results"]
    assert set(shown) == FIELDS
    assert shown["href"] == f"http://testserver{detail(post)}"
    assert shown["id"] == post.pk
    assert shown["text"] == "Hi Bob"
    assert shown["referenced"] == "bob"
    assert shown["user"] == "alice"
    assert shown["timestamp"] == post.created.isoformat().replace("+00:00", "Z")


def test_a_post_that_references_nobody_shows_null(anonymous, alices_post):
    (shown,) = anonymous.get(collection("alice")).json()["results"]
    assert shown["referenced"] is None


# --- creating -----------------------------------------------------------------------------------------------------


def test_the_owner_creates_a_post_with_their_token(as_alice, alice, bob):
    response = as_alice.post(collection("alice"), {"text": "Hello, Bob", "referenced": "bob"}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert set(body) == FIELDS
    assert (body["text"], body["referenced"], body["user"]) == ("Hello, Bob", "bob", "alice")
    assert response["Location"] == body["href"]
    post = Micropost.objects.get(pk=body["id"])
    assert (post.user, post.text, post.referenced) == (alice, "Hello, Bob", bob)


@pytest.mark.parametrize("referenced", [None, ""], ids=["null", "empty (an HTML form's blank choice)"])
def test_a_post_may_set_the_referenced_user_to_none(as_alice, referenced):
    response = as_alice.post(collection("alice"), {"text": "to no one", "referenced": referenced}, format="json")
    assert response.status_code == 201
    assert response.json()["referenced"] is None


def test_a_post_may_leave_out_the_referenced_user(as_alice):
    response = as_alice.post(collection("alice"), {"text": "to no one"}, format="json")
    assert response.status_code == 201
    assert response.json()["referenced"] is None


def test_a_post_of_exactly_the_maximum_length_is_accepted(as_alice):
    response = as_alice.post(collection("alice"), {"text": "x" * TEXT_MAX_LENGTH}, format="json")
    assert response.status_code == 201
    assert len(response.json()["text"]) == 255


def test_the_owner_and_timestamp_come_from_the_server_not_the_request(as_alice, alice, bob):
    claimed = "2000-01-01T00:00:00Z"
    before = timezone.now()
    response = as_alice.post(collection("alice"), {"text": "mine", "user": "bob", "timestamp": claimed}, format="json")
    assert response.status_code == 201
    post = Micropost.objects.get(pk=response.json()["id"])
    assert post.user == alice
    assert post.created >= before


def test_creating_without_credentials_is_401_and_says_to_use_a_token(anonymous, alice):
    response = anonymous.post(collection("alice"), {"text": "anonymous"}, format="json")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert not Micropost.objects.exists()


def test_creating_with_an_unknown_token_is_401(alice):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token " + "0" * 40)
    assert client.post(collection("alice"), {"text": "forged"}, format="json").status_code == 401
    assert not Micropost.objects.exists()


def test_creating_in_another_users_collection_is_403(as_bob, alice):
    response = as_bob.post(collection("alice"), {"text": "as alice"}, format="json")
    assert response.status_code == 403
    assert not Micropost.objects.exists()


def test_creating_in_an_unknown_users_collection_is_403(as_bob):
    assert as_bob.post(collection("nobody"), {"text": "to nobody"}, format="json").status_code == 403


@pytest.mark.parametrize(
    "payload, field",
    [
        ({"text": ""}, "text"),
        ({"text": "   "}, "text"),
        ({}, "text"),
        ({"text": None}, "text"),
        ({"text": "x" * (TEXT_MAX_LENGTH + 1)}, "text"),
        ({"text": "hi", "referenced": "nobody"}, "referenced"),
        ({"text": "hi", "referenced": 1}, "referenced"),
    ],
    ids=["empty", "blank", "missing", "null", "too-long", "unknown-referenced", "referenced-by-id"],
)
def test_invalid_input_is_400_naming_the_field(as_alice, payload, field):
    response = as_alice.post(collection("alice"), payload, format="json")
    assert response.status_code == 400
    assert list(response.json()) == [field]
    assert not Micropost.objects.exists()


def test_a_malformed_json_body_is_400(as_alice):
    response = as_alice.post(collection("alice"), '{"text": ', content_type="application/json")
    assert response.status_code == 400


# --- creating with an Idempotency-Key ------------------------------------------------------------------------------


def test_a_post_sent_again_with_the_same_idempotency_key_creates_one_post_and_answers_it_again(as_alice, alice):
    key = {"HTTP_IDEMPOTENCY_KEY": "2f1b6c1e-3b8a-4c1e-9d2f-7a1e5c9b0d11"}
    first = as_alice.post(collection("alice"), {"text": "once", "referenced": None}, format="json", **key)
    again = as_alice.post(collection("alice"), {"text": "once"}, format="json", **key)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()
    assert ("Idempotent-Replayed" in first.headers, again.headers["Idempotent-Replayed"]) == (False, "true")
    assert Micropost.objects.filter(user=alice).count() == 1


def test_the_same_idempotency_key_from_another_user_or_without_one_creates_another_post(as_alice, as_bob, alice, bob):
    key = {"HTTP_IDEMPOTENCY_KEY": "shared"}
    assert as_alice.post(collection("alice"), {"text": "a"}, format="json", **key).status_code == 201
    assert as_bob.post(collection("bob"), {"text": "a"}, format="json", **key).status_code == 201
    for _ in range(2):
        assert as_alice.post(collection("alice"), {"text": "a"}, format="json").status_code == 201
    assert (Micropost.objects.filter(user=alice).count(), Micropost.objects.filter(user=bob).count()) == (3, 1)


def test_an_idempotency_key_reused_for_a_different_post_is_422_and_changes_nothing(as_alice, alice, bob):
    key = {"HTTP_IDEMPOTENCY_KEY": "k1"}
    assert as_alice.post(collection("alice"), {"text": "first"}, format="json", **key).status_code == 201
    for changed in ({"text": "second"}, {"text": "first", "referenced": "bob"}):
        response = as_alice.post(collection("alice"), changed, format="json", **key)
        assert response.status_code == 422, changed
        assert "Idempotency-Key" in response.json()
    assert list(Micropost.objects.filter(user=alice).values_list("text", flat=True)) == ["first"]


@pytest.mark.parametrize(
    "key", ["", "x" * 256, "tab\there", "caf\u00e9"], ids=["empty", "too long", "control", "non-ascii"]
)
def test_a_malformed_idempotency_key_is_400_and_creates_nothing(as_alice, alice, key):
    response = as_alice.post(collection("alice"), {"text": "no"}, format="json", HTTP_IDEMPOTENCY_KEY=key)
    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()
    assert not Micropost.objects.filter(user=alice).exists()


def test_an_invalid_post_with_an_idempotency_key_is_400_and_leaves_the_key_unused(as_alice, alice):
    key = {"HTTP_IDEMPOTENCY_KEY": "k2"}
    assert as_alice.post(collection("alice"), {"text": ""}, format="json", **key).status_code == 400
    assert as_alice.post(collection("alice"), {"text": "now valid"}, format="json", **key).status_code == 201
    assert "Idempotent-Replayed" not in as_alice.post(collection("alice"), {"text": "other"}, format="json").headers


# --- one post -----------------------------------------------------------------------------------------------------


def test_anyone_reads_one_post(anonymous, alices_post):
    response = anonymous.get(detail(alices_post))
    assert response.status_code == 200
    assert response.json()["text"] == "Alice's first post"
    assert set(response.json()) == FIELDS


def test_the_href_of_a_post_leads_to_it(anonymous, alices_post):
    (listed,) = anonymous.get(collection("alice")).json()["results"]
    assert anonymous.get(listed["href"]).json() == listed


def test_a_post_under_another_users_collection_is_404(anonymous, alice, bobs_post):
    assert anonymous.get(detail(bobs_post, username="alice")).status_code == 404


def test_a_post_that_does_not_exist_is_404(anonymous, alice):
    assert anonymous.get(f"{collection('alice')}/999999").status_code == 404


def test_a_post_under_an_unknown_user_is_404(anonymous, alices_post):
    assert anonymous.get(detail(alices_post, username="nobody")).status_code == 404


def test_the_owner_replaces_a_post_with_put(as_alice, alices_post, bob):
    response = as_alice.put(detail(alices_post), {"text": "rewritten", "referenced": "bob"}, format="json")
    assert response.status_code == 200
    assert (response.json()["text"], response.json()["referenced"]) == ("rewritten", "bob")
    alices_post.refresh_from_db()
    assert (alices_post.text, alices_post.referenced) == ("rewritten", bob)


def test_put_needs_the_text(as_alice, alices_post):
    response = as_alice.put(detail(alices_post), {"referenced": None}, format="json")
    assert response.status_code == 400
    assert list(response.json()) == ["text"]


def test_the_owner_changes_one_field_with_patch(as_alice, alice, bob):
    post = Micropost.objects.create(user=alice, text="keep me", referenced=bob)
    response = as_alice.patch(detail(post), {"referenced": None}, format="json")
    assert response.status_code == 200
    post.refresh_from_db()
    assert (post.text, post.referenced) == ("keep me", None)


def test_editing_keeps_the_timestamp_and_moves_updated(as_alice, alice):
    created = timezone.now() - timedelta(days=1)
    post = Micropost.objects.create(user=alice, text="old", created=created)
    updated_before = post.updated
    response = as_alice.patch(detail(post), {"text": "edited"}, format="json")
    assert response.status_code == 200
    assert response.json()["timestamp"] == created.isoformat().replace("+00:00", "Z")
    post.refresh_from_db()
    assert post.created == created
    assert post.updated > updated_before


@pytest.mark.parametrize(
    "payload, field",
    [
        ({"text": ""}, "text"),
        ({"text": "x" * (TEXT_MAX_LENGTH + 1)}, "text"),
        ({"referenced": "nobody"}, "referenced"),
    ],
    ids=["empty", "too-long", "unknown-referenced"],
)
def test_an_invalid_edit_is_400_and_changes_nothing(as_alice, alices_post, payload, field):
    response = as_alice.patch(detail(alices_post), payload, format="json")
    assert response.status_code == 400
    assert list(response.json()) == [field]
    alices_post.refresh_from_db()
    assert (alices_post.text, alices_post.referenced) == ("Alice's first post", None)


def test_the_owner_deletes_a_post(as_alice, alices_post):
    assert as_alice.delete(detail(alices_post)).status_code == 204
    assert not Micropost.objects.filter(pk=alices_post.pk).exists()
    assert as_alice.get(detail(alices_post)).status_code == 404


# The three ways to change a post, for the checks of who may.
CHANGES = pytest.mark.parametrize(
    "method, payload",
    [("put", {"text": "changed"}), ("patch", {"text": "changed"}), ("delete", None)],
)


@CHANGES
def test_changing_a_post_without_credentials_is_401(anonymous, alices_post, method, payload):
    response = getattr(anonymous, method)(detail(alices_post), payload, format="json")
    assert response.status_code == 401
    alices_post.refresh_from_db()
    assert alices_post.text == "Alice's first post"


@CHANGES
def test_changing_another_users_post_is_403(as_bob, alices_post, method, payload):
    response = getattr(as_bob, method)(detail(alices_post), payload, format="json")
    assert response.status_code == 403
    alices_post.refresh_from_db()
    assert alices_post.text == "Alice's first post"


@CHANGES
def test_changing_another_users_post_through_ones_own_collection_is_404(as_alice, bobs_post, method, payload):
    response = getattr(as_alice, method)(detail(bobs_post, username="alice"), payload, format="json")
    assert response.status_code == 404
    bobs_post.refresh_from_db()
    assert bobs_post.text == "Bob's first post"


def test_a_collection_refuses_put_and_delete(as_alice, alice):
    assert as_alice.put(collection("alice"), {"text": "x"}, format="json").status_code == 405
    assert as_alice.delete(collection("alice")).status_code == 405


# --- session login, for the browsable API -------------------------------------------------------------------------


def test_the_browsable_api_renders_a_collection_as_html(anonymous, alices_post):
    response = anonymous.get(collection("alice"), HTTP_ACCEPT="text/html")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    assert "Alice&#x27;s first post" in response.content.decode()


def test_the_browsable_api_has_a_login_page(anonymous):
    response = anonymous.get("/api-auth/login/")
    assert response.status_code == 200
    assert "csrfmiddlewaretoken" in response.content.decode()


def test_a_session_login_may_post_with_its_csrf_token_and_not_without(alice):
    alice.set_password("a long passphrase for alice")
    alice.save()
    client = APIClient(enforce_csrf_checks=True)
    login_page = client.get("/api-auth/login/")
    csrf = login_page.cookies["csrftoken"].value
    login = client.post(
        "/api-auth/login/",
        {"username": "alice", "password": "a long passphrase for alice", "csrfmiddlewaretoken": csrf},
    )
    assert login.status_code == 302, "logged in and redirected"
    without = client.post(collection("alice"), {"text": "no csrf"}, format="json")
    assert without.status_code == 403
    assert "CSRF" in without.json()["detail"]
    csrf = client.cookies["csrftoken"].value
    with_token = client.post(collection("alice"), {"text": "with csrf"}, format="json", HTTP_X_CSRFTOKEN=csrf)
    assert with_token.status_code == 201
    assert list(Micropost.objects.values_list("text", flat=True)) == ["with csrf"]
