"""The PNG chart, drawn with matplotlib (Agg: no display needed).

Top row: req/s per server on each app endpoint, the bar at the median and the whisker from the min to the max of the
interleaved runs (one y scale per endpoint: hello answers ten times the writes). Bottom row: nginx alone, the
published-port pairs, and the concurrency curve (req/s and p99 against connections, min-max whiskers too).
"""

from __future__ import annotations

from pathlib import Path

from tools.bench.plan import APP_ENDPOINTS, endpoint_name

STACK_ORDER = ["chain", "floor", "bare", "gunicorn", "gunicorn-rec", "granian", "nginx"]
COLORS = {
    "chain": "#2b6cb0",
    "floor": "#a0aec0",
    "bare": "#90cdf4",
    "gunicorn": "#c05621",
    "gunicorn-rec": "#f6ad55",
    "granian": "#2f855a",
    "nginx": "#718096",
}
SHORT = {
    "chain": "chain",
    "floor": "floor (minimal)",
    "bare": "bare uWSGI",
    "gunicorn": "gunicorn",
    "gunicorn-rec": "gunicorn 2c+1",
    "granian": "granian",
    "nginx": "nginx",
}
LINES = {"hello": "-", "json": "--"}


def _whiskers(runs: list[dict], name: str) -> tuple[list[float], list[list[float]]]:
    """Medians and matplotlib's asymmetric error (below, above) from the min and max."""
    medians = [r[name] for r in runs]
    below = [r[name] - r.get(f"{name}_min", r[name]) for r in runs]
    above = [r.get(f"{name}_max", r[name]) - r[name] for r in runs]
    return medians, [below, above]


def draw(data: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = [r for r in data.get("runs", []) if r.get("rps") is not None]
    endpoints = [e for e in APP_ENDPOINTS if any(r["endpoint"] == e for r in runs)]
    nginx_runs = [r for r in runs if r["endpoint"] in ("static", "const")]
    published = [p for p in data.get("published", []) if "in_network" in p]
    curve = [r for r in (data.get("curve") or {}).get("runs", []) if r.get("rps") is not None]
    bottom = []
    if nginx_runs:
        bottom.append((_nginx, nginx_runs, "nginx alone"))
    if published:
        bottom.append((_published, published, "What docker's port forwarding costs (one run each)"))
    if curve:
        bottom += [(_curve_rps, curve, "Concurrency curve: req/s"), (_curve_p99, curve, "Concurrency curve: p99")]
    columns = max(len(endpoints), len(bottom), 1)
    rows = 2 if bottom else 1
    fig, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 4.8 * rows), squeeze=False)
    for ax, endpoint in zip(axes[0], endpoints, strict=False):
        _endpoint(ax, [r for r in runs if r["endpoint"] == endpoint])
        ax.set_title(endpoint_name(endpoint), fontsize=10)
    for ax in axes[0][len(endpoints) :]:
        ax.axis("off")
    if bottom:
        for ax, (draw_panel, panel_runs, title) in zip(axes[1], bottom, strict=False):
            draw_panel(ax, panel_runs)
            ax.set_title(title, fontsize=10)
        for ax in axes[1][len(bottom) :]:
            ax.axis("off")
    m, load = data["machine"], data["load"]
    fig.suptitle(
        f"wsgi-chain, {data['mode']} run {data['started'][:16]}: {m['cores']} cores, {m['cpu']}, load average "
        f"{m['loadavg_start'][0]}; wrk -c{load['connections']}, {load['duration_s']:g} s x {load.get('repeats', 1)} "
        "interleaved; bars: median, whiskers: min-max",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _endpoint(ax, runs: list[dict]) -> None:
    """One endpoint: a bar per server at its median req/s, whiskers from its min to its max."""
    runs = sorted(runs, key=lambda r: STACK_ORDER.index(r["stack"]) if r["stack"] in STACK_ORDER else 99)
    medians, error = _whiskers(runs, "rps")
    xs = range(len(runs))
    bars = ax.bar(xs, medians, 0.7, yerr=error, capsize=3, color=[COLORS.get(r["stack"], "#999") for r in runs])
    ax.bar_label(bars, labels=[f"{v:,.0f}" for v in medians], fontsize=7, label_type="center", color="white")
    ax.set_xticks(list(xs), [SHORT.get(r["stack"], r["stack"]) for r in runs], fontsize=8, rotation=30, ha="right")
    ax.set_ylabel("requests per second")
    ax.margins(y=0.1)


def _nginx(ax, runs: list[dict]) -> None:
    """The static file and the constant, on the chain's own nginx."""
    medians, error = _whiskers(runs, "rps")
    bars = ax.bar(range(len(runs)), medians, 0.6, yerr=error, capsize=3, color=[COLORS["chain"], COLORS["nginx"]])
    ax.bar_label(bars, labels=[f"{v / 1000:.1f}k" for v in medians], fontsize=7, label_type="center", color="white")
    ax.set_xticks(range(len(runs)), [endpoint_name(r["endpoint"]) for r in runs], fontsize=8)
    ax.set_ylabel("requests per second")
    ax.margins(y=0.1)


def _published(ax, pairs: list[dict]) -> None:
    names = [p["same_as"] for p in pairs]
    inside = [p["in_network"].get("rps", 0) for p in pairs]
    outside = [p["published"].get("rps", 0) for p in pairs]
    xs = range(len(pairs))
    a = ax.bar([x - 0.2 for x in xs], inside, 0.4, label="inside the network", color="#2b6cb0")
    b = ax.bar([x + 0.2 for x in xs], outside, 0.4, label="published port on 127.0.0.1", color="#a0aec0")
    for bars, values in ((a, inside), (b, outside)):
        ax.bar_label(bars, labels=[f"{v / 1000:.1f}k" for v in values], fontsize=7, padding=2)
    ax.set_xticks(list(xs), names, fontsize=8)
    ax.set_ylabel("requests per second")
    ax.margins(y=0.15)
    ax.legend(fontsize=7)


def _series(runs: list[dict]) -> dict[tuple[str, str], list[dict]]:
    found: dict[tuple[str, str], list[dict]] = {}
    for run in runs:
        found.setdefault((run["endpoint"], run["stack"]), []).append(run)
    return {k: sorted(v, key=lambda r: r["connections"]) for k, v in sorted(found.items())}


def _curve(ax, runs: list[dict], name: str, ylabel: str) -> None:
    for (endpoint, stack), points in _series(runs).items():
        xs = [r["connections"] for r in points]
        medians, error = _whiskers(points, name)
        ax.errorbar(
            xs,
            medians,
            yerr=error,
            capsize=3,
            marker="o",
            markersize=3,
            linestyle=LINES.get(endpoint, ":"),
            color=COLORS.get(stack),
            label=f"{SHORT.get(stack, stack)}, {endpoint}",
        )
    levels = sorted({r["connections"] for r in runs})
    ax.set_xscale("log", base=2)
    ax.set_xticks(levels, [str(c) for c in levels])
    ax.minorticks_off()
    ax.set_xlabel("connections")
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=7)


def _curve_rps(ax, runs: list[dict]) -> None:
    _curve(ax, runs, "rps", "requests per second")


def _curve_p99(ax, runs: list[dict]) -> None:
    from matplotlib.ticker import ScalarFormatter

    _curve(ax, runs, "p99_ms", "p99 latency, ms (log scale)")
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(ScalarFormatter())
