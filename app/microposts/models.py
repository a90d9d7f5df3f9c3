"""Microposts: short messages a user posts, each optionally referencing another user."""

from django.conf import settings
from django.db import models
from django.utils import timezone

TEXT_MAX_LENGTH = 255
IDEMPOTENCY_KEY_MAX_LENGTH = 255


class Micropost(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="microposts")
    text = models.CharField(max_length=TEXT_MAX_LENGTH)
    # The user the post is about or addressed to; the post stays if that user is deleted.
    referenced = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="references",
    )
    # The client's Idempotency-Key for the POST that created the post, if it sent one: the same key from the same
    # user again gets this post back instead of a second one (api.py), so a POST retried after a lost answer, by the
    # client or by nginx on another replica, creates one post.
    idempotency_key = models.CharField(max_length=IDEMPOTENCY_KEY_MAX_LENGTH, null=True, blank=True, editable=False)
    # Set once, when the post is created; `updated` moves on every save.
    created = models.DateTimeField(default=timezone.now, editable=False)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("-created", "-id")
        indexes = (models.Index(fields=["user", "-created", "-id"], name="micropost_user_newest"),)
        constraints = (
            models.CheckConstraint(condition=~models.Q(text=""), name="micropost_text_not_empty"),
            # One post per key and user; posts without a key (NULL) are not compared.
            models.UniqueConstraint(fields=("user", "idempotency_key"), name="micropost_user_idempotency_key"),
        )

    def __str__(self) -> str:
        return f"{self.user} #{self.pk}: {self.text[:40]}"
