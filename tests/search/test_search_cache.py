"""The per-query result cache never serves stale text, ranking or live state.

The backend caches the index-only part of a search (candidate order, total, facets); these
tests pin down that live price/stock/archived state is still joined on every request, that
live index updates show once answers cached before them expire (while an unchanged index
keeps its answers), and that a new version or ranker makes cached answers unreachable at once.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from search_catalog import CATALOG, doc

from models.search.api import LiveState, SearchRequest
from models.search.result_cache import ResultCache
from models.search.tantivy_backend import TantivyBackend


@pytest.fixture
def fresh(tmp_path) -> TantivyBackend:
    """A backend this test may change."""
    engine = TantivyBackend(tmp_path / "index")
    engine.build(CATALOG)
    return engine


def ids(result) -> list[str]:
    return [h.product_id for h in result.hits]


class Reverse:
    """A stand-in ranker that turns the retrieval order around."""

    depth = 200

    def rerank_scores(self, plan, rows, scores, table):
        return np.arange(len(rows), dtype=np.float64)


def test_repeated_request_is_served_from_cache_with_fresh_live_state(fresh):
    request = SearchRequest(query="headphones")
    assert fresh.search_cached(request) is None
    first = fresh.search(request)
    hits_before = fresh.cache.hits
    fresh.set_live_data(lambda pids: {"p2": LiveState(price=1, available=False)})
    again = fresh.search_cached(request)
    assert again is not None and fresh.cache.hits == hits_before + 1
    assert ids(again) == ids(first) and again.facets == first.facets
    p2 = next(h for h in again.hits if h.product_id == "p2")
    assert p2.price == 1 and p2.in_stock is False
    fresh.set_live_data(lambda pids: {"p2": LiveState(archived=True)})
    assert "p2" not in ids(fresh.search(request))


def test_equivalent_requests_share_an_entry(fresh):
    fresh.search(SearchRequest(query="Headphones", brands=["Sony", "Bose"]))
    assert fresh.search_cached(SearchRequest(query="headphones", brands=["Bose", "Sony"]))
    # Typing "headphones" (prefix on the last word) is not the same query as a finished word.
    assert fresh.search_cached(SearchRequest(query="headphones ", brands=["Bose"])) is None


def test_updates_show_within_the_ttl_and_swaps_at_once(fresh):
    now = [0.0]
    fresh.cache.clock = fresh.suggest_cache.clock = lambda: now[0]
    # The reversed order below is checked as is: no out-of-stock demotion on top of it.
    request = SearchRequest(query="headphones", demote_out_of_stock=False)
    before = ids(fresh.search(request))
    now[0] += fresh.cache.ttl  # an unchanged index keeps its answers longer than the TTL
    assert fresh.search_cached(request) is not None
    fresh.update_documents([doc("p99", "Zeta Headphones", "Zeta", "Electronics > Audio", 100)])
    assert fresh.search_cached(request) is None  # computed more than a TTL before the change
    assert "p99" in ids(fresh.search(request))
    fresh.update_documents([doc("p98", "Yotta Headphones", "Zeta", "Electronics > Audio", 100)])
    assert "p98" not in ids(fresh.search(request))  # cached: the indexed snapshot may lag
    now[0] += fresh.cache.ttl
    assert "p98" in ids(fresh.search(request))
    fresh.delete_documents(["p98"])
    now[0] += fresh.cache.ttl
    fresh.delete_documents(["p99"])
    now[0] += fresh.cache.ttl
    assert ids(fresh.search(request)) == before
    fresh.ranker = Reverse()
    assert fresh.search_cached(request) is None
    assert ids(fresh.search(request)) == before[::-1]
    fresh.suggest("headp")
    assert fresh.suggest_cached("headp") is not None
    fresh.ranker = None
    assert fresh.suggest_cached("headp") is None
    fresh.search(request)
    fresh.open()  # a reopened (or newly published) version starts with nothing cached
    assert fresh.search_cached(request) is None


def test_archived_products_above_the_page_shift_it_like_a_full_join(fresh):
    everything = ids(fresh.search(SearchRequest(query="", page_size=100)))
    archived = set(everything[:7]) | {everything[9]}
    fresh.set_live_data(lambda pids: {p: LiveState(archived=True) for p in pids if p in archived})
    live = [p for p in everything if p not in archived]
    pages, cursor = [], None
    while True:
        result = fresh.search(SearchRequest(query="", page_size=2, cursor=cursor))
        pages += ids(result)
        cursor = result.next_cursor
        if cursor is None:
            break
    assert pages == live
    assert ids(fresh.search(SearchRequest(query="", page=2, page_size=3))) == live[3:6]


def test_cache_is_bounded_and_expires():
    cache: ResultCache[int] = ResultCache(max_entries=2, ttl=60)
    for key in "abc":
        cache.put(key, 1)
    assert cache.get("a") is None and cache.get("c") == 1 and len(cache) == 2
    off: ResultCache[int] = ResultCache(max_entries=2, ttl=0)
    off.put("a", 1)
    assert off.get("a") is None
    now = [0.0]
    timed: ResultCache[int] = ResultCache(ttl=30, max_age=600, clock=lambda: now[0])
    timed.put("old", 1)  # started with the change at 0.0 below: counts as older
    now[0] = 1.0
    timed.put("new", 2)
    now[0] = 100.0
    assert timed.get("new", changed_at=0.0) == 2 and timed.get("old", changed_at=0.0) is None
    now[0] = 601.0
    assert timed.get("new", changed_at=0.0) is None


def test_stock_and_price_changes_invalidate_only_what_they_touch(fresh):
    now = [0.0]
    fresh.cache.clock = lambda: now[0]
    sofas, phones = SearchRequest(query="sofa"), SearchRequest(query="headphones")
    cheap = SearchRequest(query="sofa", price_max=60_000)
    for request in (sofas, phones, cheap):
        fresh.search(request)
    now[0] += fresh.cache.ttl + 1  # past the TTL: only answers a change did not touch remain
    sony = next(d for d in CATALOG if d.product_id == "p1")
    fresh.update_documents([dataclasses.replace(sony, in_stock=False, price=100)])
    now[0] += 1
    hits = fresh.cache.hits
    # "sofa" never matched p1: its candidates stay; only its counts are recounted.
    assert fresh.search_cached(replace_facets(sofas)) is not None
    assert ids(fresh.search(sofas)) == ["p10", "p11"] and fresh.cache.hits == hits + 2
    # p1 is among "headphones"' candidates, and a price filter depends on every price.
    assert fresh.search_cached(phones) is None and fresh.search_cached(cheap) is None
    result = fresh.search(phones)
    assert ids(result)[0] != "p1" and "p1" in ids(result)
    stock = {f.value: f.count for f in result.facets["in_stock"]}
    assert stock["false"] == sum(not h.in_stock for h in result.hits)
    # A text change can make any product match any query: everything older expires.
    fresh.update_documents([dataclasses.replace(sony, title="Sony Sofa Speaker")])
    now[0] += 1
    assert fresh.search_cached(replace_facets(sofas)) is None
    assert "p1" in ids(fresh.search(sofas))


def replace_facets(request: SearchRequest) -> SearchRequest:
    """The same request without facets (whose counts a price or stock change refreshes)."""
    return dataclasses.replace(request, facets=False)


def test_without_a_cache_the_inline_attempt_analyses_nothing(backend, monkeypatch) -> None:
    """Cold serving asks ``search_cached`` then ``search``: the query is analysed once."""
    from models.search import tantivy_backend

    cold = TantivyBackend(backend.path, cache_seconds=0)
    request = SearchRequest(query="wireless headphones")
    expected = ids(backend.search(request))
    calls: list[str | None] = []
    plan_query = tantivy_backend.plan_query

    def counting(text, *args):
        calls.append(text)
        return plan_query(text, *args)

    monkeypatch.setattr(tantivy_backend, "plan_query", counting)
    assert cold.search_cached(request) is None
    assert ids(cold.search(request)) == expected
    assert calls == ["wireless headphones"]
