"""No import cycle anywhere in packloop's three packages.

Every import counts, including those inside functions (a deferred import hides a cycle, it
does not remove it); only imports under ``if TYPE_CHECKING:`` are exempt, because they never
run. A package's ``__init__`` being run before its submodules is Python's doing, not an edge
written in the code, so it is not counted; an explicit ``from pkg import name`` is an edge to
``pkg`` (or to ``pkg.name`` when that is a module).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("streams", "optimizer", "services")


def module_files(root: Path = REPO_ROOT) -> dict[str, Path]:
    """Every module of the packages, by dotted name."""
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in (root / package).rglob("*.py"):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST, module: str, is_package: bool) -> list[str]:
    """Dotted names imported by the module, skipping ``if TYPE_CHECKING:`` bodies."""
    names: list[str] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                if not is_package:
                    base = base[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                names.append(f"{target}.{alias.name}")
                names.append(target)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return names


def import_graph(files: dict[str, Path]) -> dict[str, set[str]]:
    """Edges module → module among the packages' own modules."""
    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        targets: set[str] = set()
        raw = _imports(tree, module, path.name == "__init__.py")
        # `from a.b import c` names either module a.b.c or attribute c of a.b: keep the
        # longest name that is a module of ours.
        for name in raw:
            if name in files and name != module:
                targets.add(name)
        graph[module] = targets
    # `from pkg import sub` added both pkg and pkg.sub; drop pkg where every name imported
    # from it was a submodule.
    for module, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        graph[module] -= _parents_only_via_submodules(tree, module, path, files)
    return graph


def _parents_only_via_submodules(
    tree: ast.AST, module: str, path: Path, files: dict[str, Path]
) -> set[str]:
    parents_needed: set[str] = set()
    parents_seen: set[str] = set()
    is_package = path.name == "__init__.py"

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                if not is_package:
                    base = base[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target in files:
                parents_seen.add(target)
                if any(f"{target}.{alias.name}" not in files for alias in node.names):
                    parents_needed.add(target)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parents_needed.add(alias.name)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return parents_seen - parents_needed


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as a list of modules (first == last), or None."""
    white, grey, black = 0, 1, 2
    colour = dict.fromkeys(graph, white)
    stack: list[str] = []

    def dfs(node: str) -> list[str] | None:
        colour[node] = grey
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if colour.get(nxt, black) == grey:
                return stack[stack.index(nxt) :] + [nxt]
            if colour.get(nxt) == white:
                found = dfs(nxt)
                if found:
                    return found
        stack.pop()
        colour[node] = black
        return None

    for start in sorted(graph):
        if colour[start] == white:
            found = dfs(start)
            if found:
                return found
    return None


@pytest.mark.slow
def test_no_import_cycle_in_the_packages() -> None:
    """Walk every import of streams/, optimizer/ and services/; fail naming the cycle."""
    cycle = find_cycle(import_graph(module_files()))
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


@pytest.mark.slow
def test_libraries_never_import_services() -> None:
    """streams and optimizer are libraries: services wires them, never the reverse."""
    graph = import_graph(module_files())
    wrong = sorted(
        f"{module} -> {target}"
        for module, targets in graph.items()
        if not module.startswith("services")
        for target in targets
        if target.startswith("services")
        or (module.startswith("streams") and target.startswith("optimizer"))
        or (module.startswith("optimizer") and target.startswith("streams"))
    )
    assert wrong == []


@pytest.mark.parametrize(
    "files, expected",
    [
        ({"streams/a.py": "import streams.b\n", "streams/b.py": "x = 1\n"}, None),
        (
            {
                "streams/a.py": "def f():\n    from streams.b import y\n",
                "streams/b.py": "from streams import a\n",
            },
            ["streams.a", "streams.b", "streams.a"],
        ),
        (
            {
                "streams/a.py": (
                    "from typing import TYPE_CHECKING\n"
                    "if TYPE_CHECKING:\n    from streams.b import y\n"
                ),
                "streams/b.py": "from streams.a import z\n",
            },
            None,
        ),
        (
            {
                "streams/a.py": "from .b import y\n",
                "streams/b.py": "from . import a\n",
            },
            ["streams.a", "streams.b", "streams.a"],
        ),
    ],
)
def test_the_cycle_finder_sees_deferred_and_relative_imports(
    tmp_path: Path, files: dict[str, str], expected: list[str] | None
) -> None:
    """The checker itself: a cycle through a function-level or relative import is found,
    a TYPE_CHECKING-only one is not."""
    for package in PACKAGES:
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    assert find_cycle(import_graph(module_files(tmp_path))) == expected
