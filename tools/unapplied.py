"""Settings given to `make reload` or `make restart` that the stack running does not have.

Both act on the stack as it runs: a reload starts uWSGI's workers again from the same master, a restart the app server,
each with the settings its container was created with. A setting passed with them (`make restart UWSGI_WORKERS=4`)
would change nothing, and nothing would say so; `make up` applies it, recreating the containers whose settings changed.
So these targets look first, and refuse naming each such setting.

Only settings given now count (set in the environment or on make's command line): one the stack was started with and
not repeated is the stack's, kept as it runs. Compared where a setting lands in a container: its environment (a name
of its own, or one a setting makes: SERVER_NAMES from ALLOWED_HOSTS, an APP_ENV_FILE's lines), its image, and the ports
it publishes.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterable

from tools.compose import ROOT, Compose, Container, environ

# What a variable compose requires (`${NAME:?why}`) is given for the renderings here when the environment has none: one
# that `make dev` sets for its own stack (DEV_APP_SRC) and only its compose command sees. It lands where no setting is
# compared (a bind mount's source, the dev watcher's banner), and in both renderings alike.
PLACEHOLDER = "/"
# Compose's syntax for a variable it requires: ${NAME:?message} or ${NAME?message}. (Its `config --variables` names
# each variable once, with the flags of whichever of its uses it read last.)
REQUIRED = re.compile(r"\$\{(\w+):?\?")


def config(stack: Compose, env: dict[str, str], *args: str) -> dict:
    """`compose config --format json [args]` with these settings; ValueError naming compose's own error."""
    run = subprocess.run(
        stack.command("config", "--format", "json", *args), env=env, capture_output=True, text=True, check=False
    )
    if run.returncode != 0:
        said = [line for line in run.stderr.splitlines() if line.strip()] or [f"exit {run.returncode}"]
        raise ValueError(f"compose cannot read the stack's files with the settings given: {said[-1]}")
    return json.loads(run.stdout or "{}")


def render(stack: Compose, env: dict[str, str]) -> dict[str, dict]:
    """The stack's services as compose makes them from these settings (interpolated, env files read)."""
    return config(stack, env).get("services") or {}


def variables(stack: Compose) -> set[str]:
    """The variables the stack's compose files use."""
    return set(config(stack, stack.environment(), "--variables"))


def required(stack: Compose) -> set[str]:
    """The variables one of the stack's compose files requires somewhere (its overlays do: the dev ones)."""
    return {name for file in stack.files for name in REQUIRED.findall((ROOT / file).read_text())}


def ports(published: Iterable[tuple[str, str, str]]) -> dict[str, set[tuple[str, str]]]:
    """Published ports by the container's port: {container port: {(host address, host port)}}."""
    found: dict[str, set[tuple[str, str]]] = {}
    for host, port, target in published:
        found.setdefault(target, set()).add((host, port))
    return found


def rendered_ports(service: dict) -> dict[str, set[tuple[str, str]]]:
    """A rendered service's published ports, as ports() has a container's."""
    return ports(
        (port.get("host_ip", ""), str(port.get("published", "")), str(port.get("target", "")))
        for port in service.get("ports") or []
    )


def shown(published: set[tuple[str, str]]) -> str:
    """Published ports as `address:port`, an empty address being every one (as Docker binds it)."""
    return ", ".join(sorted(f"{host or '*'}:{port}" for host, port in published)) or "none"


def differences(container: Container, now: dict, without: dict, names: set[str]) -> list[str]:
    """What the settings given now (`names`) would change in this container: where its service rendered with them
    (`now`) differs from the container, and either the setting is that name or the rendering without them
    (`without`) differs too."""
    found = []
    wanted, fallback = now.get("environment") or {}, without.get("environment") or {}
    for name, value in sorted(wanted.items()):
        if value is None or container.env.get(name) == value:
            continue
        if name in names or fallback.get(name) != value:
            running = container.env.get(name)
            found.append(
                f"{name}={value} (the {container.service} container has {running!r})"
                if running is not None
                else f"{name}={value} (unset in the {container.service} container)"
            )
    image = now.get("image", "")
    if image and image != without.get("image") and image != container.image:
        found.append(f"image {image} (the {container.service} container runs {container.image})")
    wanted_ports, fallback_ports, running_ports = (
        rendered_ports(now),
        rendered_ports(without),
        ports(container.published),
    )
    for target, published in sorted(wanted_ports.items()):
        if published != fallback_ports.get(target) and published != running_ports.get(target, set()):
            running = shown(running_ports.get(target, set()))
            found.append(f"ports {shown(published)} (the {container.service} container publishes {running})")
    return found


def unapplied(stack: Compose) -> list[str]:
    """Each setting given now that the running stack's containers do not have, as `NAME=value (what runs)`: its
    services rendered with the settings given now and without them, against its running containers. A setting is
    given now when it is set, not empty, in the environment (make passes its command line's there), and is one of the
    variables the compose files use or a name in a service's environment; not the project's name, which chose the
    stack."""
    used, needed = variables(stack), required(stack)
    env = stack.environment()
    env |= {name: PLACEHOLDER for name in needed if not env.get(name)}
    containers = [container for container in stack.containers() if container.status == "running"]
    # The listener's image is the build's choice (tools/stack.py: listener_image), no setting: what runs stands.
    listener = [container.image for container in containers if container.service == "listener"]
    if listener and not env.get("LISTENER_IMAGE"):
        env["LISTENER_IMAGE"] = listener[0]
    now = render(stack, env)
    names = set(used) | {name for service in now.values() for name in service.get("environment") or {}}
    names = {name for name in names if environ().get(name)} - {"COMPOSE_PROJECT_NAME"}
    if not names:
        return []
    rest = {name: value for name, value in env.items() if name not in names}
    without = render(stack, rest | {name: PLACEHOLDER for name in needed if not rest.get(name)})
    found: list[str] = []
    for container in containers:
        if container.service not in now:
            continue
        for difference in differences(container, now[container.service], without.get(container.service, {}), names):
            if difference not in found:
                found.append(difference)
    return found


def refusal(target: str, found: list[str], dev: bool = False) -> str:
    """The one line a reload or restart refuses with; `dev`: the stack is one `make dev` started, which applies them."""
    does = "the workers again from the same master" if target == "reload" else "the app server again"
    return (
        f"not applied by a {target} (it starts {does}, with the settings the stack was started with): "
        f"{'; '.join(found)}. `make {'dev' if dev else 'up'}` with them applies them, recreating the containers whose "
        f"settings changed (docs/operations.md: Reload and full restart); nothing was {target}ed"
    )
