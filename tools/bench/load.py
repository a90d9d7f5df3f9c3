"""Load runs with wrk: in the load-generator container on the stack's network, or on the host against a published
port. Every run is bounded: wrk stops itself after its duration, and the process is killed past a deadline."""

from __future__ import annotations

import json
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tools.compose import ROOT

# The Host header every request carries: one of the app's ALLOWED_HOSTS.
HOST_HEADER = "localhost"
REPORT_IN_IMAGE = "/usr/local/share/wrk/report.lua"
REPORT_ON_HOST = ROOT / "bench" / "wrk" / "report.lua"
MARKER = "WRK_JSON "


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


def wrk_args(url: str, duration: float, connections: int, threads: int, timeout: str, script: str) -> list[str]:
    return [
        "wrk",
        f"-t{min(threads, connections)}",
        f"-c{connections}",
        f"-d{max(1, round(duration))}s",
        "--timeout",
        timeout,
        "-H",
        f"Host: {HOST_HEADER}",
        "-s",
        script,
        url,
    ]


def parse(stdout: str, command: list[str]) -> LoadResult:
    lines = [line for line in stdout.splitlines() if line.startswith(MARKER)]
    if not lines:
        raise LoadError(f"no report from {' '.join(command)}:\n{stdout[-2000:]}")
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
        command=command,
    )


def _run(command: list[str], duration: float) -> str:
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=duration + 60, check=False)
    except subprocess.TimeoutExpired as exc:
        raise LoadError(f"{' '.join(command)} did not stop within {duration + 60:.0f} s") from exc
    if result.returncode != 0:
        raise LoadError(f"{' '.join(command)} exited {result.returncode}:\n{result.stderr[-2000:]}")
    return result.stdout


def in_container(container: str, url: str, duration: float, connections: int, threads: int, timeout: str) -> LoadResult:
    """wrk inside the load generator: the url names a service on the stack's network."""
    args = wrk_args(url, duration, connections, threads, timeout, REPORT_IN_IMAGE)
    return parse(_run(["docker", "exec", container, *args], duration), args)


def on_host(url: str, duration: float, connections: int, threads: int, timeout: str) -> LoadResult:
    """wrk on the host, through a port published on 127.0.0.1 (and so through docker's port forwarding)."""
    if not url.startswith("http://127.0.0.1:"):
        raise ValueError(f"host load only goes to 127.0.0.1, not {url}")
    args = wrk_args(url, duration, connections, threads, timeout, str(Path(REPORT_ON_HOST)))
    return parse(_run(args, duration), args)
