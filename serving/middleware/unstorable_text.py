"""Refuse a request whose path or query carries text the database cannot store (400).

PostgreSQL ``text`` cannot hold U+0000 (its driver raises before the statement runs, a 500),
while SQLite stores it silently; body fields refuse it in their schemas (``schemas.common.Text``).
Query and path parameters are read by every route in its own way (search terms, category
slugs, cursors, SKUs), so the check sits here, once, in front of all of them: one answer on
both databases, and no route can forget it. The character is looked for after percent-decoding
(``%00``) and raw, in the names as well as the values, since a name can be echoed back too.
Every other character a URL can decode to is storable: servers decode bytes that are not
UTF-8 to U+FFFD, never to a lone surrogate.
"""

from __future__ import annotations

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from serving.core.errors import PROBLEM_JSON

#: Characters PostgreSQL text (UTF-8 server encoding) cannot store.
UNSTORABLE = "\x00"
_ENCODED = (b"%00", b"\x00")
CODE = "unstorable_text"


def _query_has_unstorable(query: bytes) -> bool:
    """``%00`` is the only spelling of NUL in a query string (hex digits have no case)."""
    return any(spelling in query for spelling in _ENCODED)


class UnstorableTextMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            if UNSTORABLE in scope["path"]:
                await _reject(scope, send, "path")
                return
            if _query_has_unstorable(scope.get("query_string", b"")):
                await _reject(scope, send, "query")
                return
        await self.app(scope, receive, send)


async def _reject(scope: Scope, send: Send, where: str) -> None:
    body = orjson.dumps(
        {
            "type": "about:blank",
            "title": "Bad Request",
            "status": 400,
            "detail": f"The request {where} may not contain NUL characters (U+0000)",
            "code": CODE,
            "location": where,
        }
    )
    await send(
        {
            "type": "http.response.start",
            "status": 400,
            "headers": [(b"content-type", PROBLEM_JSON.encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
