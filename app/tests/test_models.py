"""The Micropost model: its limits hold in the database itself, and its timestamps mean what they say."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import IntegrityError
from django.utils import timezone
from microposts.models import TEXT_MAX_LENGTH, Micropost

pytestmark = pytest.mark.django_db


def test_the_text_limit_is_255_characters(alice):
    assert TEXT_MAX_LENGTH == 255
    Micropost(user=alice, text="x" * 255).full_clean()
    with pytest.raises(ValidationError, match="at most 255"):
        Micropost(user=alice, text="x" * 256).full_clean()


def test_the_database_refuses_an_empty_text(alice):
    with pytest.raises(IntegrityError):
        Micropost.objects.create(user=alice, text="")


def test_saving_again_keeps_created_and_moves_updated(alice):
    created = timezone.now() - timedelta(hours=1)
    post = Micropost.objects.create(user=alice, text="first", created=created)
    first_update = post.updated
    post.text = "second"
    post.save()
    post.refresh_from_db()
    assert post.created == created
    assert post.updated > first_update


def test_a_new_post_is_stamped_with_the_current_time(alice):
    before = timezone.now()
    post = Micropost.objects.create(user=alice, text="now")
    assert before <= post.created <= timezone.now()


def test_deleting_the_referenced_user_keeps_the_post(alice, bob):
    post = Micropost.objects.create(user=alice, text="about bob", referenced=bob)
    bob.delete()
    post.refresh_from_db()
    assert post.referenced is None


def test_deleting_a_user_deletes_their_posts(alice, alices_post):
    alice.delete()
    assert not Micropost.objects.exists()


def test_the_migrations_match_the_models():
    call_command("makemigrations", "--check", "--dry-run", stdout=io.StringIO())
