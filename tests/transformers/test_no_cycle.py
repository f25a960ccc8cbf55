"""No import cycle through the settings and transformer modules (issue 9 item 2).

The graph is read from the source (``ast``), not by importing: every ``import``
and ``from ... import`` in ``gateway/``, at any depth of a module (a
function-local import that only hides a cycle still counts), except those
under ``if TYPE_CHECKING:``. ``from package import submodule`` counts as
an import of the submodule. A package's ``__init__``, which Python runs
before any of its submodules, is not counted as their dependency: a package
may re-export its submodules, as long as they never import from it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

#: The modules this test holds to no cycle (the rest of the package has its own).
OURS = ("gateway.strict", "gateway.config", "gateway.check", "gateway.keys", "gateway.envvars")
OURS_PACKAGE = "gateway.transformers"


def _modules() -> dict[str, Path]:
    out = {}
    for path in (ROOT / "gateway").rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _runtime_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node, skipping the bodies of ``if TYPE_CHECKING:``."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for other in node.orelse:
                yield other
                yield from _runtime_nodes(other)
            continue
        yield node
        yield from _runtime_nodes(node)


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in _runtime_nodes(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            submodules = {f"{base}.{alias.name}" for alias in node.names} & modules.keys()
            if len(submodules) < len(node.names):  # some names come from ``base`` itself
                found.add(base)
            found.update(submodules)
    return {m for m in found if m in modules} - {name}


def _cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(component)

    for v in graph:
        if v not in index:
            visit(v)
    return out


def _ours(name: str) -> bool:
    return name in OURS or name == OURS_PACKAGE or name.startswith(OURS_PACKAGE + ".")


def test_no_cycle_through_settings_and_transformers() -> None:
    modules = _modules()
    graph = {name: _imports(name, path, modules) for name, path in modules.items()}
    assert graph["gateway.check"] >= {"gateway.routing", "gateway.transformers.registry"}
    ours = [sorted(c) for c in _cycles(graph) if any(_ours(m) for m in c)]
    assert ours == []


def test_the_finder_sees_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [{"a", "b", "c"}]
