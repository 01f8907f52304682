"""The checkout package's imports (issue 19): one way, no cycles, no private names of other
modules, fraud rules without a database, the fast path and the route apart.

Read from the source with :mod:`ast`, so a function-local import counts like any other.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "serving.services.checkout"


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    found = {}
    for path in (ROOT / "serving").rglob("*.py"):
        found[_module_name(path)] = path
    return found


MODULES = _modules()


def _imports(path: Path) -> list[tuple[str, str | None, bool]]:
    """(module, imported name or None, at module level) for every import in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top = {id(node) for node in tree.body}
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out += [(node.module, alias.name, id(node) in top) for alias in node.names]
        elif isinstance(node, ast.Import):
            out += [(alias.name, None, id(node) in top) for alias in node.names]
    return out


def _targets(module: str, name: str | None) -> str | None:
    """The module of ours an import loads (``from pkg import mod`` loads ``pkg.mod``)."""
    if name is not None and f"{module}.{name}" in MODULES:
        return f"{module}.{name}"
    return module if module in MODULES else None


def _graph(prefix: str) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for name, path in MODULES.items():
        if name.startswith(prefix):
            graph[name] = {
                target
                for module, imported, _ in _imports(path)
                if (target := _targets(module, imported)) is not None
            }
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph``, or None."""
    state: dict[str, int] = {}
    trail: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        trail.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return trail[trail.index(nxt) :] + [nxt]
            if nxt in graph and nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        trail.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_serving_has_no_import_cycles():
    assert _cycle(_graph("serving")) is None


def test_checkout_imports_only_at_module_level():
    hidden = [
        (name, module)
        for name, path in MODULES.items()
        if name.startswith(PACKAGE) or name == "serving.services.fraud"
        for module, imported, at_top in _imports(path)
        if not at_top and _targets(module, imported) is not None
    ]
    assert hidden == []


def _private_uses(path: Path) -> list[str]:
    """``from ours import _name`` and ``module._name`` on a module of ours imported here."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    aliases: dict[str, str] = {}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("serving"):
            for alias in node.names:
                if alias.name.startswith("_"):
                    found.append(f"{node.module}.{alias.name}")
                target = _targets(node.module, alias.name)
                if target is not None and target != node.module:
                    aliases[alias.asname or alias.name] = target
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in aliases
            and node.attr.startswith("_")
        ):
            found.append(f"{aliases[node.value.id]}.{node.attr}")
    return found


def test_checkout_uses_no_private_names_of_other_modules():
    private = {
        name: uses
        for name, path in MODULES.items()
        if name.startswith(PACKAGE) and (uses := _private_uses(path))
    }
    assert private == {}


def test_fraud_rules_are_pure():
    loaded = {module for module, _, _ in _imports(MODULES["serving.services.fraud"])}
    assert not {m for m in loaded if m.startswith(("sqlalchemy", "pydantic", "serving.db"))}


def test_the_fast_path_and_the_route_stand_on_the_service_not_on_each_other():
    fast = {m for m, _, _ in _imports(MODULES["serving.middleware.checkout_fast_path"])}
    route = {m for m, _, _ in _imports(MODULES["serving.api.routes.orders"])}
    assert not {m for m in fast if m.startswith(("serving.api.routes", "serving.api.deps"))}
    assert not {m for m in fast if m.startswith("serving.api.problems")}
    assert not {m for m in route if m.startswith("serving.middleware")}
    assert f"{PACKAGE}.service" in fast
    assert f"{PACKAGE}.service" in route or any(
        m == PACKAGE and n == "service"
        for m, n, _ in _imports(MODULES["serving.api.routes.orders"])
    )


def test_nothing_registers_itself_as_a_starter():
    """Start-up is an explicit list in create_app, not a side effect of importing a module."""
    for name, path in MODULES.items():
        if name != "serving.lifecycle":
            assert "STARTERS.append" not in path.read_text(encoding="utf-8"), name
