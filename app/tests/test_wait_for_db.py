"""`manage.py wait_for_db`, which the pre-start hook runs before migrating."""

from __future__ import annotations

import io

import pytest
from django.core import checks
from django.core.management import CommandError, call_command, execute_from_command_line
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


@pytest.mark.django_db
def test_with_migrate_it_then_migrates_in_the_same_process():
    out = io.StringIO()
    call_command("wait_for_db", "--timeout", "0", "--migrate", stdout=out)
    assert "accepts connections" in out.getvalue()
    assert "Operations to perform" in out.getvalue()


@pytest.mark.django_db
@pytest.mark.parametrize("level", [checks.Warning, checks.Error])
def test_with_migrate_the_system_checks_run_once_as_from_the_command_line_and_an_error_stops_it(
    level, monkeypatch, capsys
):
    calls = []

    def check(**kwargs):
        calls.append(kwargs)
        return [level("a check that speaks", id="tests.E001")]

    monkeypatch.setattr(checks.registry.registry, "registered_checks", {check})
    argv = ["manage.py", "wait_for_db", "--timeout", "0", "--migrate"]
    if level is checks.Error:
        with pytest.raises(SystemExit) as exited:
            execute_from_command_line(argv)
        assert exited.value.code == 1
    else:
        execute_from_command_line(argv)
    assert "a check that speaks" in capsys.readouterr().err
    assert len(calls) == 1, "the checks run in migrate only, not in the wait before it"


@pytest.mark.django_db(transaction=True)
def test_from_the_command_line_each_migration_it_applies_is_one_line_ending_in_ok(capsys):
    call_command("migrate", "microposts", "zero", verbosity=0)
    execute_from_command_line(["manage.py", "wait_for_db", "--timeout", "0", "--migrate"])
    applied = [line for line in capsys.readouterr().out.splitlines() if "Applying" in line]
    assert applied, "nothing was migrated"
    assert all(line.strip().endswith("... OK") for line in applied), applied
