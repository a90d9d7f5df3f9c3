#!/usr/bin/env python3
"""Prometheus exporter for the chain: GET /metrics on an internal port (9117), never published.

One scrape gives three sources, each read when scraped (nothing is cached, nothing written):
- the app's own metrics, which its worker processes write to PROMETHEUS_MULTIPROC_DIR (prometheus-client's
  multiprocess mode; the container's entrypoint empties that directory before uWSGI starts);
- uWSGI's stats server (127.0.0.1:1717, the container's loopback): workers by status, requests, exceptions,
  respawns, memory, the listen queue;
- nginx's stub_status (NGINX_STATUS_URL): connections and requests.
A source that does not answer shows as `<source>_up 0`, and the scrape still succeeds.

Started and restarted by the uWSGI master (attach-daemon2 in uwsgi.ini). Settings: METRICS_PORT (9117),
METRICS_BIND (0.0.0.0: the container's private networks), NGINX_STATUS_URL (http://127.0.0.1:8081/stub_status).
No UWSGI_* variables: uWSGI reads those as its options.
"""

from __future__ import annotations

import os
import re
import signal
import sys
import threading
import urllib.request
from collections.abc import Iterator
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

# Installed beside this module (docker/app/Dockerfile): the stats server's address and client, in one place.
import uwsgi_ctl
from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

TIMEOUT = 2.0


class UwsgiCollector(Collector):
    """uWSGI's stats server as Prometheus metrics."""

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("uwsgi_up", "1 when uWSGI's stats server answered this scrape")
        try:
            stats = uwsgi_ctl.stats(timeout=TIMEOUT)
        except (OSError, ValueError):
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up

        workers = stats.get("workers", [])
        by_status: dict[str, int] = {"idle": 0, "busy": 0}
        for worker in workers:
            status = worker.get("status", "unknown")
            # uWSGI reports "sig" / "pause" / "cheap" besides idle and busy; each gets its own label value.
            by_status[status] = by_status.get(status, 0) + 1
        count = GaugeMetricFamily("uwsgi_workers", "Workers by status", labels=["status"])
        for status, n in sorted(by_status.items()):
            count.add_metric([status], n)
        yield count

        per_worker = {
            "requests": CounterMetricFamily(
                "uwsgi_worker_requests", "Requests served by the worker", labels=["worker"]
            ),
            "exceptions": CounterMetricFamily(
                "uwsgi_worker_exceptions", "Exceptions raised in the worker", labels=["worker"]
            ),
            "respawn_count": CounterMetricFamily(
                "uwsgi_worker_respawns", "Times the worker has been (re)spawned", labels=["worker"]
            ),
            "harakiri_count": CounterMetricFamily(
                "uwsgi_worker_harakiri", "Requests killed by harakiri in the worker", labels=["worker"]
            ),
            "rss": GaugeMetricFamily("uwsgi_worker_rss_bytes", "Resident memory of the worker", labels=["worker"]),
            "avg_rt": GaugeMetricFamily(
                "uwsgi_worker_avg_response_time_seconds", "Worker's average response time", labels=["worker"]
            ),
        }
        for worker in workers:
            wid = [str(worker.get("id", "?"))]
            for key, family in per_worker.items():
                value = worker.get(key, 0) or 0
                family.add_metric(wid, value / 1e6 if key == "avg_rt" else value)
        yield from per_worker.values()

        yield CounterMetricFamily(
            "uwsgi_requests", "Requests served by all workers", value=sum(w.get("requests", 0) for w in workers)
        )
        yield CounterMetricFamily(
            "uwsgi_exceptions", "Exceptions in all workers", value=sum(w.get("exceptions", 0) for w in workers)
        )
        yield GaugeMetricFamily(
            "uwsgi_listen_queue", "Connections waiting in the socket's listen queue", value=stats.get("listen_queue", 0)
        )
        yield GaugeMetricFamily(
            "uwsgi_listen_queue_errors",
            "Connections refused because the listen queue was full",
            value=stats.get("listen_queue_errors", 0),
        )


STUB_STATUS = re.compile(
    r"Active connections:\s*(?P<active>\d+).*?(?P<accepts>\d+)\s+(?P<handled>\d+)\s+(?P<requests>\d+)\s*"
    r"Reading:\s*(?P<reading>\d+)\s*Writing:\s*(?P<writing>\d+)\s*Waiting:\s*(?P<waiting>\d+)",
    re.S,
)


def fetch(url: str, timeout: float) -> bytes | None:
    """The body at url, or None when it is not read within timeout seconds, the name's lookup included: urlopen's
    timeout bounds the socket only, and getaddrinfo waits on the resolver (Docker's embedded DNS, for a service
    name), up to its own retries. A lookup still waiting ends on its own, in its daemon thread."""
    bodies: list[bytes] = []

    def get() -> None:
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - a configured http URL
                bodies.append(response.read())
        except OSError:
            pass

    thread = threading.Thread(target=get, name="fetch", daemon=True)
    thread.start()
    thread.join(timeout)
    return bodies[0] if bodies else None


class NginxCollector(Collector):
    """nginx's stub_status page as Prometheus metrics."""

    def __init__(self, url: str) -> None:
        self.url = url

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("nginx_up", "1 when nginx's stub_status answered this scrape")
        body = fetch(self.url, TIMEOUT)
        match = STUB_STATUS.search(body.decode("ascii", "replace")) if body is not None else None
        up.add_metric([], 1 if match else 0)
        yield up
        if not match:
            return
        values = {key: int(value) for key, value in match.groupdict().items()}
        yield CounterMetricFamily("nginx_connections_accepted", "Client connections accepted", value=values["accepts"])
        yield CounterMetricFamily("nginx_connections_handled", "Client connections handled", value=values["handled"])
        yield CounterMetricFamily("nginx_http_requests", "Client requests", value=values["requests"])
        connections = GaugeMetricFamily("nginx_connections", "Client connections by state", labels=["state"])
        for state in ("active", "reading", "writing", "waiting"):
            connections.add_metric([state], values[state])
        yield connections


def registry() -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    multiproc_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if multiproc_dir and os.path.isdir(multiproc_dir):
        MultiProcessCollector(registry, path=multiproc_dir)
    registry.register(UwsgiCollector())
    registry.register(NginxCollector(os.environ.get("NGINX_STATUS_URL", "http://127.0.0.1:8081/stub_status")))
    return registry


def application(metrics_app):
    """/metrics only; anything else is 404."""

    def app(environ, start_response):
        if environ.get("PATH_INFO") == "/metrics":
            return metrics_app(environ, start_response)
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found: try /metrics\n"]

    return app


class QuietHandler(WSGIRequestHandler):
    """Scrapes are not logged (every 15 s per scraper): no noise among the request logs."""

    # A client that sends nothing is dropped after 10 s (default: never).
    timeout = 10

    def log_message(self, format: str, *args) -> None:
        pass


class Server(ThreadingMixIn, WSGIServer):
    """One thread per scrape: a slow or stuck client never holds up the others."""

    daemon_threads = True


def stop(signum: int, frame: object) -> None:
    """TERM (the uWSGI master stopping) ends the server loop cleanly."""
    raise KeyboardInterrupt


def main() -> int:
    port = int(os.environ.get("METRICS_PORT", "9117"))
    bind = os.environ.get("METRICS_BIND", "0.0.0.0")  # noqa: S104 - the container's private networks only
    server = make_server(bind, port, application(make_wsgi_app(registry())), Server, QuietHandler)
    signal.signal(signal.SIGTERM, stop)
    # One write (print makes two under PYTHONUNBUFFERED): uWSGI's lines go to the same log, and one was glued to it.
    sys.stderr.write(f"metrics-exporter: serving /metrics on {bind}:{port}\n")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
