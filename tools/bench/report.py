"""From the run's results: the ratios, the target checks, and the Markdown report."""

from __future__ import annotations

from tools.bench.plan import ENDPOINTS

# (endpoint, numerator, denominator, at least, what)
TARGETS = [
    ("json", "chain.json", "gunicorn.json", 2.0, "Django JSON: the chain ≥ 2x nginx → gunicorn (same workers)"),
    ("json", "chain.json", "bare.json", 0.9, "Django JSON: the chain ≥ 0.9x bare uWSGI"),
    ("hello", "chain.hello", "gunicorn.hello", 3.0, "hello: the chain ≥ 3x nginx → gunicorn (same workers)"),
    ("static", "chain.static", "nginx.const", 0.5, "static 100 KB via nginx ≥ 0.5x the nginx constant"),
]
# The ratio columns: the chain against (b) bare uWSGI, (c) gunicorn at both counts, (d) granian.
COMPARED = ["bare", "gunicorn", "gunicorn-rec", "granian"]


def by_key(data: dict) -> dict[str, dict]:
    return {run["key"]: run for run in data.get("runs", [])}


def ratio(runs: dict[str, dict], top: str, bottom: str) -> float | None:
    a, b = runs.get(top, {}).get("rps"), runs.get(bottom, {}).get("rps")
    return round(a / b, 2) if a and b else None


def cpu_ratio(runs: dict[str, dict], top: str, bottom: str) -> float | None:
    """How many times less CPU per request `top` spends than `bottom`: the noise-robust twin of ratio()."""
    a, b = runs.get(top, {}).get("cpu_ms_per_req"), runs.get(bottom, {}).get("cpu_ms_per_req")
    return round(b / a, 2) if a and b else None


def ratios(data: dict) -> list[dict]:
    runs = by_key(data)
    rows = []
    for endpoint in ("hello", "json", "db"):
        row: dict = {"endpoint": endpoint, "cpu": {}}
        for stack in COMPARED:
            row[stack] = ratio(runs, f"chain.{endpoint}", f"{stack}.{endpoint}")
            row["cpu"][stack] = cpu_ratio(runs, f"chain.{endpoint}", f"{stack}.{endpoint}")
        if any(row[s] is not None for s in COMPARED):
            rows.append(row)
    static = ratio(runs, "chain.static", "nginx.const")
    if static is not None:
        rows.append({"endpoint": "static", "nginx.const": static, "cpu": {}})
    return rows


def all_runs(data: dict) -> list[dict]:
    """Every measured run: targets, published pairs (both sides) and sweep points."""
    found = list(data.get("runs", []))
    for pair in data.get("published", []):
        found += [pair[side] for side in ("in_network", "published") if side in pair]
    found += data.get("sweep", [])
    return found


def checks(data: dict) -> list[dict]:
    runs = by_key(data)
    smoke = data.get("mode") == "smoke"
    rows = []
    for _endpoint, top, bottom, least, what in TARGETS:
        value = ratio(runs, top, bottom)
        if smoke:
            result = "not checked (smoke run)"
        elif value is None:
            result = "not measured"
        else:
            result = "pass" if value >= least else "MISS"
        rows.append(
            {
                "target": what,
                "ratio": value,
                "cpu_ratio": cpu_ratio(runs, top, bottom),
                "at_least": least,
                "of": f"{top} ÷ {bottom}",
                "result": result,
            }
        )
    measured = [r for r in all_runs(data) if "rps" in r]
    failed = [r["key"] for r in all_runs(data) if "error" in r]
    with_errors = [
        f"{r['key']} ({r['errors_total']}" + (f"; statuses {r['statuses']}" if r.get("statuses") else "") + ")"
        for r in measured
        if r["errors_total"]
    ]
    if smoke:
        result = "not checked (smoke run)"
    else:
        result = "pass" if not with_errors and not failed else "MISS"
    rows.append(
        {
            "target": "0 errors in every run",
            "ratio": None,
            "cpu_ratio": None,
            "at_least": None,
            "of": ", ".join(with_errors + [f"{k} (failed)" for k in failed]) or f"{len(measured)} runs, 0 errors",
            "result": result,
        }
    )
    return rows


def worker_counts(data: dict) -> dict[str, int]:
    """Workers actually running per stack (from the memory samples), to confirm 'same worker count'."""
    counts = {}
    for run in data.get("runs", []):
        workers = (run.get("memory") or {}).get("workers")
        if workers is not None and run["stack"] != "nginx" and run["endpoint"] != "static":
            counts.setdefault(run["stack"], len(workers))
    return counts


# --- Markdown ----------------------------------------------------------------------------------------------------


def _n(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def _x(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _mib(kib: int | None) -> str:
    return "-" if kib is None else f"{kib / 1024:.1f}"


def markdown(data: dict) -> str:
    m, load = data["machine"], data["load"]
    labels = {run["stack"]: run["label"] for run in data.get("runs", []) if "label" in run}
    out = [
        "# wsgi-chain benchmark",
        "",
        f"{data['mode'].capitalize()} run, {data['started']} → {data['finished']} (project {data.get('project', '')}).",
        "",
        f"- **Machine**: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, {m['os']}, kernel {m['kernel']}, "
        f"Docker {m['docker']}. Load average at start {m['loadavg_start']}, at end {m.get('loadavg_end')} "
        "(a busy machine makes every number noisy).",
        f"- **Load**: {load['tool']} -t{load['threads']} -c{load['connections']}, {load['duration_s']:g} s per run "
        f"after a {load['warmup_s']:g} s warm-up, from {load['from']}; `Host: {load['host_header']}`.",
        "- **Versions**: " + ", ".join(f"{k} {v}" for k, v in data.get("versions", {}).items()),
        "",
        "## Throughput, latency, errors, memory",
        "",
        "RSS/worker: the mean resident set of the server's worker processes right after the run (nginx's workers for "
        "the static file and the constant); it counts pages shared with the master too (see Memory).",
        "",
        "CPU ms/req: CPU time the answering containers (nginx and the app server) spent per request, from their "
        "cgroups; unlike req/s it barely moves when other work shares the machine.",
        "",
        "| endpoint | stack | req/s | p50 ms | p99 ms | errors | CPU ms/req | workers | RSS/worker MiB |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for run in data.get("runs", []):
        mem = run.get("memory") or {}
        if "error" in run:
            out.append(f"| {ENDPOINTS[run['endpoint']]} | {run['label']} | failed: {run['error'][:80]} ||||||")
            continue
        out.append(
            f"| {ENDPOINTS[run['endpoint']]} | {run['label']} | {_n(run['rps'])} | {_n(run['p50_ms'], 2)} | "
            f"{_n(run['p99_ms'], 2)} | {run['errors_total']} | {_n(run.get('cpu_ms_per_req'), 3)} | "
            f"{len(mem.get('workers', []))} | {_n(mem.get('worker_rss_mib'), 1)} |"
        )
    rows = ratios(data)
    if rows:
        out += [
            "",
            "## Ratios: the chain ÷ the alternative (req/s)",
            "",
            "| endpoint | " + " | ".join(labels.get(s, s) for s in COMPARED) + " |",
            "|---|" + "--:|" * len(COMPARED),
        ]
        for row in rows:
            if row["endpoint"] == "static":
                continue
            out.append(f"| {ENDPOINTS[row['endpoint']]} | " + " | ".join(_x(row.get(s)) for s in COMPARED) + " |")
        out += [
            "",
            "The same by CPU per request (the alternative's CPU ms/req ÷ the chain's): how much more the alternative "
            "spends on each request.",
            "",
            "| endpoint | " + " | ".join(labels.get(s, s) for s in COMPARED) + " |",
            "|---|" + "--:|" * len(COMPARED),
        ]
        for row in rows:
            if row["endpoint"] != "static":
                cells = " | ".join(_x(row["cpu"].get(s)) for s in COMPARED)
                out.append(f"| {ENDPOINTS[row['endpoint']]} | {cells} |")
        static = next((r for r in rows if r["endpoint"] == "static"), None)
        if static:
            out += ["", f"Static file ÷ nginx constant: {_x(static['nginx.const'])}."]
    out += ["", "## Targets", ""]
    counts = worker_counts(data)
    if counts:
        out += ["Workers running: " + ", ".join(f"{labels.get(k, k)}: {v}" for k, v in counts.items()) + ".", ""]
    out += ["| target | measured (req/s) | by CPU per request | result |", "|---|--:|--:|---|"]
    for row in checks(data):
        if row["at_least"] is None:  # the errors check: "measured" lists the runs with errors
            out.append(f"| {row['target']} | {row['of']} | | {row['result']} |")
        else:
            out.append(
                f"| {row['target']} ({row['of']}) | {_x(row['ratio'])} | {_x(row['cpu_ratio'])} | {row['result']} |"
            )
    out += _published(data)
    out += _memory(data)
    out += _sweep(data)
    notes = data.get("notes") or []
    if notes:
        out += ["", "## Notes", "", *[f"- {note}" for note in notes]]
    return "\n".join(out) + "\n"


def _published(data: dict) -> list[str]:
    pairs = data.get("published")
    if not pairs:
        return []
    out = [
        "",
        "## Published port vs inside the network (docker's port forwarding)",
        "",
        "The same run twice, back to back: from the load generator on the stack's network, then from the host through "
        "the port published on 127.0.0.1.",
        "",
    ]
    if "skipped" in pairs[0]:
        return [*out, f"Skipped: {pairs[0]['skipped']}."]
    proxy = {p["userland_proxy"] for p in pairs}
    forwarded = "yes" if proxy == {True} else "no" if proxy == {False} else "mixed"
    out += [
        f"Forwarded by docker-proxy (dockerd's userland proxy): {forwarded}.",
        "",
        "| run | in network req/s | published req/s | published ÷ in network | p99 ms in / published | errors |",
        "|---|--:|--:|--:|--:|--:|",
    ]
    for p in pairs:
        a, b = p["in_network"], p["published"]
        share = round(b["rps"] / a["rps"], 2) if a.get("rps") and b.get("rps") else None
        errors = (a.get("errors_total") or 0) + (b.get("errors_total") or 0)
        out.append(
            f"| {p['same_as']} | {_n(a.get('rps'))} | {_n(b.get('rps'))} | {_x(share)} | "
            f"{_n(a.get('p99_ms'), 2)} / {_n(b.get('p99_ms'), 2)} | {errors} |"
        )
    return out


def _memory(data: dict) -> list[str]:
    out = []
    chain = data.get("chain_memory")
    if chain and chain.get("master"):
        workers = chain["workers"]
        out += [
            "",
            "## Memory after warm-up",
            "",
            f"The chain's uWSGI, after all its runs: master RSS {_mib(chain['master']['rss_kib'])} MiB; workers "
            + ", ".join(f"{_mib(w['rss_kib'])} MiB RSS ({_mib(w['uss_kib'])} private)" for w in workers)
            + f"; all together {chain['total_pss_mib']} MiB PSS.",
        ]
    lazy = data.get("lazy_vs_prefork")
    if lazy:
        out += [
            "",
            "Preforking (the master imports the app, workers share its pages copy-on-write) against "
            "`lazy-apps` (each worker imports the app itself), the same bare uWSGI after the same warm-up:",
            "",
            "| mode | master RSS MiB | worker RSS MiB (each) | worker private MiB (each) | total PSS MiB |",
            "|---|--:|--:|--:|--:|",
        ]
        for mode, sample in lazy.items():
            master = sample.get("master") or {}
            workers = sample.get("workers", [])
            out.append(
                f"| {mode} | {_mib(master.get('rss_kib'))} | {' / '.join(_mib(w['rss_kib']) for w in workers)} | "
                f"{' / '.join(_mib(w['uss_kib']) for w in workers)} | {sample['total_pss_mib']} |"
            )
        pre, lz = lazy.get("prefork"), lazy.get("lazy-apps")
        if pre and lz and pre["workers"] and lz["workers"]:
            extra = lz["total_pss_mib"] - pre["total_pss_mib"]
            per = (lz["worker_uss_mib"] or 0) - (pre["worker_uss_mib"] or 0)
            out += [
                "",
                f"lazy-apps costs {extra:+.1f} MiB in all ({per:+.1f} MiB private per worker) at "
                f"{len(pre['workers'])} workers.",
            ]
    return out


def _sweep(data: dict) -> list[str]:
    rows = data.get("sweep")
    if not rows:
        return []
    out = [
        "",
        "## Tuning sweep (Django JSON through a second chain)",
        "",
        "Every point but *as configured* passes `--listen 128`, so each measures its own variable.",
        "",
        "| point | uWSGI options | req/s | p50 ms | p99 ms | errors | CPU ms/req | workers | RSS/worker MiB |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for row in rows:
        point = row["point"]
        if "rps" not in row:
            out.append(f"| {point['what']} | `{point['uwsgi_args']}` | failed: {row.get('error', '')[:80]} ||||||")
            continue
        mem = row.get("memory") or {}
        out.append(
            f"| {point['what']} | `{point['uwsgi_args'] or '(none)'}` | {_n(row['rps'])} | {_n(row['p50_ms'], 2)} | "
            f"{_n(row['p99_ms'], 2)} | {row['errors_total']} | {_n(row.get('cpu_ms_per_req'), 3)} | "
            f"{len(mem.get('workers', []))} | {_n(mem.get('worker_rss_mib'), 1)} |"
        )
    return out
