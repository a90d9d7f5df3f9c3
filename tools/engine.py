"""The Docker engine's API over its unix socket, for the calls the tools and tests repeat while they wait on a stack:
list a project's containers and networks, read their records and logs, run a container's health check in it, read a
swarm stack's services and tasks, tag an image, read an image's record and the engine's info (the bootstrap's checks,
before every make target that builds). Each `docker` CLI call starts a Go program (about 14 ms of CPU for an
inspect; the API call costs 0.5 ms; an exec 36 ms against 55 ms: docs/testing.md), and a start polls them twice a
second.

Only for an engine at a unix socket: DOCKER_HOST unset or unix://, no docker context chosen. Anything else (a tcp or
ssh DOCKER_HOST, a context) has no `local()` engine, and the callers use the CLI, which knows how.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

DEFAULT_SOCKET = "/var/run/docker.sock"
TIMEOUT = 10.0


def socket_path(env: Mapping[str, str] | None = None) -> str | None:
    """The engine's unix socket the CLI would use with this environment, or None when the CLI would go elsewhere."""
    env = os.environ if env is None else env
    if env.get("DOCKER_CONTEXT") or current_context(env) not in ("", "default"):
        return None
    host = env.get("DOCKER_HOST", "")
    if not host:
        return DEFAULT_SOCKET
    return host.removeprefix("unix://") if host.startswith("unix://") else None


def cli_config_dir(env: Mapping[str, str]) -> Path:
    """The docker CLI's config folder: DOCKER_CONFIG, else ~/.docker."""
    return Path(env["DOCKER_CONFIG"]) if env.get("DOCKER_CONFIG") else Path(env.get("HOME", "/")) / ".docker"


def cli_config(env: Mapping[str, str]) -> dict | None:
    """The docker CLI's config file, decoded: {} when there is none, None when it cannot be read as the CLI's."""
    try:
        config = json.loads((cli_config_dir(env) / "config.json").read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError):
        return None
    return config if isinstance(config, dict) else None


def current_context(env: Mapping[str, str]) -> str:
    """The context `docker context use` chose (the CLI's config file), or ""."""
    return str((cli_config(env) or {}).get("currentContext") or "")


def local(env: dict[str, str] | None = None) -> Engine | None:
    """The engine the CLI would reach with this environment (this process's by default), when it is a unix socket
    this process may use; None when the CLI would go elsewhere."""
    path = socket_path(env)
    return Engine(path) if path and os.access(path, os.R_OK | os.W_OK) else None


class _Connection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float):
        super().__init__("localhost", timeout=timeout)
        self.socket_path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.socket_path)


@dataclass(frozen=True)
class Engine:
    socket: str

    def request(self, method: str, path: str, body: dict | None = None, timeout: float = TIMEOUT) -> tuple[int, bytes]:
        """One API call; its status and whole body (a stream is read to its end). OSError when the engine does not
        answer in `timeout` s."""
        connection = _Connection(self.socket, timeout)
        try:
            payload = json.dumps(body) if body is not None else None
            connection.request(method, path, body=payload, headers={"Content-Type": "application/json"})
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def listing(self, path: str, what: str, **filters: list[str]) -> list[dict]:
        """A GET of a list (`path`, with these filters), decoded; OSError when the engine answers anything but 200."""
        separator = "&" if "?" in path else "?"
        status, body = self.request("GET", f"{path}{separator}filters={urllib.parse.quote(json.dumps(filters))}")
        if status != 200:
            raise OSError(f"the engine answered {status} to a listing of {what}: {body[:200]!r}")
        return json.loads(body)

    def container_ids(self, *labels: str) -> list[str]:
        """Every container with all these labels (`key=value`), stopped ones included, newest first: `docker ps -aq`
        with a `--filter label=...` for each."""
        return [container["Id"] for container in self.listing("/containers/json?all=1", "containers", label=[*labels])]

    def network_ids(self, label: str) -> list[str]:
        """Every network with this label: `docker network ls -q --filter label=...`."""
        return [network["Id"] for network in self.listing("/networks", "networks", label=[label])]

    def services(self, label: str) -> list[dict]:
        """The swarm services with this label, as `docker service inspect` gives them, each with its ServiceStatus:
        the running and desired tasks `docker service ls` shows as its replicas."""
        return self.listing("/services?status=true", "services", label=[label])

    def tasks(self, service: str) -> list[dict]:
        """A swarm service's tasks (its ID or name), newest first."""
        return sorted(self.listing("/tasks", "tasks", service=[service]), key=created, reverse=True)

    def tag(self, image: str, target: str) -> bool:
        """`docker tag image target` (target: repository:tag); False when there is no such image."""
        repository, colon, tag = target.rpartition(":")
        if not colon or "/" in tag:
            repository, tag = target, "latest"
        query = urllib.parse.urlencode({"repo": repository, "tag": tag})
        status, body = self.request("POST", f"/images/{urllib.parse.quote(image, safe='')}/tag?{query}")
        if status == 404:
            return False
        if status != 201:
            raise OSError(f"the engine answered {status} to tagging {image} as {target}: {body[:200]!r}")
        return True

    def info(self) -> dict:
        """`docker info`'s record of the engine; OSError when it does not answer."""
        status, body = self.request("GET", "/info")
        if status != 200:
            raise OSError(f"the engine answered {status} to info: {body[:200]!r}")
        return json.loads(body)

    def image(self, name: str) -> dict | None:
        """An image's record (a name, name:tag or ID), as `docker image inspect` gives it; None when there is none."""
        status, body = self.request("GET", f"/images/{urllib.parse.quote(name, safe='')}/json")
        if status == 404:
            return None
        if status != 200:
            raise OSError(f"the engine answered {status} to an inspection of the image {name}: {body[:200]!r}")
        return json.loads(body)

    def inspect(self, ids: list[str]) -> list[dict]:
        """The records of these containers, as `docker inspect` gives them; one removed meanwhile is left out."""
        records = []
        for container in ids:
            status, body = self.request("GET", f"/containers/{urllib.parse.quote(container)}/json")
            if status == 200:
                records.append(json.loads(body))
            elif status != 404:
                raise OSError(f"the engine answered {status} to an inspection of {container}: {body[:200]!r}")
        return records

    def logs(self, container: str, since: float | None = None) -> tuple[str, str] | None:
        """The container's log as `docker logs` gives it (since a time.time(), when given): its stdout and its stderr
        apart; None when there is no such container."""
        query = "stdout=1&stderr=1" + (f"&since={since:.6f}" if since is not None else "")
        status, body = self.request("GET", f"/containers/{urllib.parse.quote(container)}/logs?{query}")
        if status == 404:
            return None
        if status != 200:
            raise OSError(f"the engine answered {status} to reading the log of {container}: {body[:200]!r}")
        return demultiplex(body)

    def exec_code(self, container: str, argv: list[str], timeout: float = TIMEOUT) -> int | None:
        """Run argv in the container as `docker exec` does (its user, environment and working directory), output
        discarded; its exit code, or None when it could not run or did not end in `timeout` s."""
        try:
            attached = {"Cmd": argv, "AttachStdout": True, "AttachStderr": True}
            status, body = self.request("POST", f"/containers/{urllib.parse.quote(container)}/exec", attached)
            if status != 201:
                return None
            exec_id = json.loads(body)["Id"]
            status, _ = self.request("POST", f"/exec/{exec_id}/start", {"Detach": False, "Tty": False}, timeout)
            if status != 200:
                return None
            status, body = self.request("GET", f"/exec/{exec_id}/json")
            return json.loads(body).get("ExitCode") if status == 200 else None
        except OSError:
            return None


def created(record: dict) -> tuple[str, float]:
    """A record's CreatedAt as a sort key. The engine writes it in RFC 3339 with its fraction's trailing zeros cut
    (".5Z", ".123Z"), so two stamps of one second do not sort as strings; "" (none) sorts first."""
    whole, _, fraction = record.get("CreatedAt", "").removesuffix("Z").partition(".")
    return whole, float(f"0.{fraction}") if fraction.isdigit() else 0.0


def demultiplex(body: bytes) -> tuple[str, str]:
    """A log stream, split into stdout and stderr. Without a TTY the engine sends frames, each an 8-byte header (the
    stream, 1 or 2; three zeros; the length, big-endian) and its bytes; with one, the output as it came, all stdout."""
    if body[:1] not in (b"\x01", b"\x02") or body[1:4] != b"\0\0\0":
        return body.decode(errors="replace"), ""
    streams = {1: bytearray(), 2: bytearray()}
    at = 0
    while at + 8 <= len(body):
        size = int.from_bytes(body[at + 4 : at + 8], "big")
        streams.get(body[at], streams[1]).extend(body[at + 8 : at + 8 + size])
        at += 8 + size
    return streams[1].decode(errors="replace"), streams[2].decode(errors="replace")
