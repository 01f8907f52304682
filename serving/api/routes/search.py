"""Product search and type-ahead suggestions (docs/api.md, docs/search.md).

Handlers are thin: ``SearchServing`` says which engine answers, the engine retrieves, reranks
and facets, and this module turns the result into the storefront's JSON with current price and
stock. Every search is also logged server-side as a ``search`` event carrying the shown product
ids, so click-through tables can be built even for clients that send no events.
"""

from __future__ import annotations

import html
import itertools
import logging
import re
import uuid
from collections.abc import Sequence
from typing import Annotated, Any, Literal

import anyio.to_thread
import orjson
from anyio import CapacityLimiter
from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from features.events import FIELDS, format_ts
from models.search.api import FacetValue, SearchRequest, SearchResponse
from models.search.errors import QueryError
from serving.api.deps import OptionalUser
from serving.api.schemas.search import SearchResults, Suggestions
from serving.core.clock import utcnow
from serving.core.errors import BadRequest, NotFound, ProblemError
from serving.middleware.request_context import new_request_id
from serving.services.catalog_sync import ProductInfo
from serving.services.search_serving import Engine_, SearchServing

router = APIRouter(prefix="/api/v1/search", tags=["search"])
log = logging.getLogger("storeloop.search")

SortName = Literal["relevance", "price_asc", "price_desc", "newest", "rating"]
FALLBACK = "fallback"
_SESSION_ID = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
_PRODUCT_SUGGESTIONS = 3
# Search and event ids without a call into the kernel's random source per search (it showed
# up in profiles of the serving process): a random per-process prefix plus a counter, like
# request ids; event ids keep the UUID format the event schema and pipelines expect.
_EVENT_ID_PREFIX = uuid.uuid4().int >> 64 << 64
_EVENT_ID_COUNTER = itertools.count(1)


def _event_id() -> str:
    return str(uuid.UUID(int=_EVENT_ID_PREFIX | next(_EVENT_ID_COUNTER), version=4))


def _serving(request: Request) -> SearchServing:
    serving = getattr(request.app.state, "search_serving", None)
    if serving is None:
        raise ProblemError(503, "Service Unavailable", "Search is not running")
    return serving


def _session_of(request: Request) -> str | None:
    """The caller's session id if it sent a valid one; search never mints a cookie."""
    settings = request.app.state.settings
    raw = request.headers.get("x-session-id") or request.cookies.get(settings.session_cookie)
    return raw if raw and _SESSION_ID.match(raw) else None


def _attribute_filters(raw: Sequence[str]) -> dict[str, list[str]]:
    filters: dict[str, list[str]] = {}
    for item in raw:
        key, sep, value = item.partition(":")
        if not sep or not key.strip() or not value.strip():
            raise BadRequest(f"Attribute filter {item!r} must look like key:value")
        filters.setdefault(key.strip(), []).append(value.strip())
    return filters


def _hit(pid: int, info: ProductInfo, title: str, category: str, highlight: str) -> dict:
    return {
        "product_id": pid,
        "title": info.title or title,
        "brand": info.brand,
        "category_path": category,
        "price_minor": info.price_minor,
        "currency": info.currency,
        "available": info.available,
        "in_stock": info.available > 0,
        "rating": round(info.rating, 3),
        "image_url": info.image_url,
        "highlights": {"title": highlight or html.escape(info.title or title)},
    }


def _facets(serving: SearchServing, facets: dict[str, list[FacetValue]]) -> dict[str, list]:
    """Backend facets in the API's shape; category values become slugs the filter accepts."""
    out: dict[str, list[dict[str, Any]]] = {}
    for name, buckets in facets.items():
        rows: list[dict[str, Any]] = []
        for b in buckets:
            value, label = b.value, b.label or b.value
            if name == "category":
                info = serving.categories.by_path(b.value)
                if info is None:
                    continue  # index built with other category ids (e.g. display names)
                value, label = info.slug, info.name
            elif name == "price":
                lo, _, hi = b.value.partition("-")
                value = f"{lo}-{int(hi) - 1}" if hi.isdigit() else f"{lo}-"  # inclusive bounds
            elif name == "in_stock":
                label = "In stock" if value == "true" else "Out of stock"
            rows.append({"value": value, "label": label, "count": int(b.count)})
        out[name] = rows
    return out


def _render(serving: SearchServing, result: SearchResponse) -> tuple[list[dict], list[int]]:
    ids = [int(h.product_id) for h in result.hits if h.product_id.isdigit()]
    infos = serving.products.get(ids)
    hits = []
    for h in result.hits:
        info = infos.get(int(h.product_id)) if h.product_id.isdigit() else None
        if info is None or info.archived:
            continue
        hits.append(_hit(info.product_id, info, h.title, h.category_path, h.highlight))
    return hits, [h["product_id"] for h in hits]


#: First computations (retrieval, rerank, facets) run on at most this many worker threads.
#: They are CPU-bound and hold the GIL between tantivy calls: with the threadpool's 40
#: threads, a burst of new queries thrashed the GIL (server CPU per search doubled under an
#: open-loop burst) and starved the event loop that answers the cached ones. Two keeps both
#: cores busy, since tantivy releases the GIL while it searches.
_COMPUTE = CapacityLimiter(2)


def _inline(request: Request) -> bool:
    """Whether cached answers may be finished on the event loop.

    A cached search still joins live price and stock, which can miss the product cache: a
    primary-key read from a local SQLite file is cheaper than the hop to a worker thread, a
    networked database would block the loop for a round trip.
    """
    return bool(request.app.state.db.is_sqlite)


async def _search(
    request: Request, engine: Engine_, search_request: SearchRequest
) -> SearchResponse:
    """The engine's answer: inline when its expensive part is cached, else in a worker thread.

    A first computation (retrieval, rerank, facets) costs milliseconds of CPU; on the event
    loop it would hold up every other request for that long.
    """
    if _inline(request):
        result = engine.search_cached(search_request)
        if result is not None:
            return result
    return await anyio.to_thread.run_sync(engine.search, search_request, limiter=_COMPUTE)


def _log_search(
    request: Request, search_id: str, query: str, shown: list[int], total: int, extra: dict
) -> None:
    """Queue the server's own ``search`` record (submitted in batches; failures are logged,
    never the caller's: the answer does not wait for the log)."""
    events = getattr(request.app.state, "search_events", None)
    if events is None:
        return
    user_id = getattr(request.state, "user_id", None)
    record: dict[str, Any] = dict.fromkeys(FIELDS)
    record.update(
        event_id=_event_id(),
        type="search",
        source="server",
        user_id=str(user_id) if user_id is not None else None,
        session_id=_session_of(request),
        query=query[:512],
        search_id=search_id,
        server_ts=format_ts(utcnow()),
        request_id=getattr(request.state, "request_id", None),
        props={"results": ",".join(map(str, shown)), "total": total, **extra},
    )
    events.add(record)


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
    serving = _serving(request)
    attributes = _attribute_filters(attr or [])
    category_path = None
    if category:
        info = serving.categories.lookup(category)
        if info is None:
            raise NotFound("Category", category)
        category_path = info.path
    search_request = SearchRequest(
        query=q,
        brands=brand or [],
        category_id=category_path,
        attributes=attributes,
        price_min=price_min,
        price_max=price_max,
        in_stock=in_stock,
        sort=sort,
        page_size=limit,
        cursor=cursor,
    )
    search_id = new_request_id()
    served = serving.served()
    try:
        if served is None:
            payload = await run_in_threadpool(_fallback, serving, search_request)
        else:
            result = await _search(request, served.engine, search_request)
            hits, _ = _render(serving, result)
            payload = {
                "hits": hits,
                "total": result.total,
                "facets": _facets(serving, result.facets),
                "did_you_mean": result.did_you_mean,
                "next_cursor": result.next_cursor,
                "ranker_version": served.ranker_version,
                "index_version": served.index_version,
            }
    except QueryError as exc:
        raise BadRequest(str(exc)) from None
    payload["search_id"] = search_id
    shown = [h["product_id"] for h in payload["hits"]]
    _log_search(
        request,
        search_id,
        q,
        shown,
        payload["total"],
        {"ranker_version": payload["ranker_version"], "sort": sort},
    )
    return Response(orjson.dumps(payload), media_type="application/json")


def _fallback(serving: SearchServing, request: SearchRequest) -> dict[str, Any]:
    """Title match in the database while no index exists (filters other than text ignored)."""
    from models.search.api import encode_cursor

    request.validate()
    offset = request.offset
    ids, total = serving.fallback_search(request.query.strip()[:200], request.page_size, offset)
    infos = serving.products.get(ids)
    hits = [
        _hit(pid, infos[pid], "", serving.categories_path(infos[pid].category_id), "")
        for pid in ids
        if pid in infos
    ]
    following = offset + request.page_size
    return {
        "hits": hits,
        "total": total,
        "facets": {},
        "did_you_mean": None,
        "next_cursor": encode_cursor(following, request.fingerprint())
        if following < total
        else None,
        "ranker_version": FALLBACK,
        "index_version": None,
    }


def _fallback_suggestions(serving: SearchServing, text: str) -> list[tuple[int, str]]:
    ids, _ = serving.fallback_search(text, _PRODUCT_SUGGESTIONS, 0)
    infos = serving.products.get(ids)
    return [(pid, infos[pid].title) for pid in ids if pid in infos]


@router.get("/suggest", response_model=Suggestions)
async def suggest(
    request: Request,
    q: Annotated[str, Query(max_length=200)] = "",
    limit: Annotated[int, Query(ge=1, le=20)] = 8,
) -> Response:
    """Completions of the last word being typed, then a few products to jump to.

    Both parts are cached per index version, so a keystroke someone typed recently is
    answered on the event loop; only the first one goes to a worker thread.
    """
    serving = _serving(request)
    suggestions: list[dict[str, Any]] = []
    served = serving.served()
    if q.strip():
        try:
            if served is None:
                products = await run_in_threadpool(_fallback_suggestions, serving, q.strip())
            else:
                engine = served.engine
                texts = engine.suggest_cached(q, limit) if _inline(request) else None
                if texts is None:
                    texts = await anyio.to_thread.run_sync(
                        engine.suggest, q, limit, limiter=_COMPUTE
                    )
                suggestions += [{"text": t, "type": "query"} for t in texts]
                found = await _search(
                    request,
                    engine,
                    SearchRequest(
                        query=q,
                        page_size=_PRODUCT_SUGGESTIONS,
                        facets=False,
                        highlight=False,
                        rerank=False,
                    ),
                )
                products = [(int(h.product_id), h.title) for h in found.hits]
        except QueryError:
            products = []
        suggestions += [
            {"text": title, "type": "product", "product_id": pid} for pid, title in products
        ]
    return Response(orjson.dumps({"suggestions": suggestions}), media_type="application/json")
