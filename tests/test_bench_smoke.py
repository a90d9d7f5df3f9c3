"""The benchmark harness, in smoke mode: a few seconds of load on a bench stack of its own, no thresholds.

It proves `make bench` still runs end to end (stack up, wrk in the network, memory samples, teardown) and still
writes its three outputs, so the harness cannot rot between benchmark runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.harness import ROOT, docker, project_containers

pytestmark = pytest.mark.lifecycle


def test_the_bench_harness_runs_and_writes_json_markdown_and_png(tmp_path):
    env = {**os.environ, "BENCH_OUT": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "tools.bench", "--smoke"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]

    data = json.loads((tmp_path / "bench.json").read_text())
    assert data["mode"] == "smoke"
    runs = {run["key"]: run for run in data["runs"]}
    assert {"chain.json", "bare.json"} <= set(runs)
    for run in runs.values():
        assert "error" not in run, run.get("error")
        assert run["requests"] > 0
        assert run["memory"]["workers"], f"no worker processes found for {run['key']}"
    assert all(t["result"].startswith("not checked") for t in data["targets"])

    markdown = (tmp_path / "bench.md").read_text()
    assert markdown.startswith("# wsgi-chain benchmark")
    assert "| Django JSON (/healthz) |" in markdown

    png = (tmp_path / "bench.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 1000

    # The bench project is gone: no container or volume of it is left.
    assert project_containers(data["project"]) == {}
    project = f"label=com.docker.compose.project={data['project']}"
    assert docker("volume", "ls", "--filter", project, "--format", "{{.Name}}").strip() == ""
