"""`make verify`'s first step: refuse to run without a deployment to check, and say which one is checked.

`python -m tools.verify` reads BASE_URL, NGINX_HOST and APP_HOST from the environment, and VERIFY_CA (optional: the
CA that signed an https:// BASE_URL's certificate, when the system does not trust it). Missing or unusable: one line
naming what to set, exit 2, before anything is installed or started. Otherwise its one line says what the chain
checks are about to check, and the Makefile runs them (pytest -m chain) against that deployment only.
"""

from __future__ import annotations

import http.client
import os
import ssl
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

NAMES = ("BASE_URL", "NGINX_HOST", "APP_HOST")
USAGE = (
    "usage: make verify BASE_URL=http://127.0.0.1:8080 NGINX_HOST=docker://<nginx container> "
    "APP_HOST=docker://<app container> (the single topology: both docker://<single container>)"
)
# Seconds BASE_URL has to answer a GET / (the app's home page, whatever it does), connection included.
ANSWER_TIMEOUT = 10


class VerifyError(RuntimeError):
    """What to set or fix before the checks can run; the message says what."""


def base_url_problem(url: str, ca: str = "") -> str | None:
    """Why the chain checks could not talk to BASE_URL: nothing answers, a certificate this host does not trust (and
    VERIFY_CA names no CA that signed it), or a plain HTTP port that sends every request to HTTPS (TLS=on)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"BASE_URL={url!r} is not an http:// or https:// URL"
    port = parts.port or (443 if parts.scheme == "https" else 80)
    if parts.scheme == "https":
        context = ssl.create_default_context(cafile=ca or None)
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(
            parts.hostname, port, timeout=ANSWER_TIMEOUT, context=context
        )
    else:
        conn = http.client.HTTPConnection(parts.hostname, port, timeout=ANSWER_TIMEOUT)
    try:
        conn.request("GET", "/", headers={"User-Agent": "wsgi-chain-verify"})
        answer = conn.getresponse()
    except ssl.SSLCertVerificationError as exc:
        return (
            f"BASE_URL={url}: its certificate is not one this host trusts ({exc.verify_message}): name the CA that"
            " signed it with VERIFY_CA=<PEM file> (for make cert's self-signed certificate, its tls.crt)"
        )
    except ssl.SSLError as exc:
        return f"BASE_URL={url}: no TLS handshake on {parts.hostname}:{port} ({exc.reason}): is it an http:// port?"
    except TimeoutError:
        return f"BASE_URL={url}: GET / got no answer within {ANSWER_TIMEOUT} s"
    except OSError as exc:
        return f"BASE_URL={url}: nothing answers on {parts.hostname}:{port} ({exc.strerror or exc})"
    finally:
        conn.close()
    location = answer.getheader("Location") or ""
    if parts.scheme == "http" and answer.status in (301, 302, 307, 308) and location.startswith("https://"):
        https = urlsplit(location)
        return (
            f"BASE_URL={url} sends every request to HTTPS (as TLS=on does): check {https.scheme}://{https.netloc}"
            " instead (with VERIFY_CA=<PEM file> for a certificate this host does not trust)"
        )
    return None


def ca_problem(ca: str) -> str | None:
    if ca and not Path(ca).is_file():
        return f"VERIFY_CA={ca}: no such file (the PEM file of the CA that signed BASE_URL's certificate)"
    return None


def host_problem(name: str, url: str) -> str | None:
    """A testinfra host URL (docker://name, ssh://host, ...); a docker:// one must name a running container."""
    scheme, sep, target = url.partition("://")
    if not sep or not scheme or not target:
        return f"{name}={url!r} is not a testinfra host URL such as docker://<container>"
    if scheme != "docker":
        return None
    state = subprocess.run(
        ["docker", "inspect", "-f", "{{.State.Status}}", target], capture_output=True, text=True, check=False
    )
    if state.returncode != 0:
        return f"{name}={url}: no container named {target} (docker ps lists the running ones)"
    if state.stdout.strip() != "running":
        return f"{name}={url}: container {target} is {state.stdout.strip()}, not running"
    return None


def check(environ: dict[str, str]) -> str:
    """The line that says what is checked; VerifyError when there is nothing (usable) to check."""
    values = {name: environ.get(name, "").strip() for name in NAMES}
    missing = [name for name, value in values.items() if not value]
    if missing:
        raise VerifyError(f"{', '.join(missing)} not set; {USAGE}")
    ca = environ.get("VERIFY_CA", "").strip()
    problems = [ca_problem(ca) or base_url_problem(values["BASE_URL"], ca)]
    problems += [host_problem(name, values[name]) for name in ("NGINX_HOST", "APP_HOST")]
    if found := [problem for problem in problems if problem]:
        raise VerifyError("; ".join(found))
    return (
        f"verify: checking the deployment at {values['BASE_URL']} (nginx: {values['NGINX_HOST']}, "
        f"app: {values['APP_HOST']}) with the chain checks; no stack of their own is started"
    )


def main() -> int:
    try:
        print(check(dict(os.environ)), flush=True)
    except VerifyError as exc:
        print(f"verify: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
