"""Quiet by default: one line per phase of `make up`, a progress line while a long step runs, and the step's own
output only when it fails (its tail) or with VERBOSE=1 (all of it, as it comes)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections import deque
from dataclasses import dataclass, field

# BuildKit's plain progress: "#12 [app builder 3/8] RUN pip install ..." names the step running.
BUILD_STEP = re.compile(r"^#\d+ (\[[^\]]+\] .+)$")
# Without a terminal to redraw a line on, a "still at it" line this often (seconds; PROGRESS_EVERY).
NOTE_EVERY = float(os.environ.get("PROGRESS_EVERY") or 20)
TAIL_LINES = 40


def printable(text: str, *, backslash: bool = True) -> str:
    """Text from outside the stack as one line of output can show it: a byte that is not UTF-8 (Python's surrogate
    escape) and a control character as \\xNN (\\uNNNN past 0xFF), and a backslash doubled (unless `backslash` is
    False: a log line, where one reads as it was written). A file name an app's user chose (an upload's, in make
    backup's lines) or a line an app logged (make up's failure report: it may hold a client's path) printed as it is
    could write escape sequences to the operator's terminal."""
    shown = []
    for char in text:
        code = ord(char)
        if 0xDC80 <= code <= 0xDCFF:
            shown.append(f"\\x{code - 0xDC00:02x}")
        elif char == "\\":
            shown.append("\\\\" if backslash else char)
        elif not char.isprintable():
            shown.append(f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}")
        else:
            shown.append(char)
    return "".join(shown)


def verbose() -> bool:
    return os.environ.get("VERBOSE", "0") not in ("", "0")


def phase(name: str, message: str) -> None:
    """One line of `make up`'s answer: the phase, then what it found or did."""
    print(f"up: {name:<9} {message}", flush=True)


@dataclass
class Progress:
    """A line that says a long step is still running and what it is at: redrawn in place on a terminal, else
    repeated every NOTE_EVERY seconds."""

    name: str
    started: float = field(default_factory=time.monotonic)
    noted: float = field(default_factory=time.monotonic)
    tty: bool = field(default_factory=sys.stdout.isatty)
    current: str = ""

    def update(self, line: str) -> None:
        if match := BUILD_STEP.match(line):
            self.current = match.group(1)
        elapsed = time.monotonic() - self.started
        if self.tty:
            text = f"up: {self.name:<9} {elapsed:4.0f} s  {self.current}"
            sys.stdout.write("\r\033[K" + text[: os.get_terminal_size().columns - 1])
            sys.stdout.flush()
        elif time.monotonic() - self.noted >= NOTE_EVERY:
            self.noted = time.monotonic()
            phase(self.name, f"still at it after {elapsed:.0f} s" + (f": {self.current[:90]}" if self.current else ""))

    def done(self) -> float:
        if self.tty:
            sys.stdout.write("\r\033[K")
            sys.stdout.flush()
        return time.monotonic() - self.started


def run_step(name: str, cmd: list[str], env: dict[str, str], cwd: str | None = None) -> tuple[int, list[str], float]:
    """Run a command for a phase: quietly with a progress line (returns its last lines for a failure report), or
    with its output as it comes under VERBOSE=1. Returns (exit code, last lines, seconds)."""
    started = time.monotonic()
    if verbose():
        code = subprocess.run(cmd, env=env, cwd=cwd, check=False).returncode
        return code, [], time.monotonic() - started
    progress = Progress(name)
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    with subprocess.Popen(
        cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace"
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            tail.append(line.rstrip("\n"))
            progress.update(line.rstrip("\n"))
        code = proc.wait()
    return code, list(tail), progress.done()
