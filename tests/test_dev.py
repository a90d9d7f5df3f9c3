"""`make dev`: the app's working copy served through the real chain, an edit served within 2 s, nothing failing.

Each app kind (the default Django app, the Flask example, the plain WSGI example) is copied to a temporary directory
first: the tests edit the copy, never the repo's files. One development stack per kind, on images of the tests' own.
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
import statistics
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import pytest
import requests

from tests.harness import ROOT, compose_down, container_logs, docker, in_background, make, poll, project_containers
from tests.load import Load
from tools import settings
from tools.compose import PROJECT_LABEL, SERVICE_LABEL, free_port, write_secret_key

pytestmark = pytest.mark.lifecycle

# The bound: an edit is served within this many seconds of the write.
SERVED_WITHIN = 2.0
# No single edit may take longer than this (a reload that hangs, or one reload folded into another).
SLOWEST_EDIT = 5.0
EDITS = 5
# What uWSGI logs when its fork-bomb guard stops the master before a respawn.
FORKBOMB_PAUSE = "worker respawning too fast"


@dataclass(frozen=True)
class AppKind:
    """An app to develop: where it comes from, how to run it, and an edit that changes what a URL answers."""

    source: str
    env: dict[str, str]
    view: str  # the file edited, relative to the app
    pattern: str  # what the edit replaces in it (a regular expression), with after.format(marker=...)
    after: str
    url: str  # what the edit changes
    static_file: str  # a static file served by nginx from the working copy, relative to the app
    static_url: str
    extra_files: dict[str, str] = field(default_factory=dict)


KINDS = {
    "django": AppKind(
        source="app",
        env={
            "WSGI_MODULE": "microposts.wsgi:application",
            "DJANGO_SETTINGS_MODULE": "microposts.settings",
            "HEALTHCHECK_PATH": "/healthz",
            "READINESS_PATH": "/readyz",
        },
        view="microposts/views.py",
        pattern=r'APP_NAME = "microposts[^"]*"',
        after='APP_NAME = "microposts-{marker}"',
        url="/healthz",
        # The default app has no static files of its own (its collected ones are admin's): the copy gets one, as a
        # Django app keeps them, <app>/static/<app>/.
        static_file="microposts/static/microposts/dev.css",
        static_url="/static/microposts/dev.css",
        # And two static directories that share a namespace, as Wagtail's project template has them (css/ in the
        # project's and in an app's): nginx serves both's files.
        extra_files={
            "microposts/static/microposts/dev.css": "body { color: black; }\n",
            "microposts/static/shared/one.css": "/* one */\n",
            "pages/static/shared/two.css": "/* two */\n",
        },
    ),
    "flask": AppKind(
        source="examples/flask",
        env={"WSGI_MODULE": "app:app", "STATIC_DIR": "static", "STATIC_URL": "/assets/"},
        view="app.py",
        pattern=r"<h1>flask example[^<]*</h1>",
        after="<h1>flask example {marker}</h1>",
        url="/",
        static_file="static/site.css",
        static_url="/assets/site.css",
    ),
    "plain": AppKind(
        source="examples/plain",
        env={"WSGI_MODULE": "wsgi:application", "STATIC_DIR": "assets", "STATIC_URL": "/assets/"},
        view="wsgi.py",
        pattern=r"<h1>plain WSGI example[^<]*</h1>",
        after="<h1>plain WSGI example {marker}</h1>",
        url="/",
        static_file="assets/site.css",
        static_url="/assets/site.css",
    ),
}


@dataclass
class DevStack:
    kind: str
    app: Path
    env: dict[str, str]
    topology: str
    started_output: str

    @property
    def project(self) -> str:
        return self.env["COMPOSE_PROJECT_NAME"]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.env['HTTP_PORT']}"

    @cached_property
    def server(self) -> str:
        """The app server's container: app (split) or single (the same one all along: edits reload its workers)."""
        service = "single" if self.topology == "single" else "app"
        names = docker(
            "ps",
            "-q",
            "--filter",
            f"label={PROJECT_LABEL}={self.project}",
            "--filter",
            f"label={SERVICE_LABEL}={service}",
        ).split()
        assert names, f"no {service} container in {self.project}"
        return names[0]

    def get(self, path: str) -> requests.Response:
        return requests.get(self.base_url + path, timeout=10)

    def log(self) -> str:
        return container_logs(self.server)

    def warm(self) -> None:
        """Every worker has answered the edited URL since it started: Django imports a view at a worker's first
        request for it, so a worker that has served none would load an edit without any reload, and the time
        measured would not be the reload's."""
        url = KINDS[self.kind].url

        def served_by_all() -> bool:
            for _ in range(10):
                self.get(url)
            return all(
                w["delta_requests"] > 0
                for w in json.loads(docker("exec", self.server, "uwsgi-ctl", "stats"))["workers"]
            )

        poll(served_by_all, timeout=20, interval=0, what="every worker has served the URL")

    def edit(self, marker: str, text: str | None = None) -> float:
        """Mark the view of the working copy (its current text, or `text`); the write's time (monotonic)."""
        kind = KINDS[self.kind]
        path = self.app / kind.view
        text = path.read_text() if text is None else text
        marked, count = re.subn(kind.pattern, kind.after.format(marker=marker), text, count=1)
        assert count == 1, f"{kind.view} no longer matches {kind.pattern!r}"
        path.write_text(marked)
        return time.monotonic()

    def reloads(self) -> tuple[int, int]:
        """How many changes the watcher has seen (one line each, before its chain reload) and how many of those
        reloads it has finished: equal when none is under way."""
        log = self.log()
        return log.count('"changed: '), log.count('"reloaded: ')

    def changes(self) -> int:
        return self.reloads()[0]

    def settle(self, seen: int | None = None) -> None:
        """Until the watcher has seen the last save and finished its reloads (a worker respawned late in one reload
        may already serve a save the watcher has yet to reload for). With `seen`, the count of changes before a save
        of this test's own: a change past it is that save. Without, after saves it did not count: no new change for
        a second."""

        def quiet() -> bool:
            before = self.changes()
            time.sleep(1)
            changed, reloaded = self.reloads()
            return before == changed == reloaded

        def seen_and_reloaded() -> bool:
            changed, reloaded = self.reloads()
            return seen < changed == reloaded

        if seen is None:
            poll(quiet, timeout=30, interval=0, what="the watcher's chain reloads finished")
        else:
            poll(seen_and_reloaded, timeout=30, interval=0.05, what="the watcher's reload of the save finished")

    def served_after(self, written: float, path: str, marker: str, deadline: float = 10) -> float:
        """Seconds from the write until `path` answers with the marker (polled every 20 ms)."""
        poll(lambda: marker in self.get(path).text, timeout=deadline, interval=0.02, what=f"{marker} served")
        return time.monotonic() - written


def worker_pids(dev: DevStack) -> list[int]:
    return [worker["pid"] for worker in json.loads(docker("exec", dev.server, "uwsgi-ctl", "stats"))["workers"]]


def copy_app(kind: AppKind, target: Path) -> Path:
    ignore = shutil.ignore_patterns("tests", "__pycache__", "*.pyc", "db.sqlite3", "staticfiles", "pytest.ini")
    shutil.copytree(ROOT / kind.source, target, ignore=ignore)
    for relative, text in kind.extra_files.items():
        (target / relative).parent.mkdir(parents=True, exist_ok=True)
        (target / relative).write_text(text)
    return target


def dev_env(kind: str, app: Path, secret: Path, topology: str) -> dict[str, str]:
    """make_env's settings (project, free port, secret) and image names of this test's own."""
    return {
        "COMPOSE_PROJECT_NAME": f"wct-dev-{secrets.token_hex(3)}",
        "HTTP_PORT": str(free_port()),
        "SECRET_KEY_FILE": str(secret),
        "TOPOLOGY": topology,
        "APP_SRC": str(app),
        **KINDS[kind].env,
        "APP_IMAGE": f"wsgi-chain-test/dev-{kind}-app:dev",
        "NGINX_IMAGE": f"wsgi-chain-test/dev-{kind}-nginx:dev",
        "SINGLE_IMAGE": f"wsgi-chain-test/dev-{kind}-single:dev",
    }


# Each kind in the split topology; the plain app in the single one too (its own overlay).
STACKS = [("django", "split"), ("flask", "split"), ("plain", "split"), ("plain", "single")]


class DevStacks:
    """The development stacks of a module's run, each brought up by `make dev`, all torn down together once the
    module's tests are done.

    The stacks a work group (tests/conftest.py: one topology) needs start together, each in a thread of its own, and
    its first test waits until all are up: three `make dev`s at once instead of one after another. The serial phase
    starts all four at once, so that no stack starts (or stops) while another's edit is timed.
    """

    def __init__(self, tmp_path_factory) -> None:
        self.tmp_path_factory = tmp_path_factory
        self.pool = ThreadPoolExecutor(max_workers=len(STACKS))
        self.started: dict[tuple[str, str], Future] = {}
        self.envs: dict[tuple[str, str], dict[str, str]] = {}

    def start(self, stacks: list[tuple[str, str]]) -> None:
        """Start those not started yet, and wait until every one of them is up (or has failed)."""
        for stack in stacks:
            if stack not in self.started:
                # Here, not in the thread: pytest's temporary directories are not made for threads.
                kind, topology = stack
                workdir = self.tmp_path_factory.mktemp(f"dev-{kind}-{topology}")
                app = copy_app(KINDS[kind], workdir / "app")
                self.envs[stack] = dev_env(kind, app, write_secret_key(workdir / "secret_key"), topology)
                self.started[stack] = self.pool.submit(self._up, stack)
        wait([self.started[stack] for stack in stacks])

    def get(self, stack: tuple[str, str]) -> DevStack:
        """The stack, started if it was not; its `make dev`'s failure, if it failed."""
        self.start([stack])
        return self.started[stack].result()

    def _up(self, stack: tuple[str, str]) -> DevStack:
        (kind, topology), env = stack, self.envs[stack]
        result = make("dev", env, timeout=900)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        return DevStack(kind=kind, app=Path(env["APP_SRC"]), env=env, topology=topology, started_output=result.stdout)

    def stop(self, stack: tuple[str, str]) -> None:
        if stack in self.started:
            wait([self.started[stack]])
        env = self.envs.pop(stack, None)
        if env is None:
            return
        compose_down(env["COMPOSE_PROJECT_NAME"])
        shutil.rmtree(ROOT / ".build" / "dev" / env["COMPOSE_PROJECT_NAME"], ignore_errors=True)

    def close(self) -> None:
        """Every stack down at once: a stack's `compose down` takes about 4 s, mostly waiting for its processes."""
        list(self.pool.map(self.stop, list(self.started)))
        self.pool.shutdown()


def group_stacks(request) -> list[tuple[str, str]]:
    """The stacks this run's tests of the module need: on an xdist worker, those in the requesting stack's topology
    (its work group; the other topology's run on another worker); in one process (the serial phase), all of them."""
    needed = {
        item.callspec.params["dev"]
        for item in request.session.items
        if item.module is request.module and "dev" in getattr(getattr(item, "callspec", None), "params", {})
    }
    if hasattr(request.config, "workerinput"):  # an xdist worker, as tests/conftest.py tells one
        return sorted(stack for stack in needed if stack[1] == request.param[1])
    return sorted(needed)


@pytest.fixture(scope="module")
def dev_stacks(tmp_path_factory) -> Iterator[DevStacks]:
    stacks = DevStacks(tmp_path_factory)
    try:
        yield stacks
    finally:
        in_background(stacks.close)


@pytest.fixture(scope="module", params=STACKS, ids=[f"{kind}-{topology}" for kind, topology in STACKS])
def dev(request, dev_stacks) -> DevStack:
    """One of the group's stacks, all started at its first test; they go down together when the module's tests are
    done (dev_stacks), not one by one between them."""
    dev_stacks.start(group_stacks(request))
    return dev_stacks.get(request.param)


def test_make_dev_starts_the_chain_with_a_banner_naming_the_live_paths_and_how_to_leave(dev):
    assert "DEVELOPMENT stack up at " + dev.base_url in dev.started_output
    assert str(dev.app) in dev.started_output
    assert "make down" in dev.started_output
    # As make up's: the services that run (it read "healthy   healthy after 2 s").
    server = settings.TOPOLOGIES[dev.topology].server
    assert re.search(rf"^up: healthy   (\w+, )*{server}(, \w+)* healthy after \d+ s", dev.started_output, re.M), (
        dev.started_output
    )
    response = dev.get(KINDS[dev.kind].url)
    assert response.status_code == 200
    assert response.headers["Server"] == "nginx" and "X-Request-ID" in response.headers
    poll(lambda: "DEVELOPMENT stack (make dev)" in dev.log(), what="the watcher's banner in the app server's log")


def test_the_working_copy_is_mounted_read_only_and_the_hardening_stays(dev):
    info = json.loads(docker("inspect", dev.server))[0]
    mounts = {mount["Destination"]: mount for mount in info["Mounts"]}
    assert mounts["/srv/app"]["Source"] == str(dev.app)
    assert mounts["/srv/app"]["RW"] is False
    assert info["HostConfig"]["ReadonlyRootfs"] is True
    assert info["HostConfig"]["CapDrop"] == ["ALL"]
    assert info["Config"]["User"] == "app"
    # DEBUG stays off unless the developer sets it.
    assert "DEBUG=false" in info["Config"]["Env"]
    assert docker("exec", dev.server, "id", "-u").strip() == "10001"


def test_make_reload_from_another_shell_reloads_the_dev_stack_and_refuses_a_setting_it_lacks(dev):
    """Another shell has none of the values `make dev` gave its own compose command (DEV_APP_SRC, which the dev
    overlay requires): `make reload` still finds the stack's settings to compare the given ones with."""
    before = worker_pids(dev)
    reload = make("reload", dev.env, timeout=120)
    assert reload.returncode == 0, reload.stdout + reload.stderr
    assert not set(worker_pids(dev)) & set(before), "every worker replaced"
    refused = make("reload", {**dev.env, "LOG_LEVEL": "debug"}, timeout=120)
    assert refused.returncode != 0
    assert "not applied by a reload" in refused.stderr and "LOG_LEVEL=debug" in refused.stderr, refused.stderr
    assert "`make dev` with them applies them" in refused.stderr, refused.stderr


def edit_and_time(dev: DevStack, edits: int) -> list[float]:
    """Seconds from each write until its answer is served; each edit after the previous one's reload is over."""
    kind, times = KINDS[dev.kind], []
    dev.settle()
    for _ in range(edits):
        dev.warm()
        marker = uuid.uuid4().hex[:12]
        seen = dev.changes()
        written = dev.edit(marker)
        times.append(dev.served_after(written, kind.url, marker))
        dev.settle(seen)
    # Every worker serves the last edit: 20 answers in a row carry it. Failed once (a cold run, 2026-12-04): what the
    # others said, and the watcher's last lines, go with the failure.
    stale = [answer[:300] for answer in (dev.get(kind.url).text for _ in range(20)) if marker not in answer]
    assert not stale, f"{len(stale)} of 20 answers without {marker}: {stale[:2]}; the log's end: {dev.log()[-4000:]}"
    return times


@pytest.mark.serial  # a latency: measured with no other test's stacks sharing the cores
def test_an_edited_view_is_served_within_2_s_median_of_5(dev, load_report):
    """As a developer sees it: a save, then the page reloaded (the requests that poll for the answer)."""
    times = edit_and_time(dev, EDITS)
    median = statistics.median(times)
    load_report.append(
        f"make dev {dev.kind} ({dev.topology}): edit to served median {median:.2f} s of {EDITS} "
        f"({', '.join(f'{t:.2f}' for t in times)})"
    )
    assert median <= SERVED_WITHIN, f"edit to served: {times} s (median {median:.2f} s)"
    # One edit may take longer on a busy machine (a worker's exit and the app's import share its cores), not much.
    assert max(times) <= SLOWEST_EDIT, f"edit to served: {times} s (median {median:.2f} s)"
    # Saves a second or so apart: uWSGI's fork-bomb guard paused the master 2 s on every other one (uwsgi/dev.ini).
    assert FORKBOMB_PAUSE not in dev.log(), "the master paused its respawns between two saves"


@pytest.mark.serial  # a latency under load (the slowest edit): measured with the cores to itself
def test_no_request_fails_while_edits_reload_the_workers_under_load(dev, load_report):
    """A bounded background load on the edited app all along (2 clients, at most 60 s or 20,000 requests) while
    three edits are reloaded: not one request fails."""
    with Load(dev.base_url + KINDS[dev.kind].url, clients=2, duration=60, max_requests=20_000) as load:
        load.wait_for_requests(20)
        times = edit_and_time(dev, 3)
    load_report.append(
        f"make dev {dev.kind} ({dev.topology}) under load: edit to served {', '.join(f'{t:.2f}' for t in times)} s; "
        f"{load.result}"
    )
    assert load.result.failed == 0, str(load.result)
    assert load.result.sent > 100, f"the load hardly ran: {load.result}"
    assert max(times) <= SLOWEST_EDIT, f"edit to served under load: {times} s"


def test_a_static_file_of_the_working_copy_is_served_by_nginx_as_it_is_now(dev):
    kind = KINDS[dev.kind]
    marker = uuid.uuid4().hex
    path = dev.app / kind.static_file
    path.write_text(path.read_text() + f"/* {marker} */\n")
    written = time.monotonic()
    poll(lambda: marker in dev.get(kind.static_url).text, timeout=SERVED_WITHIN, interval=0.05, what="the edit")
    response = dev.get(kind.static_url)
    assert response.headers["Cache-Control"] == "no-cache", "browsers must not keep an old copy"
    assert time.monotonic() - written <= SERVED_WITHIN
    if dev.kind == "django":
        # Collected from the installed packages at build: Django's admin still has its files.
        assert dev.get("/static/admin/css/base.css").status_code == 200
        # One namespace in two directories: each one's file (the first's alone, the other's a 404, before).
        for name, text in (("one", "/* one */\n"), ("two", "/* two */\n")):
            shared = dev.get(f"/static/shared/{name}.css")
            assert (shared.status_code, shared.text) == (200, text), name


def test_a_syntax_error_gives_a_clear_error_in_the_log_and_a_5xx_and_the_fix_recovers_without_a_restart(dev):
    kind = KINDS[dev.kind]
    dev.settle()
    started_at = docker("inspect", "-f", "{{.State.StartedAt}} {{.RestartCount}}", dev.server)
    master = json.loads(docker("exec", dev.server, "uwsgi-ctl", "stats"))["pid"]
    path = dev.app / kind.view
    good = path.read_text()
    broken = good + "\ndef broken(:\n"
    path.write_text(broken)
    try:
        poll(lambda: dev.get(kind.url).status_code >= 500, timeout=10, interval=0.1, what="a 5xx from the broken app")
        # The traceback's last lines can reach the container's log a moment after the 5xx: wait for them.
        seen = {"log": ""}

        def traceback_logged() -> bool:
            seen["log"] = dev.log()
            return "SyntaxError" in seen["log"] and kind.view.rsplit("/", 1)[-1] in seen["log"]

        try:
            poll(traceback_logged, timeout=10, interval=0.2, what="the SyntaxError and the file's name in the log")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{seen['log'][-3000:]}") from None
        # Only the app: nginx still serves the static files.
        assert dev.get(kind.static_url).status_code == 200
    finally:
        if path.read_text() == broken:
            path.write_text(good)  # whatever failed above, the module's next tests get a working app

    marker = uuid.uuid4().hex[:12]
    written = dev.edit(marker, text=good)
    seconds = dev.served_after(written, kind.url, marker)
    assert seconds <= SLOWEST_EDIT, f"the fix was served {seconds:.2f} s after the write"
    # Once the chain reload is over, every worker serves the fixed code.
    dev.settle()
    assert all(dev.get(kind.url).status_code == 200 for _ in range(10))
    assert docker("inspect", "-f", "{{.State.StartedAt}} {{.RestartCount}}", dev.server) == started_at
    assert json.loads(docker("exec", dev.server, "uwsgi-ctl", "stats"))["pid"] == master, "the master restarted"


def test_a_changed_requirements_txt_stops_the_reloads_and_says_to_run_make_dev_again(dev):
    kind = KINDS[dev.kind]
    dev.settle()
    requirements = dev.app / "requirements.txt"
    original = requirements.read_text()
    served = dev.get(kind.url).text
    workers = worker_pids(dev)
    requirements.write_text(original + "# a new dependency\n")
    try:
        marker = uuid.uuid4().hex[:12]
        dev.edit(marker)
        # The warning's last line (docker/app/dev_watch.py, shout): the lines before it are in the log by then.
        poll(lambda: "run `make dev` again" in dev.log(), timeout=10, what="the watcher's warning")
        log = dev.log()
        assert "DEPENDENCIES ARE STALE" in log
        assert "requirements.txt changed since the image was built" in log
        # Not reloaded: the workers keep the code they loaded, with the dependencies it was built with.
        assert worker_pids(dev) == workers
        if dev.kind != "django":
            # (Django imports the views at a worker's first request for them: a worker that has not served one yet
            # would import the edited file. The flask and plain apps import everything when the worker starts.)
            assert dev.get(kind.url).text == served
    finally:
        # Back as built (whatever failed above: the module's next tests get the stack's reloads back).
        requirements.write_text(original)
    # The pending edit is loaded.
    poll(lambda: marker in dev.get(kind.url).text, timeout=10, interval=0.1, what="the pending edit served")


@pytest.mark.parametrize(
    "setting, message",
    [
        ({"TLS": "on"}, "TLS=on: make dev serves plain HTTP on the loopback; TLS is for `make up`"),
        ({"HTTP_BIND": "0.0.0.0"}, "HTTP_BIND=0.0.0.0: make dev serves the working copy"),  # noqa: S104 - refused
    ],
    ids=["TLS=on", "HTTP_BIND=0.0.0.0"],
)
def test_make_dev_refuses_production_only_settings_with_a_clear_message(setting, message, make_env):
    result = make("dev", {**make_env, **setting, "APP_IMAGE": "wsgi-chain-test/dev-refused-app:dev"}, timeout=60)
    assert result.returncode != 0
    assert message in result.stderr, result.stderr
    assert not project_containers(make_env["COMPOSE_PROJECT_NAME"]), "nothing may start"
