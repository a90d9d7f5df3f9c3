"""A soak run: `python -m tools.soak` (make soak) keeps a steady mixed load on the stack that runs, through its
published port on the loopback, and shows whether anything drifts over time.

The load, SOAK_RATE requests a second (default 100) spread over 10 paced clients for SOAK_DURATION seconds (default
300): home page reads, API reads and writes (one user per client, made with the app's createuser), static files,
unknown paths (404) and oversized uploads (413, refused on their Content-Length). An answer other than the one its
kind expects, or no answer, is an error.

Every SOAK_INTERVAL seconds (default 60) it samples throughput and errors, the uWSGI workers' memory (RSS, from the
stats server), the open file descriptors of the nginx and uWSGI processes (read on the host from /proc), and the size
of the stack's docker logs on disk. It prints the table, writes it with a chart to results/soak/<time>/, and fails
when there was any error, or when memory or descriptors grew from the first sample to the last beyond a tolerance
(RSS: 25 % + 16 MB; descriptors: 20 % + 32), which is what a leak looks like and a warm-up does not.

The default app only (its API and createuser). Settings: COMPOSE_PROJECT_NAME, HTTP_PORT, SOAK_DURATION, SOAK_INTERVAL,
SOAK_RATE.
"""

from __future__ import annotations

import argparse
import json
import random
import secrets
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import requests

from tools import settings
from tools.compose import ROOT
from tools.stack import StackError, project_name, running_stack, server_service

CLIENTS = 10
# kind -> (share of the requests, the statuses that answer it correctly)
MIX: dict[str, tuple[int, set[int]]] = {
    "read": (45, {200}),
    "api-read": (15, {200}),
    "write": (10, {201}),
    "static": (20, {200}),
    "404": (8, {404}),
    "oversized": (2, {413}),
}
RSS_TOLERANCE, RSS_SLACK_MB = 0.25, 16
FD_TOLERANCE, FD_SLACK = 0.20, 32


@dataclass
class Sample:
    minute: float  # minutes since the start
    requests: int
    errors: int
    rate: float  # answered per second over the interval
    rss_mb: float  # the uWSGI workers' RSS, summed
    nginx_fds: int
    uwsgi_fds: int
    log_bytes: int


@dataclass
class Tally:
    lock: threading.Lock = field(default_factory=threading.Lock)
    requests: int = 0
    errors: Counter = field(default_factory=Counter)  # "kind: status or exception" -> count

    def add(self, kind: str, outcome: int | str) -> None:
        with self.lock:
            self.requests += 1
            if outcome not in MIX[kind][1]:
                self.errors[f"{kind}: {outcome}"] += 1


# --- the load ----------------------------------------------------------------------------------------------------


def oversized(port: int) -> int:
    """A POST whose Content-Length is over nginx's 10 MB limit, sent without its body: nginx refuses it at once."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        head = "POST /api/users/x/collection HTTP/1.1\r\nHost: localhost\r\nContent-Length: 20971520\r\n"
        sock.sendall((head + "Content-Type: application/json\r\nConnection: close\r\n\r\n").encode())
        answer = sock.recv(4096).split(b" ", 2)
    return int(answer[1]) if len(answer) > 1 else 0


def client(base: str, port: int, user: str, token: str, rate: float, until: float, tally: Tally) -> None:
    session = requests.Session()
    auth = {"Authorization": f"Token {token}"}
    kinds, weights = list(MIX), [share for share, _ in MIX.values()]
    pick = random.Random(user)  # noqa: S311 - a load mix, not a secret
    due, n = time.monotonic(), 0
    while due < until:
        kind, n = pick.choices(kinds, weights)[0], n + 1
        try:
            if kind == "read":
                outcome = session.get(f"{base}/", timeout=30).status_code
            elif kind == "api-read":
                outcome = session.get(f"{base}/api/users/{user}/collection", headers=auth, timeout=30).status_code
            elif kind == "write":
                url = f"{base}/api/users/{user}/collection"
                outcome = session.post(url, json={"text": f"soak {n}"}, headers=auth, timeout=30).status_code
            elif kind == "static":
                outcome = session.get(f"{base}/static/admin/css/base.css", timeout=30).status_code
            elif kind == "404":
                outcome = session.get(f"{base}/no-such-page-{n}", timeout=30).status_code
            else:
                outcome = oversized(port)
        except (requests.RequestException, OSError) as exc:
            outcome = type(exc).__name__
        tally.add(kind, outcome)
        due += 1 / rate
        time.sleep(max(0.0, due - time.monotonic()))  # pacing to the rate, not waiting for readiness
    session.close()


# --- the samples -------------------------------------------------------------------------------------------------


def docker(*args: str) -> str:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=True).stdout


def open_fds(containers: list[str]) -> dict[str, int]:
    """Open descriptors of the nginx and uWSGI processes in these containers, by their host pids."""
    counts = {"nginx": 0, "uwsgi": 0}
    for container in containers:
        for line in docker("top", container, "-eo", "pid,args").splitlines()[1:]:
            pid, _, args = line.strip().partition(" ")
            name = "nginx" if "nginx" in args else "uwsgi" if "uWSGI" in args else None
            if name:
                try:
                    counts[name] += len(list(Path(f"/proc/{pid}/fd").iterdir()))
                except OSError:
                    pass  # the process ended between the listing and the count
    return counts


def log_bytes(containers: list[str]) -> int:
    total = 0
    for container in containers:
        log = Path(docker("inspect", "-f", "{{.LogPath}}", container).strip())
        total += sum(path.stat().st_size for path in log.parent.glob(log.name + "*"))
    return total


def worker_rss_mb(server: str) -> float:
    stats = json.loads(docker("exec", server, "uwsgi-ctl", "stats"))
    return sum(worker["rss"] for worker in stats["workers"]) / 2**20


# --- the run -----------------------------------------------------------------------------------------------------


def make_users(server: str) -> list[tuple[str, str]]:
    """One user per client, with their API token (the default app's createuser prints it)."""
    names = [f"soak-{secrets.token_hex(3)}-{n}" for n in range(CLIENTS)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        tokens = pool.map(lambda name: docker("exec", server, "python", "manage.py", "createuser", name).strip(), names)
        return list(zip(names, tokens, strict=True))


def verdict(samples: list[Sample], errors: Counter) -> list[str]:
    problems = [f"{n} errors: {kind}" for kind, n in errors.most_common()]
    first, last = samples[0], samples[-1]
    if last.rss_mb > first.rss_mb * (1 + RSS_TOLERANCE) + RSS_SLACK_MB:
        problems.append(f"uWSGI workers' RSS grew from {first.rss_mb:.0f} MB to {last.rss_mb:.0f} MB")
    for name in ("nginx_fds", "uwsgi_fds"):
        before, after = getattr(first, name), getattr(last, name)
        if after > before * (1 + FD_TOLERANCE) + FD_SLACK:
            problems.append(f"{name.replace('_', ' ')} grew from {before} to {after}")
    return problems


def table(samples: list[Sample]) -> str:
    lines = [
        "| minute | requests | req/s | errors | uWSGI RSS (MB) | nginx fds | uWSGI fds | docker logs (MB) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s in samples:
        lines.append(
            f"| {s.minute:.1f} | {s.requests} | {s.rate:.0f} | {s.errors} | {s.rss_mb:.0f} | {s.nginx_fds} "
            f"| {s.uwsgi_fds} | {s.log_bytes / 2**20:.1f} |"
        )
    return "\n".join(lines)


def chart(samples: list[Sample], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = [s.minute for s in samples]
    panels = [
        ("req/s (errors in red)", [s.rate for s in samples]),
        ("uWSGI workers' RSS (MB)", [s.rss_mb for s in samples]),
        ("open descriptors", None),
        ("docker logs on disk (MB)", [s.log_bytes / 2**20 for s in samples]),
    ]
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.5))
    for ax, (title, values) in zip(axes, panels, strict=True):
        if values is None:
            ax.plot(x, [s.nginx_fds for s in samples], marker="o", label="nginx")
            ax.plot(x, [s.uwsgi_fds for s in samples], marker="o", label="uWSGI")
            ax.legend()
        else:
            ax.plot(x, values, marker="o")
        ax.set_title(title)
        ax.set_xlabel("minute")
        ax.set_ylim(bottom=0)
    axes[0].bar(x, [s.errors for s in samples], color="red", width=0.05)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def soak(duration: float, interval: float, rate: float) -> int:
    stack = running_stack()
    if stack is None:
        raise StackError(f"no stack runs in compose project {project_name()}: start one with `make up`")
    containers = {c.service: c.name for c in stack.containers() if c.status == "running"}
    server = containers.get(server_service(stack))
    if server is None:
        raise StackError("the app server is not running: `make up` first")
    port = int(settings.get("HTTP_PORT"))
    base = f"http://127.0.0.1:{port}"
    watched = [name for service, name in containers.items() if service in ("nginx", server_service(stack))]
    users = make_users(server)

    tally = Tally()
    started = time.monotonic()
    until = started + duration
    threads = [
        threading.Thread(target=client, args=(base, port, user, token, rate / CLIENTS, until, tally), daemon=True)
        for user, token in users
    ]
    for thread in threads:
        thread.start()
    samples: list[Sample] = []
    seen_requests, seen_errors, last = 0, 0, started
    while (now := time.monotonic()) < until + 1:
        time.sleep(max(0.0, min(last + interval, until) - now))  # the next sample is due (paced, bounded)
        now = time.monotonic()
        with tally.lock:
            done, errors = tally.requests, sum(tally.errors.values())
        fds = open_fds(watched)
        samples.append(
            Sample(
                minute=(now - started) / 60,
                requests=done - seen_requests,
                errors=errors - seen_errors,
                rate=(done - seen_requests) / max(now - last, 1e-6),
                rss_mb=worker_rss_mb(server),
                nginx_fds=fds["nginx"],
                uwsgi_fds=fds["uwsgi"],
                log_bytes=log_bytes(list(containers.values())),
            )
        )
        print(f"soak: {table(samples[-1:]).splitlines()[-1]}", flush=True)
        seen_requests, seen_errors, last = done, errors, now
        if now >= until:
            break
    for thread in threads:
        thread.join(timeout=60)

    out = ROOT / "results" / "soak" / datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out.mkdir(parents=True, exist_ok=True)
    problems = verdict(samples, tally.errors)
    summary = (
        f"# Soak: {duration:.0f} s at {rate:.0f} req/s, {tally.requests} requests, "
        f"{sum(tally.errors.values())} errors\n\n{table(samples)}\n\n"
        + ("Result: FAILED\n" + "".join(f"- {p}\n" for p in problems) if problems else "Result: passed\n")
    )
    (out / "report.md").write_text(summary)
    chart(samples, out / "soak.png")
    print(summary + f"\nsoak: report and chart in {out.relative_to(ROOT)}")
    return 1 if problems else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.soak")
    parser.add_argument("--duration", type=float, default=float(settings.get("SOAK_DURATION")), help="seconds")
    parser.add_argument("--interval", type=float, default=float(settings.get("SOAK_INTERVAL")), help="seconds")
    parser.add_argument("--rate", type=float, default=float(settings.get("SOAK_RATE")), help="requests a second")
    args = parser.parse_args(argv)
    if not (0 < args.interval <= args.duration <= 3600 and 0 < args.rate <= 2000):
        print("soak: error: need 0 < interval <= duration <= 3600 s and 0 < rate <= 2000 req/s", file=sys.stderr)
        return 2
    try:
        return soak(args.duration, args.interval, args.rate)
    except StackError as exc:
        print(f"soak: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
