"""The benchmark's settings: environment variables, then command-line flags (see `python -m tools.bench -h`)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, replace
from pathlib import Path

from tools import settings as stack_settings
from tools.compose import ROOT
from tools.stack import env


def _tag(image: str) -> str:
    """An image name as a tag: owner/app:1.0 -> owner-app-1.0."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", image).strip("-.")[:120]


@dataclass(frozen=True)
class Settings:
    duration: float
    warmup: float
    connections: int
    wrk_threads: int
    wrk_timeout: str
    repeats: int
    posts: int
    workers: int
    gunicorn_rec_workers: int
    memory_warmup: float
    out_dir: Path
    app_image: str
    nginx_image: str
    base_image: str
    alt_image: str
    wrk_image: str
    up_timeout: int
    curve_levels: tuple[int, ...] = (1, 16, 64, 256, 1024)
    curve_duration: float = 3.0
    # A pause before each of wrk's requests (bench/wrk/report.lua): 0, as fast as answered, but in the smoke run.
    pause_ms: int = 0
    smoke: bool = False
    curve: bool = False
    sweep: bool = False
    published: bool = True
    memory: bool = True

    @classmethod
    def from_env(cls) -> Settings:
        app_image = stack_settings.get("APP_IMAGE")
        base_image = stack_settings.get("BASE_IMAGE")
        cores = os.cpu_count() or 1
        return cls(
            # Short runs, several of them (BENCH_REPEATS, interleaved): the spread says how far a figure can be trusted.
            duration=float(env("BENCH_DURATION", "5")),
            warmup=float(env("BENCH_WARMUP", "1")),
            connections=int(env("BENCH_CONNECTIONS", "64")),
            wrk_threads=int(env("BENCH_WRK_THREADS", "2")),
            wrk_timeout=env("BENCH_WRK_TIMEOUT", "5s"),
            repeats=int(env("BENCH_REPEATS", "3")),
            # The reader's collection: this many posts, seeded before the runs; the read is its first page.
            posts=int(env("BENCH_POSTS", "10000")),
            workers=int(env("UWSGI_WORKERS", "2")),
            # gunicorn's documented recommendation: (2 x cores) + 1.
            gunicorn_rec_workers=int(env("BENCH_GUNICORN_REC_WORKERS", str(2 * cores + 1))),
            memory_warmup=float(env("BENCH_MEMORY_WARMUP", "5")),
            out_dir=Path(env("BENCH_OUT", str(ROOT / "results" / "bench"))),
            app_image=app_image,
            nginx_image=stack_settings.get("NGINX_IMAGE"),
            base_image=base_image,
            # One tag per app image, so runs against different app images never share a bench image.
            alt_image=env("BENCH_ALT_IMAGE", f"wsgi-chain-bench/alt:{_tag(app_image)}"),
            wrk_image=env("BENCH_WRK_IMAGE", f"wsgi-chain-bench/wrk:{_tag(base_image)}"),
            up_timeout=int(env("BENCH_UP_TIMEOUT", "240")),
            curve_levels=tuple(int(c) for c in env("BENCH_CURVE_LEVELS", "1,16,64,256,1024").split(",")),
            curve_duration=float(env("BENCH_CURVE_DURATION", "3")),
        )

    def check(self) -> None:
        """Refuse settings that cannot give a meaningful run, naming the setting to fix."""
        if self.repeats < 1:
            raise ValueError(f"BENCH_REPEATS / --repeats must be at least 1, not {self.repeats}")
        if self.duration < 1 or self.curve_duration < 1:
            raise ValueError("BENCH_DURATION / BENCH_CURVE_DURATION: wrk runs whole seconds, at least 1")
        if self.posts < 1:
            raise ValueError(f"BENCH_POSTS must be at least 1 (the read needs a collection), not {self.posts}")
        if not self.curve_levels or min(self.curve_levels) < 1:
            raise ValueError(f"BENCH_CURVE_LEVELS: comma-separated connection counts of 1 or more: {self.curve_levels}")

    def for_smoke(self) -> Settings:
        """Every code path, a few seconds of load: the chain and bare uWSGI on Django JSON, the read and the write,
        twice each, interleaved; two levels of the concurrency curve. No published ports, lazy-apps or sweep. Its
        clients pause 10 ms before each request: it proves the harness, so its figures need no saturated servers, and
        unpaced it kept both cores busy for its 20 s of load (in `make test`, beside the other tests)."""
        return replace(
            self,
            smoke=True,
            duration=1.0,
            warmup=0.0,
            repeats=2,
            connections=2,
            pause_ms=10,
            curve=True,
            curve_levels=(1, 2),
            curve_duration=1.0,
            published=False,
            memory=False,
            sweep=False,
        )
