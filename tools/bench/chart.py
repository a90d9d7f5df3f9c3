"""The PNG chart, drawn with matplotlib (Agg: no display needed)."""

from __future__ import annotations

from pathlib import Path

from tools.bench.plan import ENDPOINTS

STACK_ORDER = ["chain", "bare", "gunicorn", "gunicorn-rec", "granian", "nginx"]
COLORS = {
    "chain": "#2b6cb0",
    "bare": "#90cdf4",
    "gunicorn": "#c05621",
    "gunicorn-rec": "#f6ad55",
    "granian": "#2f855a",
    "nginx": "#718096",
}


def draw(data: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = [r for r in data.get("runs", []) if "rps" in r]
    app_runs = [r for r in runs if r["endpoint"] in ("hello", "json", "db")]
    nginx_runs = [r for r in runs if r["endpoint"] in ("static", "const")]
    published = [p for p in data.get("published", []) if "in_network" in p]
    panels = [(_throughput, app_runs, "The app servers, in the network"), (_nginx, nginx_runs, "nginx, in the network")]
    panels = [panel for panel in panels if panel[1]]
    if published:
        panels.append((_published, published, "What docker's port forwarding costs"))
    widths = [3 if draw_panel is _throughput else 1.2 for draw_panel, _, _ in panels]
    fig, axes = plt.subplots(
        1, len(panels), figsize=(4 * sum(widths), 5.5), squeeze=False, gridspec_kw={"width_ratios": widths}
    )
    for ax, (draw_panel, rows, title) in zip(axes[0], panels, strict=True):
        draw_panel(ax, rows)
        ax.set_title(title, fontsize=10)
    m = data["machine"]
    fig.suptitle(
        f"wsgi-chain, {data['mode']} run {data['started'][:10]}: {m['cores']} cores, {m['cpu']}; "
        f"wrk -c{data['load']['connections']}, {data['load']['duration_s']:g} s per run",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _throughput(ax, runs: list[dict]) -> None:
    endpoints = [e for e in ENDPOINTS if any(r["endpoint"] == e for r in runs)]
    stacks = [s for s in STACK_ORDER if any(r["stack"] == s for r in runs)]
    width = 0.8 / max(len(stacks), 1)
    labels = {}
    for i, stack in enumerate(stacks):
        xs, ys = [], []
        for j, endpoint in enumerate(endpoints):
            run = next((r for r in runs if r["stack"] == stack and r["endpoint"] == endpoint), None)
            if run:
                xs.append(j - 0.4 + width * (i + 0.5))
                ys.append(run["rps"])
                labels[stack] = run["label"]
        if not xs:
            continue
        bars = ax.bar(xs, ys, width, label=labels.get(stack, stack), color=COLORS.get(stack))
        ax.bar_label(bars, labels=[f"{y / 1000:.1f}k" for y in ys], fontsize=7, rotation=90, padding=2)
    ax.set_xticks(range(len(endpoints)), [ENDPOINTS[e] for e in endpoints], fontsize=8)
    ax.set_ylabel("requests per second")
    ax.margins(y=0.15)
    ax.legend(fontsize=7)


def _nginx(ax, runs: list[dict]) -> None:
    """The static file and the constant: one bar each, on the chain's own nginx."""
    names = [ENDPOINTS[r["endpoint"]] for r in runs]
    values = [r["rps"] for r in runs]
    bars = ax.bar(range(len(runs)), values, 0.6, color=[COLORS["chain"], COLORS["nginx"]][: len(runs)])
    ax.bar_label(bars, labels=[f"{v / 1000:.1f}k" for v in values], fontsize=7, padding=2)
    ax.set_xticks(range(len(runs)), names, fontsize=8)
    ax.set_ylabel("requests per second")
    ax.margins(y=0.15)


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
