"""The soak run's 30 s smoke run (`make soak SOAK_DURATION=30`), on a stack of the module's own: a steady mixed load
with no error, and memory and descriptors that do not grow; the table and the chart land in results/soak/."""

from __future__ import annotations

import re

from tests.harness import ROOT, make


def test_a_30_s_soak_of_mixed_load_has_no_error_and_no_growth_and_reports_a_table_and_a_chart(own, load_report):
    env = {
        "COMPOSE_PROJECT_NAME": own.compose.project,
        "HTTP_PORT": own.compose.env["HTTP_PORT"],
        "SOAK_DURATION": "30",
        "SOAK_INTERVAL": "10",
        "SOAK_RATE": "50",
    }
    result = make("soak", env, timeout=240)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "Result: passed" in result.stdout
    out = ROOT / re.search(r"soak: report and chart in (\S+)", result.stdout)[1]
    report = (out / "report.md").read_text()
    rows = [line for line in report.splitlines() if re.match(r"\| \d+\.\d \| \d+ ", line)]
    assert len(rows) == 3, report
    # Every interval carried the load at about its rate (50 req/s), and none had an error.
    assert all(int(row.split("|")[2]) >= 10 * 50 * 0.8 and row.split("|")[4].strip() == "0" for row in rows), report
    assert (out / "soak.png").stat().st_size > 0
    load_report.append("soak smoke (30 s at 50 req/s): " + " / ".join(row.strip("| ") for row in rows))
