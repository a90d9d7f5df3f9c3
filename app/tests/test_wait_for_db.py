"""`manage.py wait_for_db`, which the pre-start hook runs before migrating."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command
from django.db import connection


@pytest.mark.django_db
def test_it_returns_at_once_when_the_database_answers():
    out = io.StringIO()
    call_command("wait_for_db", "--timeout", "0", stdout=out)
    assert "accepts connections" in out.getvalue()


def test_it_fails_naming_the_error_when_the_database_never_answers(monkeypatch, tmp_path, django_db_blocker):
    nowhere = tmp_path / "no-such-dir"
    if connection.vendor == "sqlite":
        monkeypatch.setitem(connection.settings_dict, "NAME", str(nowhere / "db.sqlite3"))
    else:
        monkeypatch.setitem(connection.settings_dict, "HOST", str(nowhere))
    connection.close()
    with django_db_blocker.unblock(), pytest.raises(CommandError, match="did not accept connections within 0 s"):
        call_command("wait_for_db", "--timeout", "0", stderr=io.StringIO())
    connection.close()
