#!/usr/bin/env python3
"""The app's requirement files, for its image's build stage (docker/app/Dockerfile): requirements.txt and every file
it names with -r or -c (--requirement, --constraint), and the ones those name, at their paths in the app.

  requirement-files APP OUT   copy them from the app's directory APP to OUT

The build stage installs the requirements from OUT before the app's files come into the image, so that an app change
never reinstalls them; a requirements.txt that names another (`-r requirements/production.txt`, as
cookiecutter-django's and many projects' do) found nothing there before. A file named outside the app, or not there,
or a requirement that is a path in the app (`-e .`, `./libs/pkg`: the app's files are not in the build stage) is
refused with one line starting "app image: ", which `make up` shows as the build's failure (tools/stack.py).
"""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

# pip's options naming another file (requirements file format): -r FILE, -rFILE, --requirement FILE, --requirement=FILE.
INCLUDE = re.compile(r"(?:-r|-c|--requirement|--constraint)(?:=|\s+)?(\S+)")
# A requirement that is a path (or a file: URL) instead of a name, editable or not.
LOCAL = re.compile(r"(?:(?:-e|--editable)(?:=|\s+))?(?:\.|/|file:)\S*|\S+\s*@\s*file:\S*")


class Refused(Exception):
    pass


def logical_lines(text: str) -> list[tuple[int, str]]:
    """The file's lines as pip reads them: a trailing backslash joins the next one, comments and blanks go."""
    lines, pending, start = [], "", 0
    for number, raw in enumerate(text.splitlines(), 1):
        if not pending:
            start = number
        if raw.endswith("\\"):
            pending += raw[:-1]
            continue
        line = re.sub(r"(^|\s)#.*$", "", pending + raw).strip()
        pending = ""
        if line:
            lines.append((start, line))
    return lines


def named_files(app: Path, name: str) -> list[str]:
    """name (a path relative to the app) and every requirement file it names, recursively, in the order found."""
    found, queue = [], [name]
    while queue:
        current = queue.pop(0)
        if current in found:
            continue
        found.append(current)
        path = app / current
        for number, line in logical_lines(path.read_text(encoding="utf-8", errors="replace")):
            where = f"{current}:{number}"
            if LOCAL.fullmatch(line):
                raise Refused(
                    f"{where} installs {line!r}, a path in the app: its files come into the image after the"
                    " requirements are installed; list that package's own requirements instead (or publish it)"
                )
            match = INCLUDE.fullmatch(line)
            if not match or re.match(r"\w+://", match[1]):  # a requirement, or a file pip fetches by URL
                continue
            included = (path.parent / match[1]).resolve()
            if not included.is_relative_to(app):
                raise Refused(f"{where} names {match[1]}, which is outside APP_SRC: keep the requirement files in it")
            if not included.is_file():
                raise Refused(f"{where} names {match[1]}, which is not a file in APP_SRC")
            queue.append(included.relative_to(app).as_posix())
    return found


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    app, out = Path(argv[0]).resolve(), Path(argv[1])
    try:
        files = named_files(app, "requirements.txt")
    except Refused as refused:
        print(f"app image: {refused}", file=sys.stderr)
        return 1
    for name in files:
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(app / name, out / name)
    print(f"requirement-files: {', '.join(files)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
