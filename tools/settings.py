"""The stack's settings, read once: defaults.env's defaults under the environment, and the tables every tool shares.

Standard library only: the bootstrap runs it with the host's python3 before any virtualenv exists.

- get(name): the environment's value, else defaults.env's (an unknown name is a programming error: KeyError).
- path(name): a path setting, relative ones taken from the project's root.
- duration_seconds(text): a duration setting (HEALTH_INTERVAL), written as compose and Docker read one, in seconds;
  duration(name): a duration setting in seconds, or a ValueError whose line says how to write one.
- TOPOLOGIES: each topology's compose file, TLS overlay and the service that runs uWSGI. Adding a topology is one
  entry here plus its compose files (README: "Where to change what").
- IMAGES: the image settings `make build` tags.
"""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULTS_FILE = ROOT / "defaults.env"


@dataclass(frozen=True)
class Topology:
    name: str
    compose_file: str
    # TLS=on adds this overlay. One file per topology, because an overlay names its services and one naming a service
    # its base lacks would add a half-defined one; the settings are written once (compose.single.tls.yaml `extends`
    # compose.tls.yaml's nginx).
    tls_overlay: str
    # The service whose container runs the uWSGI master (reload, restart, shell, top go there).
    server: str
    # The service whose container runs nginx (published ports, static files).
    front: str
    # What `make dev` adds over compose_file (docs/development.md).
    dev_overlay: str
    # APP_EGRESS=on adds this overlay: the app server's and the pre-start hook's way out of the stack.
    egress_overlay: str


TOPOLOGIES = {
    "split": Topology(
        "split", "compose.yaml", "compose.tls.yaml", "app", "nginx", "compose.dev.yaml", "compose.egress.yaml"
    ),
    "single": Topology(
        "single",
        "compose.single.yaml",
        "compose.single.tls.yaml",
        "single",
        "single",
        "compose.single.dev.yaml",
        "compose.single.egress.yaml",
    ),
}
IMAGES = ("APP_IMAGE", "NGINX_IMAGE", "SINGLE_IMAGE")


@functools.cache
def defaults() -> dict[str, str]:
    """defaults.env as written: NAME=value lines; comments and blank lines skipped."""
    values = {}
    for line in DEFAULTS_FILE.read_text().splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def get(name: str) -> str:
    """The setting's value: the environment's when set and not empty, else its default from defaults.env."""
    return os.environ.get(name) or defaults()[name]


def served_names() -> list[str]:
    """The host names nginx serves, as given: SERVER_NAMES, else ALLOWED_HOSTS (compose.yaml's fallback; Django's
    ".example.com" is the domain and its subdomains). Any other host gets nginx's 421."""
    raw = get("SERVER_NAMES") or get("ALLOWED_HOSTS")
    return [name.strip() for name in raw.replace(" ", ",").split(",") if name.strip()]


def served_host(address: str) -> str:
    """The host to name in a URL of the stack reached at `address` (a published port's): the address itself when nginx
    serves it as a host name, else the first name nginx serves (a ".example.com" entry's domain), which the operator's
    DNS or /etc/hosts points there. Any other host gets nginx's 421."""
    address = "127.0.0.1" if address == "0.0.0.0" else address  # noqa: S104 - compares, binds nothing
    names = served_names()
    host = address if not names or address in names or f"[{address}]" in names else names[0].removeprefix(".")
    return f"[{host}]" if ":" in host and not host.startswith("[") else host  # an IPv6 address in brackets


def path(name: str) -> Path:
    """A path setting; a relative one is taken from the project's root, as compose takes it."""
    value = Path(get(name)).expanduser()
    return value if value.is_absolute() else ROOT / value


# A duration as compose and Docker read one (Go's): numbers, each with its unit (5s, 1m30s, 500ms).
DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def duration_seconds(text: str) -> float:
    """The duration in seconds; ValueError when it is not one (a number without its unit, say)."""
    parts = DURATION_PART.findall(text)
    if not parts or "".join(number + unit for number, unit in parts) != text:
        raise ValueError(f"{text!r} is not a duration with its unit")
    return sum(float(number) * DURATION_UNITS[unit] for number, unit in parts)


def duration(name: str) -> float:
    """A duration setting in seconds; ValueError naming the setting and how to write one when it is not one."""
    value = get(name)
    try:
        return duration_seconds(value)
    except ValueError:
        raise ValueError(f"{name}={value!r}: use a duration with its unit, such as 5s, 500ms or 1m") from None


def topology(name: str | None = None) -> Topology:
    """The named topology (else TOPOLOGY's); an unknown one is the operator's to fix, so the error says the choices."""
    name = name or get("TOPOLOGY")
    if name not in TOPOLOGIES:
        raise ValueError(f"TOPOLOGY={name!r}: use one of {', '.join(TOPOLOGIES)}")
    return TOPOLOGIES[name]
