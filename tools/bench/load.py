"""Load runs with wrk: in the load-generator container on the stack's network, or on the host against a published
port. Every run is bounded: wrk stops itself after its duration, and the process is killed past a deadline."""

from __future__ import annotations

import json
import subprocess
from dataclasses import asdict, dataclass, field

from tools.compose import ROOT, environ

# The Host header every request carries: one of the app's ALLOWED_HOSTS.
HOST_HEADER = "localhost"
# wrk's scripts: report.lua (GET, report only) and post.lua (a POST that reports the same way), in the load
# generator's image and in the repo for wrk on the host.
SCRIPTS_IN_IMAGE = "/usr/local/share/wrk"
SCRIPTS_ON_HOST = ROOT / "bench" / "wrk"
SCRIPTS = {"GET": "report.lua", "POST": "post.lua"}
MARKER = "WRK_JSON "
# report.lua's pause before each request, in milliseconds, when set (the smoke run's: tools/bench/settings.py).
PAUSE_VARIABLE = "WRK_PAUSE_MS"


class LoadError(RuntimeError):
    """wrk did not run or printed no report."""


@dataclass
class LoadResult:
    requests: int
    duration_s: float
    rps: float
    bytes: int
    errors: dict[str, int]
    mean_ms: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    command: list[str] = field(default_factory=list)

    @property
    def errors_total(self) -> int:
        return sum(self.errors.values())

    def to_json(self) -> dict:
        return {**asdict(self), "errors_total": self.errors_total}


@dataclass(frozen=True)
class Request:
    """What wrk sends: a GET, or a POST (bench/wrk/post.lua) with extra headers such as the API token."""

    method: str = "GET"
    headers: tuple[str, ...] = ()

    def script(self, folder: str) -> str:
        return f"{folder}/{SCRIPTS[self.method]}"


GET = Request()


def wrk_args(
    url: str, duration: float, connections: int, threads: int, timeout: str, script: str, headers: tuple[str, ...] = ()
) -> list[str]:
    extra = [arg for header in headers for arg in ("-H", header)]
    return [
        "wrk",
        f"-t{min(threads, connections)}",
        f"-c{connections}",
        f"-d{max(1, round(duration))}s",
        "--timeout",
        timeout,
        "-H",
        f"Host: {HOST_HEADER}",
        *extra,
        "-s",
        script,
        url,
    ]


def redacted(command: list[str]) -> list[str]:
    """The command as recorded in the results: an Authorization header's credentials replaced."""
    return ["Authorization: <redacted>" if arg.lower().startswith("authorization:") else arg for arg in command]


def parse(stdout: str, command: list[str]) -> LoadResult:
    lines = [line for line in stdout.splitlines() if line.startswith(MARKER)]
    if not lines:
        raise LoadError(f"no report from {' '.join(redacted(command))}:\n{stdout[-2000:]}")
    raw = json.loads(lines[-1][len(MARKER) :])
    duration = raw["duration_us"] / 1e6
    latency = raw["latency_us"]
    return LoadResult(
        requests=raw["requests"],
        duration_s=round(duration, 3),
        rps=round(raw["requests"] / duration, 1) if duration else 0.0,
        bytes=raw["bytes"],
        errors={k: int(v) for k, v in raw["errors"].items()},
        mean_ms=round(latency["mean"] / 1000, 3),
        p50_ms=round(latency["p50"] / 1000, 3),
        p90_ms=round(latency["p90"] / 1000, 3),
        p99_ms=round(latency["p99"] / 1000, 3),
        max_ms=round(latency["max"] / 1000, 3),
        command=redacted(command),
    )


def _run(command: list[str], duration: float, env: dict[str, str] | None = None) -> str:
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=duration + 60, check=False, env=env)
    except subprocess.TimeoutExpired as exc:
        raise LoadError(f"{' '.join(redacted(command))} did not stop within {duration + 60:.0f} s") from exc
    if result.returncode != 0:
        shown = " ".join(redacted(command))
        raise LoadError(f"{shown} exited {result.returncode}:\n{result.stderr[-2000:]}")
    return result.stdout


def in_container(
    container: str,
    url: str,
    duration: float,
    connections: int,
    threads: int,
    timeout: str,
    request: Request = GET,
    pause_ms: int = 0,
) -> LoadResult:
    """wrk inside the load generator: the url names a service on the stack's network; pause_ms before each request
    (none by default)."""
    args = wrk_args(url, duration, connections, threads, timeout, request.script(SCRIPTS_IN_IMAGE), request.headers)
    paced = ["-e", f"{PAUSE_VARIABLE}={pause_ms}"] if pause_ms else []
    return parse(_run(["docker", "exec", *paced, container, *args], duration), args)


def on_host(url: str, duration: float, connections: int, threads: int, timeout: str, pause_ms: int = 0) -> LoadResult:
    """wrk on the host, through a port published on 127.0.0.1 (and so through docker's port forwarding); pause_ms
    before each request (none by default)."""
    if not url.startswith("http://127.0.0.1:"):
        raise ValueError(f"host load only goes to 127.0.0.1, not {url}")
    args = wrk_args(url, duration, connections, threads, timeout, GET.script(str(SCRIPTS_ON_HOST)))
    env = {**environ(), PAUSE_VARIABLE: str(pause_ms)} if pause_ms else None
    return parse(_run(args, duration, env), args)
