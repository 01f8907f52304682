"""The OpenAPI description of an event batch, derived from the pydantic model.

The route reads its body by hand (to bound it while it streams), so FastAPI cannot infer the
request schema; this builds it from ``EventBatch`` so the docs and schema-based tests such as
schemathesis still see the real contract. ``$defs`` references are inlined because the
fragment is embedded in the OpenAPI document, where ``#/$defs/...`` would not resolve.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from features.events import EventBatch

_DEFS_PREFIX = "#/$defs/"


def _inline(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(_DEFS_PREFIX):
            target = _inline(defs[ref[len(_DEFS_PREFIX) :]], defs)
            extra = {k: _inline(v, defs) for k, v in node.items() if k != "$ref"}
            return {**target, **extra}
        return {key: _inline(value, defs) for key, value in node.items()}
    if isinstance(node, list):
        return [_inline(item, defs) for item in node]
    return node


@cache
def batch_json_schema() -> dict[str, Any]:
    """A self-contained JSON schema of the request body (no ``$defs``)."""
    schema = EventBatch.model_json_schema()
    defs = schema.pop("$defs", {})
    return _inline(schema, defs)


def batch_request_schema() -> dict[str, Any]:
    """The ``requestBody`` object for the route's OpenAPI operation."""
    return {
        "required": True,
        "content": {"application/json": {"schema": batch_json_schema()}},
    }
