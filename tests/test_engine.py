"""tools/engine.py: the engine's API answers as the docker CLI does, and is used only where the CLI would reach the
same engine."""

from __future__ import annotations

import json
import secrets
import subprocess
import time
from collections.abc import Iterator

import pytest

from tests.harness import docker, poll
from tools import bootstrap, compose, engine, settings, stack
from tools.compose import ONEOFF_LABEL, PROJECT_LABEL, Compose

CONFIGS = {
    "none": None,
    "the default context": {"currentContext": "default"},
    "another context": {"currentContext": "remote"},
    "not json": "{",
}
SOCKETS = [
    ({}, "none", engine.DEFAULT_SOCKET),
    ({"DOCKER_HOST": "unix:///run/user/1000/docker.sock"}, "none", "/run/user/1000/docker.sock"),
    ({"DOCKER_HOST": "tcp://10.0.0.5:2376"}, "none", None),
    ({"DOCKER_HOST": "ssh://ops@build-host"}, "none", None),
    ({"DOCKER_CONTEXT": "remote"}, "none", None),
    ({}, "the default context", engine.DEFAULT_SOCKET),
    ({}, "another context", None),
    ({}, "not json", engine.DEFAULT_SOCKET),
]


@pytest.mark.parametrize(("env", "config", "expected"), SOCKETS)
def test_the_api_is_used_only_for_the_unix_socket_the_cli_would_reach(tmp_path, env, config, expected):
    if CONFIGS[config] is not None:
        text = CONFIGS[config]
        (tmp_path / "config.json").write_text(text if isinstance(text, str) else json.dumps(text), encoding="utf-8")
    assert engine.socket_path({**env, "DOCKER_CONFIG": str(tmp_path)}) == expected


# Where docker-compose lies (the CLI's config folder, the first or the last system folder), what the CLI's config says,
# and what the tools run: the first found in the CLI's order, directly, else `docker compose`.
PLUGINS = [
    (["config", "system 1", "system 4"], "none", "config"),
    (["system 1", "system 4"], "none", "system 1"),
    (["system 4"], "the default context", "system 4"),
    (["system 4 (not executable)"], "none", None),
    ([], "none", None),
    (["config"], "extra plugin folders", None),
    (["config"], "not json", None),
]
PLUGIN_CONFIGS = {**CONFIGS, "extra plugin folders": {"cliPluginsExtraDirs": ["/opt/docker-plugins"]}}


@pytest.mark.parametrize(("found", "config", "expected"), PLUGINS)
def test_the_tools_run_the_compose_plugin_docker_would_run_directly_else_docker_compose(
    tmp_path, monkeypatch, found, config, expected
):
    folders = {"config": tmp_path / "config" / "cli-plugins"}
    folders |= {f"system {n}": tmp_path / f"system-{n}" for n in range(1, 5)}
    monkeypatch.setattr(compose, "SYSTEM_PLUGIN_DIRS", tuple(str(folders[f"system {n}"]) for n in range(1, 5)))
    for place in found:
        folder = folders[place.removesuffix(" (not executable)")]
        folder.mkdir(parents=True)
        (folder / "docker-compose").write_text("#!/bin/sh\n")
        (folder / "docker-compose").chmod(0o644 if place.endswith("(not executable)") else 0o755)
    (tmp_path / "config").mkdir(exist_ok=True)
    if PLUGIN_CONFIGS[config] is not None:
        text = PLUGIN_CONFIGS[config]
        (tmp_path / "config" / "config.json").write_text(text if isinstance(text, str) else json.dumps(text))
    program = compose.compose_program({"DOCKER_CONFIG": str(tmp_path / "config"), "HOME": "/nonexistent"})
    assert program == ([str(folders[expected] / "docker-compose")] if expected else ["docker", "compose"])


def test_the_compose_the_tools_run_is_the_one_docker_compose_runs_and_answers_alike():
    plugins = json.loads(docker("info", "--format", "{{json .ClientInfo.Plugins}}"))
    (path,) = [plugin["Path"] for plugin in plugins if plugin["Name"] == "compose"]
    assert compose.compose_program() == [path]
    direct = subprocess.run([path, "version", "--short"], capture_output=True, text=True, check=True).stdout
    assert direct == docker("compose", "version", "--short") != ""


@pytest.mark.parametrize("through", ["the api", "the cli"])
def test_an_images_id_and_the_engines_data_directory_are_read_as_docker_gives_them(monkeypatch, through):
    if through == "the cli":
        monkeypatch.setattr(engine, "local", lambda env=None: None)
    base = settings.get("BASE_IMAGE")
    assert compose.image_id(base) == docker("image", "inspect", "-f", "{{.Id}}", base).strip() != ""
    assert compose.image_id("wct-engine/no-such-image:none") == ""
    assert bootstrap.engine_root() == docker("info", "--format", "{{.DockerRootDir}}").strip() != ""


def test_an_engine_socket_that_does_not_answer_is_no_engine(tmp_path, monkeypatch):
    dead = tmp_path / "docker.sock"
    dead.touch()
    monkeypatch.setenv("DOCKER_HOST", f"unix://{dead}")
    assert engine.local() is not None
    assert bootstrap.engine_root() is None
    assert compose.image_id(settings.get("BASE_IMAGE")) == ""


@pytest.fixture(scope="module")
def sleeper() -> Iterator[str]:
    """A container of the base image that does nothing, labelled for the listings (its own, and as a compose project's
    one service container), beside two of the project that are not its services, created only: a one-off (as
    `compose run` leaves) and one with the project's label alone (as a `docker run` of an image compose built has)."""
    name = f"wct-engine-{secrets.token_hex(3)}"
    base = settings.get("BASE_IMAGE")
    labels = ["--label", f"wsgi-chain-test={name}", "--label", f"{PROJECT_LABEL}={name}"]
    try:
        docker("run", "-d", "--name", name, *labels, "--label", f"{ONEOFF_LABEL}=False", base, "sleep", "300")
        docker("create", "--name", f"{name}-run", *labels, "--label", f"{ONEOFF_LABEL}=True", base, "true")
        docker("create", "--name", f"{name}-image", *labels, base, "true")
        yield name
    finally:
        subprocess.run(["docker", "rm", "-f", name, f"{name}-run", f"{name}-image"], capture_output=True)


@pytest.fixture(scope="module")
def api() -> engine.Engine:
    found = engine.local()
    assert found, "this machine's engine answers on its unix socket (make test runs against it)"
    return found


def test_the_api_lists_and_inspects_containers_as_the_cli_does(api, sleeper):
    listed = docker("ps", "-aq", "--no-trunc", "--filter", f"label=wsgi-chain-test={sleeper}").split()
    assert len(listed) == 3
    assert api.container_ids(f"wsgi-chain-test={sleeper}") == listed
    # Every label given must be there, as with the CLI's filters.
    both = docker(
        "ps",
        "-aq",
        "--no-trunc",
        "--filter",
        f"label=wsgi-chain-test={sleeper}",
        "--filter",
        f"label={ONEOFF_LABEL}=True",
    )
    assert api.container_ids(f"wsgi-chain-test={sleeper}", f"{ONEOFF_LABEL}=True") == both.split() != []
    (cli,) = json.loads(docker("inspect", sleeper))
    (record,) = api.inspect([sleeper, "wct-engine-no-such-container"])
    assert (record["Id"], record["State"], record["Config"]) == (cli["Id"], cli["State"], cli["Config"])


@pytest.mark.parametrize("through", ["the api", "the cli"])
def test_a_version_tag_is_given_as_docker_tag_gives_it_and_an_image_not_built_is_passed_over(
    monkeypatch, sleeper, through
):
    if through == "the cli":
        monkeypatch.setattr(engine, "local", lambda env=None: None)
    base = settings.get("BASE_IMAGE")
    target, missing = f"wct-engine/{sleeper}:tagged", f"wct-engine/{sleeper}:not-built"
    try:
        stack.tag_image(base, target)
        assert docker("image", "inspect", "-f", "{{.Id}}", target) == docker("image", "inspect", "-f", "{{.Id}}", base)
        stack.tag_image(f"wct-engine/{sleeper}:no-such-image", missing)
        assert docker("image", "inspect", missing, check=False) == "[]\n"
    finally:
        subprocess.run(["docker", "rmi", target], capture_output=True)


def test_networks_are_listed_by_label_as_the_cli_lists_them(api, sleeper):
    network = f"{sleeper}-net"
    docker("network", "create", "--label", f"wsgi-chain-test={sleeper}", network)
    try:
        listed = docker("network", "ls", "-q", "--no-trunc", "--filter", f"label=wsgi-chain-test={sleeper}").split()
        assert api.network_ids(f"wsgi-chain-test={sleeper}") == listed != []
    finally:
        subprocess.run(["docker", "network", "rm", network], capture_output=True)


@pytest.mark.parametrize("tty", [False, True], ids=["without a tty", "with a tty"])
def test_a_log_is_read_through_the_api_as_docker_logs_gives_it_since_a_time_or_whole(api, tty):
    name = f"wct-engine-{secrets.token_hex(3)}"
    script = "echo out-1; echo err-1 >&2; printf 'out-2 \\303\\251'; echo; sleep 300"
    docker("run", "-d", *(["-t"] if tty else []), "--name", name, settings.get("BASE_IMAGE"), "sh", "-c", script)
    try:
        poll(lambda: "out-2" in docker("logs", name), timeout=20, what="the container's lines")
        # Bytes as they came (a tty's lines end in \r\n), as the API gives them.
        cli = subprocess.run(["docker", "logs", name], capture_output=True, check=True)
        assert api.logs(name) == (cli.stdout.decode(), cli.stderr.decode())
        assert "out-2 é" in cli.stdout.decode() and (b"err-1" in cli.stderr) != tty
        assert api.logs(name, since=time.time() + 60) == ("", "")
        assert api.logs(name, since=time.time() - 600) == api.logs(name)
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)
    assert api.logs(name) is None


EXECS = [["true"], ["false"], ["sh", "-c", "exit 3"], ["no-such-command"], ["sh", "-c", "test $(id -u) = 0"]]


@pytest.mark.parametrize("argv", EXECS, ids=" ".join)
def test_a_command_run_through_the_api_ends_with_the_code_docker_exec_gives(api, sleeper, argv):
    cli = subprocess.run(["docker", "exec", sleeper, *argv], capture_output=True)
    assert api.exec_code(sleeper, argv) == cli.returncode


def test_a_command_in_a_container_that_is_gone_or_too_slow_has_no_code(api, sleeper):
    assert api.exec_code("wct-engine-no-such-container", ["true"]) is None
    assert api.exec_code(sleeper, ["sleep", "5"], timeout=0.5) is None


@pytest.mark.parametrize("answering", [True, False], ids=["the api", "an engine socket that does not answer"])
def test_a_projects_service_containers_are_listed_and_read_alike_through_the_api_or_the_cli(
    monkeypatch, sleeper, answering
):
    if not answering:
        monkeypatch.setattr(engine, "local", lambda env=None: engine.Engine("/nonexistent/docker.sock"))
    project = Compose(project=sleeper)
    (record,) = json.loads(docker("inspect", sleeper))
    # Its one service container; the two beside it left out, as `compose ps` leaves them out.
    assert project.ids() == [record["Id"]]
    assert [state.name for state in project.containers()] == [sleeper]


def test_records_sort_by_their_creation_time_whatever_the_length_of_its_fraction():
    stamps = [
        "2026-12-05T08:00:00.5Z",
        "",
        "2026-12-05T08:00:00.123456789Z",
        "2026-12-05T08:00:01Z",
        "2026-12-05T08:00:00.12Z",
    ]
    ordered = sorted(({"CreatedAt": stamp} for stamp in stamps), key=engine.created, reverse=True)
    assert [record["CreatedAt"] for record in ordered] == [
        "2026-12-05T08:00:01Z",
        "2026-12-05T08:00:00.5Z",
        "2026-12-05T08:00:00.123456789Z",
        "2026-12-05T08:00:00.12Z",
        "",
    ]
