"""Every module of the package imports, and no two modules import each other (even indirectly)."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import tinymem

PACKAGE_ROOT = Path(tinymem.__file__).parent


def _module_names() -> list[str]:
    """Dotted names of every module of the package (packages as their `__init__`)."""
    names = []
    for path in sorted(PACKAGE_ROOT.rglob("*.py")):
        parts = ("tinymem", *path.relative_to(PACKAGE_ROOT).with_suffix("").parts)
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


MODULES = _module_names()


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement that can run: module level and inside functions (deferred
    imports count: a cycle hidden in a function is still a cycle), not `if TYPE_CHECKING:`."""
    found: list[ast.Import | ast.ImportFrom] = []
    pending: list[ast.AST] = [tree]
    while pending:
        node = pending.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        elif isinstance(node, ast.If) and _is_type_checking(node):
            pending += node.orelse
        else:
            pending += ast.iter_child_nodes(node)
    return found


def _imported_modules(name: str) -> set[str]:
    """Package modules `name` imports (a name imported from a module counts as that module, a
    submodule imported from a package as the submodule)."""
    path = PACKAGE_ROOT.joinpath(*name.split(".")[1:])
    path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in _runtime_imports(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets |= {alias.name for alias in node.names}
            continue
        base = node.module or ""
        if node.level:
            anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
            base = f"{anchor}.{base}" if base else anchor
        for alias in node.names:
            submodule = f"{base}.{alias.name}"
            targets.add(submodule if submodule in MODULES else base)
    return {t for t in targets if t in MODULES and t != name}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of `graph` (module -> modules it imports), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)):
            return found
    return None


def test_the_cycle_finder_finds_cycles() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_no_import_cycles() -> None:
    graph = {name: _imported_modules(name) for name in MODULES}
    assert "tinymem.memory.cache" in graph["tinymem.memory.stream"]  # the graph sees imports
    cycle = _cycle(graph)
    assert cycle is None, f"import cycle: {' -> '.join(cycle or [])}"


@pytest.mark.parametrize("name", MODULES)
def test_every_module_imports(name: str) -> None:
    assert importlib.import_module(name).__name__ == name


def _reachable(graph: dict[str, set[str]], start: str) -> dict[str, str]:
    """Every module `start` imports, even indirectly, each with the module that imports it."""
    via: dict[str, str] = {}
    pending = [start]
    while pending:
        node = pending.pop()
        for nxt in graph[node] - via.keys():
            via[nxt] = node
            pending.append(nxt)
    return via


def _under(name: str, package: str) -> bool:
    return name == package or name.startswith(f"{package}.")


def test_memory_imports_neither_data_nor_lit() -> None:
    """Memory sits below the data and the Lightning layers: no memory module imports them, not
    even through another module (`if TYPE_CHECKING:` imports for annotations are allowed)."""
    graph = {name: _imported_modules(name) for name in MODULES}
    assert _under("tinymem.data.ava.dataset", "tinymem.data")
    assert _reachable({"a": {"b"}, "b": {"c"}, "c": set()}, "a") == {"b": "a", "c": "b"}
    bad = []
    for name in (n for n in MODULES if _under(n, "tinymem.memory")):
        via = _reachable(graph, name)
        for target in sorted(via):
            if _under(target, "tinymem.data") or _under(target, "tinymem.lit"):
                chain = [target]
                while chain[-1] != name:
                    chain.append(via[chain[-1]])
                bad.append(" <- ".join(chain))
    assert not bad, "memory imports a layer above it:\n" + "\n".join(bad)
