"""A broken app makes `make up` fail fast, naming the problem, and nothing is left restarting in a loop."""

from __future__ import annotations

import json
import re
import shutil
import time
from collections import Counter

import pytest
import requests

from tests.harness import assert_answered_at_once_with_no_app_server, docker, image_module, make, project_containers
from tests.load import Load
from tools import settings, stack
from tools.compose import ROOT, timestamp

pytestmark = pytest.mark.lifecycle

BROKEN_IMAGES = {
    "APP_IMAGE": "wsgi-chain-test/broken-app:dev",
    "NGINX_IMAGE": "wsgi-chain-test/broken-nginx:dev",
}

# An app.py that is a WSGI app (it answers nothing): the cases below break something else.
SERVES_NOTHING = "def application(environ, start_response):\n    return []\n"

CASES = {
    "module that does not import": (
        {"app.py": "import no_such_module_anywhere\n", "requirements.txt": ""},
        "app:application",
        "cannot import app: ModuleNotFoundError: No module named 'no_such_module_anywhere'",
    ),
    # Trac 1.6 and Pyramid 2.0 import pkg_resources and do not require setuptools, which the image's virtualenv lacks.
    "module whose import needs what the image's Python no longer holds": (
        {"app.py": "import pkg_resources\n", "requirements.txt": ""},
        "app:application",
        "cannot import app: ModuleNotFoundError: No module named 'pkg_resources' (it comes with setuptools, which"
        " virtualenvs hold no more since Python 3.12: add setuptools to requirements.txt)",
    ),
    "missing requirements file": (
        {"app.py": SERVES_NOTHING},
        "app:application",
        "has no requirements.txt",
    ),
    "project with a lock and no requirements file": (
        {"app.py": SERVES_NOTHING, "pyproject.toml": "[project]\n"},
        "app:application",
        "has no requirements.txt; add one (it may be empty for an app without dependencies): write it from the"
        " project's lock, `uv export --no-emit-project --no-dev -o requirements.txt` or `poetry export -o",
    ),
    # psycopg2 built from source: without APP_BUILD_PACKAGES=libpq-dev, pg_config is nowhere. A version the suite
    # never builds with the headers, which would leave its wheel in pip's cache (the build's cache mount) for this one.
    "requirement that needs a system library's headers": (
        {
            "app.py": SERVES_NOTHING,
            "requirements.txt": "psycopg2==2.9.12\n",
        },
        "app:application",
        "up: error: the build failed (exit 1): pip could not install the app's requirements.txt (its error is above);"
        " one built from source may need a system library's headers: name their Debian packages in APP_BUILD_PACKAGES",
    ),
    # The build stage has the app's requirement files only (docker/app/requirement_files.py), not the app itself.
    "requirement that is the app itself": (
        {"app.py": SERVES_NOTHING, "requirements.txt": "-e .\n"},
        "app:application",
        "up: error: the build failed (exit 1): requirements.txt:1 installs '-e .', a path in the app: its files come"
        " into the image after the requirements are installed",
    ),
    # The stack's uWSGI (uwsgi/requirements.txt) pins what the app's may ask for; 2.0.28 lacks uwsgi.ini's options.
    "requirement that replaces the app server's uWSGI": (
        {"app.py": SERVES_NOTHING, "requirements.txt": "uWSGI==2.0.28\n"},
        "app:application",
        "up: error: the build failed (exit 1): the app's requirements ask for another version of what the app server"
        " runs on (uwsgi==",
    ),
    "callable that is not a WSGI app": (
        {"app.py": "def application():\n    return 'hello'\n", "requirements.txt": ""},
        "app:application",
        "is not a WSGI app: it cannot be called with (environ, start_response)",
    ),
    "app factory that returns no app": (
        {"app.py": "def create_app():\n    return None\n", "requirements.txt": ""},
        "app:create_app()",
        "WSGI_MODULE=app:create_app(): create_app() returned a NoneType, not a WSGI app",
    ),
    "name that is not callable": (
        {"app.py": "application = 'hello'\n", "requirements.txt": ""},
        "app:application",
        "is a str, not a WSGI app",
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_make_up_with_a_broken_app_fails_within_60_s_naming_the_problem(case, tmp_path, make_env):
    files, wsgi_module, message = CASES[case]
    app = tmp_path / "brokenapp"
    app.mkdir()
    for name, text in files.items():
        (app / name).write_text(text)
    env = {**make_env, **BROKEN_IMAGES, "APP_SRC": str(app), "WSGI_MODULE": wsgi_module}

    started = time.monotonic()
    result = make("up", env, timeout=120)
    elapsed = time.monotonic() - started

    assert result.returncode != 0
    # Named before the logs, not only somewhere in them.
    assert message in result.stderr.split("its last log lines")[0], result.stdout[-2000:] + result.stderr[-3000:]
    assert elapsed < 60, f"make up took {elapsed:.0f} s to fail"
    states = project_containers(make_env["COMPOSE_PROJECT_NAME"], field="{{.State.Status}}")
    assert "restarting" not in states.values(), f"left restarting in a loop: {states}"


# A Django app whose settings require a variable of its run-time environment, which the build (collectstatic) lacks.
NEEDS_ITS_ENVIRONMENT = {
    "requirements.txt": "Django==5.2.19\n",
    "site_settings.py": (
        "import os\n"
        "SECRET_KEY = 'test'\n"
        "DATABASES = {'default': {'NAME': os.environ['DATABASE_URL']}}\n"
        "INSTALLED_APPS = ['django.contrib.staticfiles']\n"
        "STATIC_URL = 'static/'\n"
    ),
    "app.py": "from django.core.wsgi import get_wsgi_application\n\napplication = get_wsgi_application()\n",
}


def test_make_up_of_a_django_app_whose_settings_need_its_environment_at_build_time_says_so(tmp_path, make_env):
    """collectstatic imports the settings in the build, where APP_ENV_FILE's values and the like are not: make up's
    line names the settings' own error and what to change, instead of "the build failed" alone."""
    app = tmp_path / "site"
    app.mkdir()
    for name, text in NEEDS_ITS_ENVIRONMENT.items():
        (app / name).write_text(text)
    env = {**make_env, **BROKEN_IMAGES, "APP_SRC": str(app), "WSGI_MODULE": "app:application"}
    result = make("up", {**env, "DJANGO_SETTINGS_MODULE": "site_settings"}, timeout=300)
    assert result.returncode != 0
    said = [line for line in result.stderr.splitlines() if line.startswith("up: error: ")]
    assert said == [
        "up: error: the build failed (exit 1): collectstatic with DJANGO_SETTINGS_MODULE=site_settings failed at build"
        " time: KeyError: 'DATABASE_URL'. The build has none of the app's run-time environment (APP_ENV_FILE,"
        " DATABASE_URL, the secret key): give what the settings read from it a default; its last lines are above,"
        " VERBOSE=1 shows all of it"
    ], result.stderr[-3000:]
    assert project_containers(make_env["COMPOSE_PROJECT_NAME"], field="{{.State.Status}}") == {}


CHECK_APP_FAILED = """Traceback (most recent call last):
  File "/usr/local/bin/check-app", line 29, in main
    target = importlib.import_module(module_name)
ModuleNotFoundError: No module named 'nothing'
wsgi-chain: WSGI_MODULE=app:application: cannot import app: ModuleNotFoundError: No module named 'nothing'
"""


SUPERVISORD_GIVES_UP = """2026-12-05 18:40:38,978 WARN exited: uwsgi (exit status 78; not expected)
2026-12-05 18:40:39,980 INFO gave up: uwsgi entered FATAL state, too many start retries too quickly
exit-on-fatal: uwsgi entered PROCESS_STATE_FATAL; stopping supervisord so the container exits
2026-12-05 18:40:41,990 INFO stopped: listener (exit status 0)
2026-12-05 18:40:42,994 WARN stopped: exit-on-fatal (terminated by SIGTERM)
"""


# (the module not found, the app image's Python) -> what check-app adds to its line: what brings the module back.
GONE_HINTS = [
    ("pkg_resources", (3, 13, 5), "add setuptools to requirements.txt"),
    ("distutils.util", (3, 12, 0), "add setuptools to requirements.txt"),
    ("cgi", (3, 13, 5), "add legacy-cgi, its backport, to requirements.txt"),
    ("telnetlib", (3, 13, 0), "Python 3.13 removed it (PEP 594)"),
    ("cgi", (3, 12, 9), None),  # still in Python 3.12's standard library: the app's own problem
    ("no_such_module_anywhere", (3, 13, 5), None),
]


@pytest.mark.parametrize(("missing", "python", "said"), GONE_HINTS)
def test_check_app_says_what_brings_back_a_module_the_images_python_left_out(missing, python, said):
    not_found = ModuleNotFoundError(f"No module named {missing!r}", name=missing)
    hint = image_module("check_app").gone_hint(not_found, python)
    assert (said in hint) if said else hint == "", hint


@pytest.mark.parametrize(
    ("log", "shown"),
    [
        pytest.param(CHECK_APP_FAILED, CHECK_APP_FAILED.splitlines()[-1], id="check-app's line"),
        # A cold run (2026-12-04): the container restarted, and its next attempt had written one line.
        pytest.param(
            CHECK_APP_FAILED + "Traceback (most recent call last):\n",
            CHECK_APP_FAILED.splitlines()[-1],
            id="the next attempt's traceback begun",
        ),
        pytest.param(
            CHECK_APP_FAILED + CHECK_APP_FAILED.split("Modu")[0], CHECK_APP_FAILED.splitlines()[-1], id="its frames too"
        ),
        # The single container: supervisord gives up on the program (FATAL), and exit-on-fatal stops it.
        pytest.param(
            CHECK_APP_FAILED + SUPERVISORD_GIVES_UP,
            CHECK_APP_FAILED.splitlines()[-1],
            id="supervisord's lines after it",
        ),
        pytest.param("bind(): Address in use\n\n", "bind(): Address in use", id="a plain line"),
        pytest.param("", "(none)", id="no log"),
    ],
)
def test_make_up_names_the_line_that_says_what_failed_not_a_traceback_being_written(log, shown):
    assert stack.last_said(log) == shown


UNREADABLE_ENV = ROOT / "tests/unreadable-app.env"
UNUSABLE_SETTINGS = {
    "a missing app env file": (
        {"APP_ENV_FILE": "/nonexistent/app.env"},
        "APP_ENV_FILE=/nonexistent/app.env: no such file",
    ),
    "an app env file compose cannot read": (
        {"APP_ENV_FILE": str(UNREADABLE_ENV)},
        f"APP_ENV_FILE={UNREADABLE_ENV}: failed to read {UNREADABLE_ENV}: line 2: key cannot contain a space",
    ),
    "a health interval without its unit": (
        {"HEALTH_INTERVAL": "5"},
        "HEALTH_INTERVAL='5': use a duration with its unit, such as 5s, 500ms or 1m",
    ),
    "an egress setting that is neither on nor off": (
        {"APP_EGRESS": "yes"},
        "APP_EGRESS='yes': use on (the app may connect out of the stack) or off",
    ),
    "a media prefix that is no path": (
        {"MEDIA_URL": "media"},
        "MEDIA_URL='media' must be a path like /media/ (leading and trailing slash), or empty",
    ),
    "an app factory given arguments": (
        {"WSGI_MODULE": "app:create_app('production')"},
        "WSGI_MODULE=\"app:create_app('production')\" is not of the form package.module:callable"
        " (package.module:factory() for an app factory, called with no arguments)",
    ),
    "a Debian package setting that is no package name": (
        {"APP_BUILD_PACKAGES": "libpq-dev;true"},
        "APP_BUILD_PACKAGES='libpq-dev;true': 'libpq-dev;true' is not a Debian package name; give names separated by"
        " spaces, such as libpq-dev",
    ),
    "a uWSGI option the stack does not pass": (
        {"UWSGI_THREADS": "2"},
        "UWSGI_THREADS: no such setting reaches the app server (the stack passes UWSGI_DISABLE_LOGGING,",
    ),
    "a media prefix under the static files'": (
        {"MEDIA_URL": "/static/uploads/"},
        "MEDIA_URL=/static/uploads/ and STATIC_URL=/static/ overlap",
    ),
}


@pytest.mark.parametrize("case", UNUSABLE_SETTINGS)
def test_make_up_with_a_setting_it_cannot_use_says_so_before_it_builds_or_starts_anything(case, make_env):
    setting, message = UNUSABLE_SETTINGS[case]
    result = make("up", {**make_env, **setting}, timeout=60)
    assert result.returncode != 0
    assert message in result.stderr, result.stdout[-2000:] + result.stderr[-2000:]
    assert project_containers(make_env["COMPOSE_PROJECT_NAME"], field="{{.State.Status}}") == {}


# APP_ENV_FILE's lines -> the refusal's words (None: let be). Compose puts the stack's own `environment` over the file.
APP_ENV_LINES = {
    "a setting the stack sets": (
        ["DEBUG=true"],
        "sets DEBUG, which the stack sets itself for the app (compose puts its own value first), so the line never"
        " reaches it. Remove it from the file; give DEBUG to make instead (make up DEBUG=...)",
    ),
    "a uWSGI tunable the stack passes through unset": (
        ["UWSGI_WORKERS=3", "OWN=1"],
        "sets UWSGI_WORKERS, which the stack sets itself for the app (compose puts its own value first), so the line"
        " never reaches it. Remove it from the file; give UWSGI_WORKERS to make instead (make up UWSGI_WORKERS=...)",
    ),
    "the database, which a setting with no default gives": (
        ["DATABASE_URL=postgres://app:s3cret@db/app"],
        "sets DATABASE_URL, which the stack sets itself for the app (compose puts its own value first), so the line"
        " never reaches it. Remove it from the file; give DATABASE_URL to make instead (make up DATABASE_URL=...)",
    ),
    "a variable that is the stack's own, not a setting": (
        ["TMPDIR=/x", "DEBUG=yes"],
        "sets DEBUG, TMPDIR, which the stack sets itself for the app (compose puts its own values first), so these"
        " lines never reach it. Remove them from the file; give DEBUG to make instead (make up DEBUG=...)",
    ),
    "the stack's own value": (["DEBUG=false", "# a comment", 'GREETING="a b"'], None),
    "the app's own settings only": (["ECHO_SETTING=héllo, wörld = 1", "API_KEY='x=y'"], None),
}


@pytest.mark.parametrize("topology", list(settings.TOPOLOGIES))
@pytest.mark.parametrize("case", APP_ENV_LINES)
def test_a_line_of_app_env_file_that_the_stack_would_override_is_refused_naming_where_it_goes(
    case, topology, tmp_path, monkeypatch
):
    """It never reached the app, silently (the stack's value won): `DEBUG=true` there left DEBUG false."""
    lines, words = APP_ENV_LINES[case]
    (tmp_path / "app.env").write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    monkeypatch.setenv("APP_ENV_FILE", str(tmp_path / "app.env"))
    monkeypatch.setenv("TOPOLOGY", topology)
    if words is None:
        stack.check_app_env_file(stack.compose())
        return
    with pytest.raises(stack.StackError) as refused:
        stack.check_app_env_file(stack.compose())
    said = str(refused.value)
    assert said == f"APP_ENV_FILE={tmp_path / 'app.env'} {words}", said
    assert "s3cret" not in said, "a value may be a secret: the line names, never shows"


def test_make_up_refuses_such_a_line_before_it_builds_or_starts_anything(make_env, tmp_path):
    (tmp_path / "app.env").write_text("DEBUG=true\n", encoding="utf-8")
    result = make("up", {**make_env, "APP_ENV_FILE": str(tmp_path / "app.env")}, timeout=60)
    assert result.returncode != 0
    [line] = [line for line in result.stderr.splitlines() if line.startswith("up: error: ")]
    assert "sets DEBUG, which the stack sets itself for the app" in line, line
    assert "up: build" not in result.stdout, "nothing was built"
    assert project_containers(make_env["COMPOSE_PROJECT_NAME"], field="{{.State.Status}}") == {}


SERVER_ERROR_APP = (
    "def application(environ, start_response):\n"
    "    start_response('500 Internal Server Error', [('Content-Type', 'text/plain')])\n"
    "    return [b'broken on purpose']\n"
)


def test_make_up_with_an_app_answering_500_names_the_probe_and_its_setting_first_and_fails_in_seconds(
    tmp_path, make_env
):
    app = tmp_path / "servererror"
    app.mkdir()
    (app / "app.py").write_text(SERVER_ERROR_APP)
    (app / "requirements.txt").write_text("")
    # A long UP_TIMEOUT: failing by it would take 5 minutes; the health log makes the cause clear in seconds.
    env = {**make_env, **BROKEN_IMAGES, "APP_SRC": str(app), "WSGI_MODULE": "app:application", "UP_TIMEOUT": "300"}
    built = make("build", env, timeout=600)
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]

    result = make("up", env, timeout=400)
    ended = time.time()

    assert result.returncode != 0
    # The cause comes before compose's lines and the logs: the service, the probe's own answer, the setting.
    head = result.stderr.split("\nup: compose's last lines:")[0].split("its last log lines")[0]
    assert "up: service app is " in head, result.stderr[-3000:]
    assert "its health probe's last answer: unhealthy: GET /" in head, head
    assert re.search(r"-> (HTTP/1\.[01] )?500\b", head), head
    assert "HEALTHCHECK_PATH" in head and "READINESS_PATH" in head, head
    # Three failed probes in a row with the app's answer make the cause clear (the health log says when); make up
    # ends within 30 s of that, not at UP_TIMEOUT (300 s).
    waited = ended - clear_at(f"{make_env['COMPOSE_PROJECT_NAME']}-app-1")
    assert waited < 30, f"make up failed {waited:.0f} s after the cause was clear"
    states = project_containers(make_env["COMPOSE_PROJECT_NAME"], field="{{.State.Status}}")
    assert "restarting" not in states.values(), f"left restarting in a loop: {states}"
    assert_answered_at_once_with_no_app_server(result.stderr, make_env["COMPOSE_PROJECT_NAME"], "up")


def clear_at(container: str) -> float:
    """When the container's health log first shows three failed probes in a row (POSIX time)."""
    log = json.loads(docker("inspect", "-f", "{{json .State.Health.Log}}", container))
    failed = 0
    for probe in log:
        failed = failed + 1 if probe["ExitCode"] != 0 else 0
        if failed == 3:
            return timestamp(probe["End"])
    raise AssertionError(f"no three failed probes in a row in {container}'s health log: {log}")


# Upgrades make up refuses, and what it says: a release that no longer imports, and one that imports but answers 500.
BAD_RELEASES = [
    (
        "import no_such_module_anywhere\n",
        "does not load: wsgi-chain: WSGI_MODULE=wsgi:application: cannot import wsgi: ModuleNotFoundError: No module "
        "named 'no_such_module_anywhere'.",
    ),
    (
        "\n\n" + SERVER_ERROR_APP,
        "does not pass its health probe: wsgi-chain: 3 health probes in a row failed: unhealthy: GET / -> HTTP/1.1 500 "
        "Internal Server Error: a server error",
    ),
]

UPGRADE_IMAGES = {"APP_IMAGE": "app", "NGINX_IMAGE": "nginx", "SINGLE_IMAGE": "single"}
# The fixed release writes down each import of it, by container (the one-offs share the temp volume), with the HOME
# it was given.
IMPORTS_LOG = "/var/tmp/imports.log"  # noqa: S108 - in the containers, on their temp volume
RECORDS_ITS_IMPORTS = (
    "\nimport os as _os\nimport socket as _socket\n\n"
    f"with open({IMPORTS_LOG!r}, 'a') as _log:\n"
    "    _log.write(_socket.gethostname() + ' ' + _os.environ['HOME'] + '\\n')\n"
)


@pytest.mark.parametrize("topology", list(settings.TOPOLOGIES))
def test_make_up_of_an_app_that_would_not_serve_or_a_setting_nginx_refuses_leaves_what_runs_serving(
    topology, tmp_path, make_env, load_report
):
    """An upgrade whose app does not import (here a module it no longer finds), then one that imports but answers 500:
    `make up` names check-app's line, then the health probe's, and replaces nothing, so the app server that runs keeps
    serving (compose would stop it before starting the new one); a setting nginx refuses, likewise for nginx. Fixed,
    the next `make up` checks the new app, says so,
    and replaces the app server alone, under load with no request failed (split: the check's way on is the same in
    every topology; the single one has no listener container)."""
    app = tmp_path / "app"
    shutil.copytree(ROOT / "examples/plain", app)
    code = app / "wsgi.py"
    good = code.read_text()
    # Images of this case's own: the other topology's case runs at the same time on another worker, and a build of
    # its good app under the same tag would be this one's (the same content), which compose then has no reason to
    # replace.
    images = {name: f"wsgi-chain-test/upgrade-{topology}-{piece}:dev" for name, piece in UPGRADE_IMAGES.items()}
    env = {
        **make_env,
        **images,
        "TOPOLOGY": topology,
        "APP_SRC": str(app),
        "WSGI_MODULE": "wsgi:application",
        "STATIC_DIR": "assets",
    }
    first = make("up", env, timeout=180)
    assert first.returncode == 0, first.stdout + first.stderr
    name = f"{make_env['COMPOSE_PROJECT_NAME']}-{settings.TOPOLOGIES[topology].server}-1"

    def server() -> str:
        """The app server's container: its ID and start time."""
        return project_containers(make_env["COMPOSE_PROJECT_NAME"]).get(name, "")

    started = server()
    base_url = f"http://127.0.0.1:{make_env['HTTP_PORT']}/"

    # A release that does not import, then one that imports but answers 500 (the health probe's line, from the new app
    # server tried on a socket of its own in a one-off container: try-app): each refused, the containers as they were
    # (the same app server, not started again; no one-off left).
    containers = project_containers(make_env["COMPOSE_PROJECT_NAME"])
    for release, says in BAD_RELEASES:
        code.write_text(good + release)
        refused = make("up", env, timeout=180)
        assert refused.returncode != 0
        [line] = [line for line in refused.stderr.splitlines() if line.startswith("up: error: ")]
        assert line.startswith(f"up: error: the app this make up would start {says}"), line
        assert f"({name}) was left serving as it was" in line, line
        assert "up: start" not in refused.stdout, "nothing was started"
        assert project_containers(make_env["COMPOSE_PROJECT_NAME"]) == containers
        assert requests.get(base_url, timeout=10).status_code == 200

    # A setting nginx refuses, the app as it was: the new nginx (the single container's, in that topology) is checked
    # in a one-off first, and the one that runs keeps serving. Before, it was stopped and its successor exited.
    front = name if topology == "single" else f"{make_env['COMPOSE_PROJECT_NAME']}-nginx-1"
    refused = make("up", {**env, "MAX_BODY_SIZE": "10q"}, timeout=180)
    assert refused.returncode != 0
    # The last release's images, built by the make up before: the build line says so (the fixed release's, below).
    [built] = [line for line in refused.stdout.splitlines() if line.startswith("up: build ")]
    pieces = ", ".join(images[name] for name in settings.IMAGES if name != "SINGLE_IMAGE" or topology == "single")
    assert re.fullmatch(rf"up: build     {re.escape(pieces)} up to date \(\d+ s\)", built), built
    [line] = [line for line in refused.stderr.splitlines() if line.startswith("up: error: ")]
    says = "fails its config check: nginx-entrypoint: MAX_BODY_SIZE='10q' is not a size: use e.g. 10m, 512k or 1g."
    assert line.startswith(f"up: error: the nginx this make up would start {says}"), line
    assert f"({front}) was left serving as it was" in line, line
    assert project_containers(make_env["COMPOSE_PROJECT_NAME"]) == containers
    assert requests.get(base_url, timeout=10).status_code == 200

    if topology != "split":
        return  # the check's way on is the same in every topology: the split one shows it
    # The new version replaces the app server under load, and nothing else: the listener, which owns nginx's socket
    # and its queue, runs on (tools/stack.py: listener_image), so clients wait for the new app server, none fail.
    listener = f"{make_env['COMPOSE_PROJECT_NAME']}-listener-1"
    owner = project_containers(make_env["COMPOSE_PROJECT_NAME"])[listener]
    code.write_text(good + "# the fix\n" + RECORDS_ITS_IMPORTS)
    with Load(base_url, clients=4, duration=60, timeout=30) as load:
        load.wait_for_requests(50)
        fixed = make("up", env, timeout=180)
        load.wait_for_requests(load.result.ok + 100, timeout=30)
    load_report.append(f"make up of a new app version (split, under load): {load.result}")
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    # The new version's image is said to be one (it read "up to date" whatever the build made).
    [built] = [line for line in fixed.stdout.splitlines() if line.startswith("up: build ")]
    assert built.startswith(f"up: build     {images['APP_IMAGE']} built anew"), built
    assert (
        f"up: check     the new app loads and passes its health probe (try-app), so {name} is replaced" in fixed.stdout
    ), fixed.stdout
    # Imported once in each one-off of the trial (check-app's, try-app's worker: try-app --checked imports no more) and
    # in the new app server, by its check-app and each of its two workers.
    # Each with the app server's HOME (the entry point's, on the temp volume; check-app's one-off had the image's).
    records = [line.split() for line in docker("exec", name, "cat", IMPORTS_LOG).splitlines()]
    imports = Counter(host for host, _ in records)
    serving = docker("inspect", name, "--format", "{{.Config.Hostname}}").strip()
    assert imports.pop(serving) == 3 and sorted(imports.values()) == [1, 1], imports
    assert {home for _, home in records} == {"/var/tmp/home"}, records  # noqa: S108 - the app's home, compared
    assert server() not in ("", started), "replaced"
    assert project_containers(make_env["COMPOSE_PROJECT_NAME"])[listener] == owner, "the listener runs on"
    assert load.result.failed == 0, load.result
