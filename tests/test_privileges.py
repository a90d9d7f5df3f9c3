"""Least privilege, in both topologies: every process runs as a non-root user with no capabilities and no way to
gain any, root filesystems are read-only (tmpfs /tmp is the one writable place), memory and pids are limited, and
nothing but nginx's public port is published. Also: no secret is baked into an image, and the app refuses to start
with a known-bad SECRET_KEY.
"""

from __future__ import annotations

import json
import subprocess

import pytest
import testinfra

from tests.harness import Deployment, docker, listening_tcp, record, swarm_task
from tests.served_app import ServedApp

pytestmark = pytest.mark.chain


def running_services(deployment: Deployment) -> dict[str, str]:
    """service -> container, for every running container of the suite's own stack (none for a given deployment)."""
    if deployment.compose is None:
        return {}
    return {c.service: c.name for c in deployment.compose.containers() if c.status == "running"}


def hosts(deployment: Deployment) -> dict[str, object]:
    """One testinfra host per container (one in the single topology; the listener too in the split one)."""
    found = {"nginx": testinfra.get_host(deployment.nginx_host)}
    if not deployment.single:
        found["app"] = testinfra.get_host(deployment.app_host)
    for service, container in running_services(deployment).items():
        found.setdefault(service, testinfra.get_host(f"docker://{container}"))
    return found


def by_swarm(deployment: Deployment) -> bool:
    """A given deployment that Swarm runs (`make swarm-up`): its containers are a service's tasks."""
    return deployment.compose is None and bool(deployment.nginx_container) and swarm_task(deployment.nginx_container)


def containers(deployment: Deployment) -> list[str]:
    """Every container of the deployment: nginx and app, and with the suite's own stack all of its services'."""
    names = [deployment.nginx_container, deployment.app_container]
    if None in names:
        pytest.skip("needs docker:// hosts to inspect the containers")
    if deployment.compose is not None:
        names += [c.name for c in deployment.compose.containers()]
    return sorted(set(names))


# What a `docker exec` into the container is while runc sets it up (a health check's, another test's): root, with
# capabilities, for the moment before it becomes the container's user and runs its command. It is Docker's, not the
# stack's: seen now and then beside a concurrent exec (2026-12-04, a warm run: "listener: {'root', 'app'}"; again on
# 2026-12-06 in the app container, a stage other than runc:[2:INIT]). runc names its stages runc:[0:PARENT],
# runc:[1:CHILD] and runc:[2:INIT].
EXEC_SETUP = "runc:["


def exec_setup(name: str) -> bool:
    return name.startswith(EXEC_SETUP)


def processes(host) -> list[dict[str, str]]:
    """pid, uid, capability sets and no_new_privs of every process, read from /proc (ps shows no capabilities), but
    a concurrent `docker exec` being set up (exec_setup)."""
    out = host.check_output(
        "for s in /proc/[0-9]*/status; do "
        "printf '%s ' \"$s\"; grep -E '^(Name|Uid|CapEff|CapPrm|CapBnd|NoNewPrivs):' \"$s\" 2>/dev/null "
        "| tr '\\t\\n' '  '; echo; done"
    )
    found = []
    for line in out.splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue  # a process that ended while being read
        record = {"pid": fields[0].split("/")[2]}
        key = None
        for token in fields[1:]:
            if token.endswith(":"):
                key = token[:-1]
                record[key] = ""
            elif key and not record[key]:
                record[key] = token  # the first value: real uid, or the capability mask
        if not exec_setup(record.get("Name", "")):
            found.append(record)
    return found


def test_every_process_runs_as_a_non_root_user(deployment: Deployment):
    for name, host in hosts(deployment).items():
        procs = processes(host)
        assert len(procs) >= 3, procs
        for proc in procs:
            assert proc["Uid"] != "0", f"{name}: {proc} runs as root"
        listed = [line.split(None, 1) for line in host.check_output("ps -eo user=,comm=").splitlines()]
        root = [fields for fields in listed if fields[0] == "root" and not exec_setup((fields[1:] or [""])[0])]
        assert not root, f"{name}: processes of root: {root}"


def test_no_process_has_any_capability_or_can_gain_one(deployment: Deployment):
    # Swarm's stack deploy (Docker 20.10) cannot set no-new-privileges: there, that no file is setuid or setgid (the
    # next test) is what keeps a process from gaining privileges.
    swarm = by_swarm(deployment)
    for name, host in hosts(deployment).items():
        for proc in processes(host):
            if proc.get("Name") in {"sh", "grep", "tr"}:
                continue  # the probe's own shell
            for capset in ("CapEff", "CapPrm", "CapBnd"):
                assert int(proc[capset], 16) == 0, f"{name}: {proc}"
            if not swarm:
                assert proc["NoNewPrivs"] == "1", f"{name}: {proc} may gain privileges through a setuid binary"


def test_no_file_in_any_container_raises_the_privileges_of_who_runs_it(deployment: Deployment):
    """No setuid or setgid file on any root filesystem: whatever runs the images (Swarm's stack deploy sets no
    no-new-privileges, nor does a plain `docker run`), Debian's su, passwd or mount cannot make a process root."""
    for name, host in hosts(deployment).items():
        # As the service user: a directory it cannot read hides nothing that matters (it cannot run what is in it).
        found = host.run("find / -xdev -perm /6000 -type f 2>/dev/null").stdout.split()
        assert not found, f"{name}: setuid or setgid files: {found}"


def test_root_filesystems_are_read_only_and_tmp_is_the_writable_place(deployment: Deployment):
    for name, host in hosts(deployment).items():
        for path in ("/etc", "/usr/local/bin", "/srv", "/"):
            result = host.run(f"touch {path}/.write-probe")
            assert result.rc != 0 and "Read-only file system" in result.stderr, f"{name}: {path} is writable"
        assert host.run("touch /tmp/.write-probe && rm /tmp/.write-probe").rc == 0, f"{name}: /tmp is not writable"
        mounts = host.check_output("cat /proc/mounts").splitlines()
        root = [line for line in mounts if line.split()[1] == "/"]
        assert root and "ro" in root[0].split()[3].split(","), root
        tmp = "/tmp"  # noqa: S108 - the container's tmpfs mount point, checked, not used as a temp dir here
        assert any(line.split()[1] == tmp and line.split()[2] == "tmpfs" for line in mounts)


def test_containers_are_hardened_and_limited(deployment: Deployment):
    swarm = by_swarm(deployment)
    for container in containers(deployment):
        config = record(container)["HostConfig"]
        assert config["ReadonlyRootfs"] is True, container
        assert config["CapDrop"] == ["ALL"] and not config["CapAdd"], container
        if not swarm:  # which cannot set it (test_no_process_has_any_capability_or_can_gain_one)
            assert "no-new-privileges:true" in config["SecurityOpt"], container
        assert config["Privileged"] is False
        assert config["Memory"] > 0, f"{container} has no memory limit"
        assert (config["PidsLimit"] or 0) > 0, f"{container} has no pids limit"


def test_only_nginx_public_port_is_published(deployment: Deployment, served_app: ServedApp):
    published = {}
    for container in containers(deployment):
        ports = record(container)["NetworkSettings"]["Ports"] or {}
        published[container] = {port: bindings for port, bindings in ports.items() if bindings}
    nginx = deployment.nginx_container
    assert set(published.pop(nginx)) == {f"{port}/tcp" for port in served_app.public_ports}, published
    assert all(not ports for ports in published.values()), published


def test_internal_ports_listen_but_only_inside(deployment: Deployment):
    nginx, app = hosts(deployment)["nginx"], testinfra.get_host(deployment.app_host)
    # nginx's internal server (health, stub_status) listens on 8081, but test_only_nginx_public_port_is_published
    # shows it is not published; uWSGI's stats server is on the container's loopback only.
    assert any(port == 8081 for _, port in listening_tcp(nginx))
    assert ("127.0.0.1", 1717) in listening_tcp(app)
    assert not any(port == 1717 and address != "127.0.0.1" for address, port in listening_tcp(app))


def test_no_secret_is_baked_into_an_image(deployment: Deployment):
    for container in containers(deployment):
        image = record(container)["Config"]["Image"]
        env = json.loads(docker("image", "inspect", "-f", "{{json .Config.Env}}", image))
        assert not [item for item in env if item.split("=", 1)[0] in {"SECRET_KEY", "DATABASE_URL"}], env
        history = docker("history", "--no-trunc", "--format", "{{.CreatedBy}}", image)
        assert "SECRET_KEY=" not in history.replace('SECRET_KEY="$(python3', ""), image


@pytest.mark.parametrize("key", ["", "changeme", "django-insecure-0123456789"])
def test_with_debug_off_the_app_refuses_to_start_on_an_empty_or_known_default_key(
    deployment: Deployment, served_app: ServedApp, key
):
    if deployment.app_container is None:
        pytest.skip("needs the app's image")
    served_app.needs_default("The SECRET_KEY check (app/microposts/settings.py)")
    image = record(deployment.app_container)["Config"]["Image"]
    result = subprocess.run(
        [
            "docker",
            "run",
            "--rm",
            "--network",
            "none",
            "-e",
            f"SECRET_KEY={key}",
            "-e",
            "DEBUG=false",
            "--entrypoint",
            "check-app",
            image,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr and "must be set to a real secret" in result.stderr, result.stderr[-2000:]
