"""`manage.py token USERNAME`: print an existing user's API token (the token alone, on stdout); a user without one
gets one."""

from typing import ClassVar

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from rest_framework.authtoken.models import Token


class Command(BaseCommand):
    help = "Print an existing user's API token (made if the user has none). `createuser` makes users."
    # No system checks, as Django's own createsuperuser: the deploy's migrate ran them, and they cost as much as the
    # command (about 0.45 s of CPU).
    requires_system_checks: ClassVar[list[str]] = []

    def add_arguments(self, parser) -> None:
        parser.add_argument("username")

    def handle(self, *args, username: str, **options) -> None:
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"no user {username!r}: `manage.py createuser {username}` makes one")
        self.stdout.write(Token.objects.get_or_create(user=user)[0].key)
