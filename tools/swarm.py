"""The Docker Swarm stack behind the Makefile: `python -m tools.swarm up|update|down|render`.

- up: bootstrap and build the images as `make up` does (not with --built: the engine has them), start a single-node
  swarm on the loopback if this engine is in none (and say so), deploy the stack and wait until every replica is
  healthy.
- update: deploy again (e.g. a new APP_IMAGE tag) and wait for the rolling update to complete; exit non-zero if
  swarm rolled it back.
- down: remove the stack and wait until its tasks and networks are gone; leave the swarm if `up` started it.
- render: print the stack file.

The stack file is compose.yaml + compose.swarm.yaml, merged and interpolated by `docker compose config`, minus
what `docker stack deploy` (Docker 20.10) cannot do. Settings from the environment (README's configuration
table): SWARM_STACK, APP_REPLICAS, HTTP_PORT, APP_IMAGE, NGINX_IMAGE, SECRET_KEY_FILE, UP_TIMEOUT.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tools import engine, settings
from tools.compose import ROOT, Compose, image_record, timestamp
from tools.stack import (
    StackError,
    bootstrap,
    build_phase,
    check_app_env_file,
    compose,
    egress_overlay,
    ensure_secret_key,
)

BUILD_DIR = ROOT / ".build" / "swarm"
# Written by `up` when it started the swarm, naming the stack: only `down` of that stack leaves the swarm again.
STARTED_MARKER = BUILD_DIR / "swarm-started-here"
# compose.yaml's unix socket volumes (nginx's socket, and the listener's private one), shared on one host, and the
# listener that owns nginx's socket there: not part of the stack, where nginx reaches the replicas over TCP.
SOCKET_VOLUMES = ("uwsgi-socket", "uwsgi-zerg")
HOST_ONLY_SERVICES = ("listener",)
# Compose keys that `docker stack deploy` rejects or ignores with a warning.
UNSUPPORTED = ("build", "depends_on", "pull_policy", "restart", "profiles", "container_name")
# The node label that places the postgres service (compose.swarm.yaml): its data volume is that node's.
DATABASE_LABEL = "wsgi-chain.database"
# The label `docker stack deploy` puts on a stack's services, containers, networks and volumes.
STACK_LABEL = "com.docker.stack.namespace"


class SwarmError(RuntimeError):
    """Something the operator must fix; the message says what."""


def docker(*args: str, check: bool = True, timeout: float = 120) -> str:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise SwarmError(f"docker {' '.join(args)} failed: {result.stderr.strip() or result.stdout.strip()}")
    return result.stdout.strip()


# --- the swarm itself ---------------------------------------------------------------------------------------------


def swarm_state() -> str:
    """'active', 'inactive', 'pending', ... as the engine reports it."""
    return docker("info", "--format", "{{.Swarm.LocalNodeState}}")


def ensure_swarm() -> bool:
    """Start a single-node swarm on the loopback unless the engine is in one; True if this call started it."""
    state = swarm_state()
    if state == "active":
        return False
    if state != "inactive":
        raise SwarmError(f"this engine's swarm state is {state!r}; resolve it (docker info) and retry")
    # The loopback: a single-node swarm advertises nothing to the network.
    docker("swarm", "init", "--advertise-addr", "127.0.0.1")
    print("swarm: started a single-node swarm on 127.0.0.1 (make swarm-down leaves it again)")
    return True


def leave_swarm() -> None:
    docker("swarm", "leave", "--force")
    # `swarm init` also made the docker_gwbridge network, which leaving keeps: remove it too (it fails, harmlessly,
    # while some container still uses it).
    docker("network", "rm", "docker_gwbridge", check=False)


# --- the stack file -----------------------------------------------------------------------------------------------


def byte_count(size: str) -> int:
    """'64m' -> 67108864: the stack file wants tmpfs sizes in bytes."""
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    size = size.strip().lower().removesuffix("b")
    if size[-1:] in units:
        return int(size[:-1]) * units[size[-1]]
    return int(size)


def adapt_service(service: dict[str, Any]) -> None:
    """One service of `docker compose config`'s output, made fit for `docker stack deploy` (in place)."""
    for key in UNSUPPORTED:
        service.pop(key, None)
    # Unset optional variables (e.g. UWSGI_WORKERS) stay unset rather than becoming empty.
    service["environment"] = {k: v for k, v in (service.get("environment") or {}).items() if v is not None}
    # The socket volume is one host's: here nginx reaches the replicas over TCP (UWSGI_SOCKET in the overlay).
    mounts = [m for m in service.get("volumes", []) if m.get("source") not in SOCKET_VOLUMES]
    # Swarm silently drops the service-level `tmpfs` list (with `read_only`, /tmp would be read-only): the same
    # directories become tmpfs mounts, which it honours.
    for entry in service.pop("tmpfs", None) or []:
        target, _, options = entry.partition(":")
        mount: dict[str, Any] = {"type": "tmpfs", "target": target}
        size = dict(o.partition("=")[::2] for o in options.split(",") if o).get("size")
        if size:
            mount["tmpfs"] = {"size": byte_count(size)}
        mounts.append(mount)
    if mounts:
        service["volumes"] = mounts
    else:
        service.pop("volumes", None)
    ports = []
    for port in service.get("ports", []):
        # On the node itself (host mode), not the routing mesh: nginx sees the client's own address (the mesh
        # rewrites it), and no IPVS is needed. Swarm cannot bind one address: every address of the node.
        published = int(port["published"])
        ports.append({"target": port["target"], "published": published, "protocol": "tcp", "mode": "host"})
    if ports:
        service["ports"] = ports
    for item in service.get("configs", []):
        if isinstance(item.get("mode"), str):
            item["mode"] = int(item["mode"], 8)  # compose prints it as an octal string


# The duration settings the stack file carries (compose's own refusal of one is a traceback's worth of output).
SWARM_DURATIONS = ("HEALTH_INTERVAL", "SWARM_UPDATE_MONITOR")


def check_durations() -> None:
    """Refuse a duration setting the stack file could not carry, before anything is started or deployed."""
    for name in SWARM_DURATIONS:
        try:
            settings.duration(name)
        except ValueError as error:
            raise SwarmError(str(error)) from None


def render(stack: str) -> dict[str, Any]:
    """compose.yaml + compose.swarm.yaml (and the egress overlay with APP_EGRESS=on) as a stack file Docker 20.10's
    `docker stack deploy` takes."""
    check_durations()
    split = settings.TOPOLOGIES["split"]
    files = (split.compose_file, "compose.swarm.yaml", *egress_overlay(split))
    # The stack file sets more for the app than compose does (its socket, the replica header, the drain).
    check_app_env_file(Compose(files=files))
    out = Compose(files=files).run("config", capture=True).stdout
    config = yaml.safe_load(out)
    # 20.10's stack loader needs a file format version; 3.9 has every key used here.
    stack_file: dict[str, Any] = {"version": "3.9"}
    for name in HOST_ONLY_SERVICES:
        config["services"].pop(name, None)
    for service in config["services"].values():
        adapt_service(service)
    stack_file["services"] = config["services"]
    for section in ("networks", "volumes", "secrets", "configs"):
        entries = {}
        for name, entry in (config.get(section) or {}).items():
            if section == "volumes" and name in SOCKET_VOLUMES:
                continue
            entry = dict(entry or {})
            # Compose names them after its project; the stack's own namespace must apply instead.
            entry.pop("name", None)
            if section == "configs":
                # Configs are immutable: a changed file gets a new name, so a redeploy replaces it.
                digest = hashlib.sha256(Path(entry["file"]).read_bytes()).hexdigest()[:12]
                entry["name"] = f"{stack}_{name}-{digest}"
            entries[name] = entry
        if entries:
            stack_file[section] = entries
    return stack_file


def write_stack_file(stack: str, stack_file: dict[str, Any]) -> Path:
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    path = BUILD_DIR / f"{stack}.yaml"
    path.write_text(yaml.safe_dump(stack_file, sort_keys=False))
    return path


# --- deploy, wait, remove -----------------------------------------------------------------------------------------


def services(stack: str) -> dict[str, dict[str, Any]]:
    out = docker("stack", "services", stack, "--format", "{{json .}}", check=False)
    rows = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return {row["Name"].removeprefix(f"{stack}_"): row for row in rows}


def inspect_service(stack: str, service: str) -> dict[str, Any]:
    return json.loads(docker("service", "inspect", f"{stack}_{service}"))[0]


def tasks(stack: str, service: str) -> list[dict[str, Any]]:
    out = docker("service", "ps", f"{stack}_{service}", "--no-trunc", "--format", "{{json .}}", check=False)
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


@dataclass(frozen=True)
class ServiceState:
    """What a wait reads of a service: its running and wanted replicas, its update's state and message, and for a
    one-shot the state of its newest task (lower case, as the API spells it: complete, failed...; "" when none)."""

    running: int
    wanted: int
    update: str = ""
    message: str = ""
    newest_task: str = ""
    # A rolling update the deploy being waited for asked for (its task template changed), not begun yet.
    due: bool = False


# The stack's one-shot services: done when their newest task completed, not when replicas run.
ONE_SHOTS = ("migrate",)
# A service's update states while Swarm carries it out or watches it (its monitor): a deploy is not done yet.
UNDER_WAY = ("updating", "rollback_started")


def update_of(service: dict[str, Any], since: float) -> tuple[str, str, bool]:
    """A service's rolling update as a wait since `since` (a deploy's start; 0: any) sees it: its state and message,
    "" for one begun before (the previous command's, a rollback that test or operator asked for), and whether the
    deploy changed its task template, which starts one, without it having begun yet (Swarm starts it moments later:
    read too soon, a service looked converged on its old tasks, or failed with the last update's rollback)."""
    status = service.get("UpdateStatus") or {}
    begun = timestamp(status.get("StartedAt", ""))
    if begun < since:
        status = {}
    spec, previous = service.get("Spec") or {}, service.get("PreviousSpec") or {}
    changed = bool(previous) and timestamp(service.get("UpdatedAt", "")) >= since > 0
    due = changed and spec.get("TaskTemplate") != previous.get("TaskTemplate") and not status
    return status.get("State", ""), status.get("Message", ""), due


def service_states(stack: str, since: float = 0) -> dict[str, ServiceState]:
    """The stack's services by name, read through the engine's API when the CLI would reach a local engine (one
    listing a poll, against a `docker` call per service: tools/engine.py), else through the CLI; their updates as a
    wait since `since` sees them (update_of)."""
    if local := engine.local():
        with contextlib.suppress(OSError):
            return api_service_states(local, stack, since)
    states = {}
    for name, row in services(stack).items():
        update, message, due = update_of(inspect_service(stack, name), since)
        if name in ONE_SHOTS:
            # The newest task (listed first); its CurrentState reads "Complete 3 seconds ago".
            newest = [t["CurrentState"].split()[0].lower() for t in tasks(stack, name)][:1]
            states[name] = ServiceState(0, 0, update, message, newest[0] if newest else "", due)
            continue
        running, _, wanted = row["Replicas"].partition("/")
        states[name] = ServiceState(int(running), int(wanted.split()[0]), update, message, due=due)
    return states


def api_service_states(local: engine.Engine, stack: str, since: float = 0) -> dict[str, ServiceState]:
    states = {}
    for service in local.services(f"{STACK_LABEL}={stack}"):
        name = service["Spec"]["Name"].removeprefix(f"{stack}_")
        counts = service.get("ServiceStatus")
        if counts is None:
            # An engine before API 1.41 counts no tasks for a listing: the CLI counts them itself.
            raise OSError(f"the engine gave no task counts for {service['Spec']['Name']}")
        update, message, due = update_of(service, since)
        newest = local.tasks(service["ID"])[:1] if name in ONE_SHOTS else []
        states[name] = ServiceState(
            counts.get("RunningTasks", 0),
            counts.get("DesiredTasks", 0),
            update,
            message,
            newest[0]["Status"]["State"] if newest else "",
            due,
        )
    return states


def converged(stack: str, since: float = 0) -> tuple[bool, str]:
    """Every long-running service has all its replicas running (healthy: swarm counts a task with a health check as
    running only once it passes) and no rolling update to come or under way, and the migrate one-shot completed, its
    update no longer watched."""
    states = service_states(stack, since)
    if not states:
        return False, "no services yet"
    pending = []
    for name, state in states.items():
        if name in ONE_SHOTS:
            if state.newest_task in ("failed", "rejected"):
                raise SwarmError(f"{stack}_{name} failed: docker service logs {stack}_{name}")
            if state.newest_task != "complete":
                pending.append(f"{name} {state.newest_task or 'no task yet'}")
            elif state.update in UNDER_WAY:
                # Swarm still watches the update that started it (its monitor) and writes its end to the service when
                # that passes, which versions the service anew: a deploy read just before was refused "update out of
                # sequence" (a swarm-update right after another, in the suite).
                pending.append(f"{name} {state.update}")
            continue
        if state.running != state.wanted:
            pending.append(f"{name} {state.running}/{state.wanted}")
        if state.update in UNDER_WAY:
            pending.append(f"{name} {state.update}")
        elif state.due:
            pending.append(f"{name} update not begun yet")
    return not pending, ", ".join(pending)


def wait(stack: str, timeout: float, since: float = 0) -> None:
    """Until the stack converges (converged()); since: when the deploy waited for began (its updates only count)."""
    deadline = time.monotonic() + timeout
    while True:
        done, pending = converged(stack, since)
        if done:
            break
        if time.monotonic() > deadline:
            raise SwarmError(f"stack {stack} did not converge within {timeout:.0f} s: {pending}")
        time.sleep(1)
    for name, state in service_states(stack, since).items():
        if state.update.startswith("rollback") or state.update == "paused":
            raise SwarmError(f"{stack}_{name}: update {state.update}: {state.message}{why_failed(stack, name)}")


def why_failed(stack: str, service: str) -> str:
    """The error of the service's newest task that failed (Swarm's reason for a rollback), and where its logs are."""
    failed = [task for task in tasks(stack, service) if task.get("Error")]
    if not failed:
        return ""
    return f" (its task {failed[0]['Name']}: {failed[0]['Error']}; docker service logs {stack}_{service})"


def check_database(stack_file: dict[str, Any]) -> None:
    """The database choice a swarm of several nodes needs (docs/scaling-out.md), met or refused before deploying.

    SQLite is one file on one node's volume: replicas on other nodes would each get an empty database of their own
    (migrations run on one node only, so their /readyz fails). So on more than one node the app needs DATABASE_URL
    (PostgreSQL); the `postgres` profile's server runs on the one node labelled DATABASE_LABEL, where its volume is.
    """
    nodes = docker("node", "ls", "--format", "{{.ID}}").split()
    app_env = stack_file["services"]["app"].get("environment") or {}
    if len(nodes) > 1 and not app_env.get("DATABASE_URL"):
        raise SwarmError(
            f"this swarm has {len(nodes)} nodes and DATABASE_URL is empty: SQLite is one file on one node, so "
            "replicas elsewhere would each have an empty database of their own. Set DATABASE_URL to PostgreSQL "
            "(COMPOSE_PROFILES=postgres runs one in the stack; docs/scaling-out.md)"
        )
    if "postgres" in stack_file["services"]:
        labels = [
            docker("node", "inspect", node, "--format", f'{{{{index .Spec.Labels "{DATABASE_LABEL}"}}}}')
            for node in nodes
        ]
        if labels.count("true") != 1:
            raise SwarmError(
                f"the postgres service needs exactly one node labelled {DATABASE_LABEL}=true (its data volume is "
                f"that node's), found {labels.count('true')}: docker node update --label-add {DATABASE_LABEL}=true "
                "<node>"
            )


# The image settings, by the service that runs them: a running stack keeps its images unless a new one is asked for.
IMAGE_SETTINGS = {"APP_IMAGE": "app", "NGINX_IMAGE": "nginx"}
# The service label naming the image a service was deployed from: its spec names that image's content (pinned()).
IMAGE_LABEL = "wsgi-chain.image"


def familiar(repository: str) -> str:
    """A repository as the engine lists its digests: Docker Hub's host and library/ left out."""
    return repository.removeprefix("docker.io/").removeprefix("library/")


def pinned(image: str) -> str:
    """The reference a service is deployed with: the content `image` names now, which a later build under the same
    tag does not move. Deployed by its tag, a rebuilt image was never rolled out (the service's spec was the same):
    `make swarm-up` after an edit of the app said the stack was up and its replicas served the old code; and a
    rollback went to whatever the tag named by then. An image from a registry is pinned to its digest there
    (name@sha256:..., which every node can pull); one built here is named by its ID, which the local cluster's nodes
    have too (the images are loaded into them) and which no node could pull by its tag either. An image this engine
    lacks is left to the nodes to pull by its name, as before."""
    if "@" in image:
        return image
    record = image_record(image)
    if record is None:
        return image
    repository = image if ":" not in image.rsplit("/", 1)[-1] else image.rsplit(":", 1)[0]
    for digest in record.get("RepoDigests") or []:
        name, _, value = digest.partition("@")
        if familiar(name) == familiar(repository):
            return f"{image}@{value}"
    return str(record["Id"])


def running_image(stack: str, service: str) -> tuple[str, str]:
    """The image a service was deployed from and the reference its spec runs (its label and its pin; a stack
    deployed by tag before the pins: that tag twice)."""
    spec = inspect_service(stack, service)["Spec"]
    reference = spec["TaskTemplate"]["ContainerSpec"]["Image"]
    return (spec.get("Labels") or {}).get(IMAGE_LABEL) or reference.split("@")[0], reference


def keep_running_images(stack: str) -> dict[str, str]:
    """For each image setting not asked for (not in the environment: defaults.env's default), the image the
    stack's service runs now, so that `make swarm-up APP_REPLICAS=3` after a `swarm-update APP_IMAGE=<new>` scales
    the new version instead of rolling it back to the default tag: its name set for the render, and returned with
    the content it runs (name -> reference)."""
    kept = {}
    running = services(stack)
    for setting, service in IMAGE_SETTINGS.items():
        if setting in os.environ or service not in running:
            continue
        image, reference = running_image(stack, service)
        if image != settings.get(setting):
            os.environ[setting] = image
            kept[image] = reference
            print(f"swarm: {service} keeps its running image {image} (set {setting} to change it)")
    return kept


def pin_images(stack_file: dict[str, Any], kept: dict[str, str]) -> None:
    """Each service running one of the stack's images deploys its content (pinned(); a kept image the content it
    runs), labelled with its name; one line says which content each name now is."""
    names = {settings.get(setting) for setting in IMAGE_SETTINGS}
    said = {}
    for service in stack_file["services"].values():
        image = service.get("image", "")
        if image not in names:
            continue
        service["image"] = said[image] = pinned(kept.get(image, image))
        service.setdefault("deploy", {}).setdefault("labels", {})[IMAGE_LABEL] = image
    shown = [f"{name} as {short(reference)}" for name, reference in said.items() if reference != name]
    if shown:
        print(f"swarm: deploying {', '.join(shown)}")


def short(reference: str) -> str:
    """An image ID or digest as `docker images` shows it (12 hex digits)."""
    name, _, digest = reference.rpartition("@")
    digest = digest.removeprefix("sha256:")[:12]
    return f"{name}@{digest}" if name else f"image {digest}"


def deploy(stack: str) -> None:
    kept = keep_running_images(stack)
    stack_file = render(stack)
    check_database(stack_file)
    pin_images(stack_file, kept)
    path = write_stack_file(stack, stack_file)
    # No registry: the images are this engine's own (--resolve-image never keeps swarm from asking one).
    docker("stack", "deploy", "--resolve-image", "never", "--prune", "-c", str(path), stack, timeout=300)


def rolled_out(stack: str, since: float) -> list[str]:
    """The services whose tasks a deploy since `since` replaced (a rolling update of theirs began since)."""
    return sorted(name for name, state in service_states(stack, since).items() if state.update)


def up(stack: str, timeout: float, build: bool = True) -> None:
    """Deploy the stack, first (build) bootstrapping and building this engine's images as `make up` does, in a line
    each (VERBOSE=1: all of their output). tools/cluster.py deploys with build=False: its nodes' engines get the
    images the host built."""
    check_durations()
    if build:
        bootstrap()
        build_phase(compose())
    ensure_secret_key(settings.path("SECRET_KEY_FILE"))
    if ensure_swarm():
        BUILD_DIR.mkdir(parents=True, exist_ok=True)
        STARTED_MARKER.write_text(stack + "\n")
    since = time.time()
    deploy(stack)
    wait(stack, timeout, since)
    port = settings.get("HTTP_PORT")
    host = settings.served_host("127.0.0.1")
    print(f"swarm: stack {stack} is up on http://{host}:{port}/ (published on every address of the node)")


def update(stack: str, timeout: float) -> None:
    check_durations()
    if not services(stack):
        raise SwarmError(f"no stack {stack!r} to update: make swarm-up first")
    since = time.time()
    deploy(stack)
    wait(stack, timeout, since)
    if rolled := rolled_out(stack, since):
        print(f"swarm: stack {stack} updated: {', '.join(rolled)} rolled out")
    else:
        print(
            f"swarm: stack {stack} updated; no service rolled out: each runs the images and settings it ran (make "
            "swarm-up builds a changed app and rolls it out; make swarm-update deploys images built before)"
        )


def down(stack: str, timeout: float, volumes: bool = False) -> None:
    remove(stack, timeout, volumes)
    if started_here(stack):
        if not services_left():
            leave_swarm()
            print("swarm: left the swarm make swarm-up had started")
        else:
            print("swarm: other stacks still run in the swarm make swarm-up started; not leaving it")
        STARTED_MARKER.unlink()


def started_here(stack: str) -> bool:
    """Whether `up` of this stack started the swarm (the marker names the stack)."""
    return STARTED_MARKER.exists() and STARTED_MARKER.read_text().strip() == stack


def remove(stack: str, timeout: float, volumes: bool = False) -> None:
    """Remove the stack and wait until its containers and networks are gone (and its volumes, if asked)."""
    label = f"label={STACK_LABEL}={stack}"
    if swarm_state() == "active":
        docker("stack", "rm", stack, check=False)
        deadline = time.monotonic() + timeout
        # `stack rm` returns at once; its containers and networks go away in the background.
        while leftovers(stack):
            if time.monotonic() > deadline:
                raise SwarmError(f"stack {stack} still has containers or networks after {timeout:.0f} s")
            time.sleep(1)
    # The volumes are the node's own: they outlive the stack, and the swarm.
    if volumes:
        for volume in docker("volume", "ls", "-q", "--filter", label).split():
            docker("volume", "rm", volume)


def leftovers(stack: str) -> bool:
    """Whether the stack still has containers or networks (asked of a local engine's API once a second, as `remove`
    waits; else of the CLI)."""
    label = f"{STACK_LABEL}={stack}"
    if local := engine.local():
        with contextlib.suppress(OSError):
            return bool(local.container_ids(label) or local.network_ids(label))
    filtered = ("--filter", f"label={label}")
    return bool(docker("ps", "-aq", *filtered) or docker("network", "ls", "-q", *filtered))


def services_left() -> bool:
    return swarm_state() == "active" and bool(docker("service", "ls", "-q"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["up", "update", "down", "render"])
    parser.add_argument("--volumes", action="store_true", help="down: also remove the stack's volumes")
    parser.add_argument("--built", action="store_true", help="up: the engine has the images; no bootstrap, no build")
    args = parser.parse_args()
    stack = settings.get("SWARM_STACK")
    timeout = float(settings.get("UP_TIMEOUT"))
    try:
        if args.command == "up":
            up(stack, timeout, build=not args.built)
        elif args.command == "update":
            update(stack, max(timeout, 300))
        elif args.command == "down":
            down(stack, timeout, volumes=args.volumes)
        else:
            print(yaml.safe_dump(render(stack), sort_keys=False), end="")
    except (SwarmError, StackError) as exc:
        print(f"swarm: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
