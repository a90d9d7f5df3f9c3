"""Builder stage only: install uwsgi/requirements.txt into /opt/venv, with uWSGI linked to the base image's Python
statically.

Debian builds its Python twice: the static library (libpython3.X.a, the one /usr/bin/python3 is linked from) with
profile-guided and link-time optimisation, and the shared one (libpython3.X.so, what uWSGI links by default) without.
Python code in a worker runs faster on the static one (by how much: docs/benchmark.md, "The Python uWSGI embeds"), as
fast as under /usr/bin/python3, which gunicorn and granian run on. Like /usr/bin/python3, the binary is then not
position-independent (the library is not).

The static library needs the module archives its MODLIBS names beside it. Debian ships none of the HACL* ones
(Python's own SHA-2, for the built-in _sha2 module): those it leaves out are compiled here from the same Python's
Debian source package.

Usage: build_uwsgi.py REQUIREMENTS
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

PIP = "/opt/venv/bin/pip"


def run(*argv: str, **kwargs) -> None:
    print("+", " ".join(argv), flush=True)
    subprocess.run(argv, check=True, **kwargs)


def module_archives(libpl: Path) -> tuple[list[str], list[str]]:
    """The Modules/... archives MODLIBS links into the static interpreter: (those the package ships, as paths to
    link; those it leaves out, as MODLIBS names them)."""
    named = [word for word in sysconfig.get_config_var("MODLIBS").split() if word.endswith(".a")]
    beside = {name: libpl / Path(name).name for name in named}
    shipped = [str(path) for path in beside.values() if path.exists()]
    return shipped, [name for name, path in beside.items() if not path.exists()]


def compile_hacl(archives: list[str], version: str, workdir: Path) -> list[str]:
    """Objects for Modules/_hacl/libHacl_X.a: Modules/_hacl/Hacl_X.c of this Python's source package."""
    if not archives:
        return []
    unknown = [name for name in archives if not Path(name).name.startswith("libHacl_")]
    if unknown:
        sys.exit(f"build_uwsgi: the static libpython needs {unknown}, which this script cannot build")
    workdir.chmod(0o777)  # apt downloads as its own user, _apt
    run("apt-get", "source", "--download-only", "-qq", f"python{version}", cwd=workdir)
    (orig,) = (path for path in workdir.glob("*.orig.tar.*") if path.suffix != ".asc")
    run("tar", "-xf", orig.name, "--wildcards", "*/Modules/_hacl/*", cwd=workdir)
    (hacl,) = workdir.glob("*/Modules/_hacl")
    objects = []
    for name in archives:
        source = hacl / (Path(name).name.removeprefix("lib").removesuffix(".a") + ".c")
        target = workdir / source.with_suffix(".o").name
        # As Python's Makefile builds them: its namespace header keeps the symbols private to Python.
        run(
            "gcc", "-O2", "-include", "python_hacl_namespaces.h", "-I", "include", "-I", ".",
            "-D_BSD_SOURCE", "-D_DEFAULT_SOURCE", "-c", str(source), "-o", str(target),
            cwd=hacl,
        )  # fmt: skip
        objects.append(str(target))
    return objects


def main(requirements: str) -> None:
    version = sysconfig.get_config_var("VERSION")
    libpl = Path(sysconfig.get_config_var("LIBPL"))
    static = libpl / sysconfig.get_config_var("LIBRARY")
    if not static.exists():
        sys.exit(f"build_uwsgi: {static} is missing: install libpython{version}-dev (python3-dev brings it)")
    with tempfile.TemporaryDirectory() as tmp:
        shipped, missing = module_archives(libpl)
        extra = [*shipped, *compile_hacl(missing, version, Path(tmp))]
        system_libs = dict.fromkeys(
            word
            for var in ("LIBS", "SYSLIBS", "MODLIBS")
            for word in sysconfig.get_config_var(var).split()
            if word.startswith("-l")
        )
        env = {
            **os.environ,
            # uWSGI's Python plugin links no libpython of its own; the whole static one goes in instead.
            "UWSGI_PYTHON_NOLIB": "1",
            "LDFLAGS": " ".join(
                ["-no-pie", "-Wl,--whole-archive", str(static), "-Wl,--no-whole-archive", *extra, *system_libs]
            ),
        }
        # No wheel cache: a uWSGI wheel built before (linked the default way) would be taken as it is.
        run(PIP, "install", "--no-cache-dir", "-r", requirements, env=env)
    # The proof: the interpreter in the binary is the static one, not libpython3.X.so.
    linked = subprocess.run(["ldd", "/opt/venv/bin/uwsgi"], capture_output=True, text=True, check=True).stdout
    if "libpython" in linked:
        sys.exit("build_uwsgi: /opt/venv/bin/uwsgi still links libpython dynamically")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
