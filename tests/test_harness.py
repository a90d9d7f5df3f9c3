"""The test harness's own logic that make test's speed rests on: each stack's images are built once per run, the
workers share the session's stacks, and the run reports how long its stacks took to build, start and stop."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import uuid

import pytest

from tests import conftest, harness, stack_times
from tests.harness import Rounds
from tools import settings
from tools.compose import (
    PORT_HOLD,
    Compose,
    Container,
    environ,
    ephemeral_ports,
    free_port,
    publishable,
    recent_picks,
    up_until_ready,
)

SPLIT = (settings.TOPOLOGIES["split"].compose_file,)
IMAGES = ["APP_IMAGE", "NGINX_IMAGE"]


class Builds:
    """A stand-in for the build: counts the calls, answers as a build does."""

    def __init__(self, returncode: int = 0):
        self.calls, self.returncode = 0, returncode

    def __call__(self) -> subprocess.CompletedProcess:
        self.calls += 1
        return subprocess.CompletedProcess(["build"], self.returncode, "", "")


@pytest.fixture
def run(monkeypatch, tmp_path) -> str:
    """A run of its own: markers in a folder of the test's, under a run id of its own; its stand-in builds stay out
    of the run's stack report."""
    monkeypatch.setattr(harness, "BUILT_MARKERS", tmp_path / "markers")
    monkeypatch.setattr(stack_times, "STEPS", [])
    monkeypatch.setenv("PYTEST_XDIST_TESTRUNUID", "a-run")
    return "a-run"


def test_the_same_build_inputs_are_built_once_per_run_and_other_inputs_again(run):
    builds = Builds()
    stack = Compose(project="wct-a", env={"HTTP_PORT": "1", "SECRET_KEY_FILE": "/a"}, files=SPLIT)
    other_port = Compose(project="wct-b", env={"HTTP_PORT": "2", "SECRET_KEY_FILE": "/b"}, files=SPLIT)
    other_app = Compose(
        project="wct-c", env={"APP_SRC": "examples/plain", "WSGI_MODULE": "app:application"}, files=SPLIT
    )
    for compose in (stack, other_port, stack):
        assert harness.built_once(compose, IMAGES, builds).returncode == 0
    assert builds.calls == 1, "a port, a project or a secret is no build input"
    harness.built_once(other_app, IMAGES, builds)
    assert builds.calls == 2, "another app is"


def test_a_failed_build_a_missing_image_or_a_new_run_builds_again(run, monkeypatch):
    failing, builds = Builds(returncode=1), Builds()
    stack = Compose(project="wct-a", env={}, files=SPLIT)
    assert harness.built_once(stack, IMAGES, failing).returncode == 1
    harness.built_once(stack, IMAGES, builds)
    assert builds.calls == 1, "a failed build leaves no marker"
    gone = Compose(project="wct-a", env={"APP_IMAGE": "wsgi-chain-test/no-such-image:none"}, files=SPLIT)
    harness.built_once(gone, IMAGES, builds)
    harness.built_once(gone, IMAGES, builds)
    assert builds.calls == 3, "an image not there is built, whatever the marker says"
    monkeypatch.setenv("PYTEST_XDIST_TESTRUNUID", "another-run")
    harness.built_once(stack, IMAGES, builds)
    assert builds.calls == 4
    monkeypatch.delenv("PYTEST_XDIST_TESTRUNUID")
    harness.built_once(stack, IMAGES, builds)
    assert builds.calls == 5, "outside a pytest-xdist run, every build runs"


def test_the_build_inputs_are_every_build_argument_of_the_compose_files_and_the_image_tags():
    split = harness.build_inputs(SPLIT)
    assert {"APP_SRC", "WSGI_MODULE", "BASE_IMAGE", "STATIC_URL", "APP_IMAGE", "NGINX_IMAGE"} <= set(split)
    assert not {"HTTP_PORT", "SECRET_KEY_FILE", "APP_ENV_FILE"} & set(split)
    single = harness.build_inputs((settings.TOPOLOGIES["single"].compose_file,))
    assert set(split) <= set(single) and "SINGLE_IMAGE" in single


class Starts:
    """A stand-in for a stack: counts its starts, answers as a started one does."""

    def __init__(self, name: str):
        self.name, self.calls = name, 0

    def __call__(self) -> Starts:
        return self

    def start(self) -> harness.Deployment:
        self.calls += 1
        compose = Compose(project=f"wct-{self.name}-{self.calls}", env={"HTTP_PORT": "8123"}, files=SPLIT)
        return harness.Deployment("http://127.0.0.1:8123", "docker://n", "docker://a", compose=compose)


def test_a_shared_stack_is_started_once_per_run_and_the_controller_takes_each_down(tmp_path, monkeypatch):
    monkeypatch.setattr(harness, "SHARED_STACKS", tmp_path)
    downs: list[str | None] = []
    monkeypatch.setattr(harness, "stack_down", lambda compose: downs.append(compose.project))
    split, single = Starts("split"), Starts("single")
    monkeypatch.setenv("PYTEST_XDIST_TESTRUNUID", "run-1")
    first = harness.shared("deployment-split", split, build=False)
    # Another worker of the same run: the same stack, read from the record, with its compose project to act on.
    threads = [threading.Thread(target=harness.shared, args=("deployment-split", split, False)) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert harness.shared("deployment-split", split, build=False) == first and split.calls == 1
    assert harness.shared("deployment-single", single, build=False).compose.project == "wct-single-1"
    harness.stop_shared_stacks()
    assert sorted(downs) == ["wct-single-1", "wct-split-1"] and not tmp_path.exists()
    # The next run starts its own.
    monkeypatch.setenv("PYTEST_XDIST_TESTRUNUID", "run-2")
    assert harness.shared("deployment-split", split, build=False).compose.project == "wct-split-2"


def test_every_group_named_longest_first_is_a_module_of_the_suite():
    """A renamed or removed module left in LONGEST_FIRST would silently lose its place at the front."""
    from tests.conftest import HOST_SWARM, LONGEST_FIRST, SINGLE_CHECKS

    modules = {path.stem for path in harness.ROOT.joinpath("tests").glob("test_*.py")}
    assert [name for name in LONGEST_FIRST if name not in modules and name not in (HOST_SWARM, SINGLE_CHECKS)] == []
    assert len(set(LONGEST_FIRST)) == len(LONGEST_FIRST), "a module named twice"


@pytest.mark.parametrize(
    ("nodeid", "group"),
    [
        ("tests/test_kubernetes.py::test_x", "test_kubernetes"),
        ("tests/test_chain.py::test_x[split]", "test_chain.split"),
        ("tests/test_any_app.py::test_x[django-split]", "test_any_app.split"),
        ("tests/test_any_app.py::test_x[django-single]", "test_any_app.single"),
        ("tests/test_swarm.py::test_x", "host-swarm"),
        ("tests/test_nothing_lost.py::test_x[swarm]", "host-swarm"),
        # The short modules' single-topology tests, whatever the module: one group.
        ("tests/test_chain.py::test_x[single]", "single-checks"),
        ("tests/test_conformance.py::test_x[case-single]", "single-checks"),
    ],
)
def test_a_test_joins_the_work_group_of_its_module_and_topology_and_the_short_single_ones_share_one(nodeid, group):
    from tests.conftest import work_group

    assert work_group(nodeid) == group


def steps(*rows: tuple[str, str, float, bool]) -> list[stack_times.Step]:
    return [stack_times.Step(project, step, seconds, 0.0, ok) for project, step, seconds, ok in rows]


@pytest.mark.parametrize(
    ("recorded", "first_line", "table"),
    [
        (
            steps(("wct-echo-0a1b2c", "up", 9.0, True), ("wct-echo-3d4e5f", "up", 7.0, True)),
            "2 steps, 16 s in all: up 2x 16 s; 0 failed",
            # One kind: the random part of the project name is not part of it.
            [("wct-echo", "up", "2", "16.0", "8.0", "9.0")],
        ),
        (
            steps(
                ("wct-make-0a1b2c", "make up", 30.0, False),
                ("wct-0a1b2c", "up", 6.0, True),
                ("wct-0a1b2c", "down", 2.0, True),
                ("wct-3d4e5f", "up", 10.0, True),
            ),
            "4 steps, 48 s in all: make up 1x 30 s, up 2x 16 s, down 1x 2 s; 1 failed",
            # Most time first.
            [
                ("wct-make", "make up", "1", "30.0", "30.0", "30.0"),
                ("wct", "up", "2", "16.0", "8.0", "10.0"),
                ("wct", "down", "1", "2.0", "2.0", "2.0"),
            ],
        ),
    ],
    ids=["one kind", "most time first"],
)
def test_the_stack_report_totals_each_step_and_lists_the_kinds_by_time_spent(recorded, first_line, table):
    lines = stack_times.summary(recorded)
    assert lines[0] == first_line
    assert [tuple(line.split()) for line in lines[2 : 2 + len(table)]] == [
        (*kind.split(), *name.split(), *rest) for kind, name, *rest in table
    ]
    slowest = lines[lines.index(f"slowest {stack_times.SLOWEST}:") + 1 :]
    assert [float(line.split()[0]) for line in slowest] == sorted((step.seconds for step in recorded), reverse=True)
    assert sum(line.endswith(", failed") for line in slowest) == sum(not step.ok for step in recorded)


def test_a_step_that_raises_or_exits_other_than_0_is_recorded_as_failed_and_a_worker_passes_its_steps_on(monkeypatch):
    monkeypatch.setattr(stack_times, "STEPS", [])
    with stack_times.timed("wct-0a1b2c", "up"):
        pass
    with pytest.raises(RuntimeError), stack_times.timed("wct-0a1b2c", "down"):
        raise RuntimeError("down failed")
    exited = stack_times.timed_process("wct-0a1b2c", "make up", lambda: subprocess.CompletedProcess([], 2))
    assert exited.returncode == 2
    assert [(step.step, step.ok) for step in stack_times.STEPS] == [("up", True), ("down", False), ("make up", False)]
    assert stack_times.from_dicts(stack_times.as_dicts(stack_times.STEPS)) == stack_times.STEPS


def test_a_teardown_runs_beside_what_follows_and_outside_pytest_xdist_a_test_runs_only_once_it_is_over(
    monkeypatch, capsys
):
    monkeypatch.setattr(harness, "_teardowns", [])
    done: list[str] = []
    gate = threading.Event()

    def slow() -> None:
        assert gate.wait(10)
        done.append("beside")

    def failing() -> None:
        raise RuntimeError("compose down failed")

    # In a worker, the next tests run beside the teardowns, all the way.
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw9")
    harness.in_background(slow)
    harness.in_background(failing)
    conftest.pytest_runtest_call(None)
    assert done == [], "the worker waited for the teardown"
    # Outside a worker (the serial phase), a test's call waits for them: set free a moment later, it ran after.
    monkeypatch.delenv("PYTEST_XDIST_WORKER")
    threading.Timer(0.2, gate.set).start()
    conftest.pytest_runtest_call(None)
    done.append("the test")
    assert done == ["beside", "the test"]
    assert "compose down failed" in capsys.readouterr().err
    assert harness._teardowns == []


def test_a_teardown_that_raised_runs_once_more_before_the_run_ends_so_its_stack_does_not_outlive_it(
    monkeypatch, capsys
):
    """A teardown that failed once (a cold run's: a KeyError copying the environment, 2026-12-05) left its stack
    running; finish_teardowns runs it again, and reports both."""
    monkeypatch.setattr(harness, "_teardowns", [])
    attempts: list[int] = []

    def fails_once() -> None:
        attempts.append(len(attempts) + 1)
        if len(attempts) == 1:
            raise KeyError("PYTEST_CURRENT_TEST")

    def fails_always() -> None:
        raise RuntimeError("compose down failed")

    harness.in_background(fails_once)
    harness.in_background(fails_always)
    harness.finish_teardowns()
    assert attempts == [1, 2]
    err = capsys.readouterr().err
    assert "a stack's teardown failed: KeyError('PYTEST_CURRENT_TEST'); running it again" in err, err
    assert "a stack's teardown failed again: RuntimeError('compose down failed')" in err, err
    assert harness._teardowns == []


def test_a_container_removed_between_the_listing_and_the_inspection_is_left_out(monkeypatch):
    """project_containers lists a project's ids, then inspects them: one removed in between (compose replacing it)
    must not fail the caller's poll; anything else the inspection says still does."""
    project = f"wct-harness-{uuid.uuid4().hex[:6]}"
    label = f"{harness.PROJECT_LABEL}={project}"
    real = harness.docker("create", "--label", label, "--name", project, settings.get("BASE_IMAGE"), "true").strip()
    # The listing names the real container and one already gone.
    docker = harness.docker

    def listing_one_gone(*args: str, **kwargs) -> str:
        return f"{real}\n0123456789ab\n" if args[0] == "ps" else docker(*args, **kwargs)

    monkeypatch.setattr(harness, "docker", listing_one_gone)
    try:
        assert harness.project_containers(project, "{{.State.Status}}") == {project: "created"}
    finally:
        subprocess.run(["docker", "rm", "-f", project], capture_output=True)


def state(name: str, status: str = "running", health: str = "starting", check=("CMD", "probe"), **more) -> Container:
    """A container as a stack's listing has it."""
    return Container(name, name, name, status, 0, 0, 0.0, health, [], {}, {}, check=check, **more)


LISTENER, APP, NGINX = state("listener"), state("app"), state("nginx")


# A test stack is up once each long-running container passes its own health check or Docker found it healthy, before
# Docker's first check (5 s after the start): the tests no longer wait that out.
@pytest.mark.parametrize(
    ("rounds", "passes_from", "returncode", "says"),
    [
        ([[LISTENER, APP, NGINX]], {"listener": 0, "app": 0, "nginx": 0}, 0, ""),
        ([[LISTENER, APP, NGINX]], {"listener": 0, "app": 2, "nginx": 1}, 0, ""),
        ([[state("listener", health="healthy"), state("app", check=()), NGINX]], {"nginx": 0}, 0, ""),
        ([[state("migrate", status="exited", restart_policy="no"), LISTENER]], {"listener": 0}, 0, ""),
        ([[LISTENER, state("app", status="restarting")]], {"listener": 0}, 1, "stopped or unhealthy: ['app restarting"),
        ([[LISTENER, APP], [LISTENER, state("app", health="unhealthy")]], {"listener": 0}, 1, "['app running unhealth"),
        ([[LISTENER, APP]], {"listener": 0}, 1, "not ready in 1 s: ['app']"),
        ([[state("migrate", status="exited", restart_policy="no")]], {}, 1, "no container is running"),
    ],
    ids=["at once", "one after another", "healthy or unchecked", "a one-shot", "a crash", "unhealthy", "never", "none"],
)
def test_a_test_stack_is_up_once_every_container_passes_its_own_health_check(rounds, passes_from, returncode, says):
    stack = Rounds(rounds, passes_from)
    result = up_until_ready(stack, 1, passes=stack.passes, poll=0.01)  # type: ignore[arg-type]
    assert (result.returncode, says in result.stderr) == (returncode, True), result.stderr


PUBLISHABLE = {
    "linux's default range": (range(32768, 61000), (20000, 32767, 12768)),
    "a range that starts lower": (range(25000, 61000), (20000, 24999, 5000)),
    "a range in the middle": (range(25000, 30001), (20000, 32767, 7767)),
    "a range over every port": (range(1024, 65536), None),
}


@pytest.mark.parametrize("case", PUBLISHABLE)
def test_published_ports_come_from_outside_the_kernels_ephemeral_range(case):
    ephemeral, expected = PUBLISHABLE[case]
    ports = publishable(ephemeral)
    assert not set(ports) & set(ephemeral)
    assert (ports[0], ports[-1], len(ports)) == expected if expected else ports == []


def test_a_free_port_is_outside_the_ephemeral_range_and_can_be_bound_on_the_loopback():
    port = free_port()
    assert port not in ephemeral_ports()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_a_port_once_handed_out_is_not_handed_out_again_while_held():
    ports = [free_port() for _ in range(20)]
    assert len(set(ports)) == len(ports), ports


PICKS = {
    "held": ("21000@990", {21000: 990.0}),
    "past the hold": (f"21000@{1000 - PORT_HOLD}", {}),
    "one of each": (f"21000@{1000 - PORT_HOLD} 21001@999", {21001: 999.0}),
    "unreadable lines dropped": ("21000 x@1 21002@y 21003@995", {21003: 995.0}),
    "nothing": ("", {}),
}


@pytest.mark.parametrize("case", PICKS)
def test_the_picks_file_keeps_the_ports_handed_out_within_the_hold(case):
    text, expected = PICKS[case]
    assert recent_picks(text, now=1000.0) == expected


def test_a_stacks_environment_is_copied_whole_while_another_thread_adds_and_removes_a_variable():
    """A test stack's teardown runs compose in a thread while pytest's main thread removes PYTEST_CURRENT_TEST after
    each test phase: `{**os.environ}` there raised KeyError once (a cold run, 2026-12-05) and left the stack running.
    Here a thread adds and removes a variable as fast as it can, with thread switches made frequent, while this one
    copies the environment as compose's runs do, for at most a second (the old copy failed within a few dozen)."""
    stop = threading.Event()

    def toggle() -> None:
        while not stop.is_set():
            os.environ["WCT_ENVIRON_RACE"] = "1"
            os.environ.pop("WCT_ENVIRON_RACE", None)

    compose = Compose(project="wct-environ", files=SPLIT, env={"HTTP_PORT": "1"})
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    toggler = threading.Thread(target=toggle)
    toggler.start()
    copies, deadline = 0, time.monotonic() + 1.0
    try:
        while time.monotonic() < deadline and copies < 100_000:
            assert environ().get("PATH") == os.environ["PATH"]
            assert compose.environment()["HTTP_PORT"] == "1"
            copies += 1
    finally:
        stop.set()
        toggler.join()
        sys.setswitchinterval(switch)
    assert copies > 100, copies
