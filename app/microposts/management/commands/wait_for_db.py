"""`manage.py wait_for_db`: wait until the database accepts connections, for a database that starts alongside."""

import os
import time

from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS, OperationalError, connections


class Command(BaseCommand):
    help = "Wait until the database accepts connections (DB_WAIT_TIMEOUT seconds, default 60), then exit 0."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--timeout", type=float, default=float(os.environ.get("DB_WAIT_TIMEOUT") or 60))
        parser.add_argument("--database", default=DEFAULT_DB_ALIAS)

    def handle(self, *args, timeout: float, database: str, **options) -> None:
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
