"""The stack on a multi-node Swarm (make cluster-up / cluster-down): 3 nodes that are containers running engines of
their own, 1 manager and 2 workers (tools/cluster.py, docs/cluster.md).

One cluster for the module, under its own name and a free port, with 2 app replicas on two different nodes and
PostgreSQL on the manager. Under a mixed load through the published port (GETs of a user's posts, and one POST in
three), the tests drain a worker, roll out a new app image across the nodes, stop a worker, and kill one outright; then
`make cluster-down` removes it all. The tests run in file order: each builds on the one before. The fixture tears the
cluster down whatever happens.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from tests.harness import QUICK_SWARM_HEALTH_INTERVAL, QUICK_SWARM_MONITOR, ROOT, free_port, poll
from tests.load import Load
from tests.stack_times import timed, timed_process
from tools import cluster as cluster_tool
from tools import settings, swarm
from tools.compose import image_id, write_secret_key

pytestmark = pytest.mark.lifecycle

# Two replicas: on two of the three nodes (spread), and a rollout of both fits in the load's 2 minutes here.
REPLICAS = 2
USER = "loadtester"
# The load: 4 clients, one request in three a POST; bounded in time and count like every load here.
CLIENTS = 4
POST_EVERY = 3
# The advisory lock the node-kill test holds on the node it kills.
LOCK_KEY = 4242


@dataclass
class ClusterStack:
    cluster: cluster_tool.Cluster
    stack: str
    env: dict[str, str]
    base_url: str
    token: str = ""
    images: list[str] = field(default_factory=list)

    def cli(self):
        return self.cluster.manager_cli()

    def app_tasks(self) -> list[dict]:
        """The app's tasks that should run and do, with the node each runs on."""
        with self.cli():
            return [
                task
                for task in swarm.tasks(self.stack, "app")
                if task["DesiredState"] == "Running" and task["CurrentState"].startswith("Running")
            ]

    def replica_nodes(self) -> Counter:
        return Counter(task["Node"] for task in self.app_tasks())

    def nginx_log(self, since: float, request_ids: list[str]) -> list[str]:
        """nginx's log lines since `since` (seconds since the epoch): its access log's JSON records (stdout) and its
        error log's lines (stderr); read again until the records of `request_ids` are in (the access log is written
        out each second, nginx/conf.d/logging.conf), or for 10 s: a failure's message shows what there is."""
        manager = self.cluster.manager
        logs = f"docker logs --since {since:.0f} {self.container(manager, 'nginx')} 2>&1"

        deadline = time.monotonic() + 10
        while True:
            lines = cluster_tool.host_docker("exec", manager, "sh", "-c", logs).splitlines()
            if all(any(rid in line for line in lines) for rid in request_ids) or time.monotonic() > deadline:
                return lines
            time.sleep(0.5)

    @staticmethod
    def retries(lines: list[str]) -> Counter:
        """Requests nginx sent on to another replica, by method and the upstream status of each attempt, as its access
        log has them ("POST 502, 201": the first replica broke off, the second created the post)."""
        records = [json.loads(line) for line in lines if line.startswith("{")]
        return Counter(f"{r['method']} {r['upstream_status']}" for r in records if "," in r.get("upstream_status", ""))

    @staticmethod
    def failures(lines: list[str]) -> str:
        """What nginx logged about the requests it did not answer with a 2xx: their access records and its error
        log's lines, for a failure's message."""
        failed = [line for line in lines if line.startswith("{") and not 200 <= json.loads(line)["status"] < 300]
        errors = [line for line in lines if not line.startswith("{")]
        return "\n".join(["nginx's access records of failed requests:", *failed, "nginx's error log:", *errors[-40:]])

    def busiest_worker(self) -> tuple[str, int]:
        """The worker node running the most app replicas (at least one), and how many."""
        counts = self.replica_nodes()
        worker = max(self.cluster.workers, key=lambda node: counts[node])
        assert counts[worker] >= 1, f"no replica on a worker: {counts}"
        return worker, counts[worker]

    def running_tasks(self) -> set[str]:
        """As X-Replica names them: <service>.<slot>.<task id>."""
        return {f"{task['Name']}.{task['ID']}" for task in self.app_tasks()}

    def container(self, node: str, service: str) -> str:
        """The container of one of the stack's services ("app", "nginx", "postgres") running on `node`."""
        ids = self.cluster.node_docker(
            node, "ps", "-q", "--filter", f"label=com.docker.swarm.service.name={self.stack}_{service}"
        )
        assert ids, f"no {service} container on {node}"
        return ids.split()[0]

    def manage(self, node: str, *args: str) -> str:
        return self.cluster.node_docker(node, "exec", "-i", self.container(node, "app"), "python", "manage.py", *args)

    def hold_lock(self, node: str) -> None:
        """An open transaction from the app replica on `node` that holds LOCK_KEY and then waits (bounded: 10
        minutes), begun in the background; returns once PostgreSQL shows the lock."""
        code = (
            "import time; from django.db import connection, transaction\n"
            "with transaction.atomic(), connection.cursor() as cursor:\n"
            f"    cursor.execute('SELECT pg_advisory_xact_lock({LOCK_KEY})'); time.sleep(600)"
        )
        app = self.container(node, "app")
        self.cluster.node_docker(node, "exec", "-d", app, "python", "manage.py", "shell", "-c", code)
        poll(self.lock_held, timeout=30, interval=0.5, what=f"the lock taken on {node}")

    def lock_held(self) -> bool:
        manager = self.cluster.manager
        query = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = :key"
        psql = ["psql", "-U", "microposts", "-d", "microposts", "-tA", "-v", f"key={LOCK_KEY}"]
        postgres = self.container(manager, "postgres")
        held = self.cluster.node_docker(manager, "exec", "-i", postgres, *psql, input=query.encode())
        return held.strip() != "0"

    def post_count(self) -> int:
        """The user's posts as the database has them (the API's count, through any replica)."""
        response = requests.get(f"{self.base_url}/api/users/{USER}/collection?page_size=1", timeout=10)
        assert response.status_code == 200, response.text[:200]
        return response.json()["count"]

    def wait_for(self, replicas: int, avoiding: str | None = None, timeout: float = 120) -> float:
        """Seconds until `replicas` app replicas run (none on `avoiding`) and nginx has served each of them."""
        started = time.monotonic()

        def placed() -> set[str] | None:
            tasks = self.app_tasks()
            if len(tasks) != replicas or any(task["Node"] == avoiding for task in tasks):
                return None
            return {f"{task['Name']}.{task['ID']}" for task in tasks}

        tasks = poll(placed, timeout=timeout, interval=0.5, what=f"{replicas} replicas off {avoiding}")
        session = requests.Session()

        def served() -> bool:
            seen = {session.get(self.base_url + "/healthz", timeout=10).headers.get("X-Replica") for _ in range(12)}
            return seen == tasks

        poll(served, timeout=30, interval=0.2, what="nginx serving every replica")
        return time.monotonic() - started


class MixedLoad(Load):
    """GETs of the user's posts, and every POST_EVERY-th request a POST of a new one; counts the POSTs apart."""

    def __init__(self, stack: ClusterStack, **kwargs):
        super().__init__(f"{stack.base_url}/api/users/{USER}/collection?page_size=5", clients=CLIENTS, **kwargs)
        self.post_url = f"{stack.base_url}/api/users/{USER}/collection"
        self.headers = {"Authorization": f"Token {stack.token}"}
        self.posts: Counter = Counter()
        # The X-Request-ID of each answer that was not a 2xx, to find nginx's log lines for it.
        self.failed_ids: list[str] = []

    def request(self, session: requests.Session, number: int) -> requests.Response:
        response = self.send(session, number)
        if not 200 <= response.status_code < 300:
            with self._lock:
                self.failed_ids.append(response.headers.get("X-Request-ID", "-"))
        return response

    def send(self, session: requests.Session, number: int) -> requests.Response:
        if number % POST_EVERY:
            return super().request(session, number)
        try:
            # Each POST carries a key of its own, as a careful client's do: nginx may then send it again on another
            # replica if the first broke off (a node lost), and the app creates its post once.
            headers = {**self.headers, "Idempotency-Key": uuid.uuid4().hex}
            response = session.post(
                self.post_url, json={"text": f"load {number}"}, headers=headers, timeout=self.timeout
            )
        except requests.RequestException as exc:
            with self._lock:
                self.posts[type(exc).__name__] += 1
            raise
        with self._lock:
            self.posts[response.status_code] += 1
        return response

    @property
    def posts_created(self) -> int:
        return self.posts[201]

    def summary(self) -> str:
        return f"{self.result}; POSTs {dict(sorted(self.posts.items(), key=str))}"


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[ClusterStack]:
    secret = write_secret_key(tmp_path_factory.mktemp("cluster") / "secret_key")
    port = free_port()
    token = secrets.token_hex(3)
    name = f"wct-cluster-{token}"
    env = {
        "CLUSTER_NAME": name,
        # Its own stack name too: tools/swarm.py writes the stack file under it, beside other runs'.
        "SWARM_STACK": f"wct-{token}",
        "HTTP_PORT": str(port),
        "SECRET_KEY_FILE": str(secret),
        "APP_REPLICAS": str(REPLICAS),
        # Its rollouts end sooner (tests/harness.py: QUICK_SWARM_MONITOR).
        "SWARM_UPDATE_MONITOR": QUICK_SWARM_MONITOR,
        # Each new task counts as running at its first health check, sooner (tests/harness.py).
        "HEALTH_INTERVAL": QUICK_SWARM_HEALTH_INTERVAL,
        # The load is one user's and one address's: the API throttles (a few requests a second) would answer 429.
        "API_THROTTLE_ANON": "off",
        "API_THROTTLE_USER": "off",
    }
    deployed = ClusterStack(cluster_tool.Cluster(name), env["SWARM_STACK"], env, f"http://127.0.0.1:{port}")
    saved = {key: os.environ.get(key) for key in [*env, "DOCKER_HOST"]}
    try:
        # What `make cluster-up` runs, its build first (cached: it puts back an image tag another test moved).
        up = [sys.executable, "-m", "tools.cluster", "up"]
        environment = {**os.environ, **env}
        result = timed_process(
            name,
            "cluster up",
            lambda: subprocess.run(up, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=600),
        )
        assert result.returncode == 0, result.stdout + result.stderr
        # Later deploys (the rollout) get the same settings; this process reads the swarm through the manager. Set
        # once, before any load runs: the load's threads read the environment (requests' proxy settings).
        os.environ.update(env)
        os.environ["DOCKER_HOST"] = deployed.cluster.docker_host
        yield deployed
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        with timed(name, "cluster down"):
            cluster_tool.down(deployed.cluster)
        for image in deployed.images:
            cluster_tool.host_docker("rmi", image, check=False)


def test_make_cluster_up_spreads_the_replicas_over_a_manager_and_two_workers(stack):
    with stack.cli():
        nodes = [
            line.split() for line in swarm.docker("node", "ls", "--format", "{{.Hostname}} {{.Status}}").splitlines()
        ]
        postgres = [t["Node"] for t in swarm.tasks(stack.stack, "postgres") if t["DesiredState"] == "Running"]
        nginx = [t["Node"] for t in swarm.tasks(stack.stack, "nginx") if t["DesiredState"] == "Running"]
        manager = swarm.docker("node", "ls", "--filter", "role=manager", "--format", "{{.Hostname}}")
    assert sorted(nodes) == sorted([node, "Ready"] for node in stack.cluster.nodes)
    assert manager == stack.cluster.manager
    placed = stack.replica_nodes()
    assert len(placed) == REPLICAS and set(placed) <= set(stack.cluster.nodes), f"one per node (spread): {placed}"
    # The database node is the labelled one; nginx is on the manager, whose port the host publishes.
    assert postgres == [stack.cluster.manager] and nginx == [stack.cluster.manager]
    session = requests.Session()
    seen = {session.get(stack.base_url + "/healthz", timeout=10).headers["X-Replica"] for _ in range(30)}
    assert seen == stack.running_tasks(), "nginx reaches the replicas on the other nodes over the overlay"


def test_the_nodes_run_the_images_the_host_built_and_build_none_of_their_own(stack):
    """`make cluster-up` builds on the host, as `make up` does, and loads the images into the nodes, whose engines
    build nothing: a deploy that built the images again in the manager (swarm's `up` without --built) compiled uWSGI
    there, two minutes more (2026-12-07, found before it landed)."""
    images = (settings.get("APP_IMAGE"), settings.get("NGINX_IMAGE"))
    built = {image: cluster_tool.host_docker("image", "inspect", "-f", "{{.Id}}", image) for image in images}
    for node in stack.cluster.nodes:
        loaded = {each: stack.cluster.node_docker(node, "image", "inspect", "-f", "{{.Id}}", each) for each in images}
        assert loaded == built, node
        usage = stack.cluster.node_docker(node, "system", "df", "--format", "{{.Type}} {{.TotalCount}}").splitlines()
        assert "Build Cache 0" in usage, f"{node}: {usage}"


def test_a_nodes_containers_weigh_on_the_hosts_cpu_beside_the_hosts_containers_not_above_them(stack):
    """The manager's containers (nginx, PostgreSQL) sit in a cgroup beside the node's own, under the host engine's
    parent (/docker with cgroupfs), not at the top of the tree, where each node weighed as much as all of the host's
    containers together and took the CPU from every other stack on the machine."""
    pid = cluster_tool.host_docker("inspect", "-f", "{{.State.Pid}}", stack.cluster.manager).strip()
    lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    # cgroup v1: "4:cpu,cpuacct:/docker/<id>"; v2: "0::/<path>".
    own = next(line.split(":", 2)[2] for line in lines if "cpu" in line.split(":")[1].split(",") or line[:3] == "0::")
    root = Path("/sys/fs/cgroup/cpu") if Path("/sys/fs/cgroup/cpu").is_dir() else Path("/sys/fs/cgroup")
    parent = root / Path(own).parent.relative_to("/") / stack.cluster.manager
    assert parent.is_dir(), f"no {parent}: the node's containers are elsewhere"
    assert len([p for p in parent.iterdir() if p.is_dir()]) >= 2, f"nginx's and PostgreSQL's cgroups in {parent}"
    for node in stack.cluster.nodes:
        assert not (root / node).exists() or Path(own).parent == Path("/"), f"{root / node}: at the top of the tree"


def test_a_post_through_one_node_is_read_back_through_the_replicas_on_the_others(stack):
    # On a node that runs a replica: spread puts the 2 on any 2 of the 3 nodes.
    stack.token = stack.manage(min(stack.replica_nodes()), "createuser", USER).strip()
    assert len(stack.token) == 40
    text = f"written once, read anywhere {secrets.token_hex(4)}"
    created = requests.post(
        f"{stack.base_url}/api/users/{USER}/collection",
        json={"text": text},
        headers={"Authorization": f"Token {stack.token}"},
        timeout=10,
    )
    assert created.status_code == 201, created.text
    session = requests.Session()
    readers = set()
    for _ in range(30):
        response = session.get(f"{stack.base_url}/api/users/{USER}/collection", timeout=10)
        assert text in [post["text"] for post in response.json()["results"]], response.headers["X-Replica"]
        readers.add(response.headers["X-Replica"])
    assert readers == stack.running_tasks(), "every replica, on every node, reads the one database"


def test_sqlite_on_several_nodes_or_no_database_node_is_refused_before_anything_is_deployed(stack, monkeypatch):
    with stack.cli():
        before = swarm.inspect_service(stack.stack, "app")["Version"]["Index"]
        sqlite = swarm.render(stack.stack)
        sqlite["services"]["app"]["environment"]["DATABASE_URL"] = ""
        with pytest.raises(swarm.SwarmError, match="SQLite is one file on one node"):
            swarm.check_database(sqlite)
        # A label no node carries (taking the real one off the manager would make swarm stop PostgreSQL there).
        monkeypatch.setattr(swarm, "DATABASE_LABEL", "wsgi-chain.database-unset")
        with_postgres = {"services": {"app": {"environment": {"DATABASE_URL": "postgres://x"}}, "postgres": {}}}
        with pytest.raises(swarm.SwarmError, match=r"exactly one node labelled wsgi-chain\.database-unset=true"):
            swarm.check_database(with_postgres)
        assert swarm.inspect_service(stack.stack, "app")["Version"]["Index"] == before, "nothing was deployed"


def test_draining_a_worker_under_mixed_load_fails_no_request_and_moves_its_replica(stack, load_report):
    worker, _ = stack.busiest_worker()
    posts_before = stack.post_count()
    with MixedLoad(stack, duration=100, max_requests=30_000) as load:
        load.wait_for_requests(30)
        with stack.cli():
            swarm.docker("node", "update", "--availability", "drain", worker)
        recovered = stack.wait_for(REPLICAS, avoiding=worker)
        load.wait_for_requests(load.result.ok + 30)
    load_report.append(f"cluster: drain a worker (replicas moved and served in {recovered:.1f} s): {load.summary()}")
    with stack.cli():
        swarm.docker("node", "update", "--availability", "active", worker)
    assert load.result.failed == 0, load.summary()
    assert load.posts_created > 0
    assert stack.post_count() == posts_before + load.posts_created, "each POST created exactly one post"


def test_a_rolling_update_across_the_nodes_under_mixed_load_fails_no_request(stack, load_report):
    base = settings.get("APP_IMAGE")
    token = secrets.token_hex(4)
    image = f"{base.rsplit(':', 1)[0]}:cluster-rollout-{token}"
    dockerfile = f"FROM {base}\nLABEL io.wsgi-chain.rollout={token}\n"
    stack.images.append(image)
    cluster_tool.host_docker("build", "-q", "-t", image, "-", input=dockerfile.encode())
    cluster_tool.distribute_images(stack.cluster, [image], [])
    before = stack.running_tasks()
    posts_before = stack.post_count()
    with MixedLoad(stack, duration=115, max_requests=40_000) as load:
        load.wait_for_requests(30)
        started = time.monotonic()
        cluster_tool.deploy(stack.cluster, stack.stack, timeout=200, APP_IMAGE=image)
        took = time.monotonic() - started
        covered = load.result.sent
    load_report.append(
        f"cluster: rolling update of {REPLICAS} replicas across 3 nodes (took {took:.0f} s): {load.summary()}"
    )
    after = stack.app_tasks()
    assert {task["Image"] for task in after} == {image_id(image)}
    assert len(after) == REPLICAS and not stack.running_tasks() & before, "every replica was replaced"
    assert len({task["Node"] for task in after}) >= 2, "still spread over the nodes"
    assert took < load.duration - 5, f"the rollout ({took:.0f} s) outlasted the load: only part of it was tested"
    assert covered < load.max_requests
    assert load.result.failed == 0, load.summary()
    assert stack.post_count() == posts_before + load.posts_created


def test_stopping_a_worker_node_under_mixed_load_fails_no_request_and_its_replicas_move(stack, load_report):
    """A node shut down as a machine is (docker stop: its engine gets SIGTERM and stops its containers, uWSGI
    finishing the requests in flight) loses nothing: its replicas leave the service's DNS, are rescheduled on the
    others, and every request is served. The node stays down: the next test kills the other worker."""
    victim, replicas = stack.busiest_worker()
    posts_before = stack.post_count()
    with MixedLoad(stack, duration=100, max_requests=30_000) as load:
        load.wait_for_requests(30)
        # Longer than the app's stop_grace_period (35 s): the engine's own shutdown is never cut short.
        cluster_tool.host_docker("stop", "--time", "60", victim)
        recovered = stack.wait_for(REPLICAS, avoiding=victim)
        load.wait_for_requests(load.result.ok + 30)
    load_report.append(
        f"cluster: stop a worker running {replicas} of {REPLICAS} replicas (rescheduled and served in "
        f"{recovered:.1f} s): {load.summary()}"
    )
    assert load.result.failed == 0, load.summary()
    assert stack.post_count() == posts_before + load.posts_created, "each POST created exactly one post"


def test_killing_a_worker_node_under_mixed_load_fails_no_request_and_creates_each_post_once(stack, load_report):
    """A node that dies (unplugged, then docker kill: no engine shutdown, no goodbye) never answers the requests its
    replicas were serving. nginx's keepalive probes find that within about 5 s (compose.swarm.yaml), and it sends
    them again on a live replica: a GET always, a POST because it carries an Idempotency-Key, which the app honours
    (a POST the dead replica had already stored is answered, not stored again). New requests move to the live
    replicas once DNS drops the dead ones. PostgreSQL drops the dead node's sessions within seconds, so a transaction
    it left open holds its locks no longer (compose.yaml)."""
    victim, replicas = stack.busiest_worker()
    posts_before = stack.post_count()
    # An open transaction on the dead node, holding a lock, as a request cut off between its INSERT and its COMMIT
    # would: PostgreSQL must drop the session (compose.yaml: its keepalive settings) so the lock goes.
    stack.hold_lock(victim)
    with MixedLoad(stack, duration=115, max_requests=40_000, timeout=60) as load:
        load.wait_for_requests(30)
        killed = time.time()
        # Its cable first, then its power: with `docker kill` alone, the node's kernel may still send a FIN for the
        # sockets of the processes it kills, which nginx and PostgreSQL would hear. A node that dies sends nothing.
        cluster_tool.host_docker("network", "disconnect", "--force", stack.cluster.name, victim)
        cluster_tool.host_docker("kill", victim)
        poll(lambda: not stack.lock_held(), timeout=30, interval=0.5, what="the dead node's lock released")
        released = time.time() - killed
        stack.wait_for(REPLICAS, avoiding=victim, timeout=100)
        recovered = time.time() - killed
        load.wait_for_requests(load.result.ok + 60, timeout=30)
    logged = stack.nginx_log(since=killed - 1, request_ids=load.failed_ids)
    retried = stack.retries(logged)
    load_report.append(
        f"cluster: kill a worker running {replicas} of {REPLICAS} replicas (rescheduled and served in "
        f"{recovered:.1f} s; its open transaction's lock released in {released:.1f} s): {load.summary()}; "
        f"sent again on a live replica by nginx: {dict(retried) or 'none'}"
    )
    assert stack.replica_nodes().keys() <= {stack.cluster.manager, *stack.cluster.workers} - {victim}
    assert load.result.failed == 0, f"{load.summary()}\n{stack.failures(logged)}"
    assert stack.post_count() == posts_before + load.posts_created, "each POST created exactly one post"
    # The requests in flight on the dead node waited for the probes, not for uwsgi_read_timeout (35 s).
    assert load.result.slowest < 20, load.summary()


def test_make_cluster_down_leaves_nothing_behind(stack):
    result = subprocess.run(
        ["make", "-s", "cluster-down"], cwd=ROOT, env={**os.environ, **stack.env}, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    label = f"label={cluster_tool.LABEL}={stack.cluster.name}"
    for kind in ("ps -a", "volume ls", "network ls"):
        assert not cluster_tool.host_docker(*kind.split(), "-q", "--filter", label), kind
    for pattern in (f"*/{stack.cluster.name}-*", f"*/*/{stack.cluster.name}-*"):
        assert not list(Path("/sys/fs/cgroup").glob(pattern)), "cgroups left"
    assert not stack.cluster.state_dir.exists()
    assert not (swarm.BUILD_DIR / f"{stack.stack}.yaml").exists(), "the stack file"
    others = cluster_tool.host_docker("ps", "-aq", "--filter", f"label={cluster_tool.LABEL}")
    if not others:
        for image in (cluster_tool.NODE_IMAGE, cluster_tool.POSTGRES_IMAGE):
            assert not cluster_tool.host_docker("image", "ls", "-q", image), image
    with pytest.raises(requests.ConnectionError):
        requests.get(stack.base_url + "/healthz", timeout=5)
