"""Search answers as the API gives them: the engine's hits joined with live price and stock.

``SearchServing`` says which engine answers; this module asks it (on the event loop when the
expensive part is cached, else on a small worker pool), falls back to a title match in the
database while no index exists (so a fresh shop never answers search with an error), turns the
result into the storefront's JSON, and queues the server's own ``search`` event carrying the
shown product ids, so click-through tables can be built even for clients that send no events.
"""

from __future__ import annotations

import html
import itertools
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio.to_thread
from anyio import CapacityLimiter
from starlette.concurrency import run_in_threadpool

from features.events import FIELDS, format_ts
from models.search.api import FacetValue, SearchRequest, SearchResponse
from models.search.errors import QueryError
from serving.core.clock import utcnow
from serving.core.errors import BadRequest, NotFound
from serving.core.ids import new_request_id
from serving.services.ml.catalog_view import ProductInfo
from serving.services.ml.search_events import SearchEvents
from serving.services.ml.search_serving import Engine_, SearchServing

FALLBACK = "fallback"
_PRODUCT_SUGGESTIONS = 3
#: How many of a suggestion's top product hits are looked at to put those in stock first.
_PRODUCT_DEPTH = 30
# Search and event ids without a call into the kernel's random source per search (it showed
# up in profiles of the serving process): a random per-process prefix plus a counter, like
# request ids; event ids keep the UUID format the event schema and pipelines expect.
_EVENT_ID_PREFIX = uuid.uuid4().int >> 64 << 64
_EVENT_ID_COUNTER = itertools.count(1)


def _event_id() -> str:
    return str(uuid.UUID(int=_EVENT_ID_PREFIX | next(_EVENT_ID_COUNTER), version=4))


@dataclass(frozen=True)
class SearchQuery:
    """What the shopper asked for, as the route received it (validated by its types)."""

    q: str = ""
    category: str | None = None
    brands: Sequence[str] = ()
    price_min: int | None = None
    price_max: int | None = None
    in_stock: bool | None = None
    attributes: Sequence[str] = ()
    sort: str = "relevance"
    cursor: str | None = None
    limit: int = 20


@dataclass(frozen=True)
class Asker:
    """Who asked, for the ``search`` event; ``inline`` when cached answers may be finished on
    the event loop (a local SQLite file: a product-cache miss is a cheap primary-key read)."""

    user_id: int | None = None
    session_id: str | None = None
    request_id: str | None = None
    inline: bool = field(default=False, compare=False)


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
        category = h.category_path
        if category and ">" not in category:  # an index built by the pipelines has slug paths
            category = serving.categories_path(info.category_id)
        hits.append(_hit(info.product_id, info, h.title, category, h.highlight))
    return hits, [h["product_id"] for h in hits]


#: First computations (retrieval, rerank, facets) run on at most this many worker threads.
#: They are CPU-bound and hold the GIL between tantivy calls: with the threadpool's 40
#: threads, a burst of new queries thrashed the GIL (server CPU per search doubled under an
#: open-loop burst) and starved the event loop that answers the cached ones. Two keeps both
#: cores busy, since tantivy releases the GIL while it searches.
_COMPUTE = CapacityLimiter(2)


async def _search(inline: bool, engine: Engine_, search_request: SearchRequest) -> SearchResponse:
    """The engine's answer: inline when its expensive part is cached, else in a worker thread.

    A first computation (retrieval, rerank, facets) costs milliseconds of CPU; on the event
    loop it would hold up every other request for that long.
    """
    if inline:
        result = engine.search_cached(search_request)
        if result is not None:
            return result
    return await anyio.to_thread.run_sync(engine.search, search_request, limiter=_COMPUTE)


def _log_search(
    events: SearchEvents | None,
    asker: Asker,
    search_id: str,
    query: str,
    shown: list[int],
    total: int,
    extra: dict,
) -> None:
    """Queue the server's own ``search`` record (submitted in batches; failures are logged,
    never the caller's: the answer does not wait for the log)."""
    if events is None:
        return
    record: dict[str, Any] = dict.fromkeys(FIELDS)
    record.update(
        event_id=_event_id(),
        type="search",
        source="server",
        user_id=str(asker.user_id) if asker.user_id is not None else None,
        session_id=asker.session_id,
        query=query[:512],
        search_id=search_id,
        server_ts=format_ts(utcnow()),
        request_id=asker.request_id,
        props={"results": ",".join(map(str, shown)), "total": total, **extra},
    )
    events.add(record)


async def search(
    serving: SearchServing, events: SearchEvents | None, query: SearchQuery, asker: Asker
) -> dict[str, Any]:
    """Products matching the text and filters, with facets, highlights and current stock;
    a title match from the database (``ranker_version`` "fallback") until an index exists."""
    attributes = _attribute_filters(query.attributes)
    category_path = None
    if query.category:
        info = serving.categories.lookup(query.category)
        if info is None:
            raise NotFound("Category", query.category)
        category_path = info.path
    search_request = serving.request(
        query=query.q,
        brands=list(query.brands),
        category_id=category_path,
        attributes=attributes,
        price_min=query.price_min,
        price_max=query.price_max,
        in_stock=query.in_stock,
        sort=query.sort,
        page_size=query.limit,
        cursor=query.cursor,
    )
    search_id = new_request_id()
    served = serving.served()
    try:
        if served is None:
            payload = await run_in_threadpool(_fallback, serving, search_request)
        else:
            result = await _search(asker.inline, served.engine, search_request)
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
    extra = {"ranker_version": payload["ranker_version"], "sort": query.sort}
    _log_search(events, asker, search_id, query.q, shown, payload["total"], extra)
    return payload


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


def _product_request(q: str) -> SearchRequest:
    """The product part of a suggestion: the top hits, in stock first, not reranked.

    In stock first over the top ``_PRODUCT_DEPTH`` rows, not the 200-row window a search page
    uses: retrieval then collects ~30 rows, and its recall fill runs only when fewer than
    that match every word (with the window, whenever fewer than 200 did: most keystrokes).
    """
    return SearchRequest(
        query=q,
        page_size=_PRODUCT_SUGGESTIONS,
        facets=False,
        highlight=False,
        rerank=False,
        window=_PRODUCT_DEPTH,
    )


def _suggest_computed(engine: Engine_, q: str, limit: int) -> tuple[list[str], SearchResponse]:
    """Both parts of a suggestion, for one trip to a worker thread instead of two."""
    return engine.suggest(q, limit), engine.search(_product_request(q))


async def suggest(serving: SearchServing, q: str, limit: int, *, inline: bool) -> list[dict]:
    """Completions of the last word being typed, then a few products to jump to.

    Both parts are cached per index version, so a keystroke someone typed recently is
    answered on the event loop; otherwise both are computed in one worker-thread call.
    """
    suggestions: list[dict[str, Any]] = []
    served = serving.served()
    if q.strip():
        try:
            if served is None:
                products = await run_in_threadpool(_fallback_suggestions, serving, q.strip())
            else:
                engine = served.engine
                texts = engine.suggest_cached(q, limit) if inline else None
                found = engine.search_cached(_product_request(q)) if inline else None
                if texts is None or found is None:
                    texts, found = await anyio.to_thread.run_sync(
                        _suggest_computed, engine, q, limit, limiter=_COMPUTE
                    )
                suggestions += [{"text": t, "type": "query"} for t in texts]
                products = [(int(h.product_id), h.title) for h in found.hits]
        except QueryError:
            products = []
        suggestions += [
            {"text": title, "type": "product", "product_id": pid} for pid, title in products
        ]
    return suggestions
