"""The benchmark's compose project: compose.yaml plus bench/compose.bench.yaml under a name of its own, its bench
images built first, a 100 KB static file mounted into nginx, and a teardown that always runs (down -v)."""

from __future__ import annotations

import random
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

from tools.bench.plan import STATIC_FILE, STATIC_SIZE
from tools.bench.settings import Settings
from tools.compose import ROOT, Compose, free_port, up_until_ready, write_secret_key
from tools.stack import BUILD_PROJECT

FILES = ("compose.yaml", "bench/compose.bench.yaml")
# Services that run the bench's app-server image (the app image plus hello, gunicorn and granian).
ALT_SERVICES = {"hello-app", "bare-hello", "gunicorn", "gunicorn-rec", "gunicorn-hello", "granian", "granian-hello"}


class BenchStack:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.project = f"wsgi-chain-bench-{secrets.token_hex(3)}"
        self.workdir = Path(tempfile.mkdtemp(prefix="wsgi-chain-bench-"))
        self.workdir.chmod(0o755)
        self.static_dir = self.workdir / "static"
        self.port = free_port()
        self.compose = Compose(project=self.project, files=FILES, env=self._env())
        self.started = False

    def _env(self) -> dict[str, str]:
        s = self.settings
        secret = write_secret_key(self.workdir / "secret_key")
        return {
            "APP_IMAGE": s.app_image,
            "NGINX_IMAGE": s.nginx_image,
            "BASE_IMAGE": s.base_image,
            "BENCH_ALT_IMAGE": s.alt_image,
            "BENCH_WRK_IMAGE": s.wrk_image,
            "BENCH_STATIC_DIR": str(self.static_dir),
            "BENCH_WORKERS": str(s.workers),
            "BENCH_GUNICORN_REC_WORKERS": str(s.gunicorn_rec_workers),
            "UWSGI_WORKERS": str(s.workers),
            "SECRET_KEY_FILE": str(secret),
            **self.write_memory_inis(),
            "HTTP_BIND": "127.0.0.1",
            "HTTP_PORT": str(self.port),
            # Lets `down` see the sweep's services too; `up` always names the services it starts.
            "COMPOSE_PROFILES": "sweep",
        }

    def write_memory_inis(self) -> dict[str, str]:
        """uwsgi.ini without lazy-apps (preforking) and with it, for the memory comparison."""
        text = re.sub(r"^lazy-apps\s*=.*\n", "", (ROOT / "uwsgi" / "uwsgi.ini").read_text(), flags=re.M)
        env = {}
        for name, body in (("BENCH_PREFORK_INI", text), ("BENCH_LAZY_INI", text.rstrip("\n") + "\nlazy-apps = true\n")):
            path = self.workdir / f"{name.lower()}.ini"
            path.write_text(body)
            path.chmod(0o644)
            env[name] = str(path)
        return env

    def write_static_file(self) -> None:
        """100 KB of seeded random bytes: the same file every run, and incompressible."""
        self.static_dir.mkdir(mode=0o755)
        path = self.static_dir / Path(STATIC_FILE).name
        path.write_bytes(random.Random(100).randbytes(STATIC_SIZE))  # noqa: S311 - test data, not crypto
        path.chmod(0o644)

    def check_images(self) -> None:
        for image in (self.settings.app_image, self.settings.nginx_image, self.settings.base_image):
            if subprocess.run(["docker", "image", "inspect", image], capture_output=True).returncode != 0:
                raise RuntimeError(f"image {image} not found: run `make build` first (there is no registry)")

    def build(self, services: list[str]) -> None:
        """Build the bench's own images (FROM the app image and the base): cached after the first run. Under the stack's
        one build project, not this run's: compose labels an image with the project that built it, so a build per run
        made a new image of the same content every run and left the last one untagged."""
        wanted = ["loadgen", *(["hello-app"] if ALT_SERVICES & set(services) else [])]
        result = replace(self.compose, project=BUILD_PROJECT).run("build", *wanted, check=False, capture=True)
        if result.returncode != 0:
            raise RuntimeError(f"building the bench images failed:\n{result.stderr[-4000:]}")

    def up(self, services: list[str]) -> None:
        self.write_static_file()
        self.check_images()
        self.started = True
        self.build(services)
        result = up_until_ready(self.compose, self.settings.up_timeout, *services)
        if result.returncode != 0:
            raise RuntimeError(f"bench stack {self.project} did not get healthy:\n{result.stderr}\n{self.tail_logs()}")

    def restart(self, services: list[str], env: dict[str, str]) -> None:
        """Recreate some services with other settings (the tuning sweep)."""
        self.compose.env.update(env)
        result = up_until_ready(self.compose, self.settings.up_timeout, "--no-deps", "--force-recreate", *services)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(services)} did not get healthy:\n{result.stderr}\n{self.tail_logs()}")

    def container(self, service: str) -> str:
        return self.compose.container(service)

    def published_port(self, service: str, port: int) -> int:
        out = self.compose.run("port", service, str(port), capture=True).stdout.strip()
        host, _, number = out.rpartition(":")
        if host != "127.0.0.1":
            raise RuntimeError(f"{service}:{port} is published on {out}, not on 127.0.0.1")
        return int(number)

    def tail_logs(self) -> str:
        return self.compose.run("logs", "--no-color", "--tail", "30", check=False, capture=True).stdout

    def down(self) -> None:
        try:
            if self.started:
                result = self.compose.run(
                    "down", "-v", "--remove-orphans", "--timeout", "10", check=False, capture=True
                )
                if result.returncode != 0:
                    print(f"bench: teardown of {self.project} failed:\n{result.stderr}", file=sys.stderr)
        finally:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> BenchStack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.down()
