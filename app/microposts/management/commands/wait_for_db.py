"""`manage.py wait_for_db`: wait until the database accepts connections, for a database that starts alongside;
with `--migrate`, then bring its schema up to date in the same process (the pre-start hook's whole work)."""

import os
import sys
import time
from typing import ClassVar

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS, OperationalError, connections


class Command(BaseCommand):
    help = (
        "Wait until the database accepts connections (DB_WAIT_TIMEOUT seconds, default 60), then exit 0; "
        "with --migrate, then apply the migrations."
    )
    # The system checks run once, in migrate (--migrate): a wait for the database has nothing to check, and they cost
    # as much as Django's own start.
    requires_system_checks: ClassVar[list[str]] = []

    def add_arguments(self, parser) -> None:
        parser.add_argument("--timeout", type=float, default=float(os.environ.get("DB_WAIT_TIMEOUT") or 60))
        parser.add_argument("--database", default=DEFAULT_DB_ALIAS)
        parser.add_argument(
            "--migrate",
            action="store_true",
            help="then run `migrate --noinput` (system checks included) here, sparing a second start of Django",
        )

    def handle(self, *args, timeout: float, database: str, migrate: bool, **options) -> None:
        connection = connections[database]
        deadline = time.monotonic() + timeout
        reported = False
        while True:
            try:
                connection.ensure_connection()
                break
            except OperationalError as exc:
                connection.close()
                if time.monotonic() >= deadline:
                    raise CommandError(f"the database did not accept connections within {timeout:g} s: {exc}") from exc
                if not reported:
                    self.stderr.write(f"wait_for_db: waiting for the database: {str(exc).strip()}")
                    reported = True
                time.sleep(1)
        self.stdout.write(f"wait_for_db: the database ({connection.vendor}) accepts connections")
        if migrate:
            # call_command skips the checks unless told; `manage.py migrate` would run them. Its output goes to the
            # streams this command was given (the process's own from the command line), not to self.stdout, a wrapper
            # that would end each of migrate's partial lines ("Applying x..." then " OK") with a newline.
            call_command(
                "migrate",
                database=database,
                interactive=False,
                skip_checks=False,
                verbosity=options["verbosity"],
                stdout=options.get("stdout") or sys.stdout,
                stderr=options.get("stderr") or sys.stderr,
            )
