"""One benchmark run: bring the bench stack up, seed the API's database, measure every target several times
(interleaved), then the concurrency curve, the published ports, memory and (optionally) the tuning sweep, and tear
it all down. Returns the results as one JSON-able dict."""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import asdict

from tools.bench import cpu, load, machine, memory, plan, report, seed, stats, sweep
from tools.bench.settings import Settings
from tools.bench.stack import BenchStack

# The status in nginx's access log, a JSON line per request (nginx/conf.d/logging.conf: `"status":200`).
STATUS = re.compile(r'"source":"nginx".*?"status":(\d{3})')
FAILURES = (load.LoadError, RuntimeError, OSError, LookupError, ValueError, subprocess.SubprocessError)


def now(timespec: str = "seconds") -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec=timespec)


def statuses(container: str, since: str) -> dict[str, int]:
    """Responses by HTTP status in nginx's access log since a time: what wrk's "status errors" were (read right
    after the run: the last second's lines may still be in nginx's log buffer)."""
    logs = subprocess.run(
        ["docker", "logs", "--since", since, container], capture_output=True, text=True, timeout=60, check=False
    ).stdout
    return dict(Counter(m.group(1) for m in STATUS.finditer(logs)))


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def per_request(ms: float, requests: int) -> float | None:
    return round(ms / requests, 4) if requests else None


def describe(sample: dict) -> str:
    if "rps" not in sample:
        return f"FAILED: {sample['error'][:200]}"
    return (
        f"{sample['rps']:>9.0f} req/s  p99 {sample['p99_ms']:.1f} ms  errors {sample['errors_total']}"
        f"  cpu {sample['cpu_ms_per_req']} ms/req (host {sample['host_cpu_ms_per_req']})"
    )


class Runner:
    def __init__(self, settings: Settings, stack: BenchStack):
        self.settings = settings
        self.stack = stack
        self.loadgen = ""
        self.token = ""  # the writer's API token, once seeded
        self._names: dict[str, str] = {}

    def container(self, service: str) -> str:
        if service not in self._names:
            self._names[service] = self.stack.container(service)
        return self._names[service]

    def request_for(self, method: str) -> load.Request:
        if method == "POST":
            return load.Request("POST", (f"Authorization: Token {self.token}",))
        return load.GET

    def wrk(self, url: str, duration: float, connections: int, request: load.Request = load.GET) -> load.LoadResult:
        s = self.settings
        return load.in_container(
            self.loadgen, url, duration, connections, s.wrk_threads, s.wrk_timeout, request, s.pause_ms
        )

    def once(
        self,
        key: str,
        url: str,
        server: str | None,
        request: load.Request = load.GET,
        connections: int | None = None,
        duration: float | None = None,
        host_url: str | None = None,
        warm_up: bool = True,
    ) -> dict:
        """One measured run after its warm-up: wrk's figures, and the CPU per request of the answering containers
        (their cgroups), of the load generator, and of the whole host (/proc/stat). With host_url, wrk runs on the
        host against that published address instead. A failure is recorded, not raised."""
        s = self.settings
        connections = connections or s.connections
        duration = duration or s.duration
        entry: dict = {"key": key, "url": host_url or url, "server": server, "connections": connections}
        front = url.split("//", 1)[1].split(":", 1)[0]

        def drive(seconds: float) -> load.LoadResult:
            if host_url:
                return load.on_host(host_url, seconds, connections, s.wrk_threads, s.wrk_timeout, s.pause_ms)
            return self.wrk(url, seconds, connections, request)

        try:
            containers = sorted({self.container(name) for name in (front, server) if name})
            if warm_up and s.warmup > 0:
                drive(s.warmup)
            # The host's counter is read last before the run and first after it: its window holds the run and
            # little else; the cgroup reads around it cost the servers nothing (they are idle then).
            before, generator = cpu.total_us(containers), cpu.usage_us(self.loadgen)
            started, started_precise, host = now(), now("milliseconds"), cpu.host_busy_ms()
            result = drive(duration)
            host_ms = cpu.host_busy_ms() - host
            generator_ms = (cpu.usage_us(self.loadgen) - generator) / 1000
            servers_ms = (cpu.total_us(containers) - before) / 1000
            entry.update(result.to_json())
            entry["started"] = started_precise
            if result.errors["status"]:
                entry["statuses"] = statuses(self.container(front), started)
            entry["cpu_containers"] = containers
            n = result.requests
            entry["cpu_ms_per_req"] = per_request(servers_ms, n)
            entry["loadgen_cpu_ms_per_req"] = None if host_url else per_request(generator_ms, n)
            entry["host_cpu_ms_per_req"] = per_request(host_ms, n)
            # Neither the servers nor wrk in its container: dockerd, containerd, docker-proxy, the kernel's network
            # work charged to no container, wrk on the host (published runs), and whatever else runs meanwhile.
            entry["other_cpu_ms_per_req"] = per_request(host_ms - servers_ms - (0 if host_url else generator_ms), n)
        except FAILURES as exc:
            entry["error"] = str(exc)[-1500:] + self.states(front, server)
        return entry

    def states(self, *services: str | None) -> str:
        """The services' container states, for a failed run's message (a server that exited, say why)."""
        try:
            found = {c.service: c for c in self.stack.compose.containers()}
        except FAILURES as exc:
            return f"\n(container states unknown: {exc})"
        parts = []
        for name in filter(None, services):
            c = found.get(name)
            parts.append(f"{name}: {c.status} {c.health} exit {c.exit_code}" if c else f"{name}: no container")
        return "\n(" + "; ".join(parts) + ")"

    def sample_memory(self, entry: dict, server: str | None, workers: int | None = None) -> None:
        if not server or "rps" not in entry:
            return
        try:
            entry["memory"] = memory.sample(self.container(server), workers).to_json()
        except FAILURES as exc:
            entry["memory_error"] = str(exc)[-500:]

    def interleaved(self, points: list[tuple[str, plan.Target, int, float]], with_memory: bool) -> list[dict]:
        """Each point `repeats` times, in rounds (A B C, A B C, ...), so that whatever else loads the machine spreads
        over all of them alike; then each point's runs summed up (median, min, max). A point warms up before its first
        run only (its server stays warm: nothing restarts between rounds). Memory after the last round."""
        repeats = self.settings.repeats
        samples: dict[str, list[dict]] = {key: [] for key, *_ in points}
        for round_no in range(1, repeats + 1):
            for key, target, connections, duration in points:
                request = self.request_for(target.method)
                sample = self.once(
                    key, target.url, target.server, request, connections, duration, warm_up=round_no == 1
                )
                if with_memory and round_no == repeats:
                    self.sample_memory(sample, target.server, target.workers)
                samples[key].append(sample)
                log(f"{key:<28} {round_no}/{repeats} {describe(sample)}")
        entries = []
        for key, target, connections, _ in points:
            runs = samples[key]
            entry = {
                "key": key,
                "endpoint": target.endpoint,
                "stack": target.stack,
                "label": target.label,
                "url": target.url,
                "method": target.method,
                "server": target.server,
                "connections": connections,
                **stats.aggregate(runs),
            }
            last = runs[-1]
            for name in ("memory", "memory_error"):
                if name in last:
                    entry[name] = last[name]
            entries.append(entry)
        return entries

    def targets(self, chosen: list[plan.Target]) -> list[dict]:
        s = self.settings
        return self.interleaved([(t.key, t, s.connections, s.duration) for t in chosen], with_memory=True)

    def curve(self, chosen: list[plan.Target], runs: list[dict]) -> dict:
        """The concurrency sweep on hello and Django JSON: the chain and the best alternative at each level."""
        s = self.settings
        best = report.best_alternatives(runs)
        found = plan.curve_targets(chosen, best)
        points = [(f"curve.{t.key}.c{level}", t, level, s.curve_duration) for level in s.curve_levels for t in found]
        log(f"concurrency curve: {len(points)} points x {s.repeats}, best alternatives {best}")
        return {"levels": list(s.curve_levels), "best": best, "runs": self.interleaved(points, with_memory=False)}

    def published(self) -> list[dict]:
        """Each published-port run from the host, right after the same run inside the network."""
        if shutil.which("wrk") is None:
            return [{"skipped": "wrk is not installed on the host (python -m tools.hostdeps wrk)"}]
        pairs = []
        for p in plan.PUBLISHED:
            url = f"http://{p.service}:{p.container_port}{p.path}"
            try:
                port = self.stack.published_port(p.service, p.container_port)
            except FAILURES as exc:
                pairs.append({"key": p.key, "same_as": p.same_as, "error": str(exc)[-500:]})
                continue
            inside = self.once(f"{p.same_as} (again)", url, p.server)
            log(f"{p.same_as + ' (again)':<28} {describe(inside)}")
            outside = self.once(p.key, url, p.server, host_url=f"http://127.0.0.1:{port}{p.path}")
            log(f"{p.key:<28} {describe(outside)}")
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
            for path in ("/healthz", plan.READ_PATH):
                self.wrk(f"http://{service}:8000{path}", self.settings.memory_warmup, self.settings.connections)
            found[mode] = memory.sample(self.container(service), self.settings.workers).to_json()
            log(f"memory {mode:<10} total PSS {found[mode]['total_pss_mib']} MiB")
        return found

    def sweep(self, points: list[sweep.Point] | None = None) -> list[dict]:
        """Each point recreates the sweep's containers, so its runs cannot interleave with the other points' (that
        would mean a restart per run). Instead each of its `repeats` runs alternates with a run of the chain as
        configured (chain.json, never restarted): the point is judged against a reference measured in the same
        minutes, which cancels the machine's drift between points."""
        repeats = self.settings.repeats
        rows = []
        for point in points if points is not None else sweep.points(os.cpu_count() or 1):
            try:
                self.stack.restart(["sweep-app", "sweep-nginx"], sweep.files_for(point, self.stack.workdir))
            except RuntimeError as exc:
                rows.append({"point": asdict(point), "key": f"sweep.{point.key}", "error": str(exc)[-1500:]})
                log(f"sweep {point.key}: FAILED to start")
                continue
            for service in ("sweep-app", "sweep-nginx"):
                cpu.forget(self.container(service))
            runs, references = [], []
            for round_no in range(1, repeats + 1):
                first = round_no == 1
                runs.append(
                    self.once(f"sweep.{point.key}", "http://sweep-nginx:8080/healthz", "sweep-app", warm_up=first)
                )
                log(f"sweep.{point.key:<22} {round_no}/{repeats} {describe(runs[-1])}")
                references.append(
                    self.once("chain.json (reference)", "http://nginx:8080/healthz", "app", warm_up=False)
                )
                log(f"{'  reference chain.json':<28} {round_no}/{repeats} {describe(references[-1])}")
            entry = {"point": asdict(point), "key": f"sweep.{point.key}", **stats.aggregate(runs)}
            self.sample_memory(entry, "sweep-app")
            reference = stats.aggregate(references)
            entry["reference"] = {k: v for k, v in reference.items() if k != "samples"}
            entry["vs_reference"] = {
                figure: report.compare(entry, reference, figure) for figure in ("rps", "cpu_ms_per_req", "p99_ms")
            }
            rows.append(entry)
        return rows


def run(settings: Settings) -> dict:
    settings.check()
    chosen = plan.targets(settings)
    data: dict = {
        "schema": 2,
        "mode": "smoke" if settings.smoke else "full",
        "started": now(),
        "machine": machine.describe(),
        "settings": {
            k: str(v) if not isinstance(v, int | float | bool | tuple) else v for k, v in asdict(settings).items()
        },
        "load": {
            "tool": "wrk",
            "from": "a container on the stack's backend network (published-port runs: the host)",
            "threads": settings.wrk_threads,
            "connections": settings.connections,
            "duration_s": settings.duration,
            "pause_ms": settings.pause_ms,
            "warmup_s": settings.warmup,
            "repeats": settings.repeats,
            "order": "interleaved: every point once per round, rounds repeated",
            "host_header": load.HOST_HEADER,
        },
    }
    with BenchStack(settings) as stack:
        services = plan.services(chosen, settings)
        log(f"starting {len(services)} services as project {stack.project}")
        stack.up(services)
        runner = Runner(settings, stack)
        runner.loadgen = runner.container("loadgen")
        data["project"] = stack.project
        data["load"]["client_tcp"] = machine.client_tcp(runner.loadgen)
        data["versions"] = machine.versions(
            {name: runner.container(name) for name in ("nginx", "app", "loadgen") if name in services}
        )
        api = [t for t in chosen if t.endpoint in ("read", "write")]
        if api:
            seeded = seed.seed(runner.container("app"), settings.posts)
            runner.token = seeded.writer_token
            data["seed"] = seeded.to_json()
            log(f"seeded {plan.READER} with {settings.posts} posts; {plan.WRITER} writes")
        data["runs"] = runner.targets(chosen)
        if settings.curve:
            data["curve"] = runner.curve(chosen, data["runs"])
        if api:
            data["seed"]["writer_posts_after"] = seed.count(runner.container("app"), plan.WRITER)
            data["seed"]["write_requests_measured"] = sum(
                r.get("requests", 0) for r in data["runs"] if r["endpoint"] == "write"
            )
        if settings.published:
            data["published"] = runner.published()
        if settings.memory:
            data["lazy_vs_prefork"] = runner.lazy_vs_prefork()
        if "app" in services:
            data["chain_memory"] = memory.sample(runner.container("app"), settings.workers).to_json()
        if settings.sweep:
            data["sweep"] = runner.sweep()
    data["finished"] = now()
    data["machine"]["loadavg_end"] = machine.loadavg()
    return data
