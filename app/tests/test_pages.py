"""What the app served before the API, still served: home page, health probes, admin, its own JSON 404."""

from __future__ import annotations

import pytest
from django.contrib import admin
from microposts import __version__
from microposts.models import Micropost


def test_the_version_is_0_4_2():
    assert __version__ == "0.4.2"


def test_the_home_page_names_the_app_and_its_version(client):
    response = client.get("/")
    assert response.status_code == 200
    assert "microposts" in response.content.decode()
    assert __version__ in response.content.decode()


def test_healthz_answers_without_touching_the_database_and_names_no_version(client):
    # No django_db mark: any query would fail the test.
    response = client.get("/healthz")
    assert response.json() == {"status": "ok", "app": "microposts"}


@pytest.mark.django_db
def test_readyz_is_ok_once_every_migration_is_applied(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_an_unknown_path_is_the_apps_json_404(client):
    response = client.get("/no-such-page")
    assert response.status_code == 404
    assert response.json() == {"status": 404, "error": "not found", "app": "microposts"}


def test_a_post_id_that_is_not_a_number_is_the_apps_json_404(client):
    response = client.get("/api/users/alice/collection/abc")
    assert response.status_code == 404
    assert response.json()["app"] == "microposts"


def test_posts_are_registered_in_the_admin():
    assert admin.site.is_registered(Micropost)


@pytest.mark.django_db
def test_the_admin_lists_and_searches_posts(admin_client, alice, bob):
    client = admin_client
    Micropost.objects.create(user=alice, text="needle in the admin")
    Micropost.objects.create(user=bob, text="haystack")
    listing = client.get("/admin/microposts/micropost/")
    assert listing.status_code == 200
    assert "needle in the admin" in listing.content.decode()
    found = client.get("/admin/microposts/micropost/", {"q": "needle"}).content.decode()
    assert "needle in the admin" in found
    assert "haystack" not in found


@pytest.mark.django_db
def test_the_admin_edits_a_post_without_touching_its_timestamp(admin_client, alices_post):
    client = admin_client
    form = client.get(f"/admin/microposts/micropost/{alices_post.pk}/change/")
    assert form.status_code == 200
    response = client.post(
        f"/admin/microposts/micropost/{alices_post.pk}/change/",
        {"user": alices_post.user.pk, "text": "edited in the admin", "referenced": ""},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    created = alices_post.created
    alices_post.refresh_from_db()
    assert alices_post.text == "edited in the admin"
    assert alices_post.created == created
