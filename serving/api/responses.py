"""JSON responses with strong ETags, answering ``If-None-Match`` with 304."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
from fastapi import Request
from starlette.responses import Response

from serving.services.infra.read_cache import CachedBody


def etag_of(body: bytes) -> str:
    return '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'


def _matches(header: str, etag: str) -> bool:
    if header.strip() == "*":
        return True
    candidates = [part.strip().removeprefix("W/") for part in header.split(",")]
    return etag in candidates


def cached_json(request: Request, entry: CachedBody, *, max_age: int = 0) -> Response:
    """Answer from a cached body, with 304 when the client's ETag matches."""
    headers = {"ETag": entry.etag, "Cache-Control": f"private, max-age={max_age}, must-revalidate"}
    inm = request.headers.get("if-none-match")
    if inm and _matches(inm, entry.etag):
        return Response(status_code=304, headers=headers)
    return Response(entry.body, media_type="application/json", headers=headers)


def json_with_etag(request: Request, payload: Any, *, max_age: int = 0) -> Response:
    """Serialise once, tag it, and skip the body when the client already has this version."""
    body = orjson.dumps(payload)
    etag = etag_of(body)
    headers = {"ETag": etag, "Cache-Control": f"private, max-age={max_age}, must-revalidate"}
    inm = request.headers.get("if-none-match")
    if inm and _matches(inm, etag):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/json", headers=headers)
