"""The Docker Swarm stack (make swarm-up / swarm-update / swarm-down) on a single-node swarm on the loopback.

One stack for the module, under its own name and a free port, deployed with 2 app replicas; the tests scale it to 3,
roll out a new app image under load, and tear it down, leaving the swarm as they found it (left again if this run
started it). The tests run in file order: each builds on the one before.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
import requests

from tests.harness import (
    ECHO_APP,
    QUICK_SWARM_HEALTH_INTERVAL,
    QUICK_SWARM_MONITOR,
    ROOT,
    SWARM_SERVICE_LABEL,
    Deployment,
    free_port,
    poll,
    running_with,
    verify_passes,
)
from tests.harness import make as harness_make
from tests.load import Load
from tools import cluster as cluster_tool
from tools import engine, settings, swarm
from tools.compose import image_id, write_secret_key
from tools.stack import StackError, check_app_env_file, compose

pytestmark = pytest.mark.lifecycle

REPLICAS_AT_START = 2
SCALED = 3


@dataclass
class SwarmStack:
    name: str
    env: dict[str, str]
    base_url: str
    swarm_was_active: bool
    # Images the tests built, removed once the stack (whose tasks use them) is gone.
    images: list[str] = field(default_factory=list)
    # What `make swarm-up` printed on its standard output.
    up_output: str = ""

    def build_image(self, tag: str, dockerfile: str) -> str:
        self.images.append(tag)
        build = ["docker", "build", "-q", "-t", tag, "-"]
        subprocess.run(build, input=dockerfile, text=True, check=True, capture_output=True)
        return tag

    def make(self, target: str, **extra: str) -> subprocess.CompletedProcess:
        return harness_make(target, {**self.env, **extra}, 600, "-s")

    def replica_of(self, response: requests.Response) -> str:
        assert response.status_code == 200, response.text[:200]
        return response.headers["X-Replica"]

    def app_images(self) -> set[str]:
        """The images the app's tasks that should run are deployed with (the content their tags named: IDs here)."""
        return {task["Image"] for task in swarm.tasks(self.name, "app") if task["DesiredState"] == "Running"}

    def running_tasks(self) -> set[str]:
        """Names of the app's running tasks as X-Replica shows them: <service>.<slot>.<task id>."""
        return {
            f"{task['Name']}.{task['ID']}"
            for task in swarm.tasks(self.name, "app")
            if task["DesiredState"] == "Running" and task["CurrentState"].startswith("Running")
        }


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[SwarmStack]:
    secret = write_secret_key(tmp_path_factory.mktemp("swarm") / "secret_key")
    port = free_port()
    name = f"wct-swarm-{secrets.token_hex(3)}"
    env = {
        "SWARM_STACK": name,
        "HTTP_PORT": str(port),
        "SECRET_KEY_FILE": str(secret),
        "APP_REPLICAS": str(REPLICAS_AT_START),
        "SWARM_UPDATE_MONITOR": QUICK_SWARM_MONITOR,
        "HEALTH_INTERVAL": QUICK_SWARM_HEALTH_INTERVAL,
    }
    was_active = swarm.swarm_state() == "active"
    deployed = SwarmStack(name=name, env=env, base_url=f"http://127.0.0.1:{port}", swarm_was_active=was_active)
    try:
        result = deployed.make("swarm-up")
        assert result.returncode == 0, result.stdout + result.stderr
        deployed.up_output = result.stdout
        yield deployed
    finally:
        # Whatever the tests left: the stack, its volumes, and a swarm this run started.
        swarm.remove(name, timeout=120, volumes=True)
        for image in deployed.images:
            subprocess.run(["docker", "rmi", image], capture_output=True)
        if not was_active and swarm.swarm_state() == "active":
            swarm.leave_swarm()
        if swarm.started_here(name):
            swarm.STARTED_MARKER.unlink()


@pytest.fixture(scope="module")
def new_app_image(stack: SwarmStack) -> str:
    """A new app version to roll out: the app image plus a unique label, so the image (and the task spec) differs."""
    base = settings.get("APP_IMAGE")
    token = secrets.token_hex(4)
    dockerfile = f"FROM {base}\nLABEL io.wsgi-chain.rollout={token}\n"
    return stack.build_image(f"{base.rsplit(':', 1)[0]}:rollout-{token}", dockerfile)


def test_the_stack_file_drops_what_swarm_cannot_do_and_reaches_the_replicas_over_tcp():
    stack_file = swarm.render("wct-render")
    services = stack_file["services"]
    for service in services.values():
        assert not set(service) & set(swarm.UNSUPPORTED), service
        assert all(m.get("source") not in swarm.SOCKET_VOLUMES for m in service.get("volumes", []))
    assert not set(swarm.SOCKET_VOLUMES) & set(stack_file["volumes"])
    assert not set(swarm.HOST_ONLY_SERVICES) & set(services), "the socket listener is one host's"
    assert services["app"]["environment"]["UWSGI_SOCKET"] == ":3031"
    assert "UWSGI_ZERG" not in services["app"]["environment"], "each replica binds its own socket"
    assert services["app"]["deploy"]["update_config"]["order"] == "start-first"
    assert services["app"]["deploy"]["update_config"]["failure_action"] == "rollback"
    assert [p["mode"] for p in services["nginx"]["ports"]] == ["host"]
    upstream = services["nginx"]["configs"][0]
    assert upstream["target"] == "/etc/nginx/conf.d/upstream.conf"
    assert "tasks.app:3031" in (ROOT / "nginx/swarm/upstream.conf").read_text()


def update_monitors(services: dict) -> dict[str, str]:
    """Each rollout's `monitor` in a rendered stack file, by service and config."""
    return {
        f"{name} {config}": service["deploy"][config]["monitor"]
        for name, service in services.items()
        for config in ("update_config", "rollback_config")
        if "monitor" in service.get("deploy", {}).get(config, {})
    }


def test_every_rollout_and_rollback_watches_each_task_for_swarm_update_monitor(monkeypatch):
    monkeypatch.delenv("SWARM_UPDATE_MONITOR", raising=False)
    default = update_monitors(swarm.render("wct-render")["services"])
    assert set(default) == {"app update_config", "app rollback_config", "nginx update_config"}, default
    assert set(default.values()) == {settings.defaults()["SWARM_UPDATE_MONITOR"]}
    monkeypatch.setenv("SWARM_UPDATE_MONITOR", "1m30s")
    assert set(update_monitors(swarm.render("wct-render")["services"]).values()) == {"1m30s"}


@pytest.mark.parametrize("name", swarm.SWARM_DURATIONS)
def test_a_duration_setting_without_its_unit_is_refused_in_one_line(name):
    """Compose's own refusal of the stack file was a traceback."""
    env = {**os.environ, name: "5"}
    result = subprocess.run(
        [sys.executable, "-m", "tools.swarm", "render"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert (result.returncode, result.stdout) == (1, ""), result.stdout + result.stderr
    assert result.stderr == f"swarm: {name}='5': use a duration with its unit, such as 5s, 500ms or 1m\n"


def started(*args, **kwargs):
    raise AssertionError("started before the settings were checked")


@pytest.mark.parametrize(
    "start",
    [
        pytest.param(lambda: swarm.up("wct-refused", 60), id="swarm up"),
        pytest.param(lambda: swarm.update("wct-refused", 60), id="swarm update"),
        pytest.param(lambda: cluster_tool.up(cluster_tool.Cluster("wct-refused"), "wct-refused", 60), id="cluster up"),
    ],
)
def test_a_duration_setting_without_its_unit_is_refused_before_anything_starts(start, monkeypatch):
    """`make swarm-up` had started a swarm by the time compose refused it, and `make cluster-up` three nodes."""
    monkeypatch.setenv("SWARM_UPDATE_MONITOR", "10")
    for module, name in [
        (swarm, "bootstrap"),
        (swarm, "ensure_swarm"),
        (swarm, "services"),
        (cluster_tool, "bootstrap"),
    ]:
        monkeypatch.setattr(module, name, started)
    monkeypatch.setattr(cluster_tool.Cluster, "exists", lambda self: False)
    with pytest.raises(swarm.SwarmError, match=r"^SWARM_UPDATE_MONITOR='10': use a duration with its unit"):
        start()


def test_a_line_of_app_env_file_that_the_swarm_stack_file_would_override_is_refused(tmp_path, monkeypatch):
    """Swarm's stack file sets more for the app than compose does (its TCP socket): such a line never reached the app.
    The same line passes the compose stack's check, where nothing overrides it (tests/test_broken_app.py: the rest)."""
    (tmp_path / "app.env").write_text("UWSGI_SOCKET=/run/x.sock\nOWN=1\n", encoding="utf-8")
    monkeypatch.setenv("APP_ENV_FILE", str(tmp_path / "app.env"))
    with pytest.raises(StackError) as refused:
        swarm.render("wct-render")
    said = str(refused.value)
    assert "sets UWSGI_SOCKET, which the stack sets itself for the app" in said, said
    check_app_env_file(compose())


def test_the_stack_file_gives_nginx_the_apps_static_url_to_render_its_static_location_from(monkeypatch):
    """As in compose and Kubernetes: one STATIC_URL, read at start by the app and by nginx's entrypoint."""
    for static_url in ("/assets/v2/", settings.defaults()["STATIC_URL"]):
        monkeypatch.setenv("STATIC_URL", static_url)
        services = swarm.render("wct-render")["services"]
        assert services["nginx"]["environment"]["STATIC_URL"] == static_url
        assert services["app"]["environment"]["STATIC_URL"] == static_url
    assert "${STATIC_URL}" in (ROOT / "nginx/templates/static.conf").read_text()


def test_a_services_tmpfs_list_becomes_tmpfs_mounts_swarm_honours():
    service = {"image": "x", "read_only": True, "tmpfs": ["/run/a", "/run/x:size=64m,mode=1777"], "restart": "no"}
    swarm.adapt_service(service)
    assert service["volumes"] == [
        {"type": "tmpfs", "target": "/run/a"},
        {"type": "tmpfs", "target": "/run/x", "tmpfs": {"size": 64 << 20}},
    ]
    assert "tmpfs" not in service and "restart" not in service


def test_an_engine_that_gives_no_task_counts_leaves_the_wait_to_the_cli(monkeypatch):
    """An API before 1.41 lists services without ServiceStatus: read as 0 of 0 replicas, any stack would look done."""

    class OldEngine:
        def services(self, label: str) -> list[dict]:
            return [{"ID": "s1", "Spec": {"Name": "wct-old_app"}}]

    monkeypatch.setattr(engine, "local", lambda env=None: OldEngine())
    monkeypatch.setattr(swarm, "services", lambda stack: {"app": {"Replicas": "1/2"}})
    monkeypatch.setattr(swarm, "inspect_service", lambda stack, name: {})
    assert swarm.service_states("wct-old") == {"app": swarm.ServiceState(1, 2)}
    assert swarm.converged("wct-old") == (False, "app 1/2")


# A deploy's wait began at DEPLOYED; the service records as the engine gives them (only the fields update_of reads).
DEPLOYED = 1_800_000_000.0
BEFORE, AFTER = "2027-01-15T07:59:59.5Z", "2027-01-15T08:00:00.5Z"  # half a second before and after DEPLOYED
OLD, NEW = {"ContainerSpec": {"Image": "app:1"}}, {"ContainerSpec": {"Image": "app:2"}}


def service(template=NEW, previous=OLD, updated=AFTER, state="", started="") -> dict:
    record = {"Spec": {"TaskTemplate": template}, "UpdatedAt": updated}
    if previous is not None:
        record["PreviousSpec"] = {"TaskTemplate": previous}
    if state:
        record["UpdateStatus"] = {"State": state, "Message": f"update {state}", "StartedAt": started}
    return record


# (service record, since, what a wait reads: update state, message, update due)
UPDATES = {
    "the last command's rollback, read before this deploy's update began": (
        service(state="rollback_completed", started=BEFORE),
        DEPLOYED,
        ("", "", True),
    ),
    "this deploy's update under way": (
        service(state="updating", started=AFTER),
        DEPLOYED,
        ("updating", "update updating", False),
    ),
    "this deploy's update rolled back": (
        service(state="rollback_completed", started=AFTER),
        DEPLOYED,
        ("rollback_completed", "update rollback_completed", False),
    ),
    "scaled only: no rolling update comes": (
        service(template=OLD, state="completed", started=BEFORE),
        DEPLOYED,
        ("", "", False),
    ),
    "created by this deploy": (service(previous=None), DEPLOYED, ("", "", False)),
    "untouched by this deploy": (service(updated=BEFORE, state="completed", started=BEFORE), DEPLOYED, ("", "", False)),
    "no deploy to wait for (since 0): read as it is": (
        service(state="rollback_completed", started=BEFORE),
        0,
        ("rollback_completed", "update rollback_completed", False),
    ),
}


@pytest.mark.parametrize("case", list(UPDATES))
def test_a_wait_counts_only_the_rolling_update_its_deploy_began_and_waits_for_one_not_yet_begun(case):
    """A CI run's `make swarm-update` failed with the previous test's deliberate rollback: read before Swarm began the
    new update, the service's UpdateStatus was still the last one."""
    record, since, expected = UPDATES[case]
    assert swarm.update_of(record, since) == expected


BUILT_ID = "sha256:" + "1" * 64
PULLED = "sha256:" + "2" * 64
# The engine's images by name (the record's fields pinned() reads).
ENGINE_IMAGES = {
    "myorg/site:latest": {"Id": BUILT_ID, "RepoDigests": []},
    "registry.example:5000/shop:1.4": {"Id": BUILT_ID, "RepoDigests": [f"registry.example:5000/shop@{PULLED}"]},
    "docker.io/library/postgres:17": {"Id": BUILT_ID, "RepoDigests": [f"postgres@{PULLED}"]},
    "myorg/shop:1.4": {"Id": BUILT_ID, "RepoDigests": [f"otherorg/shop@{PULLED}"]},
    BUILT_ID: {"Id": BUILT_ID, "RepoDigests": []},
}
# image -> the reference its services are deployed with
PINS = {
    "an image built here: its ID": ("myorg/site:latest", BUILT_ID),
    "an image from a registry, on a port: its digest there": (
        "registry.example:5000/shop:1.4",
        f"registry.example:5000/shop:1.4@{PULLED}",
    ),
    "a Docker Hub image named in full": ("docker.io/library/postgres:17", f"docker.io/library/postgres:17@{PULLED}"),
    "an image whose digest is another repository's: its ID": ("myorg/shop:1.4", BUILT_ID),
    "a running service's ID, kept": (BUILT_ID, BUILT_ID),
    "a reference with a digest already": (f"myorg/shop:1.4@{PULLED}", f"myorg/shop:1.4@{PULLED}"),
    "an image this engine lacks: left to the nodes to pull": ("myorg/elsewhere:2", "myorg/elsewhere:2"),
}


@pytest.mark.parametrize("case", list(PINS))
def test_a_deploy_pins_each_image_to_the_content_its_name_has_now(monkeypatch, case):
    monkeypatch.setattr(swarm, "image_record", ENGINE_IMAGES.get)
    image, expected = PINS[case]
    assert swarm.pinned(image) == expected


# the services a deploy rolled out -> the last line of `make swarm-update`
UPDATE_LINES = {
    "some": (["app", "migrate"], "swarm: stack s updated: app, migrate rolled out"),
    "none": ([], "swarm: stack s updated; no service rolled out: each runs the images and settings it ran"),
}


@pytest.mark.parametrize("rolled", list(UPDATE_LINES))
def test_make_swarm_update_says_which_services_it_rolled_out_and_when_it_rolled_none(monkeypatch, capsys, rolled):
    """It said "updated" when nothing changed too: `make swarm-update` after an edit of the app, which it does not
    build, looked like a rollout of it."""
    services, line = UPDATE_LINES[rolled]
    monkeypatch.setattr(swarm, "services", lambda stack: {"app": {}})
    monkeypatch.setattr(swarm, "deploy", lambda stack: None)
    monkeypatch.setattr(swarm, "wait", lambda stack, timeout, since: None)
    monkeypatch.setattr(swarm, "rolled_out", lambda stack, since: services)
    swarm.update("s", 1)
    assert capsys.readouterr().out.splitlines()[-1].startswith(line)


def test_a_service_whose_update_has_not_begun_is_not_converged(monkeypatch):
    monkeypatch.setattr(swarm, "service_states", lambda stack, since=0: {"app": swarm.ServiceState(2, 2, due=True)})
    assert swarm.converged("wct-x", DEPLOYED) == (False, "app update not begun yet")


def test_a_completed_one_shot_whose_update_swarm_still_watches_is_not_converged(monkeypatch):
    """A CI run's `make swarm-update` right after another was refused "update out of sequence" for the migrate
    service: Swarm wrote the end of the last update's watch to it between the deploy's read and its update."""
    states = {
        "app": swarm.ServiceState(2, 2, "completed"),
        "migrate": swarm.ServiceState(0, 0, "updating", newest_task="complete"),
    }
    monkeypatch.setattr(swarm, "service_states", lambda stack, since=0: states)
    assert swarm.converged("wct-x", DEPLOYED) == (False, "migrate updating")
    states["migrate"] = swarm.ServiceState(0, 0, "completed", newest_task="complete")
    assert swarm.converged("wct-x", DEPLOYED) == (True, "")


def test_make_swarm_up_deploys_the_stack_with_every_replica_healthy_behind_nginx(stack):
    rows = swarm.services(stack.name)
    assert rows["app"]["Replicas"] == f"{REPLICAS_AT_START}/{REPLICAS_AT_START}"
    assert rows["nginx"]["Replicas"] == "1/1"
    response = requests.get(stack.base_url + "/", timeout=10)
    assert response.status_code == 200
    assert stack.replica_of(response) in stack.running_tasks()


def test_the_deployed_services_rollouts_watch_each_task_for_the_stacks_swarm_update_monitor(stack):
    monitor = settings.duration_seconds(QUICK_SWARM_MONITOR) * 1e9
    for service, configs in {"app": ("UpdateConfig", "RollbackConfig"), "nginx": ("UpdateConfig",)}.items():
        spec = swarm.inspect_service(stack.name, service)["Spec"]
        assert [spec[config]["Monitor"] for config in configs] == [monitor] * len(configs), (service, spec)


def test_the_deployed_services_check_their_health_at_the_stacks_health_interval(stack):
    interval = settings.duration_seconds(QUICK_SWARM_HEALTH_INTERVAL) * 1e9
    for service in ("app", "nginx"):
        spec = swarm.inspect_service(stack.name, service)["Spec"]["TaskTemplate"]["ContainerSpec"]
        assert spec["Healthcheck"]["Interval"] == interval, (service, spec.get("Healthcheck"))


def test_make_swarm_up_answers_as_make_up_does_a_line_for_its_bootstrap_and_its_build_then_its_own(stack):
    """Its bootstrap and build fold into make up's lines (VERBOSE=1 brings their output back, as for make up): it
    printed BuildKit's whole output, some 190 lines, before."""
    lines = stack.up_output.splitlines()
    # (a long build adds "still at it" lines to its phase)
    phases = list(dict.fromkeys(line.split()[1] for line in lines if line.startswith("up: ")))
    assert phases == ["bootstrap", "build"], stack.up_output
    assert lines[-1].startswith(f"swarm: stack {stack.name} is up on "), stack.up_output
    assert all(line.startswith(("up: ", "swarm: ")) for line in lines), stack.up_output


@pytest.mark.parametrize("reader", ["the cli", "the api"])
def test_the_stacks_services_and_leftovers_read_alike_through_the_engines_api_and_the_cli(stack, monkeypatch, reader):
    """make swarm-up's waits poll a local engine's API (tools/engine.py); the CLI stays for any other engine."""
    if reader == "the cli":
        monkeypatch.setattr(engine, "local", lambda env=None: None)
    states = swarm.service_states(stack.name)
    assert states["app"] == swarm.ServiceState(REPLICAS_AT_START, REPLICAS_AT_START)
    assert states["nginx"] == swarm.ServiceState(1, 1)
    assert states["migrate"].newest_task == "complete"
    assert swarm.converged(stack.name) == (True, "")
    assert swarm.leftovers(stack.name)
    assert not swarm.leftovers(f"{stack.name}-none")


def test_make_verify_of_the_swarm_stack_passes_with_its_replicas_over_tcp(stack):
    """The chain checks hold for a Swarm stack too: its replicas' request logs are read together (a request through
    nginx reaches any), its TCP socket is the one the app server listens on, and where `docker stack deploy` cannot
    set no-new-privileges, no file in the images could raise a privilege anyway."""

    def task_of(service: str) -> str:
        return running_with(f"{SWARM_SERVICE_LABEL}={stack.name}_{service}")[0]

    given = Deployment(stack.base_url, nginx_host=f"docker://{task_of('nginx')}", app_host=f"docker://{task_of('app')}")
    _, skips = verify_passes(given.verify_target())
    assert sorted(skips) == [
        "a given deployment: its interval is its own",
        "the app server listens on TCP :3031 (UWSGI_SOCKET: Swarm's replicas behind one nginx)",
    ], skips


def test_nginx_notices_the_app_scaled_to_three_replicas_and_spreads_requests_over_all_of_them(stack):
    subprocess.run(
        ["docker", "service", "scale", "--detach=false", f"{stack.name}_app={SCALED}"], check=True, capture_output=True
    )

    def scaled() -> set[str] | None:
        running = stack.running_tasks()
        return running if len(running) == SCALED else None

    tasks = poll(scaled, timeout=90, what=f"{SCALED} running replicas")
    assert swarm.services(stack.name)["app"]["Replicas"] == f"{SCALED}/{SCALED}"
    session = requests.Session()

    def spread() -> Counter | None:
        seen = Counter(stack.replica_of(session.get(stack.base_url + "/healthz", timeout=10)) for _ in range(60))
        return seen if set(seen) == tasks else None

    # nginx re-resolves the replicas within its resolver's `valid` (1 s): the new one is served within seconds.
    seen = poll(spread, timeout=20, interval=0.5, what="requests answered by all 3 replicas")
    assert min(seen.values()) >= 5, f"round robin should spread 60 requests evenly: {dict(seen)}"


def test_rolling_out_a_new_app_version_under_load_fails_no_request(stack, new_app_image, load_report):
    before = stack.running_tasks()
    with Load(stack.base_url + "/healthz", clients=4, duration=110, max_requests=60_000) as load:
        load.wait_for_requests(50)
        result = stack.make("swarm-update", APP_IMAGE=new_app_image, APP_REPLICAS=str(SCALED))
    # Requests that reached a replica as it stopped (nginx's error log); nginx retries a GET on the next one.
    nginx_log = swarm.docker("service", "logs", "--raw", f"{stack.name}_nginx", check=False)
    retried = sum("upstream" in line and "[error]" in line for line in nginx_log.splitlines())
    load_report.append(
        f"swarm rolling update of {SCALED} replicas (start-first, one at a time): {load.result}; "
        f"nginx upstream errors (a GET is retried on another replica): {retried}"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1] == f"swarm: stack {stack.name} updated: app, migrate rolled out"
    after = stack.running_tasks()
    assert len(after) == SCALED and not after & before, "every replica was replaced"
    assert stack.app_images() == {image_id(new_app_image)}
    assert load.result.ok > 0
    assert load.result.failed == 0, f"requests failed during the rollout: {load.result}"
    # Still spread over the new replicas.
    session = requests.Session()
    seen = {stack.replica_of(session.get(stack.base_url + "/healthz", timeout=10)) for _ in range(30)}
    assert seen == after


def test_scaling_after_an_update_keeps_the_running_image_and_make_versions_reports_the_swarm_stack(
    stack, new_app_image
):
    """`make swarm-up APP_REPLICAS=3` after `swarm-update APP_IMAGE=<new>` keeps the new version: it used to roll it
    back to the Makefile's default tag."""
    result = stack.make("swarm-up", APP_REPLICAS=str(SCALED))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"keeps its running image {new_app_image}" in result.stdout, result.stdout
    assert stack.app_images() == {image_id(new_app_image)}
    versions = stack.make("versions")
    assert versions.returncode == 0, versions.stderr
    app_line = next(line for line in versions.stdout.splitlines() if line.startswith("app "))
    assert "(app (swarm))" in app_line and "not running" not in app_line, versions.stdout


def test_a_new_build_under_the_running_tag_that_cannot_start_is_rolled_back_to_the_content_that_ran(
    stack, new_app_image, load_report
):
    """A build moves a tag, not the service that runs it. Deployed by its tag, a rebuilt image was never rolled out (the
    service's spec was the same: `make swarm-up` after an edit of an app, Dash 4.4.1 from PyPI, said the stack was up
    while its replicas served the old code), and a rollback went to whatever the tag named by then. A deploy now runs
    the content the tag names at that moment (tools/swarm.py: pinned), and a rollback the content that ran before: here
    an app that cannot start, built under the running tag, is tried, rolled back, and the old replicas serve on."""
    ran = image_id(new_app_image)
    # The app image with a WSGI module that does not exist: uWSGI refuses to start (need-app), the task fails.
    stack.build_image(new_app_image, f"FROM {new_app_image}\nENV WSGI_MODULE=no_such_module.wsgi:application\n")
    before = stack.running_tasks()
    with Load(stack.base_url + "/healthz", clients=2, duration=110, max_requests=40_000) as load:
        load.wait_for_requests(20)
        result = stack.make("swarm-update", APP_IMAGE=new_app_image, APP_REPLICAS=str(SCALED))
    load_report.append(f"swarm update to an app that cannot start, rolled back: {load.result}")
    assert result.returncode != 0, result.stdout
    assert "rollback" in result.stderr, result.stderr
    assert stack.app_images() == {ran}
    assert stack.running_tasks() == before, "the old replicas were never stopped"
    assert load.result.ok > 0 and load.result.failed == 0, f"requests failed during the rollback: {load.result}"


def test_an_app_without_health_routes_rolls_out_and_serves_in_swarm(stack):
    """The echo apps' image (tests/apps/echo): 404 on /healthz and /readyz, and healthy all the same."""
    env = {**os.environ, **ECHO_APP, "TOPOLOGY": "split"}
    built = subprocess.run([sys.executable, "-m", "tools.stack", "build"], cwd=ROOT, env=env, capture_output=True)
    assert built.returncode == 0, built.stderr[-2000:]
    result = stack.make("swarm-update", APP_IMAGE=ECHO_APP["APP_IMAGE"], APP_REPLICAS=str(SCALED))
    assert result.returncode == 0, result.stdout + result.stderr
    assert stack.app_images() == {image_id(ECHO_APP["APP_IMAGE"])}
    assert requests.get(stack.base_url + "/healthz", timeout=10).status_code == 404
    echo = requests.post(stack.base_url + "/flask/x", data=b"abc", timeout=10)
    assert echo.status_code == 200 and echo.json()["size"] == 3


def test_make_swarm_down_removes_the_stack_and_leaves_the_swarm_as_it_was_found(stack):
    result = stack.make("swarm-down")
    assert result.returncode == 0, result.stdout + result.stderr
    label = f"label=com.docker.stack.namespace={stack.name}"
    assert not swarm.docker("ps", "-aq", "--filter", label)
    assert not swarm.docker("network", "ls", "-q", "--filter", label)
    assert (swarm.swarm_state() == "active") == stack.swarm_was_active
    with pytest.raises(requests.ConnectionError):
        requests.get(stack.base_url + "/healthz", timeout=5)
    # Volumes are kept, as with make down (the fixture removes them).
    kept = swarm.docker("volume", "ls", "-q", "--filter", label).split()
    assert sorted(kept) == [f"{stack.name}_{volume}" for volume in ("app-data", "app-temp", "nginx-temp")], kept
