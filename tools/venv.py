"""The test virtualenv (`make venv`): Python's own venv, with the pinned host-side requirements installed by uv.

`python -m tools.venv DIR` creates (or refreshes) the virtualenv in DIR, installs uv at UV_VERSION (defaults.env)
into it with pip, then has uv install tests/requirements.txt and app/requirements-test.txt: in about 7 s on a fresh
clone, where pip took 51 s (docs/testing.md). uv reads no pip.conf: where it cannot install them (an index only pip
is told of, say), it says so and pip installs them instead. Bytecode is compiled at first import, as the tests need it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tools import settings

REQUIREMENTS = (settings.ROOT / "tests" / "requirements.txt", settings.ROOT / "app" / "requirements-test.txt")


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m tools.venv DIR", file=sys.stderr)
        return 2
    venv = Path(argv[0])
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    pip = [python, "-m", "pip", "install", "--quiet"]
    requirements = [arg for path in REQUIREMENTS for arg in ("-r", str(path))]
    uv_version = settings.get("UV_VERSION")
    if subprocess.run([*pip, f"uv=={uv_version}"], check=False).returncode != 0:
        print(f"venv: pip could not install uv {uv_version} (above); pip installs the requirements", file=sys.stderr)
    else:
        # --native-tls: the system's certificate store, as pip has it (a TLS-inspecting proxy's CA included).
        uv = [str(venv / "bin" / "uv"), "pip", "install", "--quiet", "--native-tls", "--python", python]
        if subprocess.run([*uv, *requirements], check=False).returncode == 0:
            return 0
        print("venv: uv could not install the requirements (above); pip installs them instead", file=sys.stderr)
    return subprocess.run([*pip, *requirements], check=False).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
