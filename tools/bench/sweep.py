"""The tuning sweep: one more chain (sweep-app + sweep-nginx), recreated per point with other uWSGI options or
nginx files, measured on the Django JSON endpoint. Every point but "as configured" passes --listen 128, so that
each one measures its own variable and not the listen backlog of uwsgi.ini."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from tools.compose import ROOT

NGINX_CONF = ROOT / "nginx" / "nginx.conf"
UPSTREAM_TCP = ROOT / "bench" / "nginx" / "upstream-tcp.conf"
LOGGING_CONF = ROOT / "nginx" / "conf.d" / "logging.conf"
UWSGI_INI = ROOT / "uwsgi" / "uwsgi.ini"


@dataclass(frozen=True)
class Point:
    key: str
    what: str
    uwsgi_args: str = ""
    nginx_workers: str | None = None  # worker_processes, when not the repo's
    tcp: bool = False
    access_log_buffer: bool = False
    drop_from_ini: tuple[str, ...] = ()  # uwsgi.ini options to leave out (flags the command line cannot unset)
    tags: dict[str, str] = field(default_factory=dict)


def points(cores: int) -> list[Point]:
    fixed = "--listen 128"
    return [
        Point("as-configured", "uwsgi.ini and nginx as they are"),
        *[
            Point(f"p{n}", f"{n} worker(s) ({n / cores:g} per core)", f"{fixed} --processes {n}")
            for n in (1, 2, 3, 4, 6)
        ],
        Point("p2t2", "2 workers x 2 threads", f"{fixed} --processes 2 --threads 2"),
        Point("p4t2", "4 workers x 2 threads", f"{fixed} --processes 4 --threads 2"),
        Point("p2-maxreq-off", "2 workers, no max-requests recycling", f"{fixed} --processes 2 --max-requests 0"),
        Point(
            "p2-log-every",
            "2 workers, uWSGI logs every request (UWSGI_DISABLE_LOGGING=false)",
            f"{fixed} --processes 2",
            drop_from_ini=("disable-logging",),
        ),
        Point(
            "p2-tz-unset",
            "2 workers, TZ unset (glibc stats /etc/localtime per log line)",
            f"{fixed} --processes 2",
            drop_from_ini=("env",),
        ),
        Point(
            "p2-no-thunder-lock",
            "2 workers, no thunder-lock",
            f"{fixed} --processes 2",
            drop_from_ini=("thunder-lock",),
        ),
        Point(
            "p2-buffered-log",
            "2 workers, nginx access log buffered (64k, flush 1s)",
            f"{fixed} --processes 2",
            access_log_buffer=True,
        ),
        Point("p2-nginx1", "2 workers, nginx worker_processes 1", f"{fixed} --processes 2", nginx_workers="1"),
        Point(
            "p2-tcp",
            "2 workers, TCP between containers instead of the unix socket",
            f"{fixed} --processes 2 --socket 0.0.0.0:3031",
            tcp=True,
        ),
    ]


def files_for(point: Point, workdir: Path) -> dict[str, str]:
    """The environment that mounts this point's nginx files into sweep-nginx (the repo's, or edited copies)."""
    env = {
        "BENCH_SWEEP_UWSGI_ARGS": point.uwsgi_args,
        "BENCH_SWEEP_NGINX_CONF": str(NGINX_CONF),
        "BENCH_SWEEP_UPSTREAM": str(ROOT / "nginx" / "conf.d" / "upstream.conf"),
        "BENCH_SWEEP_LOGGING": str(LOGGING_CONF),
        "BENCH_SWEEP_UWSGI_INI": str(UWSGI_INI),
    }
    if point.drop_from_ini:
        pattern = "|".join(re.escape(name) for name in point.drop_from_ini)
        env["BENCH_SWEEP_UWSGI_INI"] = edited_copy(
            UWSGI_INI,
            workdir / f"uwsgi-{point.key}.ini",
            (rf"^({pattern})\s*=.*\n", ""),
            len(point.drop_from_ini),
            f"does not set all of {point.drop_from_ini}",
        )
    if point.nginx_workers:
        env["BENCH_SWEEP_NGINX_CONF"] = edited_copy(
            NGINX_CONF,
            workdir / f"nginx-{point.key}.conf",
            (r"^worker_processes\s+\S+;", f"worker_processes {point.nginx_workers};"),
            1,
            "has no worker_processes line to vary",
        )
    if point.tcp:
        env["BENCH_SWEEP_UPSTREAM"] = str(UPSTREAM_TCP)
    if point.access_log_buffer:
        env["BENCH_SWEEP_LOGGING"] = edited_copy(
            LOGGING_CONF,
            workdir / f"logging-{point.key}.conf",
            (r"^access_log (\S+) (\S+);", r"access_log \1 \2 buffer=64k flush=1s;"),
            1,
            "has no access_log line to buffer",
        )
    return env


def edited_copy(source: Path, copy: Path, edit: tuple[str, str], edits: int, missing: str) -> str:
    """Write `source` with every match of edit's pattern (multiline) replaced to `copy`, readable by the
    containers; fail unless there were exactly `edits` matches (the file changed under the sweep)."""
    pattern, replacement = edit
    text, count = re.subn(pattern, replacement, source.read_text(), flags=re.M)
    if count != edits:
        raise RuntimeError(f"{source} {missing}")
    copy.write_text(text)
    copy.chmod(0o644)
    return str(copy)
