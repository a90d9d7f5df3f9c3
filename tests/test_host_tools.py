"""The tools the Makefile runs with the host's python3 (before any virtualenv exists) load with the standard library
alone, as tools/__init__.py promises: their imports, and those of every tools module they import, are read with ast."""

from __future__ import annotations

import ast
import re
import sys

import pytest

from tools.compose import ROOT

TOOLS = ROOT / "tools"
# A recipe line that runs a tool with the host's interpreter; the virtualenv's is $(VENV)/bin/python.
HOST_RECIPE = re.compile(r"\$\(PYTHON\) -m (tools(?:\.\w+)*)")
# A tool that starts another with its own interpreter (sys.executable), which is then the host's too.
STARTS = re.compile(r"""["']-m["'],\s*["'](tools(?:\.\w+)*)["']""")


def source(module: str):
    """The file of a tools module (a package's __init__.py), or None for a name that is not a module."""
    path = ROOT.joinpath(*module.split("."))
    for candidate in (path.with_suffix(".py"), path / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def load_time_imports(tree: ast.Module) -> list[tuple[str, list[str]]]:
    """(module, names) of every import that runs when the module loads: all but those inside a function, which run
    only when that function is called."""
    found = []

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                continue
            if isinstance(child, ast.Import):
                found.extend((alias.name, []) for alias in child.names)
            elif isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                found.append((child.module, [alias.name for alias in child.names]))
            visit(child)

    visit(tree)
    return found


def loaded_with(module: str) -> dict[str, set[str]]:
    """Every tools module that loading `module` loads (parent packages included), each with its non-tools imports."""
    seen: dict[str, set[str]] = {}
    todo = [module, *(".".join(module.split(".")[:i]) for i in range(1, module.count(".") + 1))]
    if source(module) and source(module).name == "__init__.py" and source(f"{module}.__main__"):
        todo.append(f"{module}.__main__")
    while todo:
        name = todo.pop()
        path = source(name)
        if name in seen or path is None:
            continue
        seen[name] = set()
        for imported, names in load_time_imports(ast.parse(path.read_text(), str(path))):
            if imported.split(".")[0] == "tools":
                parts = imported.split(".")
                todo += [".".join(parts[:i]) for i in range(1, len(parts) + 1)]
                todo += [f"{imported}.{item}" for item in names]  # `from tools import swarm`: a module
            else:
                seen[name].add(imported.split(".")[0])
    return seen


def host_run_tools() -> list[str]:
    """The tools the Makefile runs with $(PYTHON), and those they start in turn."""
    found = set(HOST_RECIPE.findall((ROOT / "Makefile").read_text()))
    todo = list(found)
    while todo:
        for module in loaded_with(todo.pop()):
            for started in STARTS.findall(source(module).read_text()):
                if started not in found:
                    found.add(started)
                    todo.append(started)
    return sorted(found)


HOST_RUN = host_run_tools()


def test_the_makefile_runs_some_tools_with_the_hosts_python3():
    """The list below is read off the Makefile; an empty one would make the next test check nothing."""
    assert {"tools.bootstrap", "tools.stack"} <= set(HOST_RUN), HOST_RUN


@pytest.mark.parametrize("tool", HOST_RUN)
def test_a_tool_the_makefile_runs_with_the_hosts_python3_imports_only_the_standard_library(tool):
    third_party = {
        module: sorted(imports - set(sys.stdlib_module_names) - {"__future__"})
        for module, imports in loaded_with(tool).items()
    }
    third_party = {module: names for module, names in third_party.items() if names}
    assert not third_party, (
        f"python3 -m {tool} runs with the host's python3 (Makefile: $(PYTHON)) but loads {third_party}: "
        "drop the import, or run the tool from the virtualenv ($(VENV)/bin/python, with $(VENV)/.installed first)"
    )


def test_the_check_finds_a_third_party_import_made_at_load_time_and_skips_one_inside_a_function():
    tree = ast.parse(
        "import os\nimport yaml\ntry:\n    import requests\nexcept ImportError:\n    pass\n"
        "def f():\n    import matplotlib\nfrom tools import settings\n"
    )
    assert [name for name, _ in load_time_imports(tree)] == ["os", "yaml", "requests", "tools"]
