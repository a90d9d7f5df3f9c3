"""What the benchmark measures: endpoints x stacks, each a URL on the stack's network and the service whose
processes' memory goes with it."""

from __future__ import annotations

from dataclasses import dataclass

from tools.bench.settings import Settings

STATIC_FILE = "/static/bench/100k.bin"
STATIC_SIZE = 100 * 1024

# The microposts API's users the bench seeds (tools/bench/seed.py): the reader owns the seeded posts, the writer
# posts during the runs (its own collection, so the reader's page and count stay the same from run to run).
READER = "bench-reader"
WRITER = "bench-writer"
READ_PATH = f"/api/users/{READER}/collection"
WRITE_PATH = f"/api/users/{WRITER}/collection"

ENDPOINTS = {
    "hello": "plain-WSGI hello",
    "json": "Django JSON (/healthz)",
    "read": "API read: a collection's first page",
    "write": "API write: POST a post (token)",
    "static": "static file, 100 KB",
    "const": "nginx constant",
}


def endpoint_name(key: str) -> str:
    """An endpoint's name in the report; results of older runs (`--render`) may hold keys no longer measured."""
    return ENDPOINTS.get(key, {"db": "Django DB read (/readyz, older runs)"}.get(key, key))


# The endpoints whose servers are compared (static and const are nginx alone).
APP_ENDPOINTS = ("hello", "json", "read", "write")
# The concurrency curve: these endpoints, the chain and the best alternative on each.
CURVE_ENDPOINTS = ("hello", "json")


@dataclass(frozen=True)
class Target:
    key: str  # "<stack>.<endpoint>"
    endpoint: str
    stack: str
    label: str
    service: str  # where wrk connects
    port: int
    path: str
    server: str  # the service whose workers' memory is sampled after the run
    method: str = "GET"  # POST: bench/wrk/post.lua, with the writer's token
    workers: int | None = None  # the server's worker processes when all are up (none for nginx alone)

    @property
    def url(self) -> str:
        return f"http://{self.service}:{self.port}{self.path}"


def stack_labels(settings: Settings) -> dict[str, str]:
    return {
        "chain": f"nginx → uWSGI x{settings.workers} (the chain)",
        "bare": f"bare uWSGI x{settings.workers} (--http-socket)",
        "floor": f"minimal nginx → minimal uWSGI x{settings.workers}, no log (the floor)",
        "gunicorn": f"nginx → gunicorn sync x{settings.workers}",
        "gunicorn-rec": f"nginx → gunicorn sync x{settings.gunicorn_rec_workers} (2·cores+1)",
        "granian": f"nginx → granian WSGI x{settings.workers}",
        "nginx": "nginx alone",
    }


def stack_workers(settings: Settings) -> dict[str, int | None]:
    """The worker processes each stack's server runs, as configured (the report checks the memory samples against
    them)."""
    return {
        **{stack: settings.workers for stack in stack_labels(settings)},
        "gunicorn-rec": settings.gunicorn_rec_workers,
        "nginx": None,
    }


def targets(settings: Settings) -> list[Target]:
    read, write = READ_PATH, WRITE_PATH
    rows = [
        # endpoint, stack, service, port, path, server
        ("hello", "chain", "hello-nginx", 8080, "/", "hello-app"),
        ("hello", "bare", "bare-hello", 8000, "/", "bare-hello"),
        # What a proxied request costs before anything the chain adds (bench/nginx/floor.conf, bench/uwsgi/floor.ini).
        ("hello", "floor", "floor-nginx", 8080, "/", "floor-app"),
        ("hello", "gunicorn", "alt-nginx", 8003, "/", "gunicorn-hello"),
        ("hello", "granian", "alt-nginx", 8005, "/", "granian-hello"),
        ("json", "chain", "nginx", 8080, "/healthz", "app"),
        ("json", "bare", "bare-uwsgi", 8000, "/healthz", "bare-uwsgi"),
        ("json", "gunicorn", "alt-nginx", 8001, "/healthz", "gunicorn"),
        ("json", "gunicorn-rec", "alt-nginx", 8002, "/healthz", "gunicorn-rec"),
        ("json", "granian", "alt-nginx", 8004, "/healthz", "granian"),
        ("read", "chain", "nginx", 8080, read, "app"),
        ("read", "bare", "bare-uwsgi", 8000, read, "bare-uwsgi"),
        ("read", "gunicorn", "alt-nginx", 8001, read, "gunicorn"),
        ("read", "gunicorn-rec", "alt-nginx", 8002, read, "gunicorn-rec"),
        ("read", "granian", "alt-nginx", 8004, read, "granian"),
        ("write", "chain", "nginx", 8080, write, "app"),
        ("write", "bare", "bare-uwsgi", 8000, write, "bare-uwsgi"),
        ("write", "gunicorn", "alt-nginx", 8001, write, "gunicorn"),
        ("write", "gunicorn-rec", "alt-nginx", 8002, write, "gunicorn-rec"),
        ("write", "granian", "alt-nginx", 8004, write, "granian"),
        ("static", "chain", "nginx", 8080, STATIC_FILE, "nginx"),
        # The ceiling of the front: the chain's own nginx answering `return 200` on its internal port.
        ("const", "nginx", "nginx", 8081, "/healthz", "nginx"),
    ]
    labels, workers = stack_labels(settings), stack_workers(settings)
    chosen = [
        Target(
            f"{stack}.{endpoint}",
            endpoint,
            stack,
            labels[stack],
            service,
            port,
            path,
            server,
            "POST" if endpoint == "write" else "GET",
            workers[stack],
        )
        for endpoint, stack, service, port, path, server in rows
    ]
    if settings.smoke:
        chosen = [t for t in chosen if t.stack in ("chain", "bare") and t.endpoint in ("json", "read", "write")]
    return chosen


def curve_targets(chosen: list[Target], best: dict[str, str]) -> list[Target]:
    """The curve's points: on each curve endpoint, the chain and the best alternative (`best`: endpoint -> stack)."""
    found = []
    for endpoint in CURVE_ENDPOINTS:
        for stack in ("chain", best.get(endpoint)):
            found += [t for t in chosen if t.endpoint == endpoint and t.stack == stack]
    return found


@dataclass(frozen=True)
class Published:
    """A run from the host through a port docker publishes on 127.0.0.1, paired with the same in-network run."""

    key: str
    service: str
    container_port: int
    path: str
    same_as: str  # the in-network target it is compared with
    server: str  # the app server behind it (for the in-network twin's CPU per request)


PUBLISHED = [
    Published("published.chain.json", "nginx", 8080, "/healthz", "chain.json", "app"),
    Published("published.chain.static", "nginx", 8080, STATIC_FILE, "chain.static", "nginx"),
    Published("published.gunicorn.json", "alt-nginx", 8001, "/healthz", "gunicorn.json", "gunicorn"),
]


def services(chosen: list[Target], settings: Settings) -> list[str]:
    """The services to start: the targets' and their servers', the load generator, the lazy-apps twin."""
    names = {"loadgen"} | {t.service for t in chosen} | {t.server for t in chosen}
    if any(t.endpoint in ("read", "write") for t in chosen):
        names.add("app")  # the seeding runs in the chain's app container (tools/bench/seed.py)
    if settings.published:
        names |= {p.service for p in PUBLISHED}
    if settings.memory:
        names |= {"mem-prefork", "mem-lazy"}
    return sorted(names)
