"""The benchmark's settings: environment variables, then command-line flags (see `python -m tools.bench -h`)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, replace
from pathlib import Path

from tools.compose import ROOT
from tools.stack import env


def _tag(image: str) -> str:
    """An image name as a tag: wsgi-chain/app:latest -> wsgi-chain-app-latest."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", image).strip("-.")[:120]


@dataclass(frozen=True)
class Settings:
    duration: float
    warmup: float
    connections: int
    wrk_threads: int
    wrk_timeout: str
    db_path: str
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
    smoke: bool = False
    sweep: bool = False
    published: bool = True
    memory: bool = True

    @classmethod
    def from_env(cls) -> Settings:
        app_image = env("APP_IMAGE", "wsgi-chain/app:latest")
        base_image = env("BASE_IMAGE", "debian:trixie-slim")
        cores = os.cpu_count() or 1
        return cls(
            duration=float(env("BENCH_DURATION", "10")),
            warmup=float(env("BENCH_WARMUP", "2")),
            connections=int(env("BENCH_CONNECTIONS", "64")),
            wrk_threads=int(env("BENCH_WRK_THREADS", "2")),
            wrk_timeout=env("BENCH_WRK_TIMEOUT", "5s"),
            # The DB-reading endpoint; switch to the microposts API once it exists.
            db_path=env("BENCH_DB_PATH", "/readyz"),
            workers=int(env("UWSGI_WORKERS", "2")),
            # gunicorn's documented recommendation: (2 x cores) + 1.
            gunicorn_rec_workers=int(env("BENCH_GUNICORN_REC_WORKERS", str(2 * cores + 1))),
            memory_warmup=float(env("BENCH_MEMORY_WARMUP", "5")),
            out_dir=Path(env("BENCH_OUT", str(ROOT / "results" / "bench"))),
            app_image=app_image,
            nginx_image=env("NGINX_IMAGE", "wsgi-chain/nginx:latest"),
            base_image=base_image,
            # One tag per app image, so runs against different app images never share a bench image.
            alt_image=env("BENCH_ALT_IMAGE", f"wsgi-chain-bench/alt:{_tag(app_image)}"),
            wrk_image=env("BENCH_WRK_IMAGE", f"wsgi-chain-bench/wrk:{_tag(base_image)}"),
            up_timeout=int(env("BENCH_UP_TIMEOUT", "240")),
        )

    def for_smoke(self) -> Settings:
        """A few seconds of load in all: two short points; no published ports, lazy-apps comparison or sweep."""
        return replace(
            self,
            smoke=True,
            duration=1.0,
            warmup=0.0,
            connections=8,
            published=False,
            memory=False,
            sweep=False,
        )
