"""The microposts API, in the URL shape of "Python Architecture Patterns":

    /api/users/<username>/collection        GET: the user's posts, newest first, paginated. POST: a new post.
    /api/users/<username>/collection/<id>   GET, PUT, PATCH, DELETE one of the user's posts.

Anyone reads. Only the user named in the URL writes to their collection: 401 without credentials, 403 as someone
else. An unknown user, or a post that is not that user's, is 404.

A POST may carry an Idempotency-Key header (draft-ietf-httpapi-idempotency-key-header): sent again with the same
key, by the client or by nginx retrying on another replica, it creates no second post and answers the first one,
201 with `Idempotent-Replayed: true`; the same key with a different post is 422.
"""

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.shortcuts import get_object_or_404
from rest_framework import generics, permissions, status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from .models import IDEMPOTENCY_KEY_MAX_LENGTH, Micropost
from .serializers import MicropostSerializer

IDEMPOTENCY_KEY = "Idempotency-Key"


def idempotency_key(request) -> str | None:
    """The request's Idempotency-Key, None without one; 400 when it is empty, too long or not printable ASCII."""
    key = request.headers.get(IDEMPOTENCY_KEY)
    if key is None:
        return None
    if not (0 < len(key) <= IDEMPOTENCY_KEY_MAX_LENGTH and key.isascii() and key.isprintable()):
        raise ValidationError(
            {IDEMPOTENCY_KEY: [f"Use 1 to {IDEMPOTENCY_KEY_MAX_LENGTH} printable ASCII characters, e.g. a UUID."]}
        )
    return key


class IdempotencyKeyReused(ValidationError):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY


class IsCollectionOwnerOrReadOnly(permissions.BasePermission):
    message = "Only the owner of this collection may change it."

    def has_permission(self, request, view) -> bool:
        if request.method in permissions.SAFE_METHODS:
            return True
        user = request.user
        return bool(user and user.is_authenticated and user.get_username() == view.kwargs["username"])


class UserCollection(generics.ListCreateAPIView):
    serializer_class = MicropostSerializer
    permission_classes = (IsCollectionOwnerOrReadOnly,)

    def get_queryset(self):
        owner = get_object_or_404(get_user_model(), username=self.kwargs["username"])
        return Micropost.objects.filter(user=owner).select_related("user", "referenced")

    def perform_create(self, serializer: MicropostSerializer) -> None:
        # The permission check made sure the authenticated user is the collection's owner.
        serializer.save(user=self.request.user)

    def create(self, request, *args, **kwargs) -> Response:
        key = idempotency_key(request)
        if key is None:
            return super().create(request, *args, **kwargs)
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            # Insert first, and let the unique constraint decide: a retry that races the first attempt waits for
            # its transaction, then finds its post.
            with transaction.atomic():
                serializer.save(user=request.user, idempotency_key=key)
        except IntegrityError:
            post = Micropost.objects.filter(user=request.user, idempotency_key=key).first()
            if post is None:
                raise
            wanted = serializer.validated_data
            if (post.text, post.referenced) != (wanted["text"], wanted.get("referenced")):
                raise IdempotencyKeyReused(
                    {IDEMPOTENCY_KEY: ["This key created a different post; use a new key for a new post."]}
                ) from None
            replay = self.get_serializer(post)
            return Response(replay.data, status=status.HTTP_201_CREATED, headers={"Idempotent-Replayed": "true"})
        return Response(serializer.data, status=status.HTTP_201_CREATED)


class UserMicropost(generics.RetrieveUpdateDestroyAPIView):
    serializer_class = MicropostSerializer
    permission_classes = (IsCollectionOwnerOrReadOnly,)

    def get_queryset(self):
        return Micropost.objects.filter(user__username=self.kwargs["username"]).select_related("user", "referenced")
