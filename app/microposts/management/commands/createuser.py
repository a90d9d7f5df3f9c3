"""`manage.py createuser USERNAME`: create a user and print their API token (the token alone, on stdout).

Run again for a user that exists, it prints that user's token again and changes nothing, so that a script (or the
API session in docs/default-app.md) can be run twice; asked to set a password or make an admin of an existing user,
it refuses."""

import sys
from typing import ClassVar

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import IntegrityError, transaction
from rest_framework.authtoken.models import Token


class Command(BaseCommand):
    help = "Create a user and print their API token. Without --password-stdin the user can only use the token."
    # call_command(..., stdin=...) for tests; the command line reads sys.stdin.
    stealth_options = ("stdin",)
    # No system checks, as Django's own createsuperuser: the deploy's migrate ran them, and they cost as much as the
    # command (about 0.45 s of CPU).
    requires_system_checks: ClassVar[list[str]] = []

    def add_arguments(self, parser) -> None:
        parser.add_argument("username")
        parser.add_argument("--email", default="")
        parser.add_argument(
            "--password-stdin",
            action="store_true",
            help="read a password from the first line of stdin, for session and admin login (never from argv)",
        )
        parser.add_argument("--superuser", action="store_true", help="make the user an admin (staff and superuser)")

    def handle(self, *args, username: str, email: str, password_stdin: bool, superuser: bool, **options) -> None:
        users = get_user_model()
        existing = users.objects.filter(username=username).first()
        if existing is not None:
            if password_stdin or superuser or email:
                raise CommandError(
                    f"user {username!r} already exists: createuser changes nothing about an existing user "
                    f"(`manage.py token {username}` prints its token; `manage.py changepassword` sets a password)"
                )
            self.stderr.write(f"user {username!r} already exists: printing its token again, nothing changed")
            self.stdout.write(Token.objects.get_or_create(user=existing)[0].key)
            return
        user = users(username=username, email=email, is_staff=superuser, is_superuser=superuser)
        if password_stdin:
            password = (options.get("stdin") or sys.stdin).readline().rstrip("\r\n")
            if not password:
                raise CommandError("--password-stdin: no password on stdin")
            try:
                validate_password(password, user)
            except ValidationError as exc:
                raise CommandError(f"password refused: {' '.join(exc.messages)}") from None
            user.set_password(password)
        else:
            user.set_unusable_password()
        try:
            user.full_clean()
        except ValidationError as exc:
            problems = "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in exc.message_dict.items())
            raise CommandError(f"cannot create user {username!r}: {problems}") from None
        try:
            with transaction.atomic():
                user.save()
                token = Token.objects.create(user=user)
        except IntegrityError:
            raise CommandError(f"user {username!r} already exists") from None
        self.stdout.write(token.key)
