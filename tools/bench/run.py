"""One benchmark run: bring the bench stack up, measure every target, the published ports, memory and (optionally)
the tuning sweep, then tear it all down. Returns the results as one JSON-able dict."""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import asdict

from tools.bench import cpu, load, machine, memory, plan, sweep
from tools.bench.settings import Settings
from tools.bench.stack import BenchStack

# nginx's "chain" log format: ... "GET /path HTTP/1.1" 200 57 ...
STATUS = re.compile(r'" (\d{3}) \d+ "')


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def statuses(container: str, since: str) -> dict[str, int]:
    """Responses by HTTP status in nginx's access log since a time: what wrk's "status errors" were."""
    logs = subprocess.run(
        ["docker", "logs", "--since", since, container], capture_output=True, text=True, timeout=60, check=False
    ).stdout
    return dict(Counter(m.group(1) for m in STATUS.finditer(logs)))


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


class Runner:
    def __init__(self, settings: Settings, stack: BenchStack):
        self.settings = settings
        self.stack = stack
        self.loadgen = ""

    def load(self, url: str, duration: float) -> load.LoadResult:
        s = self.settings
        return load.in_container(self.loadgen, url, duration, s.connections, s.wrk_threads, s.wrk_timeout)

    def measure(self, key: str, url: str, server: str | None) -> dict:
        """Warm up, measure (with the CPU the answering containers spend), then sample the server's memory.
        A failure is recorded, not raised."""
        entry: dict = {"key": key, "url": url, "server": server}
        front = url.split("//", 1)[1].split(":", 1)[0]
        try:
            containers = sorted({self.stack.container(name) for name in (front, server) if name})
            if self.settings.warmup > 0:
                self.load(url, self.settings.warmup)
            before, started = cpu.total_us(containers), now()
            result = self.load(url, self.settings.duration)
            spent = cpu.total_us(containers) - before
            entry.update(result.to_json())
            if result.errors["status"]:
                entry["statuses"] = statuses(self.stack.container(front), started)
            entry["cpu_containers"] = containers
            entry["cpu_ms_per_req"] = round(spent / 1000 / result.requests, 4) if result.requests else None
            if server:
                entry["memory"] = memory.sample(self.stack.container(server)).to_json()
        except (load.LoadError, RuntimeError, OSError, subprocess.SubprocessError) as exc:
            entry["error"] = str(exc)[-1500:]
        status = (
            f"{entry['rps']:>9.0f} req/s  p99 {entry['p99_ms']:.1f} ms  errors {entry['errors_total']}"
            f"  cpu {entry['cpu_ms_per_req']} ms/req"
            if "rps" in entry
            else f"FAILED: {entry['error'][:200]}"
        )
        log(f"{key:<28} {status}")
        return entry

    def targets(self, chosen: list[plan.Target]) -> list[dict]:
        return [
            {**self.measure(t.key, t.url, t.server), "endpoint": t.endpoint, "stack": t.stack, "label": t.label}
            for t in chosen
        ]

    def published(self) -> list[dict]:
        """Each published-port run from the host, right after the same run inside the network."""
        s = self.settings
        if shutil.which("wrk") is None:
            return [{"skipped": "wrk is not installed on the host (python -m tools.hostdeps wrk)"}]
        pairs = []
        for p in plan.PUBLISHED:
            port = self.stack.published_port(p.service, p.container_port)
            inside = self.measure(f"{p.same_as} (again)", f"http://{p.service}:{p.container_port}{p.path}", p.server)
            url = f"http://127.0.0.1:{port}{p.path}"
            outside: dict = {"key": p.key, "url": url}
            try:
                if s.warmup > 0:
                    load.on_host(url, s.warmup, s.connections, s.wrk_threads, s.wrk_timeout)
                started = now()
                outside.update(load.on_host(url, s.duration, s.connections, s.wrk_threads, s.wrk_timeout).to_json())
                if outside["errors"]["status"]:
                    outside["statuses"] = statuses(self.stack.container(p.service), started)
                log(f"{p.key:<28} {outside['rps']:>9.0f} req/s  p99 {outside['p99_ms']:.1f} ms")
            except (load.LoadError, OSError) as exc:
                outside["error"] = str(exc)[-1500:]
            pairs.append(
                {
                    "key": p.key,
                    "same_as": p.same_as,
                    "userland_proxy": machine.userland_proxy(port),
                    "in_network": inside,
                    "published": outside,
                }
            )
        return pairs

    def lazy_vs_prefork(self) -> dict:
        """The same bare uWSGI, preforking and with lazy-apps, after the same warm-up."""
        found = {}
        for mode, service in (("prefork", "mem-prefork"), ("lazy-apps", "mem-lazy")):
            for path in ("/healthz", self.settings.db_path):
                self.load(f"http://{service}:8000{path}", self.settings.memory_warmup)
            found[mode] = memory.sample(self.stack.container(service)).to_json()
            log(f"memory {mode:<10} total PSS {found[mode]['total_pss_mib']} MiB")
        return found

    def sweep(self) -> list[dict]:
        rows = []
        for point in sweep.points(os.cpu_count() or 1):
            try:
                self.stack.restart(["sweep-app", "sweep-nginx"], sweep.files_for(point, self.stack.workdir))
            except RuntimeError as exc:
                rows.append({"point": asdict(point), "error": str(exc)[-1500:]})
                log(f"sweep {point.key}: FAILED to start")
                continue
            entry = self.measure(f"sweep.{point.key}", "http://sweep-nginx:8080/healthz", "sweep-app")
            rows.append({"point": asdict(point), **entry})
        return rows


def run(settings: Settings) -> dict:
    chosen = plan.targets(settings)
    data: dict = {
        "schema": 1,
        "mode": "smoke" if settings.smoke else "full",
        "started": now(),
        "machine": machine.describe(),
        "settings": {k: str(v) if not isinstance(v, int | float | bool) else v for k, v in asdict(settings).items()},
        "load": {
            "tool": "wrk",
            "from": "a container on the stack's backend network (published-port runs: the host)",
            "threads": settings.wrk_threads,
            "connections": settings.connections,
            "duration_s": settings.duration,
            "warmup_s": settings.warmup,
            "host_header": load.HOST_HEADER,
        },
    }
    with BenchStack(settings) as stack:
        services = plan.services(chosen, settings)
        log(f"starting {len(services)} services as project {stack.project}")
        stack.up(services)
        runner = Runner(settings, stack)
        runner.loadgen = stack.container("loadgen")
        data["project"] = stack.project
        data["versions"] = machine.versions(
            {name: stack.container(name) for name in ("nginx", "app", "loadgen") if name in services}
        )
        data["runs"] = runner.targets(chosen)
        if settings.published:
            data["published"] = runner.published()
        if settings.memory:
            data["lazy_vs_prefork"] = runner.lazy_vs_prefork()
        if "app" in services:
            data["chain_memory"] = memory.sample(stack.container("app")).to_json()
        if settings.sweep:
            data["sweep"] = runner.sweep()
    data["finished"] = now()
    data["machine"]["loadavg_end"] = machine.loadavg()
    return data
