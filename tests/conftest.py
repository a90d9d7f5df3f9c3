"""Session fixtures: one stack for the whole run (or a deployment named on the command line), one testinfra host
per container, an HTTP session on the published port."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import requests
import testinfra

from tests import stack_times
from tests.harness import (
    ECHO_APP,
    ECHO_APP_ENV,
    ECHO_CSP,
    ECHO_MAX_BODY_MB,
    ECHO_MAX_RSS_MB,
    Deployment,
    OwnStack,
    compose_down,
    finish_teardowns,
    forget_builds,
    in_background,
    own_settings,
    shared,
    stop_shared_stacks,
    under_xdist,
)
from tests.host_postgres import HostPostgres
from tests.served_app import ServedApp, read_served_app
from tools import settings


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("wsgi-chain", "checks against an existing deployment (make verify)")
    group.addoption("--base-url", default=os.environ.get("BASE_URL", ""), help="URL of nginx's published port")
    group.addoption("--nginx-host", default=os.environ.get("NGINX_HOST", ""), help="testinfra URL, docker://name")
    group.addoption("--app-host", default=os.environ.get("APP_HOST", ""), help="testinfra URL, docker://name")
    group.addoption(
        "--verify-ca",
        default=os.environ.get("VERIFY_CA", ""),
        help="PEM file of the CA that signed an https:// --base-url's certificate (default: the system's)",
    )


def verifying(config: pytest.Config) -> bool:
    return bool(config.getoption("--base-url"))


def pytest_configure(config: pytest.Config) -> None:
    """A deployment given on the command line is given whole: one line of usage, not an error per test."""
    if verifying(config) and not (config.getoption("--nginx-host") and config.getoption("--app-host")):
        raise pytest.UsageError("--base-url needs --nginx-host and --app-host (testinfra URLs, docker://name)")
    # make test's parallel run (its controller, before any worker builds): the images are built once per run, and the
    # stacks shared by its workers are its own (an earlier run's, killed before it could, go down).
    if controller(config):
        forget_builds()
        stop_shared_stacks()


def controller(config: pytest.Config) -> bool:
    """pytest-xdist's controller of make test's parallel run (not one of its workers, nor a run without workers)."""
    return bool(config.getoption("numprocesses", None)) and not hasattr(config, "workerinput")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Against a given deployment only the chain checks run: nothing else may start a stack of its own. Otherwise,
    the longest work groups go first (make test's workers take a group at a time)."""
    if verifying(config):
        skip = pytest.mark.skip(reason="starts stacks of its own; not run against an existing deployment")
        for item in items:
            if "lifecycle" in item.keywords or "chain" not in item.keywords:
                item.add_marker(skip)
        return
    # A stable sort: within a group, tests keep their order (module fixtures are set up once per group).
    rank = {module: position for position, module in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(group_module(item.nodeid), len(rank)))


# make test runs the stack's suite on TEST_WORKERS workers (pytest-xdist): a worker takes a work group at a time, one
# module's tests in one topology, so that it brings up only the stacks its group needs. Every test that uses the host's
# own swarm joins one group: the host has one swarm, and those tests take turns on it.
TOPOLOGY_IDS = (*settings.TOPOLOGIES, "swarm")
HOST_SWARM = "host-swarm"
# The single topology's tests of the modules not in LONGEST_FIRST (short ones: the chain, privileges, security, TLS and
# conformance checks) form one group, started among the long ones. As groups of their own they came last, and each
# worker started its own single-topology stacks, 30 s each, at the end of the run (2026-12-03, before the workers
# shared the session's deployment).
SINGLE_CHECKS = "single-checks"
# The groups that take longest, started first so that none is left running alone at the end: every module whose
# longest group took 15 s or more in a parallel run (2026-12-02, longest first; docs/testing.md: where the time goes).
# The others follow in collection order and fill the workers' ends.
LONGEST_FIRST = [
    "test_cluster",
    HOST_SWARM,
    "test_operator",
    "test_nothing_lost",
    "test_operations",
    "test_dev",
    SINGLE_CHECKS,  # 68 s alone (2026-12-03): the single topology's image and three stacks are built and started
    "test_bad_input",
    "test_single",
    "test_any_app",
    "test_soak",
    "test_bench_smoke",
    "test_broken_app",
    "test_backup",
    "test_lifecycle",
    "test_examples",
    "test_postgres",
    "test_nginx_entrypoint",
    "test_observability",
    "test_stopping",
    "test_access_limits",
]


def work_group(nodeid: str) -> str:
    """tests/test_x.py::test_y[django-split] -> test_x.split: the module, and the topology among the parameters."""
    module = nodeid.split("::", 1)[0].rsplit("/", 1)[-1].removesuffix(".py")
    params = nodeid.rsplit("[", 1)[1].rstrip("]").split("-") if nodeid.endswith("]") else []
    topology = next((param for param in params if param in TOPOLOGY_IDS), None)
    if module == "test_swarm" or topology == "swarm":
        return HOST_SWARM
    if topology == "single" and module not in LONGEST_FIRST:
        return SINGLE_CHECKS
    return f"{module}.{topology}" if topology else module


def group_module(nodeid: str) -> str:
    group = work_group(nodeid)
    return group if group in (HOST_SWARM, SINGLE_CHECKS) else group.split(".")[0]


def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """pytest-xdist's scope scheduling, with the work groups above as its scopes."""
    from xdist.scheduler import LoadScopeScheduling

    class WorkGroupScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return work_group(nodeid)

    return WorkGroupScheduling(config, log)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """The chain checks run against both topologies; everything else against the split one."""
    if "deployment" not in metafunc.fixturenames and "own" not in metafunc.fixturenames:
        return
    if verifying(metafunc.config):
        topologies = ["given"]
    elif metafunc.definition.get_closest_marker("chain"):
        topologies = list(settings.TOPOLOGIES)
    else:
        topologies = ["split"]
    metafunc.parametrize("topology", topologies, scope="session")


@pytest.fixture(scope="session")
def deployment(request: pytest.FixtureRequest, topology: str, tmp_path_factory) -> Iterator[Deployment]:
    config = request.config
    if topology == "given":
        nginx, app = config.getoption("--nginx-host"), config.getoption("--app-host")
        base_url, ca = config.getoption("--base-url").rstrip("/"), config.getoption("--verify-ca")
        yield Deployment(base_url=base_url, nginx_host=nginx, app_host=app, ca=ca)
        return

    # `make test` has built the split topology's images; the single one's is built here. No test changes this stack
    # (those that do take their own: `own`), so make test's workers share it (harness.shared).
    def stack() -> OwnStack:
        return OwnStack(tmp_path_factory.mktemp(f"stack-{topology}"), topology=topology)

    if under_xdist():
        yield shared(f"deployment-{topology}", stack, build=topology == "single")
        return
    with stack().running(build=topology == "single") as running:
        yield running


@pytest.fixture(scope="session")
def nginx_host(deployment: Deployment):
    return testinfra.get_host(deployment.nginx_host)


@pytest.fixture(scope="session")
def app_host(deployment: Deployment):
    return testinfra.get_host(deployment.app_host)


@pytest.fixture(scope="session")
def served_app(nginx_host, app_host, http) -> ServedApp:
    """The app the deployment serves (tests/served_app.py): the default app on the suite's stacks, any app under
    `make verify`."""
    return read_served_app(nginx_host, app_host, http)


@pytest.fixture(scope="session")
def http(deployment: Deployment) -> Iterator[requests.Session]:
    session = requests.Session()
    session.request = _with_base(session.request, deployment)  # type: ignore[method-assign]
    yield session
    session.close()


def _with_base(request, deployment: Deployment):
    base_url = deployment.base_url

    def send(method: str, url: str, **kwargs):
        kwargs.setdefault("timeout", 10)
        # Per request: requests lets REQUESTS_CA_BUNDLE from the environment win over a session's own `verify`.
        if deployment.ca:
            kwargs.setdefault("verify", deployment.ca)
        return request(method, url if url.startswith("http") else base_url + url, **kwargs)

    return send


@pytest.fixture
def make_env(tmp_path) -> Iterator[dict[str, str]]:
    """Settings for a `make up` of its own: project name, free port, secret; torn down afterwards."""
    env = own_settings(tmp_path, "wct-make")
    yield env
    in_background(lambda: compose_down(env["COMPOSE_PROJECT_NAME"]))


# Module-scoped: kept up for the session, an echo stack ran its health checks (every 5 s) to the end of its worker's
# run, long after its module was done.
@pytest.fixture(scope="module", params=list(settings.TOPOLOGIES))
def echo(request, tmp_path_factory) -> Iterator[Deployment]:
    """A stack serving the echo apps (harness.ECHO_APP), in each topology, for one module's tests (the bodies and the
    conformance cases); skipped against a given deployment (it is not ours)."""
    if verifying(request.config):
        pytest.skip("serves the suite's echo apps: runs only on the suite's own stacks")
    topology = request.param
    workdir = tmp_path_factory.mktemp(f"echo-{topology}")
    app_env = workdir / "app.env"
    app_env.write_text("".join(f"{name}={value}\n" for name, value in ECHO_APP_ENV.items()), encoding="utf-8")
    env = {
        **ECHO_APP,
        "APP_ENV_FILE": str(app_env),
        "WORKER_MAX_RSS_MB": str(ECHO_MAX_RSS_MB),
        "MAX_BODY_SIZE": f"{ECHO_MAX_BODY_MB}m",
        # An operator's own policy (tests/test_any_app.py checks that nginx sends it).
        "CONTENT_SECURITY_POLICY": ECHO_CSP,
    }
    stack = OwnStack(workdir, topology=topology, prefix="wct-echo", env=env)
    with stack.running() as running:
        yield running


@pytest.fixture(scope="module")
def postgres() -> Iterator[HostPostgres]:
    """A throwaway PostgreSQL server on this host (tests/host_postgres.py), for one module's stacks."""
    server = HostPostgres()
    try:
        yield server.start()
    finally:
        server.stop()


LOAD_REPORT: list[str] = []


@pytest.fixture(scope="session")
def load_report() -> list[str]:
    """Lines for the summary at the end of the run: what each load test sent and what failed."""
    return LOAD_REPORT


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item: pytest.Item) -> None:
    """Outside pytest-xdist (the serial phase measures against the clock), a test runs once the stacks torn down
    before it are gone: their teardowns ran beside its setup, never beside its measurement."""
    if not under_xdist():
        finish_teardowns()


def pytest_sessionfinish(session: pytest.Session) -> None:
    """On a worker, its stacks' teardowns end first; then its load report and its stacks' times go back to the
    controller with the worker's output. On the controller, once every worker is done, the shared stacks go down."""
    finish_teardowns()
    if controller(session.config):
        stop_shared_stacks()
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput["load_report"] = list(LOAD_REPORT)
        workeroutput["stack_times"] = stack_times.as_dicts(stack_times.STEPS)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error) -> None:
    """On the controller: a worker's load report and stack times join the summary."""
    output = getattr(node, "workeroutput", {})
    LOAD_REPORT.extend(output.get("load_report", []))
    stack_times.STEPS.extend(stack_times.from_dicts(output.get("stack_times", [])))


def pytest_terminal_summary(terminalreporter) -> None:
    if LOAD_REPORT:
        terminalreporter.section("wsgi-chain: requests under load and faults")
        for line in LOAD_REPORT:
            terminalreporter.write_line(line)
    if stack_times.STEPS:
        terminalreporter.section("wsgi-chain: stacks built, started and stopped (seconds)")
        for line in stack_times.summary(stack_times.STEPS):
            terminalreporter.write_line(line)


@pytest.fixture(scope="module")
def own(request: pytest.FixtureRequest, topology: str, tmp_path_factory) -> Iterator[Deployment]:
    """A stack of the module's own, for tests that change it (users, posts, loads, a killed process) beside the shared
    deployment; skipped against a given deployment."""
    if verifying(request.config):
        pytest.skip("changes the stack: runs only on a stack of the suite's own, not a given deployment")
    stack = OwnStack(tmp_path_factory.mktemp(f"own-{topology}"), topology=topology, prefix="wct-own")
    with stack.running(build=topology == "single") as running:
        yield running
