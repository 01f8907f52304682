"""Opaque keyset cursors: a base64url JSON of the last row's sort key and id.

Offsets get slower and skip rows when the table changes between pages; a keyset cursor does
neither, and being opaque it leaks no row counts.
"""

from __future__ import annotations

import base64
from typing import Any

import orjson

from serving.core.errors import BadRequest


def encode_cursor(*values: Any) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(list(values))).decode().rstrip("=")


def decode_cursor(cursor: str, arity: int) -> list[Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = orjson.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, orjson.JSONDecodeError) as exc:
        raise BadRequest("The cursor is not valid; use next_cursor from a previous page") from exc
    if not isinstance(values, list) or len(values) != arity:
        raise BadRequest("The cursor is not valid; use next_cursor from a previous page")
    for value in values:
        bad_type = not isinstance(value, (int, float, str)) or isinstance(value, bool)
        too_big = isinstance(value, int) and not isinstance(value, bool) and abs(value) > 2**62
        if bad_type or too_big or (isinstance(value, str) and len(value) > 100):
            raise BadRequest("The cursor is not valid; use next_cursor from a previous page")
    return values
