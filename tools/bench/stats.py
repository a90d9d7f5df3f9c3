"""Repeated runs of one point, summed up: the median with the min and the max, and the verdict between two points.

A single run says little on a machine where other work comes and goes: the same point measured twice can differ by
15 %. So every point runs several times, interleaved with the others (round 1: A B C, round 2: A B C, ...), and a
comparison is only called won or lost when the two points' whole ranges (min to max) do not overlap.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

WON, LOST, TIE = "won", "lost", "tie"


@dataclass(frozen=True)
class Spread:
    median: float
    min: float
    max: float
    n: int

    @classmethod
    def of(cls, values: list[float]) -> Spread | None:
        if not values:
            return None
        return cls(statistics.median(values), min(values), max(values), len(values))


def verdict(mine: Spread | None, theirs: Spread | None, higher_is_better: bool = True) -> str | None:
    """won when every one of my runs beat every one of theirs, lost when the reverse holds, else tie."""
    if mine is None or theirs is None:
        return None
    better, worse = (mine, theirs) if higher_is_better else (theirs, mine)
    if better.min > worse.max:
        return WON
    if better.max < worse.min:
        return LOST
    return TIE


# The per-run figures summed up as median/min/max (the entry keeps the median under the plain name, and
# <name>_min, <name>_max beside it).
SPREAD_FIELDS = (
    "rps",
    "p50_ms",
    "p90_ms",
    "p99_ms",
    "mean_ms",
    "max_ms",
    "cpu_ms_per_req",
    "host_cpu_ms_per_req",
    "loadgen_cpu_ms_per_req",
    "other_cpu_ms_per_req",
)
ROUNDING = {"rps": 1}


def aggregate(samples: list[dict]) -> dict:
    """One entry from a point's runs: medians with min and max, totals of requests and errors, the runs themselves.

    A run that failed (it has an "error") counts in `failed_runs`; the figures come from the runs that did not.
    """
    good = [s for s in samples if "rps" in s]
    entry: dict = {"repeats": len(samples), "samples": samples}
    failed = [s for s in samples if "error" in s]
    if failed:
        entry["failed_runs"] = len(failed)
    if not good:
        entry["error"] = failed[-1]["error"] if failed else "no run"
        return entry
    for name in SPREAD_FIELDS:
        spread = Spread.of([s[name] for s in good if s.get(name) is not None])
        if spread is None:
            entry[name] = entry[f"{name}_min"] = entry[f"{name}_max"] = None
            continue
        digits = ROUNDING.get(name, 4)
        entry[name] = round(spread.median, digits)
        entry[f"{name}_min"] = round(spread.min, digits)
        entry[f"{name}_max"] = round(spread.max, digits)
    entry["requests"] = sum(s["requests"] for s in good)
    errors: dict[str, int] = {}
    for s in good:
        for kind, count in s["errors"].items():
            errors[kind] = errors.get(kind, 0) + count
    entry["errors"] = errors
    entry["errors_total"] = sum(errors.values())
    statuses: dict[str, int] = {}
    for s in good:
        for status, count in (s.get("statuses") or {}).items():
            statuses[status] = statuses.get(status, 0) + count
    if statuses:
        entry["statuses"] = statuses
    return entry


def spread(entry: dict, name: str) -> Spread | None:
    """The median/min/max an aggregated entry holds for a figure (None when not measured)."""
    if entry.get(name) is None:
        return None
    return Spread(entry[name], entry.get(f"{name}_min", entry[name]), entry.get(f"{name}_max", entry[name]), 0)
