"""The images' own scripts that write to a container's log while other processes do (uWSGI's workers, nginx) write
each line in one write, on the host: print makes two under PYTHONUNBUFFERED (the images set it), the text and then
its newline, and a line another process wrote between them was glued to the script's (the metrics exporter's start
line and a uWSGI request line, seen in a test's run: a JSON record a log shipper could not read)."""

from __future__ import annotations

import ast
import io

import pytest

from tests.harness import ROOT, image_module

# The scripts that share a container's log with other processes, and who they share it with.
SHARING = {
    "docker/app/dev_watch.py": "make dev's watcher, an attached daemon of uWSGI's",
    "docker/app/metrics_exporter.py": "the metrics exporter, an attached daemon of uWSGI's",
    "docker/app/wait_listener.py": "run by uWSGI's master as it starts",
    "docker/single/stop_again.py": "the single container's, beside nginx and uWSGI",
    "docker/single/exit_on_fatal.py": "the single container's supervisord event listener",
}


@pytest.mark.parametrize("script", SHARING)
def test_a_script_sharing_a_containers_log_never_writes_a_line_with_print(script):
    tree = ast.parse((ROOT / script).read_text())
    prints = [
        node.lineno for node in ast.walk(tree) if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "print"
    ]
    assert prints == [], f"{script} ({SHARING[script]}) calls print on lines {prints}"


class Writes(io.StringIO):
    """A stream that keeps each write apart."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def write(self, text: str) -> int:
        self.calls.append(text)
        return len(text)


@pytest.mark.parametrize(
    "name, stream, call",
    [
        ("dev_watch", "stdout", lambda module: module.log("info", "changed: app.py")),
        ("wait_listener", "stderr", lambda module: module.say("a line")),
    ],
    ids=["make dev's watcher", "wait-listener"],
)
def test_each_line_is_one_write_with_its_newline(name, stream, call, monkeypatch):
    module = image_module(name)
    writes = Writes()
    monkeypatch.setattr(module.sys, stream, writes)
    call(module)
    assert len(writes.calls) == 1 and writes.calls[0].endswith("\n") and writes.calls[0].count("\n") == 1, writes.calls
