"""Settings, read from the environment. Production-safe defaults: DEBUG off, no default secret.

| variable          | default                         |
|-------------------|---------------------------------|
| SECRET_KEY        | (required unless DEBUG is on)   |
| SECRET_KEY_FILE   | (unset) file holding SECRET_KEY |
| DEBUG             | false                           |
| ALLOWED_HOSTS     | localhost,127.0.0.1             |
| SECURE_COOKIES    | false (true: session and CSRF cookies only over HTTPS) |
| DATABASE_URL      | (unset) e.g. postgres://user:password@host/db, or postgres://user@/db?host=/socket/dir |
| DB_CONN_MAX_AGE   | 60 (seconds a PostgreSQL connection is reused; 0 closes it after each request) |
| SQLITE_PATH       | <app dir>/db.sqlite3 (the database when DATABASE_URL is unset; each worker keeps its connection) |
| SQLITE_TIMEOUT    | 20 (seconds a writer waits for SQLite's lock before failing) |
| STATIC_ROOT       | <app dir>/staticfiles           |
| STATIC_URL        | /static/                        |
| API_PAGE_SIZE     | 20 (posts per page)             |
| API_THROTTLE_ANON | 120/min (API requests per client address without credentials; off: no limit) |
| API_THROTTLE_USER | 600/min (API requests per authenticated user; off: no limit) |
| CACHE_DIR         | <temp dir>/microposts-cache (the throttles' counts, shared by the container's workers) |
| LOG_FORMAT        | json (one JSON object per line) or text |
| LOG_LEVEL         | INFO                            |
"""

import os
import re
import tempfile
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

# Keys that must never sign anything in production: empty, or one that is public because it is in a repo or a doc.
KNOWN_BAD_KEYS = {"", "changeme", "change-me", "secret", "django-insecure"}


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value.lower() in {"1", "true", "yes", "on"}:
        return True
    if value.lower() in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is not a boolean (use true or false)")


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name) or str(default)
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not an integer") from None


def secret_key(debug: bool) -> str:
    key = os.environ.get("SECRET_KEY", "")
    key_file = os.environ.get("SECRET_KEY_FILE")
    if not key and key_file:
        key = Path(key_file).read_text().strip()
    if debug and not key:
        return "django-insecure-debug-only"
    if key in KNOWN_BAD_KEYS or key.startswith("django-insecure"):
        raise ImproperlyConfigured("SECRET_KEY (or SECRET_KEY_FILE) must be set to a real secret when DEBUG is off")
    return key


DEBUG = env_bool("DEBUG")
SECRET_KEY = secret_key(DEBUG)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1")

# HTTPS. The front proxy owns the connection, so it owns the scheme: it sets X-Forwarded-Proto to the scheme it was
# reached with, overwriting any the client sent, so the header can be believed (request.is_secure(), CSRF's origin
# check over HTTPS).
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Cookies only over HTTPS: on wherever the site is served over TLS (the TLS setup sets it), off for plain HTTP,
# where Secure cookies would never come back and nobody could log in.
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env_bool("SECURE_COOKIES")
SILENCED_SYSTEM_CHECKS = [
    # HSTS is the front proxy's (sent only over TLS, from its config); Django's would be sent over plain HTTP too.
    "security.W004",
    # The front proxy redirects HTTP to HTTPS when TLS is on; Django's redirect would loop behind plain HTTP.
    "security.W008",
]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "microposts",
]

MIDDLEWARE = [
    # First: the request ID for every log record of the request, and request metrics around everything else.
    "microposts.observability.RequestMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "microposts.urls"
WSGI_APPLICATION = "microposts.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]


def sqlite_options() -> dict:
    """SQLite for several worker processes writing at once, none of them ever failing with "database is locked".

    - WAL: readers never block the writer and the writer never blocks readers (persistent in the file; the
      statement is a no-op once the file is in WAL mode). synchronous=NORMAL is the setting WAL is made for: no
      corruption on power loss, only the last transactions may roll back.
    - BEGIN IMMEDIATE: a transaction takes the write lock when it starts. With SQLite's default (DEFERRED), a
      transaction that reads and then writes fails at once with "database is locked" when another writer got in
      between: waiting could not help, so SQLite does not wait.
    - timeout: a writer waits up to SQLITE_TIMEOUT seconds for the lock instead of failing at once; below the
      app server's request timeout, so a request gives up before it is killed.
    """
    return {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL",
        "transaction_mode": "IMMEDIATE",
        "timeout": env_int("SQLITE_TIMEOUT", 20),
    }


# SQLite's connection is kept for the worker's life (Django's default, 0, closes it after each request): SQLite is a
# file, with no server whose connections a worker would hold, and a connection closed after each request cost the
# next its opening (init_command, the schema read again) and, when it was the last one open, a checkpoint of the WAL
# into the database and its reset, waiting on the disk while the worker served no one (measured: docs/benchmark.md,
# Where the time goes). A restore (make restore) writes into the live database through SQLite's backup API, so kept
# connections stay valid.
SQLITE_CONN_MAX_AGE = None


def database() -> dict:
    """PostgreSQL (or any engine dj-database-url knows) from DATABASE_URL; SQLite at SQLITE_PATH otherwise."""
    url = os.environ.get("DATABASE_URL", "")
    if not url:
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ.get("SQLITE_PATH", str(BASE_DIR / "db.sqlite3")),
            "OPTIONS": sqlite_options(),
            "CONN_MAX_AGE": SQLITE_CONN_MAX_AGE,
        }
    try:
        config = dj_database_url.parse(url, conn_max_age=env_int("DB_CONN_MAX_AGE", 60), conn_health_checks=True)
    except ValueError as exc:
        raise ImproperlyConfigured(f"DATABASE_URL: {exc}") from None
    if config["ENGINE"] == "django.db.backends.sqlite3":
        config["OPTIONS"] = {**sqlite_options(), **config.get("OPTIONS", {})}
        config["CONN_MAX_AGE"] = SQLITE_CONN_MAX_AGE
    return config


DATABASES = {"default": database()}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = os.environ.get("STATIC_URL", "/static/")
STATIC_ROOT = os.environ.get("STATIC_ROOT", str(BASE_DIR / "staticfiles"))

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"


def cache() -> dict:
    """What DRF's throttles count in: a file cache in CACHE_DIR, on the container's tmpfs by default. Every uWSGI
    worker of the container sees the same counts (Django's default, a memory cache per process, would let each
    worker grant the full rate again), and no API request costs a database write. Counted per container: N
    replicas grant up to N times the rate."""
    return {
        "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
        "LOCATION": os.environ.get("CACHE_DIR") or str(Path(tempfile.gettempdir()) / "microposts-cache"),
        # One small file per client address or user: room for many before old ones are culled (default 300).
        "OPTIONS": {"MAX_ENTRIES": 10_000},
    }


CACHES = {"default": cache()}


def env_rate(name: str, default: str) -> str | None:
    """A DRF throttle rate, "<requests>/<period>" (second, minute, hour or day; "min" and the like too), or None
    for "off". Checked here, at start: DRF would only fail on it at the first request, with a 500."""
    value = (os.environ.get(name) or default).strip().lower()
    if value == "off":
        return None
    if not re.fullmatch(r"[1-9][0-9]{0,8}/(s|sec|second|m|min|minute|h|hour|d|day)", value):
        raise ImproperlyConfigured(
            f"{name}={value!r} is not a rate: use <requests>/<second|minute|hour|day>, e.g. 60/min, or off"
        )
    return value


REST_FRAMEWORK = {
    # Token first: an unauthenticated write gets 401 with `WWW-Authenticate: Token`, not a bare 403. Sessions serve
    # the browsable API (log in at /api-auth/login/).
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    # For views that set no permissions of their own: anyone reads, only authenticated users write.
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticatedOrReadOnly"],
    "DEFAULT_PAGINATION_CLASS": "microposts.pagination.Pagination",
    "PAGE_SIZE": env_int("API_PAGE_SIZE", 20),
    # A created post's `Location` header is its `href` (DRF takes it from this field of the response).
    "URL_FIELD_NAME": "href",
    # Throttling (429 with Retry-After past the rate): anonymous clients per address, users per account. 120/min
    # (2/s) is more than a person reading or a polite script needs, and holds one address's scraping or flooding
    # to that; 600/min (10/s) lets a user's client write in bursts (the load tests post 50 at once per user) while
    # a leaked token cannot flood the database. Default: no throttling.
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.AnonRateThrottle",
        "rest_framework.throttling.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env_rate("API_THROTTLE_ANON", "120/min"),
        "user": env_rate("API_THROTTLE_USER", "600/min"),
    },
    # The client's address is REMOTE_ADDR, which the front proxy sets to the real client (nginx's real_ip behind
    # TRUSTED_PROXIES) and X-Forwarded-For with it. Default (None): DRF would count by the whole X-Forwarded-For,
    # which a client reaching the app without nginx could write itself.
    "NUM_PROXIES": 0,
}


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = (os.environ.get(name) or default).lower()
    if value not in choices:
        raise ImproperlyConfigured(f"{name}={value!r} is not one of {', '.join(choices)}")
    return value


LOG_FORMAT = env_choice("LOG_FORMAT", "json", ("json", "text"))
LOG_LEVEL = env_choice("LOG_LEVEL", "info", ("debug", "info", "warning", "error", "critical")).upper()

# Every record on stderr, with the request's ID: JSON lines in the schema nginx's and the app server's request logs
# share (docs/observability.md: Logs), or plain text. Django's own loggers (django.request: 4xx warnings, 5xx errors
# with their traceback) go through the same handler, not Django's default ones.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "microposts.observability.RequestIdFilter"}},
    "formatters": {
        "json": {"()": "microposts.observability.JsonFormatter"},
        "text": {"format": "%(asctime)s %(levelname)s %(name)s request_id=%(request_id)s %(message)s"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "filters": ["request_id"], "formatter": LOG_FORMAT},
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {"django": {"handlers": [], "level": LOG_LEVEL, "propagate": True}},
}
