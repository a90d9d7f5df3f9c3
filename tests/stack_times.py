"""How long the suite's stacks take to build, come up and go down: one record per step, gathered from every pytest-xdist
worker and summed up at the end of a run, beside pytest's --durations (tests/conftest.py)."""

from __future__ import annotations

import re
import statistics
import subprocess
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass

# A project name's random part (harness.OwnStack, conftest.make_env: "<prefix>-<6 hex digits>").
RANDOM_PART = re.compile(r"-[0-9a-f]{6}$")
# The slowest steps listed one by one after the table by kind.
SLOWEST = 10


@dataclass(frozen=True)
class Step:
    project: str  # the compose project, or the Swarm stack or cluster
    step: str  # "build", "up", "down", or the make target that ran ("make up", "make dev", ...)
    seconds: float
    started: float  # time.time() when the step started, to line steps up with the tests' own times
    ok: bool

    @property
    def kind(self) -> str:
        """The project without its random part: the stacks of one fixture or test share it ("wct-echo")."""
        return RANDOM_PART.sub("", self.project) or self.project


STEPS: list[Step] = []


def _record(project: str, step: str, started: float, clock: float, ok: bool) -> None:
    """started: time.time() at the step's start; clock: time.monotonic() then."""
    STEPS.append(Step(project, step, round(time.monotonic() - clock, 2), round(started, 2), ok))


@contextmanager
def timed(project: str, step: str) -> Iterator[None]:
    """Record the step's time; it failed if it raised."""
    started, clock, ok = time.time(), time.monotonic(), False
    try:
        yield
        ok = True
    finally:
        _record(project, step, started, clock, ok)


def timed_process(
    project: str, step: str, run: Callable[[], subprocess.CompletedProcess]
) -> subprocess.CompletedProcess:
    """run() as a step, which failed if it raised or its process exited other than 0."""
    started, clock, result = time.time(), time.monotonic(), None
    try:
        result = run()
    finally:
        _record(project, step, started, clock, result is not None and result.returncode == 0)
    return result


def as_dicts(steps: Iterable[Step]) -> list[dict]:
    """For a worker's output to the controller (plain data: it crosses execnet)."""
    return [asdict(step) for step in steps]


def from_dicts(rows: Iterable[dict]) -> list[Step]:
    return [Step(**row) for row in rows]


def summary(steps: list[Step]) -> list[str]:
    """The report's lines: a total per step, a table by kind and step (most time first), the slowest steps."""
    if not steps:
        return []
    by_step: dict[str, list[float]] = defaultdict(list)
    by_kind: dict[tuple[str, str], list[float]] = defaultdict(list)
    for step in steps:
        by_step[step.step].append(step.seconds)
        by_kind[(step.kind, step.step)].append(step.seconds)
    totals = ", ".join(
        f"{name} {len(times)}x {sum(times):.0f} s" for name, times in sorted(by_step.items(), key=lambda i: -sum(i[1]))
    )
    failed = sum(not step.ok for step in steps)
    lines = [f"{len(steps)} steps, {sum(s.seconds for s in steps):.0f} s in all: {totals}; {failed} failed"]
    lines.append(f"{'kind':<24} {'step':<16} {'count':>5} {'total s':>8} {'median s':>9} {'max s':>6}")
    for (kind, name), times in sorted(by_kind.items(), key=lambda item: -sum(item[1])):
        lines.append(
            f"{kind:<24} {name:<16} {len(times):>5} {sum(times):>8.1f} {statistics.median(times):>9.1f}"
            f" {max(times):>6.1f}"
        )
    lines.append(f"slowest {SLOWEST}:")
    for step in sorted(steps, key=lambda s: -s.seconds)[:SLOWEST]:
        when = time.strftime("%H:%M:%S", time.localtime(step.started))
        mark = "" if step.ok else ", failed"
        lines.append(f"  {step.seconds:6.1f} s  {step.step:<16} {step.project} (at {when}){mark}")
    return lines
