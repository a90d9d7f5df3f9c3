"""The host's Debian packages: whether they are installed, and installing the missing ones with apt-get.

Shared by the fresh-machine bootstrap (tools/bootstrap.py) and the tests' host tools (tools/hostdeps.py), so both
install the same way. Standard library only: the bootstrap runs it with the host's python3 before any virtualenv.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

OS_RELEASE = Path("/etc/os-release")
# Flags for every install: no prompts, no recommended packages (only what is named), output only when it fails.
APT_INSTALL = ["apt-get", "install", "-y", "-qq", "--no-install-recommends"]
APT_UPDATE = ["apt-get", "update", "-qq"]
# apt-get update and install, each: a slow mirror gets this long before the error names it.
APT_TIMEOUT = 900


class AptError(RuntimeError):
    """Packages are missing and cannot be installed here; the message names them and what to do."""


def is_root() -> bool:
    return os.geteuid() == 0


def is_debian_like(os_release: Path = OS_RELEASE) -> bool:
    """Debian or a derivative (Ubuntu), by /etc/os-release's ID or ID_LIKE."""
    try:
        text = os_release.read_text()
    except OSError:
        return False
    return bool(re.search(r"^(ID|ID_LIKE)=.*\b(debian|ubuntu)\b", text, re.M))


def can_install() -> bool:
    return is_root() and is_debian_like() and shutil.which("apt-get") is not None


def installed(package: str) -> bool:
    """Whether dpkg has the package fully installed (not merely known, or removed with its config left)."""
    try:
        result = subprocess.run(
            ["dpkg-query", "-W", "-f", "${db:Status-Status}", package], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0 and result.stdout.strip() == "installed"


def missing(packages: list[str] | tuple[str, ...]) -> list[str]:
    """The packages that are not installed, in the order given."""
    return [package for package in packages if not installed(package)]


def apt(argv: list[str]) -> None:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        result = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=APT_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise AptError(f"{' '.join(argv)} took over {APT_TIMEOUT} s; check the host's apt mirror") from None
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-20:])
        raise AptError(f"{' '.join(argv)} failed (exit {result.returncode}):\n{tail}")


def install(packages: list[str] | tuple[str, ...]) -> list[str]:
    """Install the packages that are missing (refreshing the package lists first); return those it installed.

    Nothing runs when all are present. Elsewhere than root on Debian/Ubuntu, the error names what to install.
    """
    needed = missing(packages)
    if not needed:
        return []
    if not can_install():
        raise AptError(
            f"install these Debian packages first: {' '.join(needed)} "
            "(installing them automatically needs root on Debian/Ubuntu, with apt-get)"
        )
    apt(APT_UPDATE)
    apt([*APT_INSTALL, *needed])
    return needed
