"""The project's modules import each other one way: no import cycles.

Read from the source (ast), not by importing: every import statement counts, at module
level or inside a function, since an import moved into a function to dodge a cycle is
still a cycle. Only the project's own modules are nodes. `from a import b` is an edge to
the module `a.b` when there is one, else to `a`; the parent packages that Python imports
on the way (`a` for `a.b`) are not edges, or every package whose `__init__` imports its
own modules would be a cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

from processes.journey.cycles import find_cycles
from tests.source import parse

ROOT = Path(__file__).resolve().parent.parent
# Every top-level package but the tests, which nothing imports.
PACKAGES = sorted(path.parent.name for path in ROOT.glob("*/__init__.py") if path.parent.name != "tests")

def project_modules() -> dict[str, Path]:
    modules = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            modules[name.removesuffix(".__init__")] = path
    return modules


def imported_modules(name: str, path: Path, modules: dict[str, Path]) -> dict[str, int]:
    """The project modules that `name` imports anywhere in its source, each with the line
    of its first import."""

    def nearest_module(dotted: str) -> str | None:
        while dotted and dotted not in modules:
            dotted = dotted.rpartition(".")[0]
        return dotted or None

    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: dict[str, int] = {}
    for node in ast.walk(parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
        else:
            continue
        for target in targets:
            module = nearest_module(target)
            if module and module != name:
                found.setdefault(module, node.lineno)
    return found


def import_graph() -> dict[str, dict[str, int]]:
    modules = project_modules()
    return {name: imported_modules(name, path, modules) for name, path in modules.items()}


def cycles(graph: dict[str, dict[str, int]]) -> list[frozenset[str]]:
    """One cycle (its modules) for each group of modules that reach each other."""
    arcs = ((source, target) for source, targets in graph.items() for target in targets)
    return [frozenset(cycle) for cycle in find_cycles(list(graph), arcs)]


def describe(component: frozenset[str], graph: dict[str, dict[str, int]]) -> str:
    return "\n".join(f"  {source} (line {line}) imports {target}"
                     for source in sorted(component)
                     for target, line in sorted(graph[source].items()) if target in component)


def test_no_module_of_the_project_is_part_of_an_import_cycle():
    """Given the import statements of every module of the project's packages,
    when they are read as a graph of which module imports which,
    then no module reaches itself."""
    graph = import_graph()

    found = cycles(graph)

    assert not found, "import cycles:\n" + "\n\n".join(describe(component, graph) for component in found)


def test_the_graph_sees_imports_inside_functions_and_relative_imports():
    """Given two modules that import each other, one relatively from inside a function,
    when the graph is built and searched,
    then the two form one cycle."""
    graph = import_graph()
    assert "processes.models" in graph["processes.audit"]  # a relative import, sanity check of the reader

    graph["processes.models"] = {**graph["processes.models"], "processes.audit": 1}

    assert frozenset({"processes.models", "processes.audit"}) in cycles(graph)
