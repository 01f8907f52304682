"""The project's import graph, read with ``ast``: who imports whom, and which cycles exist.

Used by ``tests/test_layering.py`` to hold the layers of ``docs/architecture.md``. Every
``import`` statement counts wherever it stands: at module level, inside a function (a lazy
import still ties the two modules together), under ``if TYPE_CHECKING`` (a cycle for the type
checker is still a cycle in the design). Nothing is imported or executed.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Import", "cycles", "imports_of", "layer_violations", "module_graph", "read_imports"]


@dataclass(frozen=True)
class Import:
    """One import statement's target, resolved to a module of the tree where it is one.

    ``target`` is the dotted module imported (``serving.core.config`` for ``from
    serving.core.config import Settings``; ``serving.services.shop.accounts`` for ``from
    serving.services import accounts``); ``ours`` says whether it lies in the scanned tree.
    """

    importer: str
    target: str
    line: int
    ours: bool

    @property
    def root(self) -> str:
        """The top-level package imported (``serving``, ``numpy``)."""
        return self.target.split(".")[0]

    def __str__(self) -> str:
        return f"{self.importer}:{self.line} imports {self.target}"


def module_name(root: Path, path: Path) -> str:
    """``serving/api/__init__.py`` → ``serving.api``; ``serving/app.py`` → ``serving.app``."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules(root: Path, packages: Iterable[str]) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            found[module_name(root, path)] = path
    return found


def _resolve(name: str, known: Mapping[str, Path]) -> tuple[str, bool]:
    """The longest prefix of ``name`` that is a module of the tree, else ``name`` (external)."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in known:
            return candidate, True
    return name, False


def _absolute(module: str, is_package: bool, level: int, name: str | None) -> str:
    """The absolute module a ``from`` import with ``level`` dots names."""
    base = module.split(".") if is_package else module.split(".")[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join([*base, name] if name else base)


def read_imports(root: Path, packages: Iterable[str]) -> dict[str, list[Import]]:
    """Every module of ``packages`` (folders under ``root``) → the imports it makes."""
    known = _modules(root, packages)
    result: dict[str, list[Import]] = {}
    for module, path in known.items():
        found: list[Import] = []
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    target, ours = _resolve(alias.name, known)
                    found.append(Import(module, target, node.lineno, ours))
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    source = _absolute(module, path.name == "__init__.py", node.level, node.module)
                else:
                    source = node.module or ""
                for alias in node.names:
                    # ``from pkg import sub`` imports the module ``pkg.sub`` when there is one.
                    target, ours = _resolve(f"{source}.{alias.name}", known)
                    found.append(Import(module, target, node.lineno, ours))
        result[module] = found
    return result


def module_graph(imports: Mapping[str, list[Import]]) -> dict[str, set[str]]:
    """Module → the modules of the tree it imports (itself excluded)."""
    return {
        module: {i.target for i in found if i.ours and i.target != module}
        for module, found in imports.items()
    }


def cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """The import cycles of ``graph``: each strongly connected component of more than one
    module, sorted (Tarjan's algorithm, iterative so deep graphs do not hit the recursion
    limit)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            advanced = False
            for succ in successors:
                if succ not in index:
                    index[succ] = low[succ] = counter
                    counter += 1
                    stack.append(succ)
                    on_stack.add(succ)
                    work.append((succ, iter(sorted(graph.get(succ, ())))))
                    advanced = True
                    break
                if succ in on_stack:
                    low[node] = min(low[node], index[succ])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return sorted(found)


def layer_violations(
    imports: Mapping[str, list[Import]], package: str, allowed: Iterable[str]
) -> list[Import]:
    """Imports by modules of ``package`` of our modules outside ``package`` and ``allowed``."""
    permitted = {package, *allowed}
    return [
        i
        for module, found in sorted(imports.items())
        if module == package or module.startswith(package + ".")
        for i in found
        if i.ours and i.root not in permitted
    ]


def imports_of(
    imports: Mapping[str, list[Import]], importer_prefix: str, target_prefixes: Iterable[str]
) -> list[Import]:
    """Imports by modules under ``importer_prefix`` of modules under any of ``target_prefixes``
    (prefixes are dotted: ``serving.services``)."""

    def under(name: str, prefix: str) -> bool:
        return name == prefix or name.startswith(prefix + ".")

    targets = tuple(target_prefixes)
    return [
        i
        for module, found in sorted(imports.items())
        if under(module, importer_prefix)
        for i in found
        if any(under(i.target, t) for t in targets)
    ]
