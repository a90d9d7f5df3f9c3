"""The microposts API, in the URL shape of "Python Architecture Patterns":

    /api/users/<username>/collection        GET: the user's posts, newest first, paginated. POST: a new post.
    /api/users/<username>/collection/<id>   GET, PUT, PATCH, DELETE one of the user's posts.

Anyone reads. Only the user named in the URL writes to their collection: 401 without credentials, 403 as someone
else. An unknown user, or a post that is not that user's, is 404.
"""

from django.contrib.auth import get_user_model
from django.shortcuts import get_object_or_404
from rest_framework import generics, permissions

from .models import Micropost
from .serializers import MicropostSerializer


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


class UserMicropost(generics.RetrieveUpdateDestroyAPIView):
    serializer_class = MicropostSerializer
    permission_classes = (IsCollectionOwnerOrReadOnly,)

    def get_queryset(self):
        return Micropost.objects.filter(user__username=self.kwargs["username"]).select_related("user", "referenced")
