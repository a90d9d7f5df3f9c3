"""Command line: `python -m tools.bench [--smoke] [--curve] [--long] [--repeats N] [--sweep] [--render bench.json]`.

Settings come from the environment (tools/bench/settings.py: BENCH_DURATION, BENCH_REPEATS, BENCH_CONNECTIONS,
BENCH_POSTS, BENCH_OUT, UWSGI_WORKERS, APP_IMAGE, NGINX_IMAGE, ...); flags override them.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

from tools.bench import chart, report
from tools.bench.run import log, run
from tools.bench.settings import Settings

# --long: what a quiet machine affords for a figure to publish.
LONG_DURATION = 10.0
LONG_REPEATS = 5


def write(data: dict, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    data["ratios"] = report.ratios(data)
    data["targets"] = report.checks(data)
    (out_dir / "bench.json").write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    (out_dir / "bench.md").write_text(report.markdown(data))
    chart.draw(data, out_dir / "bench.png")
    log(f"wrote {out_dir}/bench.json, bench.md and bench.png")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="a few seconds in all, no thresholds")
    parser.add_argument("--sweep", action="store_true", help="also run the tuning sweep (a few minutes more)")
    parser.add_argument("--no-published", action="store_true", help="skip the runs through the published ports")
    parser.add_argument("--duration", type=float, help="seconds per run (BENCH_DURATION, default 5)")
    parser.add_argument("--repeats", type=int, help="runs of every point, interleaved (BENCH_REPEATS, default 3)")
    parser.add_argument(
        "--curve", action="store_true", help="also sweep the connections (1 to 1024) on hello and Django JSON"
    )
    parser.add_argument(
        "--long", action="store_true", help=f"longer runs: {LONG_DURATION:g} s each, {LONG_REPEATS} times (~25 min)"
    )
    parser.add_argument("--out", type=Path, help="results folder (BENCH_OUT, default results/bench)")
    parser.add_argument("--render", type=Path, metavar="BENCH_JSON", help="only redraw the report from a bench.json")
    args = parser.parse_args(argv)

    if args.render:
        data = json.loads(args.render.read_text())
        write(data, args.out or args.render.parent)
        return 0
    settings = Settings.from_env()
    if args.smoke:
        settings = settings.for_smoke()
        if not args.out and "BENCH_OUT" not in __import__("os").environ:
            settings = replace(settings, out_dir=settings.out_dir / "smoke")
    if args.long:
        settings = replace(settings, duration=LONG_DURATION, repeats=LONG_REPEATS)
    if args.curve:
        settings = replace(settings, curve=True)
    if args.repeats is not None:
        settings = replace(settings, repeats=args.repeats)
    if args.sweep:
        settings = replace(settings, sweep=True)
    if args.no_published:
        settings = replace(settings, published=False)
    if args.duration:
        settings = replace(settings, duration=args.duration)
    if args.out:
        settings = replace(settings, out_dir=args.out)
    try:
        settings.check()
    except ValueError as exc:
        log(str(exc))
        return 2
    try:
        data = run(settings)
    except (RuntimeError, OSError) as exc:
        log(f"failed: {exc}")
        return 1
    write(data, settings.out_dir)
    print((settings.out_dir / "bench.md").read_text())
    for group, what in ((report.ISSUE, "target(s)"), (report.AGAINST_BARE, "bar(s) against bare uWSGI")):
        misses = [t["target"] for t in data["targets"] if t["result"] == "MISS" and t["group"] == group]
        if misses:
            log(f"{len(misses)} {what} missed (reported, not a failure): " + "; ".join(misses))
    return 0
