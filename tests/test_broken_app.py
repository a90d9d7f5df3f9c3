"""A broken app makes `make up` fail fast, naming the problem, and nothing is left restarting in a loop."""

from __future__ import annotations

import time

import pytest

from tests.harness import make, project_containers

pytestmark = pytest.mark.lifecycle

BROKEN_IMAGES = {
    "APP_IMAGE": "wsgi-chain-test/broken-app:dev",
    "NGINX_IMAGE": "wsgi-chain-test/broken-nginx:dev",
}

CASES = {
    "module that does not import": (
        {"app.py": "import no_such_module_anywhere\n", "requirements.txt": ""},
        "app:application",
        "cannot import app: ModuleNotFoundError: No module named 'no_such_module_anywhere'",
    ),
    "missing requirements file": (
        {"app.py": "def application(environ, start_response):\n    return []\n"},
        "app:application",
        "has no requirements.txt",
    ),
    "callable that is not a WSGI app": (
        {"app.py": "def application():\n    return 'hello'\n", "requirements.txt": ""},
        "app:application",
        "is not a WSGI app: it cannot be called with (environ, start_response)",
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
    assert message in result.stderr, result.stdout[-2000:] + result.stderr[-3000:]
    assert elapsed < 60, f"make up took {elapsed:.0f} s to fail"
    states = project_containers(make_env["COMPOSE_PROJECT_NAME"], field="{{.State.Status}}")
    assert "restarting" not in states.values(), f"left restarting in a loop: {states}"
