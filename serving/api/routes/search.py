"""Product search and type-ahead suggestions (docs/api.md, docs/search.md).

Handlers are thin: they read the request (query, session, caller) and hand it to
``services/ml/search_answers.py``, which asks the engine, joins current price and stock and
logs the server's own ``search`` event.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

import orjson
from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from serving.api.deps import OptionalUser
from serving.api.schemas.search import SearchResults, Suggestions
from serving.components import components_of
from serving.core.errors import ProblemError
from serving.services.ml import search_answers
from serving.services.ml.search_answers import Asker, SearchQuery
from serving.services.ml.search_serving import SearchServing

router = APIRouter(prefix="/api/v1/search", tags=["search"])

SortName = Literal["relevance", "price_asc", "price_desc", "newest", "rating"]
_SESSION_ID = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


def _serving(request: Request) -> SearchServing:
    serving = components_of(request).search
    if serving is None:
        raise ProblemError(503, "Service Unavailable", "Search is not running")
    return serving


def _session_of(request: Request) -> str | None:
    """The caller's session id if it sent a valid one; search never mints a cookie."""
    settings = components_of(request).settings
    raw = request.headers.get("x-session-id") or request.cookies.get(settings.session_cookie)
    return raw if raw and _SESSION_ID.match(raw) else None


@router.get(
    "",
    response_model=SearchResults,
    responses={400: {"description": "Bad query, filter or cursor"}, 404: {}},
)
async def search(
    request: Request,
    user: OptionalUser,
    q: Annotated[str, Query(max_length=2000, description="Free text; empty browses")] = "",
    category: Annotated[
        str | None, Query(max_length=120, description="id or slug; includes descendants")
    ] = None,
    brand: Annotated[list[str] | None, Query(max_length=20)] = None,
    price_min: Annotated[int | None, Query(ge=0, le=2_000_000_000)] = None,
    price_max: Annotated[int | None, Query(ge=0, le=2_000_000_000)] = None,
    in_stock: bool | None = None,
    attr: Annotated[
        list[str] | None, Query(max_length=20, description="attribute filter key:value, repeatable")
    ] = None,
    sort: SortName = "relevance",
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> Response:
    """Products matching the text and filters, with facets, highlights and current stock.

    Until the first index is built the answer is a plain title match from the database
    (``ranker_version`` "fallback"), so a fresh shop never answers search with an error.
    """
    c = components_of(request)
    query = SearchQuery(
        q, category, brand or [], price_min, price_max, in_stock, attr or [], sort, cursor, limit
    )
    asker = Asker(
        getattr(request.state, "user_id", None),
        _session_of(request),
        getattr(request.state, "request_id", None),
        inline=bool(c.db.is_sqlite),
    )
    payload = await search_answers.search(_serving(request), c.search_events, query, asker)
    return Response(orjson.dumps(payload), media_type="application/json")


@router.get("/suggest", response_model=Suggestions)
async def suggest(
    request: Request,
    q: Annotated[str, Query(max_length=200)] = "",
    limit: Annotated[int, Query(ge=1, le=20)] = 8,
) -> Response:
    """Completions of the last word being typed, then a few products to jump to."""
    inline = bool(components_of(request).db.is_sqlite)
    suggestions = await search_answers.suggest(_serving(request), q, limit, inline=inline)
    return Response(orjson.dumps({"suggestions": suggestions}), media_type="application/json")
