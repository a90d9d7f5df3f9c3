#!/usr/bin/env python3
"""uwsgitop, as `make top` runs it: the live workers from a uWSGI stats server (its arguments passed on); q quits.

uwsgitop 0.12 resets the terminal twice when it quits, in its q (or Ctrl-C) handler and again at exit, and curses
refuses the second reset: every quit ended in a traceback. Here the terminal is reset once.
"""

import curses
import runpy
import shutil
import sys

_reset = curses.endwin
_done = []


def reset_once() -> None:
    if not _done:
        _done.append(True)
        _reset()


if __name__ == "__main__":
    program = shutil.which("uwsgitop")
    if program is None:
        sys.exit("uwsgi-top: uwsgitop is not installed (uwsgi/requirements.txt)")
    curses.endwin = reset_once
    runpy.run_path(program, run_name="__main__")
