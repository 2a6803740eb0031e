"""The packages' layering (../shared/DESIGN.md): `detector/` is a library, `datasets/` builds on it, `service/`
on both. Nothing points upward (`datasets` → `service`, `detector` → `datasets` or `service`) and `service/`
has no import cycle.

Imports are read with `ast`, never executed: module-level imports and imports inside functions both count
(a function-level import is still an arrow, only a later one). For cycles only, imports under
``if TYPE_CHECKING:`` are left out: they never run, and are the standard way to name a type across a cycle.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Import:
    """One import statement's target, resolved to the most specific module or package that exists."""

    source: str  # the importing module, dotted
    target: str  # dotted module or package name
    path: Path
    line: int
    type_checking_only: bool


def module_name(root: Path, path: Path) -> str:
    """Dotted name of a ``.py`` file under `root` (a package's ``__init__.py`` names the package)."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def package_modules(root: Path, package: str) -> dict[str, Path]:
    """Every module of `package` (a folder under `root`), by dotted name."""
    return {module_name(root, p): p for p in sorted((root / package).rglob("*.py"))
            if "__pycache__" not in p.parts}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _walk(node: ast.AST, type_checking: bool = False):
    """(import node, under ``if TYPE_CHECKING:``) for every import at any depth (functions, classes, ifs)."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.Import, ast.ImportFrom)):
            yield child, type_checking
        elif isinstance(child, ast.If) and _is_type_checking(child.test):
            for stmt in child.body:
                yield from _walk(ast.Module(body=[stmt], type_ignores=[]), True)
            for stmt in child.orelse:
                yield from _walk(ast.Module(body=[stmt], type_ignores=[]), type_checking)
        else:
            yield from _walk(child, type_checking)


def imports_of(root: Path, path: Path, known: set[str]) -> list[Import]:
    """The imports of one file, resolved: ``from a.b import c`` is ``a.b.c`` when that is a module in `known`,
    else ``a.b``; relative imports are resolved against the file's package."""
    source = module_name(root, path)
    package = source if path.name == "__init__.py" else source.rpartition(".")[0]
    out = []
    for node, type_checking in _walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        for target in dict.fromkeys(targets):
            out.append(Import(source, target, path, node.lineno, type_checking))
    return out


def upward_imports(root: Path, package: str, forbidden: tuple[str, ...]) -> list[str]:
    """``file:line: imports X`` for every import in `package` of a package in `forbidden` (or below it)."""
    modules = package_modules(root, package)
    found = []
    for path in modules.values():
        for imp in imports_of(root, path, set(modules)):
            if any(imp.target == f or imp.target.startswith(f + ".") for f in forbidden):
                found.append(f"{imp.path.relative_to(root)}:{imp.line}: imports {imp.target}")
    return found


def import_graph(root: Path, package: str) -> dict[str, set[str]]:
    """Module → the modules of the same package it imports at run time (``if TYPE_CHECKING:`` left out)."""
    modules = package_modules(root, package)
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for imp in imports_of(root, path, set(modules)):
            if not imp.type_checking_only and imp.target in modules and imp.target != name:
                graph[name].add(imp.target)
    return graph


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (``[a, b, ..., a]``) per strongly connected component of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return [_cycle_through(graph, component) for component in sorted(components)]


def _cycle_through(graph: dict[str, set[str]], component: list[str]) -> list[str]:
    """A shortest cycle from the component's first module back to it, inside the component."""
    start, members = component[0], set(component)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        following = []
        for v in frontier:
            for w in sorted(graph[v] & members):
                if w == start:
                    return paths[v] + [start]
                if w not in paths:
                    paths[w] = paths[v] + [w]
                    following.append(w)
        frontier = following
    raise AssertionError(f"no cycle through {start} in {component}")  # a component always has one


# --- the checker on small trees: each rule must be able to fail -----------------------------------------------


def write_tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


@pytest.mark.parametrize("files, expected", [
    ({"lib/__init__.py": "", "lib/a.py": "import os\nfrom lib import b\n", "lib/b.py": ""}, []),
    ({"lib/__init__.py": "", "lib/a.py": "import app.db\n"}, ["lib/a.py:1: imports app.db"]),
    ({"lib/__init__.py": "", "lib/a.py": "def f():\n    from app import db\n"}, ["lib/a.py:2: imports app"]),
    ({"lib/__init__.py": "", "lib/a.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import app\n"},
     ["lib/a.py:3: imports app"]),
    ({"lib/__init__.py": "", "lib/a.py": "import application\n"}, []),  # a name that only starts alike
], ids=["clean", "top-level", "in-a-function", "type-checking-counts-here", "prefix-is-not-the-package"])
def test_upward_imports_are_found_wherever_they_are(tmp_path, files, expected):
    assert upward_imports(write_tree(tmp_path, files), "lib", ("app",)) == expected


@pytest.mark.parametrize("files, expected", [
    ({"app/__init__.py": "", "app/a.py": "from app import b\n", "app/b.py": "import os\n"}, []),
    ({"app/__init__.py": "", "app/a.py": "from app.b import X\n", "app/b.py": "def f():\n    import app.a\n"},
     [["app.a", "app.b", "app.a"]]),
    ({"app/__init__.py": "", "app/a.py": "from . import b\n", "app/b.py": "from .c import Y\n",
      "app/c.py": "from .a import Z\n"}, [["app.a", "app.b", "app.c", "app.a"]]),
    ({"app/__init__.py": "", "app/a.py": "from app.b import X\n",
      "app/b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from app.a import Y\n"}, []),
    ({"app/__init__.py": "from app.sub import run\n", "app/sub/__init__.py": "from app.sub.x import run\n",
      "app/sub/x.py": "from app.sub.common import E\n", "app/sub/common.py": ""}, []),
], ids=["none", "through-a-function", "relative-three", "type-checking-breaks-it", "package-init-is-no-cycle"])
def test_import_cycles_are_reported_as_paths(tmp_path, files, expected):
    assert import_cycles(import_graph(write_tree(tmp_path, files), "app")) == expected


# --- the repository ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("package, forbidden", [
    ("datasets", ("service",)),
    ("detector", ("service", "datasets")),
])
def test_nothing_imports_upward(package, forbidden):
    found = upward_imports(REPO_ROOT, package, forbidden)
    assert not found, f"{package}/ must not import {' or '.join(forbidden)}:\n" + "\n".join(found)


def test_no_import_cycle_in_service():
    cycles = import_cycles(import_graph(REPO_ROOT, "service"))
    assert not cycles, "import cycles in service/:\n" + "\n".join(" -> ".join(c) for c in cycles)
