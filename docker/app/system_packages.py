#!/usr/bin/env python3
"""The Debian packages the app's compiled modules need at run time (the app image's build: docker/app/Dockerfile).

A requirement built from source links against a system library (psycopg2: libpq.so.5): its build needs the library's
headers (APP_BUILD_PACKAGES: libpq-dev, in the build stage only), and the runtime image needs the library, which
nothing there names. So the build stage lists the packages holding every shared library the virtualenv's ELF files
link against, and the runtime stage installs those it lacks, with APP_PACKAGES (what a module loads by name, as
ctypes does: python-magic's libmagic1). Libraries a wheel bundles (inside the virtualenv) need nothing.

  system-packages needs VENV               the packages holding the libraries VENV's ELF files link against, a line
                                           each (build stage)
  system-packages install FILE [NAME ...]  install those of FILE's packages and the NAMEs that are not installed; no
                                           index download when all are (runtime stage)
  system-packages check VENV               exit 1 when a shared object in VENV needs a library nothing in the image
                                           holds, a line per library: it would fail to import (runtime stage)

Its messages start with "app image: ", which `make up` shows as the build's failure (tools/stack.py).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

ELF_MAGIC = b"\x7fELF"
# Files per ldd run: one run each would start hundreds of processes for a large virtualenv.
LDD_BATCH = 200
APT_LISTS = Path("/var/lib/apt/lists")


@dataclass
class Links:
    """What ldd found: the libraries resolved (their paths) and the ones not found, with the files needing each."""

    found: set[str] = field(default_factory=set)
    missing: dict[str, list[Path]] = field(default_factory=dict)

    def unloadable(self) -> dict[str, Path]:
        """The libraries missing for a file that nothing else loads, with the first such file needing each. A library
        a wheel bundles (auditwheel's `<package>.libs/`: psycopg-binary's libgssapi_krb5, and the libkrb5 it needs)
        has no search path of its own: it is found through the path of the module that loads it (its RPATH, which
        the loader applies to the whole chain), so ldd of it alone misses its neighbours, while ldd of the module
        lists the chain as it loads, a library truly missing anywhere in it too."""
        loaded = {os.path.realpath(path) for path in self.found}
        unloadable = {}
        for library, needers in self.missing.items():
            alone = [needer for needer in needers if os.path.realpath(needer) not in loaded]
            if alone:
                unloadable[library] = alone[0]
        return unloadable


def elf_files(root: Path) -> list[Path]:
    """The ELF files under root (compiled modules, bundled libraries, executables), links left out."""
    found = []
    for directory, _, names in os.walk(root):
        for name in names:
            path = Path(directory, name)
            if path.is_symlink() or not path.is_file():
                continue
            with path.open("rb") as file:
                if file.read(4) == ELF_MAGIC:
                    found.append(path)
    return sorted(found)


def parse_ldd(output: str, files: list[Path], links: Links) -> None:
    """ldd's output for files (a "file:" header before each one's lines when there are several) into links."""
    current = files[0] if len(files) == 1 else None
    for line in output.splitlines():
        if not line.startswith("\t"):
            if line.endswith(":"):
                current = Path(line[:-1])
            continue
        entry = line.strip()
        name, arrow, target = entry.partition(" => ")
        if arrow and target.startswith("not found"):
            links.missing.setdefault(name, []).append(current or files[0])
        elif arrow:
            path = target.split(" (", 1)[0]
            if path.startswith("/"):
                links.found.add(path)
        elif entry.startswith("/"):  # the dynamic loader, named by its path
            links.found.add(entry.split(" (", 1)[0])


def links_of(files: list[Path]) -> Links:
    links = Links()
    for start in range(0, len(files), LDD_BATCH):
        batch = files[start : start + LDD_BATCH]
        # Exit status 1 when one of them is not dynamic (a static executable): nothing to list for it.
        result = subprocess.run(["ldd", *map(str, batch)], capture_output=True, text=True, errors="replace")
        parse_ldd(result.stdout, batch, links)
    return links


def owners(paths: Iterable[str]) -> set[str]:
    """The packages holding paths (dpkg's database), architecture qualifiers dropped; a path no package holds (one
    of /usr/local, say) gives none."""
    real = sorted({os.path.realpath(path) for path in paths})
    if not real:
        return set()
    result = subprocess.run(["dpkg-query", "--search", *real], capture_output=True, text=True)
    packages = set()
    for line in result.stdout.splitlines():
        if line.startswith("diversion by "):
            continue
        names, _, _ = line.rpartition(": ")
        packages.update(name.strip().split(":", 1)[0] for name in names.split(","))
    return packages - {""}


def needs(root: Path) -> list[str]:
    links = links_of(elf_files(root))
    inside = str(root.resolve()) + os.sep
    return sorted(owners(path for path in links.found if not os.path.realpath(path).startswith(inside)))


def installed(names: Iterable[str]) -> set[str]:
    result = subprocess.run(
        ["dpkg-query", "--show", "--showformat=${Package} ${db:Status-Status}\n", *names],
        capture_output=True,
        text=True,
    )
    return {line.split()[0] for line in result.stdout.splitlines() if line.endswith(" installed")}


def install(listing: Path, named: list[str]) -> int:
    wanted = sorted(set(listing.read_text().split()) | set(named))
    present = installed(wanted)
    # A name with a version (name=1.2-3) is always given to apt, which keeps an installed one of that version.
    missing = [name for name in wanted if "=" in name or name not in present]
    if not missing:
        print(f"system-packages: all {len(wanted)} installed already")
        return 0
    print(f"system-packages: installing {' '.join(missing)}", flush=True)
    apt = ["apt-get", "-y", "--no-install-recommends"]
    if subprocess.run(["apt-get", "update"]).returncode != 0 or subprocess.run([*apt, "install", *missing]).returncode:
        print(
            f"app image: apt-get could not install {' '.join(missing)} (its error is above): the names APP_PACKAGES"
            " gives must be packages of the base image's Debian release (packages.debian.org)",
            file=sys.stderr,
        )
        return 1
    for path in APT_LISTS.iterdir():  # the index goes, as the image's other installs leave it
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
    return 0


def check(root: Path) -> int:
    links = links_of(elf_files(root))
    unloadable = links.unloadable()
    for library, needer in sorted(unloadable.items()):
        print(
            f"app image: {needer.relative_to(root)} needs {library}, which no package in the image holds: name the"
            " Debian package that has it in APP_PACKAGES (the module fails to import without it)",
            file=sys.stderr,
        )
    return 1 if unloadable else 0


def main(argv: list[str]) -> int:
    match argv:
        case ["needs", venv]:
            print("\n".join(needs(Path(venv))))
            return 0
        case ["install", listing, *named]:
            return install(Path(listing), named)
        case ["check", venv]:
            return check(Path(venv))
    print(__doc__.split("\n\n")[2], file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
