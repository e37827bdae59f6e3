"""No import cycle between the modules of ``workbench/`` (issue 10).

The graph has an edge for every import statement of a module — at the top, inside functions and
under ``TYPE_CHECKING`` alike, since each of them ties the two modules together for a reader and
for mypy even where Python would cope. ``from package import name`` counts as an import of the
package's ``__init__`` (and of ``package/name.py`` when that is a module). A cycle is a strongly
connected component of more than one module. Cut one by moving the shared piece into a small
module of its own, or by typing what one side needs of the other as a ``typing.Protocol``.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "workbench"


def _module_path(name: str, package: Path, files: set[Path]) -> Path | None:
    parts = name.split(".")
    if parts[0] != package.name:
        return None
    base = package.parent.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate in files:
            return candidate
    return None


def _imported_names(path: Path, package: Path) -> Iterator[str]:
    """Every dotted name an import statement of ``path`` may refer to (relative ones resolved)."""
    here = list(path.relative_to(package.parent).with_suffix("").parts)
    package = here[:-1]  # the package a relative import starts from (``__init__`` too)
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            yield module
            yield from (f"{module}.{alias.name}" for alias in node.names)


def import_graph(package: Path = PACKAGE) -> dict[Path, set[Path]]:
    """``{module file: the module files of the package it imports}``."""
    files = set(package.rglob("*.py"))
    graph: dict[Path, set[Path]] = {}
    for path in files:
        names = _imported_names(path, package)
        targets = (_module_path(name, package, files) for name in names)
        graph[path] = {t for t in targets if t is not None and t != path}
    return graph


def cycles(graph: dict[Path, set[Path]], root: Path = PACKAGE.parent) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), as sorted paths
    relative to ``root``."""
    index: dict[Path, int] = {}
    low: dict[Path, int] = {}
    stack: list[Path] = []
    on_stack: set[Path] = set()
    found: list[list[str]] = []

    def visit(node: Path) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(m.relative_to(root).as_posix() for m in component))

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10_000))
    try:
        for node in sorted(graph):
            if node not in index:
                visit(node)
    finally:
        sys.setrecursionlimit(limit)
    return sorted(found)


#: Cycles known to be open, each to be cut by the work named: the test fails on any other cycle,
#: and on a known one that is gone (remove it here then).
KNOWN_CYCLES: list[list[str]] = []


def _listed(found: list[list[str]]) -> str:
    return "\n".join(f"  {len(c)} modules: {', '.join(c)}" for c in found)


def test_workbench_has_no_import_cycle() -> None:
    found = cycles(import_graph())
    new = [c for c in found if c not in KNOWN_CYCLES]
    assert not new, "import cycles in workbench/ (see this test's docstring for the cut):\n" + (
        _listed(new)
    )
    gone = [c for c in KNOWN_CYCLES if c not in found]
    assert not gone, "known import cycles that are gone: remove them from KNOWN_CYCLES\n" + (
        _listed(gone)
    )


def test_the_check_sees_every_kind_of_import(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    sources = {
        "__init__.py": "",
        "a.py": "from pkg import b\n",
        "b.py": "def late():\n    from .c import name\n",
        "c.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import pkg.a\n",
        "d.py": "import pkg.a\n",
    }
    for name, text in sources.items():
        (package / name).write_text(text, encoding="utf-8")
    assert cycles(import_graph(package), tmp_path) == [["pkg/a.py", "pkg/b.py", "pkg/c.py"]]
