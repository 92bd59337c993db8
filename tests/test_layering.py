"""The packages of neurlink import one another one way: no cycle between them.

Nodes are the subpackages (``nerves``, ``nn``, ``models``, ``interop``, ``tools``) and the core (the
modules at the top of the package, less ``__init__.py`` and ``__main__.py``, which gather the public names
and the command line). Every import
counts, at module level or inside a function (a cycle held apart by a function-level import is still
a cycle); only those under ``if TYPE_CHECKING:`` do not, as they never run.
"""

from __future__ import annotations

import ast
from pathlib import Path

import neurlink

ROOT = Path(neurlink.__file__).parent


def _node(module: str) -> str | None:
    """The node of a module ``neurlink.x.y``: its subpackage, or "core"; None outside neurlink."""
    parts = module.split(".")
    if parts[0] != "neurlink":
        return None
    if len(parts) == 1:
        return "neurlink"  # the package itself (its __init__)
    return parts[1] if (ROOT / parts[1]).is_dir() else "core"


def _module_of(path: Path) -> str:
    relative = path.relative_to(ROOT.parent).with_suffix("")
    parts = list(relative.parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """The neurlink modules ``path`` imports, outside ``if TYPE_CHECKING:`` blocks."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    here = _module_of(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            target = ".".join([*base, *(node.module.split(".") if node.module else [])])
            found.add(target)
            for alias in node.names:  # from . import nn: the subpackage nn
                found.add(f"{target}.{alias.name}")
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return {module for module in found if module.split(".")[0] == "neurlink"}


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in ROOT.rglob("*.py"):
        source = _node(_module_of(path))
        if source in (None, "neurlink") or path.name == "__main__.py":  # the entry points gather the rest
            continue
        for module in _imports(path):
            target = _node(module)
            known = (ROOT / Path(*module.split(".")[1:])).with_suffix(".py").exists() or (
                ROOT / Path(*module.split(".")[1:])
            ).is_dir()
            if target not in (None, "neurlink", source) and known:
                graph.setdefault(source, set()).add(target)
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return path[path.index(target) :] + [target]
            if target not in state and (found := visit(target)):
                return found
        state[node] = 2
        path.pop()
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_import_graph_between_the_packages_is_acyclic() -> None:
    graph = _graph()
    assert {"core", "nerves", "nn", "models", "interop", "tools"} <= set(graph) | {
        t for ts in graph.values() for t in ts
    }
    cycle = _cycle(graph)
    assert cycle is None, " -> ".join(cycle or ()) + f" (the graph: {graph})"


def test_the_check_finds_a_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": {"c"}}) is None
