"""From the run's results: the comparisons (ratios of medians, with a verdict), the target checks, and the Markdown
report."""

from __future__ import annotations

from tools.bench import machine, stats
from tools.bench.plan import APP_ENDPOINTS, CURVE_ENDPOINTS, endpoint_name

# Issue 14's alternatives, each behind the same nginx: gunicorn at the same worker count and at 2·cores+1, and granian.
ALTERNATIVES = ["gunicorn", "gunicorn-rec", "granian"]
# Bare uWSGI is the chain without its front proxy, not one of the issue's alternatives: compared on every figure all
# the same, and held to the same bars in a table of its own.
REFERENCE = "bare"
COMPARED = [REFERENCE, *ALTERNATIVES]
# The groups of target rows (a row's "group"): the issue's, and the same bars against bare uWSGI.
ISSUE, AGAINST_BARE = "issue", "bare"
# (figure, higher is better): what a comparison looks at. CPU and latency: less is better.
FIGURES = {
    "rps": True,
    "cpu_ms_per_req": False,
    "host_cpu_ms_per_req": False,
    "p99_ms": False,
}


def by_key(data: dict) -> dict[str, dict]:
    return {run["key"]: run for run in data.get("runs", [])}


def compare(mine: dict | None, theirs: dict | None, figure: str) -> dict | None:
    """The chain's figure against an alternative's: the ratio of the medians, oriented so that above 1 is better for
    the chain (req/s: mine ÷ theirs; CPU and latency: theirs ÷ mine), and the verdict from the min-max ranges."""
    if not mine or not theirs:
        return None
    a, b = stats.spread(mine, figure), stats.spread(theirs, figure)
    if a is None or b is None or not a.median or not b.median:
        return None
    higher = FIGURES[figure]
    value = a.median / b.median if higher else b.median / a.median
    return {"ratio": round(value, 2), "verdict": stats.verdict(a, b, higher_is_better=higher)}


def ratios(data: dict) -> list[dict]:
    """Per endpoint, the chain against each alternative, on every figure of FIGURES."""
    runs = by_key(data)
    rows = []
    for endpoint in APP_ENDPOINTS:
        mine = runs.get(f"chain.{endpoint}")
        row: dict = {"endpoint": endpoint, "vs": {}}
        for stack in COMPARED:
            theirs = runs.get(f"{stack}.{endpoint}")
            found = {figure: compare(mine, theirs, figure) for figure in FIGURES}
            if found["rps"] is not None:
                row["vs"][stack] = found
        if row["vs"]:
            rows.append(row)
    static = compare(runs.get("chain.static"), runs.get("nginx.const"), "rps")
    if static is not None:
        rows.append({"endpoint": "static", "vs": {"nginx.const": {"rps": static}}})
    return rows


def best_alternatives(runs: list[dict]) -> dict[str, str]:
    """On each curve endpoint, the alternative with the highest median req/s (the one the curve follows)."""
    best = {}
    for endpoint in CURVE_ENDPOINTS:
        found = [r for r in runs if r["endpoint"] == endpoint and r["stack"] in COMPARED and r.get("rps")]
        if found:
            best[endpoint] = max(found, key=lambda r: r["rps"])["stack"]
    return best


def all_runs(data: dict) -> list[dict]:
    """Every measured point but the curve's: targets, published pairs (both sides) and sweep points."""
    found = list(data.get("runs", []))
    for pair in data.get("published", []):
        found += [pair[side] for side in ("in_network", "published") if side in pair]
    found += data.get("sweep", [])
    return found


# --- the issue's "done when" -----------------------------------------------------------------------------------


def _check(what: str, of: str, value: float | None, bound: str, ok: bool | None, verdict: str | None = None) -> dict:
    return {"target": what, "of": of, "value": value, "bound": bound, "verdict": verdict, "ok": ok}


def _ratio_checks(runs: dict[str, dict]) -> list[dict]:
    """Issue 14's "done when", row by row."""
    rows = []
    chain, granian, const = runs.get("chain.hello"), runs.get("granian.hello"), runs.get("nginx.const")
    found = compare(chain, granian, "rps")
    rows.append(
        _check(
            "hello: the chain ≥ 1.2x nginx → granian in req/s",
            "chain.hello ÷ granian.hello",
            found and found["ratio"],
            "≥ 1.2",
            found and found["ratio"] >= 1.2,
            found and found["verdict"],
        )
    )
    found, share = compare(chain, granian, "cpu_ms_per_req"), _cpu_share(chain, granian)
    rows.append(
        _check(
            "hello: the chain ≤ 0.8x nginx → granian's CPU per request",
            "chain CPU/req ÷ granian CPU/req",
            share,
            "≤ 0.8",
            share is not None and share <= 0.8,
            found and found["verdict"],
        )
    )
    share = _cpu_share(chain, const)
    rows.append(
        _check(
            "chain overhead: the chain's hello CPU per request ≤ 5x the nginx constant's",
            "chain.hello CPU/req ÷ nginx.const CPU/req",
            share,
            "≤ 5",
            share is not None and share <= 5,
        )
    )
    return rows + _floor_rows(runs) + _bars(runs, ALTERNATIVES)


def _floor_rows(runs: dict[str, dict]) -> list[dict]:
    """What the overhead bar stands on (no bar of their own): the floor, a minimal nginx in front of a minimal uWSGI
    on the same hello app, against the constant; and the chain against the floor (docs/benchmark.md)."""
    chain, floor, const = runs.get("chain.hello"), runs.get("floor.hello"), runs.get("nginx.const")
    rows = []
    for what, of, mine, theirs in (
        (
            "the floor: minimal nginx → minimal uWSGI, hello CPU per request ÷ the nginx constant's",
            "floor ÷ const",
            floor,
            const,
        ),
        ("the chain's hello CPU per request ÷ the floor's", "chain ÷ floor", chain, floor),
    ):
        rows.append({**_check(what, of, _cpu_share(mine, theirs), "(none)", None), "reference": True})
    return rows


def _cpu_share(mine: dict | None, theirs: dict | None) -> float | None:
    """CPU per request, mine ÷ theirs, from the medians (compare's ratio is rounded, and inverted here would drift)."""
    a, b = (stats.spread(run, "cpu_ms_per_req") if run else None for run in (mine, theirs))
    return round(a.median / b.median, 2) if a and b and b.median else None


def _bars(runs: dict[str, dict], stacks: list[str]) -> list[dict]:
    """The chain against each of `stacks`: req/s on the app's endpoints, and p99 against the lowest of theirs."""
    rows = []
    for endpoint in ("json", "read", "write"):
        for stack in stacks:
            found = compare(runs.get(f"chain.{endpoint}"), runs.get(f"{stack}.{endpoint}"), "rps")
            rows.append(
                _check(
                    f"{endpoint_name(endpoint)}: the chain ≥ 1.0x {stack}, ranges not against it",
                    f"chain.{endpoint} ÷ {stack}.{endpoint}",
                    found and found["ratio"],
                    "≥ 1.0, not lost",
                    found and found["ratio"] >= 1.0 and found["verdict"] != stats.LOST,
                    found and found["verdict"],
                )
            )
    whose = "the best alternative's" if len(stacks) > 1 else f"{stacks[0]}'s"
    for endpoint in APP_ENDPOINTS:
        others = [runs[f"{s}.{endpoint}"] for s in stacks if runs.get(f"{s}.{endpoint}", {}).get("p99_ms")]
        mine = runs.get(f"chain.{endpoint}")
        what = f"{endpoint_name(endpoint)}: p99 no worse than {whose}"
        if not others or not mine or not mine.get("p99_ms"):
            rows.append(_check(what, "-", None, "", None))
            continue
        best = min(others, key=lambda r: r["p99_ms"])
        found = compare(mine, best, "p99_ms")
        rows.append(
            _check(
                what,
                f"{best['stack']} p99 ÷ chain p99",
                found and found["ratio"],
                "≥ 1.0, not lost",
                found and found["ratio"] >= 1.0 and found["verdict"] != stats.LOST,
                found and found["verdict"],
            )
        )
    return rows


def checks(data: dict) -> list[dict]:
    """The issue's targets (group ISSUE), then its bars held against bare uWSGI too (AGAINST_BARE), each with its
    measured value and a result: pass, MISS, not measured, or (smoke) not checked; the rows with no bar of their own
    (the floor's: _floor_rows), reference."""
    smoke = data.get("mode") == "smoke"
    runs = by_key(data)
    measured = [r for r in all_runs(data) if "rps" in r]
    failed = [r["key"] for r in all_runs(data) if "error" in r]
    with_errors = [
        f"{r['key']} ({r['errors_total']}" + (f"; statuses {r['statuses']}" if r.get("statuses") else "") + ")"
        for r in measured
        if r["errors_total"]
    ]
    errors = _check(
        "0 errors in every run",
        ", ".join(with_errors + [f"{k} (failed)" for k in failed]) or f"{len(measured)} points, 0 errors",
        None,
        "",
        not with_errors and not failed,
    )
    rows = [{**row, "group": ISSUE} for row in [*_ratio_checks(runs), errors]]
    rows += [{**row, "group": AGAINST_BARE} for row in _bars(runs, [REFERENCE])]
    for row in rows:
        ok, reference = row.pop("ok"), row.pop("reference", False)
        if smoke:
            row["result"] = "not checked (smoke run)"
        elif reference:
            row["result"] = "reference" if row["value"] is not None else "not measured"
        elif ok is None:
            row["result"] = "not measured"
        else:
            row["result"] = "pass" if ok else "MISS"
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


def _range(run: dict, name: str, digits: int = 0) -> str:
    """median (min-max), or the bare value of a single run."""
    median, low, high = run.get(name), run.get(f"{name}_min"), run.get(f"{name}_max")
    if median is None:
        return "-"
    if low is None or high is None or (low == high and run.get("repeats", 1) == 1):
        return _n(median, digits)
    return f"{_n(median, digits)} ({_n(low, digits)}-{_n(high, digits)})"


def _cmp(found: dict | None) -> str:
    return "-" if not found else f"{_x(found['ratio'])} {found['verdict']}"


def _client_tcp(load: dict) -> str:
    """The load generator's TCP client settings, when the run recorded them (runs before 2026-12-04 did not)."""
    tcp = load.get("client_tcp") or {}
    if not set(machine.CLIENT_TCP) <= tcp.keys():
        return ""
    return f"; its TCP client: `tcp_tw_reuse` {tcp['tcp_tw_reuse']}, local ports {tcp['ip_local_port_range']}"


def _paced(load: dict) -> str:
    """The pause before each request, when the run had one (the smoke run's)."""
    pause = load.get("pause_ms") or 0
    return f", a {pause} ms pause before each request" if pause else ""


def markdown(data: dict) -> str:
    m, load = data["machine"], data["load"]
    labels = {run["stack"]: run["label"] for run in data.get("runs", []) if "label" in run}
    repeats = load.get("repeats", 1)
    out = [
        "# wsgi-chain benchmark",
        "",
        f"{data['mode'].capitalize()} run, {data['started']} → {data['finished']} (project {data.get('project', '')}).",
        "",
        f"- **Machine**: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, {m['os']}, kernel {m['kernel']}, "
        f"Docker {m['docker']}. Load average at start {m['loadavg_start']}, at end {m.get('loadavg_end')} "
        "(a busy machine makes every number noisy).",
        f"- **Load**: {load['tool']} -t{load['threads']} -c{load['connections']}{_paced(load)}, "
        f"{load['duration_s']:g} s per run after a {load['warmup_s']:g} s warm-up, every point {repeats} times, "
        f"interleaved (round after round of all the points), from {load['from']}; `Host: {load['host_header']}`"
        f"{_client_tcp(load)}.",
        "- **Versions**: " + ", ".join(f"{k} {v}" for k, v in data.get("versions", {}).items()),
    ]
    seeded = data.get("seed")
    if seeded:
        out.append(
            f"- **API data**: {seeded['reader']} owns {seeded['reader_posts']:,} posts (the read is the first page of "
            f"their collection); {seeded['writer']} posts with a token (the write): "
            f"{seeded.get('writer_posts_after', '?'):,} posts stored for "
            f"{seeded.get('write_requests_measured', '?'):,} measured POSTs (warm-ups post too)."
        )
    out += [
        "",
        "## Throughput, latency, errors, CPU, memory",
        "",
        f"Each figure is the median of the {repeats} runs, with (min-max); errors are summed over the runs.",
        "",
        "- CPU ms/req: CPU time the answering containers (nginx and the app server) spent per request, from their "
        "cgroups; unlike req/s it barely moves when other work shares the machine.",
        "- host CPU ms/req: the whole machine's busy time (/proc/stat, all CPUs) over the run, per request; *outside* "
        "is what is left after the servers and wrk's container: dockerd and containerd carrying the logs, "
        "docker-proxy, kernel work charged to no container, and anything else the machine ran meanwhile.",
        "- RSS/worker: the mean resident set of the server's worker processes after its last run (nginx's workers for "
        "the static file and the constant); it counts pages shared with the master too (see Memory).",
        "",
        "| endpoint | stack | req/s | p50 ms | p99 ms | errors | CPU ms/req | host CPU ms/req | outside ms/req "
        "| workers | RSS/worker MiB |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for run in data.get("runs", []):
        mem = run.get("memory") or {}
        if "rps" not in run:
            out.append(f"| {endpoint_name(run['endpoint'])} | {run['label']} | failed: {run['error'][:80]} ||||||||")
            continue
        out.append(
            f"| {endpoint_name(run['endpoint'])} | {run['label']} | {_range(run, 'rps')} | {_n(run['p50_ms'], 2)} | "
            f"{_range(run, 'p99_ms', 2)} | {run['errors_total']} | {_range(run, 'cpu_ms_per_req', 3)} | "
            f"{_range(run, 'host_cpu_ms_per_req', 3)} | {_n(run.get('other_cpu_ms_per_req'), 3)} | "
            f"{len(mem.get('workers', []))} | {_n(mem.get('worker_rss_mib'), 1)} |"
        )
    out += _ratios(data, labels)
    out += _targets(data, labels)
    out += _curve(data)
    out += _published(data)
    out += _memory(data)
    out += _sweep(data)
    notes = data.get("notes") or []
    if notes:
        out += ["", "## Notes", "", *[f"- {note}" for note in notes]]
    return "\n".join(out) + "\n"


def _ratios(data: dict, labels: dict[str, str]) -> list[str]:
    rows = [r for r in ratios(data) if r["endpoint"] != "static"]
    out: list[str] = []
    if rows:
        stacks = [s for s in COMPARED if any(s in r["vs"] for r in rows)]
        header = ["| endpoint | " + " | ".join(labels.get(s, s) for s in stacks) + " |", "|---|" + "--:|" * len(stacks)]
        out += [
            "",
            "## The chain against each alternative",
            "",
            "Each cell: the ratio of the medians, oriented so that above 1.00x favours the chain, and the verdict: "
            "**won** or **lost** only when the chain's and the alternative's min-max ranges do not overlap, "
            "otherwise **tie**.",
        ]
        for figure, what in (
            ("rps", "req/s (the chain ÷ the alternative)"),
            ("cpu_ms_per_req", "CPU per request, containers (the alternative ÷ the chain)"),
            ("host_cpu_ms_per_req", "CPU per request, whole host (the alternative ÷ the chain)"),
            ("p99_ms", "p99 latency (the alternative ÷ the chain)"),
        ):
            out += ["", f"{what}:", "", *header]
            for row in rows:
                cells = " | ".join(_cmp((row["vs"].get(s) or {}).get(figure)) for s in stacks)
                out.append(f"| {endpoint_name(row['endpoint'])} | {cells} |")
    static = next((r for r in ratios(data) if r["endpoint"] == "static"), None)
    if static:
        out += ["", f"Static file ÷ nginx constant (req/s): {_cmp(static['vs']['nginx.const']['rps'])}."]
    return out


def _targets(data: dict, labels: dict[str, str]) -> list[str]:
    out = ["", "## Targets", ""]
    counts = worker_counts(data)
    if counts:
        out += ["Workers running: " + ", ".join(f"{labels.get(k, k)}: {v}" for k, v in counts.items()) + ".", ""]
    rows = checks(data)
    out += _target_table([r for r in rows if r["group"] == ISSUE])
    out += [
        "",
        f"The same bars against {labels.get(REFERENCE, REFERENCE)}: the chain without its front proxy, not one of the "
        "issue's alternatives (a hop fewer, and nothing in front of slow clients), held to them all the same:",
        "",
    ]
    return out + _target_table([r for r in rows if r["group"] == AGAINST_BARE])


def _target_table(rows: list[dict]) -> list[str]:
    out = ["| target | of | measured | bound | verdict | result |", "|---|---|--:|---|---|---|"]
    for row in rows:
        value = "" if row["value"] is None else f"{row['value']:.2f}"
        out.append(
            f"| {row['target']} | {row['of']} | {value} | {row['bound']} | {row['verdict'] or ''} | {row['result']} |"
        )
    return out


def _curve(data: dict) -> list[str]:
    curve = data.get("curve")
    if not curve or not curve.get("runs"):
        return []
    best = ", ".join(f"{endpoint_name(e)}: {s}" for e, s in curve["best"].items())
    out = [
        "",
        "## Concurrency curve",
        "",
        f"The chain and the best alternative by median req/s above ({best}) at {', '.join(map(str, curve['levels']))} "
        "connections. Errors: wrk's connect, read, write, timeout and HTTP ≥ 400 counts, summed over the runs "
        "(statuses from nginx's log where it answered).",
        "",
        "| endpoint | stack | connections | req/s | p50 ms | p99 ms | errors | CPU ms/req |",
        "|---|---|--:|--:|--:|--:|--:|--:|",
    ]
    for run in sorted(
        curve["runs"], key=lambda r: (r["endpoint"], r["stack"] != "chain", r["stack"], r["connections"])
    ):
        if "rps" not in run:
            out.append(f"| {endpoint_name(run['endpoint'])} | {run['label']} | {run['connections']} | failed ||||||")
            continue
        errors = str(run["errors_total"])
        if run["errors_total"]:
            kinds = {k: v for k, v in run["errors"].items() if v}
            errors += f" {kinds}" + (f" statuses {run['statuses']}" if run.get("statuses") else "")
        out.append(
            f"| {endpoint_name(run['endpoint'])} | {run['label']} | {run['connections']} | {_range(run, 'rps')} | "
            f"{_n(run['p50_ms'], 2)} | {_range(run, 'p99_ms', 2)} | {errors} | {_n(run.get('cpu_ms_per_req'), 3)} |"
        )
    return out


def _published(data: dict) -> list[str]:
    pairs = data.get("published")
    if not pairs:
        return []
    out = [
        "",
        "## Published port vs inside the network (docker's port forwarding)",
        "",
        "The same run twice, back to back, once each: from the load generator on the stack's network, then from the "
        "host through the port published on 127.0.0.1. Host CPU per request counts docker-proxy when it forwards.",
        "",
    ]
    if "skipped" in pairs[0]:
        return [*out, f"Skipped: {pairs[0]['skipped']}."]
    proxy = {p.get("userland_proxy") for p in pairs if "userland_proxy" in p}
    forwarded = "yes" if proxy == {True} else "no" if proxy == {False} else "mixed"
    out += [
        f"Forwarded by docker-proxy (dockerd's userland proxy): {forwarded}.",
        "",
        "| run | in network req/s | published req/s | published ÷ in network | p99 ms in / published "
        "| host CPU ms/req in / published | errors |",
        "|---|--:|--:|--:|--:|--:|--:|",
    ]
    for p in pairs:
        if "in_network" not in p:
            out.append(f"| {p['same_as']} | failed: {p.get('error', '')[:80]} ||||||")
            continue
        a, b = p["in_network"], p["published"]
        share = round(b["rps"] / a["rps"], 2) if a.get("rps") and b.get("rps") else None
        errors = (a.get("errors_total") or 0) + (b.get("errors_total") or 0)
        out.append(
            f"| {p['same_as']} | {_n(a.get('rps'))} | {_n(b.get('rps'))} | {_x(share)} | "
            f"{_n(a.get('p99_ms'), 2)} / {_n(b.get('p99_ms'), 2)} | "
            f"{_n(a.get('host_cpu_ms_per_req'), 3)} / {_n(b.get('host_cpu_ms_per_req'), 3)} | {errors} |"
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
        "Every point but *as configured* passes `--listen 128`, so each measures its own variable. Each point's runs "
        "alternate with runs of the chain as configured (the reference, measured in the same minutes); *vs reference* "
        "is the point ÷ the reference in req/s and the reference ÷ the point in CPU per request, with the verdict "
        "from the ranges (won: the point is better beyond the noise).",
        "",
        "| point | uWSGI options | req/s | vs reference | p99 ms | errors | CPU ms/req | CPU vs reference "
        "| workers | RSS/worker MiB |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for row in rows:
        point = row["point"]
        if "rps" not in row:
            out.append(f"| {point['what']} | `{point['uwsgi_args']}` | failed: {row.get('error', '')[:80]} ||||||||")
            continue
        mem = row.get("memory") or {}
        vs = row.get("vs_reference") or {}
        out.append(
            f"| {point['what']} | `{point['uwsgi_args'] or '(none)'}` | {_range(row, 'rps')} | {_cmp(vs.get('rps'))} | "
            f"{_range(row, 'p99_ms', 2)} | {row['errors_total']} | {_range(row, 'cpu_ms_per_req', 3)} | "
            f"{_cmp(vs.get('cpu_ms_per_req'))} | {len(mem.get('workers', []))} | {_n(mem.get('worker_rss_mib'), 1)} |"
        )
    return out
