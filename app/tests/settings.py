"""The app's settings, with what a test run needs: a throwaway secret key and fast password hashing."""

import os
import secrets

os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))

from microposts.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# SQLite tests run on a file, not in memory: WAL mode and concurrent connections only exist for a file.
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    import tempfile
    from pathlib import Path

    DATABASES["default"]["TEST"] = {  # noqa: F405
        "NAME": str(Path(tempfile.gettempdir()) / f"microposts-test-{os.getpid()}.sqlite3")
    }

# Throttle counts in memory that counts nothing: no test is throttled by the requests of the tests before it.
# test_throttling.py gives each of its tests a file cache of its own, as in production.
CACHES = {"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}}
