"""What the numbers were measured on: the host, its load, Docker, and the versions inside the images."""

from __future__ import annotations

import os
import platform
import re
import subprocess
from pathlib import Path

from tools.compose import ROOT


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def _out(*cmd: str) -> str:
    try:
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return ""
    return (result.stdout + result.stderr).strip()


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def describe() -> dict:
    cpu = re.search(r"^model name\s*:\s*(.+)$", _read("/proc/cpuinfo"), re.M)
    mem = re.search(r"^MemTotal:\s*(\d+)", _read("/proc/meminfo"), re.M)
    return {
        "cpu": cpu.group(1).strip() if cpu else platform.processor() or "unknown",
        "cores": os.cpu_count(),
        "memory_gib": round(int(mem.group(1)) / 1024 / 1024, 1) if mem else None,
        "kernel": platform.release(),
        "os": _os_name(),
        "docker": _out("docker", "version", "--format", "{{.Server.Version}}"),
        "loadavg_start": loadavg(),
    }


def _os_name() -> str:
    found = re.search(r'^PRETTY_NAME="?([^"\n]+)', _read("/etc/os-release"), re.M)
    return found.group(1) if found else platform.system()


def _first_line(text: str) -> str:
    return text.splitlines()[0].strip() if text else ""


def versions(container: dict[str, str]) -> dict[str, str]:
    """Versions as running: nginx and uWSGI from the chain's containers, the rest from the pins."""
    found = {}
    if "nginx" in container:
        found["nginx"] = _first_line(_out("docker", "exec", container["nginx"], "nginx", "-v")).split("/")[-1]
    if "app" in container:
        found["uwsgi"] = _first_line(_out("docker", "exec", container["app"], "uwsgi", "--version"))
        found["python"] = _first_line(_out("docker", "exec", container["app"], "python3", "--version")).split()[-1]
        found["django"] = _first_line(
            _out("docker", "exec", container["app"], "python3", "-c", "import django; print(django.__version__)")
        )
    if "loadgen" in container:
        found["wrk"] = _first_line(_out("docker", "exec", container["loadgen"], "wrk", "-v")).split(" [")[0].split()[-1]
    for line in (ROOT / "bench" / "requirements.txt").read_text().splitlines():
        name, _, version = line.partition("==")
        if version:
            found[name.strip()] = version.strip()
    return found


# The load generator's TCP client settings (bench/compose.bench.yaml sets them): whether a server that closes after
# every response can still be measured once a minute's worth of its connections sit in TIME_WAIT.
CLIENT_TCP = ("tcp_tw_reuse", "ip_local_port_range")


def client_tcp(container: str) -> dict[str, str]:
    """The load generator's CLIENT_TCP settings, as running in its container (its own network namespace)."""
    values = _out("docker", "exec", container, "cat", *(f"/proc/sys/net/ipv4/{name}" for name in CLIENT_TCP))
    return dict(zip(CLIENT_TCP, (" ".join(line.split()) for line in values.splitlines()), strict=False))


def userland_proxy(port: int) -> bool:
    """Whether a docker-proxy process forwards this host port (dockerd's userland-proxy, on by default)."""
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if args and args[0].endswith(b"docker-proxy") and str(port).encode() in args:
            return True
    return False
