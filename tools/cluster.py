"""A local multi-node Docker Swarm, a test rig: `python -m tools.cluster up|down|status`.

Three nodes, each a container running a Docker engine of its own (deploy/cluster/node.Dockerfile) on a bridge network
of the cluster's own: one manager and two workers. The stack deployed on it is tools/swarm.py's, unchanged, with the
database the multi-node stack needs: PostgreSQL (compose.yaml's `postgres` profile) on the node labelled
wsgi-chain.database=true, here the manager. See docs/cluster.md.

- up: the bootstrap and the stack's build as `make up` runs them, build the node and PostgreSQL images, start the
  nodes, form the swarm, load the app and nginx images into every node (docker save into the state directory the
  nodes mount, docker load -i there: no registry), deploy the stack, wait until every replica is healthy. nginx
  runs on the manager, whose HTTP_PORT the host reaches on HTTP_BIND:HTTP_PORT, as with `make up`.
- down: remove the nodes and everything `up` created: containers, volumes, the network, the images, the state
  directory, and the cgroups a killed node's engine leaves behind on this host.
- status: the nodes and the stack's services.

It never touches this engine's own swarm state or any container it did not start: the host's CLI reaches the
cluster's manager only through DOCKER_HOST, a unix socket in the cluster's state directory.

Settings from the environment: CLUSTER_NAME (wsgi-chain-cluster), HTTP_BIND, HTTP_PORT, SWARM_STACK, APP_REPLICAS,
APP_IMAGE, NGINX_IMAGE, SECRET_KEY_FILE, UP_TIMEOUT, BASE_IMAGE; DATABASE_URL and POSTGRES_PASSWORD when the database
is one of your own (then no PostgreSQL service is deployed).
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tools import settings, swarm
from tools.compose import ROOT, Compose
from tools.stack import StackError, bootstrap, build_phase, compose, ensure_secret_key, env

STATE_DIR = ROOT / ".build" / "cluster"
# The node and PostgreSQL images' build (compose: BuildKit's cache).
IMAGES_FILE = ROOT / "deploy" / "cluster" / "images.yaml"
NODE_IMAGE = "wsgi-chain-cluster/node:latest"
POSTGRES_IMAGE = "wsgi-chain-cluster/postgres:17"
# Marks every container, volume and network a cluster is made of, by cluster name: `down` removes by it.
LABEL = "io.wsgi-chain.cluster"
WORKERS = 2
# What a node's engine needs without --privileged (this host lacks CAP_SYS_RESOURCE, which --privileged asks for):
# mounts and namespaces (SYS_ADMIN), its networks and iptables (NET_ADMIN, NET_RAW), device nodes for containers
# (MKNOD), and nsenter-style inspection (SYS_PTRACE); the cgroup tree to put its containers in; no seccomp or
# AppArmor profile, which would refuse the engine's own syscalls and mounts.
NODE_FLAGS = (
    *("--cap-add", "SYS_ADMIN", "--cap-add", "NET_ADMIN", "--cap-add", "MKNOD"),
    *("--cap-add", "NET_RAW", "--cap-add", "SYS_PTRACE"),
    *("--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined"),
    *("-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw"),
    # Without it the engine tries to write IPv6 settings into a read-only /proc/sys and overlay networks fail.
    *("-e", "DOCKER_ALLOW_IPV6_ON_IPV4_INTERFACE=1"),
)
# Where the manager's engine puts its second API socket (a bind-mounted host directory, only root reads it).
API_DIR_IN_NODE = "/run/node-api"
# Where every node reads the image archives `up` hands it (the cluster's state directory, bind-mounted read-only):
# a node's `docker load -i` reads the file, instead of the archive being streamed through `docker exec` stdin.
ARCHIVES_IN_NODE = "/run/cluster-images"


class ClusterError(RuntimeError):
    """Something the operator must fix; the message says what."""


def host_environ(environ: dict[str, str]) -> dict[str, str]:
    """An environment whose docker commands reach this host's own engine (never the cluster's): no DOCKER_HOST."""
    return {k: v for k, v in environ.items() if k != "DOCKER_HOST"}


def host_docker(*args: str, check: bool = True, timeout: float = 300, input: bytes | None = None) -> str:
    """This host's own engine (never the cluster's, whatever DOCKER_HOST says)."""
    environ = host_environ(dict(os.environ))
    result = subprocess.run(["docker", *args], capture_output=True, timeout=timeout, env=environ, input=input)
    if check and result.returncode != 0:
        stderr = result.stderr.decode(errors="replace").strip()
        raise ClusterError(f"docker {' '.join(args[:3])} ... failed: {stderr}")
    return result.stdout.decode(errors="replace").strip()


@dataclass(frozen=True)
class Cluster:
    name: str

    @property
    def manager(self) -> str:
        return f"{self.name}-manager"

    @property
    def workers(self) -> list[str]:
        return [f"{self.name}-worker-{n}" for n in range(1, WORKERS + 1)]

    @property
    def nodes(self) -> list[str]:
        return [self.manager, *self.workers]

    @property
    def state_dir(self) -> Path:
        return STATE_DIR / self.name

    @property
    def api_dir(self) -> Path:
        return self.state_dir / "api"

    @property
    def docker_host(self) -> str:
        return f"unix://{self.api_dir}/docker.sock"

    @property
    def archives_dir(self) -> Path:
        return self.state_dir / "images"

    @property
    def password_file(self) -> Path:
        return self.state_dir / "postgres_password"

    def node_docker(self, node: str, *args: str, check: bool = True, timeout: float = 300, input=None) -> str:
        """A node's own engine, through `docker exec` on this host's."""
        return host_docker("exec", "-i", node, "docker", *args, check=check, timeout=timeout, input=input)

    @contextmanager
    def manager_cli(self) -> Iterator[None]:
        """tools/swarm.py's `docker` calls go to the manager's engine while the block runs (for reading the swarm's
        state in this process; set DOCKER_HOST beforehand to keep other threads from seeing the environment change)."""
        before = os.environ.get("DOCKER_HOST")
        if before == self.docker_host:
            yield
            return
        os.environ["DOCKER_HOST"] = self.docker_host
        try:
            yield
        finally:
            if before is None:
                os.environ.pop("DOCKER_HOST", None)
            else:
                os.environ["DOCKER_HOST"] = before

    def exists(self) -> bool:
        return bool(host_docker("ps", "-aq", "--filter", f"label={LABEL}={self.name}"))


# --- up -----------------------------------------------------------------------------------------------------------


def images_compose(postgres_image: str = POSTGRES_IMAGE) -> Compose:
    """The compose project that builds the node image and the PostgreSQL one (deploy/cluster/images.yaml), from the
    base image (defaults.env). The PostgreSQL image keeps the official image's contract: the tests also build it, under
    a tag of their own, for the stack's postgres profile (this machine has no registry)."""
    env = {"BASE_IMAGE": settings.get("BASE_IMAGE"), "CLUSTER_NODE_IMAGE": NODE_IMAGE}
    return Compose(files=(str(IMAGES_FILE.relative_to(ROOT)),), env={**env, "CLUSTER_POSTGRES_IMAGE": postgres_image})


def build_images() -> None:
    """The node image and the PostgreSQL one, built together by compose (BuildKit's cache, which `down` removing the
    images leaves in place)."""
    base = settings.get("BASE_IMAGE")
    if not host_docker("image", "ls", "-q", base):
        raise ClusterError(f"base image {base} missing: run `make build` (its bootstrap builds it)")
    images = images_compose()
    environ = host_environ(images.environment())
    built = subprocess.run(images.command("build"), env=environ, capture_output=True, text=True, timeout=900)
    if built.returncode != 0:
        raise ClusterError(f"building the cluster's images failed ({IMAGES_FILE}): {built.stderr.strip()[-2000:]}")


def start_nodes(cluster: Cluster, http_bind: str, http_port: str) -> None:
    label = f"{LABEL}={cluster.name}"
    host_docker("network", "create", "--label", label, cluster.name)
    for directory in (cluster.api_dir, cluster.archives_dir):
        directory.mkdir(parents=True, exist_ok=True)
        directory.chmod(0o700)
    for node in cluster.nodes:
        host_docker("volume", "create", "--label", label, node)
        extra = ["-v", f"{cluster.archives_dir}:{ARCHIVES_IN_NODE}:ro"]
        if node == cluster.manager:
            # The manager runs nginx (compose.swarm.yaml), published on the node: the host's port maps to it.
            extra += ["-v", f"{cluster.api_dir}:{API_DIR_IN_NODE}", "-e", f"NODE_API_DIR={API_DIR_IN_NODE}"]
            extra += ["-p", f"{http_bind}:{http_port}:{http_port}"]
        host_docker(
            *("run", "-d", "--name", node, "--hostname", node, "--label", label, "--network", cluster.name),
            *NODE_FLAGS,
            *("-v", f"{node}:/var/lib/docker", *extra, NODE_IMAGE),
        )


def wait_for_engines(cluster: Cluster, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    for node in cluster.nodes:
        while not cluster.node_docker(node, "info", "--format", "{{.ServerVersion}}", check=False, timeout=20):
            if time.monotonic() > deadline:
                logs = host_docker("logs", "--tail", "5", node, check=False)
                raise ClusterError(f"the engine in {node} did not start within {timeout:.0f} s: {logs}")
            time.sleep(1)
    while not (cluster.api_dir / "docker.sock").exists():
        if time.monotonic() > deadline:
            raise ClusterError(f"the manager's API socket did not appear in {cluster.api_dir}")
        time.sleep(0.5)


def form_swarm(cluster: Cluster) -> None:
    """Init on the manager, join the workers; the manager is the database node (wsgi-chain.database=true)."""
    cluster.node_docker(cluster.manager, "swarm", "init", "--advertise-addr", "eth0")
    token = cluster.node_docker(cluster.manager, "swarm", "join-token", "-q", "worker")
    for worker in cluster.workers:
        # The manager by name, on the cluster's network (the node containers' DNS).
        cluster.node_docker(worker, "swarm", "join", "--token", token, f"{cluster.manager}:2377")
    label = f"{swarm.DATABASE_LABEL}=true"
    cluster.node_docker(cluster.manager, "node", "update", "--label-add", label, cluster.manager)


def distribute_images(cluster: Cluster, images: list[str], database_node_images: list[str]) -> None:
    """Every node gets the stack's images, the database node the PostgreSQL image too: `docker save` into the state
    directory, which every node mounts, and `docker load -i` there in each node at once (no registry)."""
    for image in images + database_node_images:
        if not host_docker("image", "ls", "-q", image):
            raise ClusterError(f"image {image} missing on this host: run `make build`")
    with ThreadPoolExecutor(2 + len(cluster.nodes)) as pool:
        stack = pool.submit(save_archive, cluster, images)
        database = pool.submit(save_archive, cluster, database_node_images) if database_node_images else None

        def load(node: str) -> None:
            for archive in [stack, database] if database and node == cluster.manager else [stack]:
                in_node = f"{ARCHIVES_IN_NODE}/{archive.result().name}"
                cluster.node_docker(node, "load", "-q", "-i", in_node, timeout=600)

        try:
            list(pool.map(load, cluster.nodes))
        finally:
            for archive in filter(None, (stack, database)):
                if not archive.exception():
                    archive.result().unlink(missing_ok=True)


def save_archive(cluster: Cluster, images: list[str]) -> Path:
    """`docker save` of `images` into a file of its own in the directory the nodes mount."""
    archive = cluster.archives_dir / f"{secrets.token_hex(4)}.tar"
    host_docker("save", "-o", str(archive), *images, timeout=600)
    return archive


def database_settings(cluster: Cluster) -> dict[str, str]:
    """PostgreSQL on the database node, unless DATABASE_URL names a database of the operator's own."""
    if env("DATABASE_URL"):
        return {}
    cluster.state_dir.mkdir(parents=True, exist_ok=True)
    if not cluster.password_file.exists():
        cluster.password_file.write_text(secrets.token_hex(16) + "\n")
        cluster.password_file.chmod(0o600)
    password = cluster.password_file.read_text().strip()
    return {
        "COMPOSE_PROFILES": "postgres",
        "POSTGRES_IMAGE": env("POSTGRES_IMAGE", POSTGRES_IMAGE),
        "POSTGRES_PASSWORD": password,
        "DATABASE_URL": f"postgres://microposts:{password}@postgres/microposts",
    }


def deploy(cluster: Cluster, stack: str, timeout: float, first: bool = False, **overrides: str) -> None:
    """tools/swarm.py's `up` (first) or `update`, run against the manager's engine with the database settings.

    In a process of its own, with its environment given whole: this process's environment is never changed (the
    tests read it from other threads meanwhile)."""
    environ = {
        **os.environ,
        **database_settings(cluster),
        **overrides,
        "SWARM_STACK": stack,
        "UP_TIMEOUT": str(int(timeout)),
        "DOCKER_HOST": cluster.docker_host,
    }
    # The nodes' engines have the images the host built (distribute_images): swarm's `up` builds none of its own.
    command = [sys.executable, "-m", "tools.swarm", *(["up", "--built"] if first else ["update"])]
    result = subprocess.run(command, cwd=ROOT, env=environ, capture_output=True, text=True, timeout=timeout + 600)
    if result.returncode != 0:
        # The reasons swarm gives for the app's tasks that failed (a rollback names none).
        ps = ["docker", "service", "ps", "--no-trunc", "--format", "{{.Name}} {{.Node}} {{.CurrentState}} {{.Error}}"]
        listed = subprocess.run([*ps, f"{stack}_app"], env=environ, capture_output=True, text=True, timeout=60)
        tasks = "; ".join(line for line in listed.stdout.splitlines() if line.split()[-1:] != ["ago"])
        raise ClusterError(f"deploying stack {stack} on {cluster.name} failed: {result.stderr.strip()}; {tasks}")


def up(cluster: Cluster, stack: str, timeout: float) -> None:
    if cluster.exists():
        raise ClusterError(f"cluster {cluster.name} already exists: make cluster-down first (or CLUSTER_NAME=...)")
    swarm.check_durations()
    # As `make up` answers: a line for the bootstrap and one for the stack's build (VERBOSE=1: all of their output).
    bootstrap()
    build_phase(compose())
    ensure_secret_key(settings.path("SECRET_KEY_FILE"))
    http_bind, http_port = settings.get("HTTP_BIND"), settings.get("HTTP_PORT")
    images = [settings.get("APP_IMAGE"), settings.get("NGINX_IMAGE")]
    started = time.monotonic()
    # The stack's name, for `down` to remove the stack file tools/swarm.py writes.
    cluster.state_dir.mkdir(parents=True, exist_ok=True)
    (cluster.state_dir / "stack").write_text(stack + "\n")
    try:
        build_images()
        start_nodes(cluster, http_bind, http_port)
        wait_for_engines(cluster)
        form_swarm(cluster)
        print(f"cluster: {cluster.name}: 1 manager, {WORKERS} workers ({time.monotonic() - started:.0f} s)")
        database_images = [] if env("DATABASE_URL") else [env("POSTGRES_IMAGE", POSTGRES_IMAGE)]
        distribute_images(cluster, images, database_images)
        print(f"cluster: images loaded on every node ({time.monotonic() - started:.0f} s)")
        deploy(cluster, stack, timeout, first=True)
    except BaseException:
        print(f"cluster: {cluster.name} did not come up; make cluster-down removes what there is", file=sys.stderr)
        raise
    print(
        f"cluster: stack {stack} is up on http://{settings.served_host(http_bind)}:{http_port}/ "
        f"({time.monotonic() - started:.0f} s); "
        f"DOCKER_HOST={cluster.docker_host} docker node ls"
    )


# --- down ---------------------------------------------------------------------------------------------------------


def cgroup_leftovers(cluster: Cluster) -> list[Path]:
    """The nodes' cgroup parents (node-entrypoint: <the node's own cgroup's parent>/<node>, /docker/<node> with
    cgroupfs; /<node> before) in every hierarchy, deepest first."""
    found = []
    for node in cluster.nodes:
        for hierarchy in Path("/sys/fs/cgroup").iterdir():
            if hierarchy.is_symlink() or not hierarchy.is_dir():
                continue
            for top in (hierarchy / node, *hierarchy.glob(f"*/{node}")):
                if top.is_dir() and not top.is_symlink():
                    found += sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts))
                    found.append(top)
    return found


def down(cluster: Cluster) -> None:
    label = f"label={LABEL}={cluster.name}"
    containers = host_docker("ps", "-aq", "--filter", label).split()
    if containers:
        host_docker("rm", "-f", "-v", *containers)
    for volume in host_docker("volume", "ls", "-q", "--filter", label).split():
        host_docker("volume", "rm", volume)
    for network in host_docker("network", "ls", "-q", "--filter", label).split():
        host_docker("network", "rm", network)
    # A node removed with its engine running leaves its containers' (empty) cgroups on the host: rmdir each.
    for group in cgroup_leftovers(cluster):
        try:
            group.rmdir()
        except OSError as exc:
            print(f"cluster: left {group}: {exc.strerror}", file=sys.stderr)
    # The images `up` built, unless another cluster's nodes still use them.
    for image in (NODE_IMAGE, POSTGRES_IMAGE):
        if host_docker("image", "ls", "-q", image) and not host_docker("ps", "-aq", "--filter", f"ancestor={image}"):
            host_docker("rmi", image, check=False)
    stack_name = cluster.state_dir / "stack"
    if stack_name.exists():
        (swarm.BUILD_DIR / f"{stack_name.read_text().strip()}.yaml").unlink(missing_ok=True)
    shutil.rmtree(cluster.state_dir, ignore_errors=True)
    print(f"cluster: {cluster.name} removed (nodes, volumes, network, images)")


def status(cluster: Cluster, stack: str) -> None:
    if not cluster.exists():
        print(f"cluster: no cluster {cluster.name}")
        return
    with cluster.manager_cli():
        print(swarm.docker("node", "ls"))
        print(swarm.docker("stack", "services", stack, check=False))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["up", "down", "status"])
    args = parser.parse_args()
    cluster = Cluster(settings.get("CLUSTER_NAME"))
    stack = settings.get("SWARM_STACK")
    timeout = float(settings.get("UP_TIMEOUT"))
    try:
        if args.command == "up":
            up(cluster, stack, max(timeout, 240))
        elif args.command == "down":
            down(cluster)
        else:
            status(cluster, stack)
    except (ClusterError, swarm.SwarmError, StackError) as exc:
        print(f"cluster: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
