"""No import cycles among our packages.

A cycle works only as long as its modules happen to be imported in the right order, and hiding
one behind ``if TYPE_CHECKING`` or an import inside a function only postpones it: every import
statement counts, wherever it is. Importing ``a.b.c`` also runs the ``__init__`` of ``a.b``, so
an import leads to the module's packages too, except those the importer is inside of (they are
already being imported when it runs).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("server", "eprescribe", "signaling")


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


def _imported(name: str, path: Path, node: ast.Import | ast.ImportFrom) -> Iterator[str]:
    """The dotted names ``node`` imports, ``from p import x`` as ``p.x`` (a module, or an
    attribute of the module ``p``)."""
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
        return
    base = node.module or ""
    if node.level:
        package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        anchor = ".".join(package[: len(package) - node.level + 1])
        base = f"{anchor}.{base}" if base else anchor
    yield from (f"{base}.{alias.name}" for alias in node.names)


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import | ast.ImportFrom):
                for target in _imported(name, path, node):
                    graph[name] |= _leads_to(name, target, modules)
    return graph


def _leads_to(name: str, target: str, modules: dict[str, Path]) -> set[str]:
    """The modules of ours that importing ``target`` from ``name`` runs: the module it names
    (the longest such prefix: ``p.x`` is the module ``p`` when ``x`` is one of its attributes)
    and that module's packages ``name`` is not inside of."""
    parts = target.split(".")
    ours = [m for m in (".".join(parts[:end]) for end in range(1, len(parts) + 1)) if m in modules]
    if not ours:
        return set()
    *packages, module = ours
    outside = {package for package in packages if not name.startswith(f"{package}.")}
    return (outside | {module}) - {name}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for successor in sorted(graph[node]):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = stack[stack.index(node) :]
            del stack[stack.index(node) :]
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_graph_sees_the_imports() -> None:
    graph = _graph()
    assert "server.db.models" in graph["server.auth.models"]  # from ..db.models import
    assert "server.auth.clients" in graph["server.admin"]  # from ..auth.clients import
    assert "server.auth" in graph["server.admin"]  # whose package runs first
    assert "server" not in graph["server.admin"]  # the importer's own package
    assert "signaling.protocol" in graph["signaling.rooms"]  # from . import protocol as p
    assert "server.worker" in graph["server.worker.cli"]  # from . import QUEUE (inside a function)


def test_cycles_are_found() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert _cycles(graph) == [["a", "b", "c"]]


def test_no_import_cycles() -> None:
    cycles = _cycles(_graph())
    assert not cycles, "import cycles: " + "; ".join(" <-> ".join(c) for c in cycles)


#: the pure packages report through observers they are given; the metrics and tracing
#: libraries stay outside them
PURE = ("eprescribe", "signaling")
FORBIDDEN = ("prometheus_client", "opentelemetry", "server")


def _external_imports(package: str) -> Iterator[tuple[str, str]]:
    for path in (ROOT / package).rglob("*.py"):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import | ast.ImportFrom) and not getattr(node, "level", 0):
                for target in _imported(name, path, node):
                    yield name, target


def test_the_pure_packages_import_no_instrumentation() -> None:
    found = [
        f"{module} imports {target}"
        for package in PURE
        for module, target in _external_imports(package)
        if target.split(".")[0] in FORBIDDEN
    ]
    assert not found, "; ".join(found)


def test_the_instrumentation_rule_sees_imports() -> None:
    imports = {target for _, target in _external_imports("signaling")}
    assert "asyncio" in imports  # import asyncio
    assert "aiohttp" not in {t.split(".")[0] for t in imports}
