from django.contrib.auth import get_user_model
from rest_framework import serializers
from rest_framework.reverse import reverse

from .models import Micropost


class MicropostSerializer(serializers.ModelSerializer):
    """A post as the API shows it. `text` comes from the model, so its limits are the model's."""

    href = serializers.SerializerMethodField()
    referenced = serializers.SlugRelatedField(
        slug_field="username",
        queryset=get_user_model().objects.all(),
        allow_null=True,
        required=False,
    )
    timestamp = serializers.DateTimeField(source="created", read_only=True)
    user = serializers.CharField(source="user.username", read_only=True)

    class Meta:
        model = Micropost
        fields = ("href", "id", "text", "referenced", "timestamp", "user")

    def get_href(self, post: Micropost) -> str:
        kwargs = {"username": post.user.username, "pk": post.pk}
        return reverse("micropost-detail", kwargs=kwargs, request=self.context.get("request"))
