"""Each piece (nginx config, uWSGI config, app) is versioned on its own, and the images say which they hold."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import uuid

import pytest

from tests.harness import ROOT, docker
from tools import settings

PIECES = {"app": "app", "uwsgi-config": "uwsgi", "nginx-config": "nginx"}
SEMVER = r"\d+\.\d+\.\d+"


def version(folder: str) -> str:
    return (ROOT / folder / "VERSION").read_text().strip()


def labels(image: str) -> dict[str, str]:
    return json.loads(docker("image", "inspect", "-f", "{{json .Config.Labels}}", image))


@pytest.mark.parametrize("piece", PIECES)
def test_each_piece_has_a_semver_version_with_a_changelog_entry(piece):
    folder = PIECES[piece]
    assert re.fullmatch(SEMVER, version(folder))
    assert f"## {version(folder)}" in (ROOT / folder / "CHANGELOG.md").read_text()


def test_the_images_carry_oci_labels_and_one_label_per_piece_they_hold():
    app = labels(settings.get("APP_IMAGE"))
    nginx = labels(settings.get("NGINX_IMAGE"))
    assert app["io.wsgi-chain.app.version"] == version("app")
    assert app["io.wsgi-chain.uwsgi-config.version"] == version("uwsgi")
    assert nginx["io.wsgi-chain.nginx-config.version"] == version("nginx")
    assert nginx["io.wsgi-chain.static.app-version"] == version("app")
    for image_labels in (app, nginx):
        for key in ("version", "revision", "source"):
            assert image_labels.get(f"org.opencontainers.image.{key}"), key
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    if head.returncode == 0:
        assert app["org.opencontainers.image.revision"] == head.stdout.strip()


def test_the_images_are_tagged_with_the_versions_they_hold():
    app_id = docker("image", "inspect", "-f", "{{.Id}}", settings.get("APP_IMAGE"))
    app_tag = f"{settings.get('APP_IMAGE').rsplit(':', 1)[0]}:{version('app')}-uwsgi{version('uwsgi')}"
    assert docker("image", "inspect", "-f", "{{.Id}}", app_tag) == app_id
    nginx_id = docker("image", "inspect", "-f", "{{.Id}}", settings.get("NGINX_IMAGE"))
    nginx_tag = f"{settings.get('NGINX_IMAGE').rsplit(':', 1)[0]}:{version('nginx')}-app{version('app')}"
    assert docker("image", "inspect", "-f", "{{.Id}}", nginx_tag) == nginx_id


def test_make_versions_shows_each_piece_as_checked_out_and_as_running(deployment):
    if deployment.compose is None:
        pytest.skip("needs the suite's own stack")
    result = subprocess.run(
        ["make", "--no-print-directory", "versions"],
        cwd=ROOT,
        env={**os.environ, "COMPOSE_PROJECT_NAME": deployment.compose.project},
        capture_output=True,
        text=True,
        check=True,
    )
    rows = {line.split()[0]: line for line in result.stdout.splitlines()[1:]}
    assert rows["app"].split()[1] == version("app")
    assert f"{version('app')} (app)" in rows["app"]
    assert f"{version('uwsgi')} (app)" in rows["uwsgi-config"]
    assert f"{version('nginx')} (nginx)" in rows["nginx-config"]


# --- rebuilds -----------------------------------------------------------------------------------------------------

COPIED = [
    "app",
    "uwsgi",
    "nginx",
    "docker",
    "tools",
    "compose.yaml",
    "compose.shared.yaml",
    "defaults.env",
    ".dockerignore",
]


def build_copy(copy, env) -> tuple[dict[str, list[str]], str]:
    """Build the copy's images; return each image's layer digests, and BuildKit's step log."""
    result = subprocess.run(
        [sys.executable, "-m", "tools.stack", "build"], cwd=copy, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    layers = {
        name: json.loads(docker("image", "inspect", "-f", "{{json .RootFS.Layers}}", env[var]))
        for name, var in (("app", "APP_IMAGE"), ("nginx", "NGINX_IMAGE"))
    }
    return layers, result.stdout + result.stderr


def cached(log: str, step: str) -> bool:
    """Whether every build step whose command matches `step` was taken from the cache rather than run."""
    ids = re.findall(r"^#(\d+) \[[^\]]*\] " + step, log, re.M)
    assert ids, f"no build step matches {step!r}"
    return all(re.search(rf"^#{i} CACHED$", log, re.M) for i in ids)


PIP_INSTALL = r"RUN .*install_requirements.py /tmp/app-requirements/requirements.txt"
APP_BUILD = r"RUN .*collect-static"


def test_changing_one_piece_rebuilds_only_the_image_that_holds_it(tmp_path):
    copy = tmp_path / "repo"
    copy.mkdir()
    for item in COPIED:
        source = ROOT / item
        if source.is_dir():
            shutil.copytree(source, copy / item, ignore=shutil.ignore_patterns("__pycache__", "tests"))
        else:
            shutil.copy2(source, copy / item)
    env = {
        **os.environ,
        "APP_IMAGE": "wsgi-chain-test/pieces-app:dev",
        "NGINX_IMAGE": "wsgi-chain-test/pieces-nginx:dev",
        "VCS_REF": "pieces-test",
        "BUILDKIT_PROGRESS": "plain",
    }
    base, _ = build_copy(copy, env)
    # Each run's changes are new content, so that BuildKit's cache of an earlier run cannot stand in for a rebuild.
    stamp = uuid.uuid4().hex

    with (copy / "nginx/conf.d/limits.conf").open("a") as f:
        f.write(f"# a change to the nginx config {stamp}\n")
    after_nginx, _ = build_copy(copy, env)
    assert after_nginx["app"] == base["app"], "an nginx config change rebuilt the app image"
    assert after_nginx["nginx"] != base["nginx"]

    with (copy / "uwsgi/uwsgi.ini").open("a") as f:
        f.write(f"; a change to the uWSGI config {stamp}\n")
    after_uwsgi, log = build_copy(copy, env)
    assert after_uwsgi["nginx"] == after_nginx["nginx"], "a uWSGI config change rebuilt the nginx image"
    assert after_uwsgi["app"] != after_nginx["app"]
    assert cached(log, APP_BUILD), "a uWSGI config change rebuilt the app (its code and static files)"
    assert cached(log, PIP_INSTALL), "a uWSGI config change reinstalled the dependencies"

    with (copy / "app/microposts/views.py").open("a") as f:
        f.write(f"# a change to the app's code {stamp}\n")
    after_app, log = build_copy(copy, env)
    assert after_app["app"] != after_uwsgi["app"]
    assert not cached(log, APP_BUILD)
    assert cached(log, PIP_INSTALL), "an app code change reinstalled the dependencies"
    assert after_app["nginx"] == after_uwsgi["nginx"], "a code change that leaves static files alone rebuilt nginx"
