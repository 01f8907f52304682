"""Helpers for the OWASP API Security Top 10 (2023) tests: route and schema enumeration.

Every test module is named for the item it covers (``test_api1_…`` … ``test_api10_…``), so a
failing test says which class of weakness came back. Routes are enumerated from the running
app and its OpenAPI schema, never listed by hand, so new routes are covered automatically.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from tests.aftersales.conftest import category, make_seller  # noqa: F401  (fixtures)
from tests.checkout.conftest import make_product  # noqa: F401  (fixture, re-exported)

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def iter_routes(app) -> Iterator[Any]:
    """Every concrete route of ``app``, descending into included routers."""

    def walk(routes):
        for route in routes:
            if hasattr(route, "effective_candidates"):
                yield from walk(route.effective_candidates())
            else:
                yield route

    yield from walk(app.router.routes)


def route_operations(app, *, in_schema: bool | None = None) -> set[tuple[str, str]]:
    """(METHOD, path) pairs served by the app; HEAD is implied by GET and left out."""
    ops = set()
    for route in iter_routes(app):
        if in_schema is not None and bool(getattr(route, "include_in_schema", False)) != in_schema:
            continue
        for method in getattr(route, "methods", None) or ():
            if method != "HEAD":
                ops.add((method, route.path))
    return ops


def schema_operations(schema: dict) -> dict[tuple[str, str], dict]:
    return {
        (method.upper(), path): op
        for path, item in schema["paths"].items()
        for method, op in item.items()
        if method.upper() in {"GET", "POST", "PUT", "PATCH", "DELETE"}
    }


def calls_of(dependant) -> Iterator[Any]:
    """Every dependency callable in a route's dependency tree."""
    for dep in dependant.dependencies:
        yield dep.call
        yield from calls_of(dep)


def resolve(schema: dict, node: dict) -> dict:
    while "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        node = schema["components"]["schemas"][name]
    return node


def walk_schema(schema: dict, node: dict, path: str = "", seen: frozenset = frozenset()):
    """Yield (json path, node) for every sub-schema reachable from ``node``."""
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        if name in seen:
            return
        seen = seen | {name}
        node = resolve(schema, node)
    yield path, node
    for key, sub in (node.get("properties") or {}).items():
        yield from walk_schema(schema, sub, f"{path}.{key}", seen)
    for key in ("items", "additionalProperties"):
        if isinstance(node.get(key), dict):
            yield from walk_schema(schema, node[key], f"{path}[]", seen)
    for key in ("anyOf", "oneOf", "allOf"):
        for sub in node.get(key) or ():
            yield from walk_schema(schema, sub, path, seen)


def json_body_schema(op: dict) -> dict | None:
    content = (op.get("requestBody") or {}).get("content") or {}
    media = content.get("application/json")
    return media.get("schema") if media else None


def fill_path(path: str) -> str:
    """A syntactically valid URL for a templated path (ids of 1, short strings)."""
    import re

    def value(match: re.Match) -> str:
        name = match.group(1)
        return "ord_0000000000" if "order" in name else ("x" if ":path" in name else "1")

    return re.sub(r"\{([^}]+)\}", value, path)
