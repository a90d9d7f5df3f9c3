"""A self-signed certificate (openssl): for `make cert` (trying TLS locally), `make lint`'s TLS rendering and the TLS
tests. Never for production: operators mount their own certificate (docs/security.md, "Turning TLS on").

`python -m tools.tls` (make cert) writes one for SERVER_NAMES (else ALLOWED_HOSTS) into TLS_CERTS_DIR.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tools import settings


def self_signed(directory: Path, names: tuple[str, ...] = ("localhost", "127.0.0.1"), days: int = 1) -> Path:
    """Write tls.crt and tls.key (EC P-256, `days` long) for `names` into `directory`; return the certificate's path.

    The key is left world-readable so the container's unprivileged user can read it: throwaway keys only.
    """
    directory.mkdir(parents=True, exist_ok=True)
    san = ",".join(f"IP:{name}" if name.replace(".", "").isdigit() else f"DNS:{name}" for name in names)
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-days", str(days), "-subj", f"/CN={names[0]}", "-addext", f"subjectAltName={san}",
            "-keyout", str(directory / "tls.key"), "-out", str(directory / "tls.crt"),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    (directory / "tls.key").chmod(0o644)
    return directory / "tls.crt"


# --- make cert -------------------------------------------------------------------------------------------------------

# The group that can read the key in either topology: nginx (uid 10101) joins gid 10001 in the split topology, and
# the single container runs as uid/gid 10001 (docker/nginx/Dockerfile, docker/app/Dockerfile).
KEY_GROUP = 10001
CERT_DAYS = 30


def server_names() -> tuple[str, ...]:
    """The names nginx serves (SERVER_NAMES, else ALLOWED_HOSTS), as the certificate's subject alternative names."""
    names = settings.served_names()
    # Django's ".example.com" (the domain and its subdomains) is a wildcard in a certificate.
    return tuple(dict.fromkeys(f"*{name}" if name.startswith(".") else name for name in names))


def expiry(cert: Path) -> str:
    result = subprocess.run(["openssl", "x509", "-noout", "-enddate", "-in", str(cert)], capture_output=True, text=True)
    return result.stdout.strip().removeprefix("notAfter=") or "unreadable"


def make_cert(directory: Path) -> str:
    """A self-signed certificate for the served names in `directory`, its key readable by nginx's uid in either
    topology; an existing certificate is kept (it may be a real one). Returns what was done, in one line."""
    cert, key = directory / "tls.crt", directory / "tls.key"
    if cert.exists() or key.exists():
        return (
            f"cert: {directory} already holds a certificate (expires {expiry(cert)}): kept; "
            "delete tls.crt and tls.key for a new one"
        )
    names = server_names()
    # .secrets/ is private to its owner, as for the secret key; the mounted folder itself needs no secrecy.
    directory.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    directory.mkdir(mode=0o755, exist_ok=True)
    self_signed(directory, names, days=CERT_DAYS)
    try:
        os.chown(key, -1, KEY_GROUP)
        key.chmod(0o640)
        access = f"tls.key mode 0640, group {KEY_GROUP} (nginx's uid reads it in either topology)"
    except PermissionError:
        access = "tls.key mode 0644 (not root: it cannot be given group 10001; a throwaway key only)"
    return (
        f"cert: wrote a self-signed certificate for {', '.join(names)}, valid {CERT_DAYS} days, to {directory}: "
        f"tls.crt, {access}. For trying TLS locally: make up TLS=on"
    )


def main() -> int:
    directory = settings.path("TLS_CERTS_DIR")
    try:
        print(make_cert(directory))
    except (OSError, subprocess.CalledProcessError) as exc:
        print(f"cert: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
