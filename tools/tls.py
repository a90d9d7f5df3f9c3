"""A throwaway self-signed certificate (openssl), for `make lint`'s TLS rendering and the TLS tests. Never for
production: operators mount their own certificate (README "Security")."""

from __future__ import annotations

import subprocess
from pathlib import Path


def self_signed(directory: Path, names: tuple[str, ...] = ("localhost", "127.0.0.1")) -> Path:
    """Write tls.crt and tls.key (EC P-256, one day) for `names` into `directory`; return the certificate's path.

    The key is left world-readable so the container's unprivileged user can read it: throwaway keys only.
    """
    directory.mkdir(parents=True, exist_ok=True)
    san = ",".join(f"IP:{name}" if name.replace(".", "").isdigit() else f"DNS:{name}" for name in names)
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-days", "1", "-subj", f"/CN={names[0]}", "-addext", f"subjectAltName={san}",
            "-keyout", str(directory / "tls.key"), "-out", str(directory / "tls.crt"),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    (directory / "tls.key").chmod(0o644)
    return directory / "tls.crt"
