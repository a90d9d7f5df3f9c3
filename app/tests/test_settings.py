"""Settings from the environment: production-safe defaults, and a database fit for several writers at once."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db.utils import ConnectionHandler
from microposts import settings as app_settings


@pytest.fixture
def clean_env(monkeypatch):
    for name in ("DEBUG", "SECRET_KEY", "SECRET_KEY_FILE", "DATABASE_URL", "SQLITE_PATH", "SQLITE_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_debug_is_off_unless_asked_for(clean_env):
    assert app_settings.env_bool("DEBUG") is False
    clean_env.setenv("DEBUG", "true")
    assert app_settings.env_bool("DEBUG") is True


def test_a_debug_value_that_is_not_a_boolean_is_refused(clean_env):
    clean_env.setenv("DEBUG", "maybe")
    with pytest.raises(ImproperlyConfigured):
        app_settings.env_bool("DEBUG")


@pytest.mark.parametrize("key", ["", "changeme", "secret", "django-insecure-abc123"])
def test_a_missing_or_known_bad_secret_key_is_refused(clean_env, key):
    clean_env.setenv("SECRET_KEY", key)
    with pytest.raises(ImproperlyConfigured):
        app_settings.secret_key(debug=False)


def test_the_secret_key_is_read_from_a_file(clean_env, tmp_path):
    (tmp_path / "key").write_text("a-real-secret-from-a-file\n")
    clean_env.setenv("SECRET_KEY_FILE", str(tmp_path / "key"))
    assert app_settings.secret_key(debug=False) == "a-real-secret-from-a-file"


def test_without_database_url_the_database_is_sqlite_at_sqlite_path(clean_env):
    clean_env.setenv("SQLITE_PATH", "/var/lib/app/db.sqlite3")
    config = app_settings.database()
    assert config["ENGINE"] == "django.db.backends.sqlite3"
    assert config["NAME"] == "/var/lib/app/db.sqlite3"
    assert config["OPTIONS"]["transaction_mode"] == "IMMEDIATE"
    assert config["CONN_MAX_AGE"] is None, "kept for the worker's life: closing it cost each request a WAL checkpoint"


def test_database_url_selects_postgresql_over_a_unix_socket(clean_env):
    clean_env.setenv("DATABASE_URL", "postgres://micro:s%40cret@/microposts?host=/run/postgresql")
    config = app_settings.database()
    assert config["ENGINE"] == "django.db.backends.postgresql"
    assert (config["NAME"], config["USER"], config["PASSWORD"]) == ("microposts", "micro", "s@cret")
    assert config["OPTIONS"] == {"host": "/run/postgresql"}
    assert config["CONN_MAX_AGE"] == 60
    assert config["CONN_HEALTH_CHECKS"] is True


def test_a_database_url_of_an_unknown_kind_is_refused(clean_env):
    clean_env.setenv("DATABASE_URL", "nosuchdb://host/db")
    with pytest.raises(ImproperlyConfigured, match="DATABASE_URL"):
        app_settings.database()


def test_a_sqlite_database_url_gets_the_same_concurrency_settings(clean_env, tmp_path):
    clean_env.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/db.sqlite3")
    config = app_settings.database()
    assert config["OPTIONS"]["transaction_mode"] == "IMMEDIATE"
    assert "journal_mode=WAL" in config["OPTIONS"]["init_command"]
    assert config["CONN_MAX_AGE"] is None


def test_a_sqlite_connection_is_in_wal_mode_with_a_busy_timeout(clean_env, tmp_path, django_db_blocker):
    clean_env.setenv("SQLITE_PATH", str(tmp_path / "db.sqlite3"))
    clean_env.setenv("SQLITE_TIMEOUT", "7")
    connection = ConnectionHandler({"default": app_settings.database()})["default"]
    with django_db_blocker.unblock():
        try:
            with connection.cursor() as cursor:
                pragmas = {}
                for pragma in ("journal_mode", "busy_timeout", "synchronous"):
                    cursor.execute(f"PRAGMA {pragma}")
                    pragmas[pragma] = cursor.fetchone()[0]
        finally:
            connection.close()
    assert pragmas == {"journal_mode": "wal", "busy_timeout": 7000, "synchronous": 1}  # 1 is NORMAL
