"""Relevance behaviour on the fixed catalog: typos, synonyms, prefixes, phrases, facets, sorts."""

from __future__ import annotations

import pytest

from models.search.api import LiveState, SearchRequest
from models.search.errors import QueryError
from models.search.tantivy_backend import TantivyBackend


def ids(backend: TantivyBackend, query: str, **kw) -> list[str]:
    return [h.product_id for h in backend.search(SearchRequest(query=query, **kw)).hits]


def test_exact_word_finds_headphones_first(backend):
    assert set(ids(backend, "headphones")[:2]) == {"p1", "p2"}


def test_typo_tolerance_scales_with_word_length(backend):
    assert {"p1", "p2"} <= set(ids(backend, "hedphones"))  # 9 letters: 2 edits allowed
    assert "p6" in ids(backend, "laptpo")  # 6 letters: 1 edit (transposition)
    assert ids(backend, "sofx") == []  # 4 letters: no edits


def test_synonyms_expand_both_ways(backend):
    assert {"p3", "p4"} <= set(ids(backend, "earbuds")[:2])
    # p4 is out of stock: ranked like any other here, demoted by default.
    assert {"p3", "p4"} <= set(ids(backend, "earphones", demote_out_of_stock=False)[:2])
    assert ids(backend, "tv") == ["p5"]
    assert set(ids(backend, "notebook")) == {"p6", "p7"}
    assert set(ids(backend, "couch")) == {"p10", "p11"}
    assert set(ids(backend, "trainers")) == {"p8", "p9"}


def test_prefix_of_last_word_matches_while_typing(backend):
    assert {"p1", "p2"} <= set(ids(backend, "headph"))
    assert ids(backend, "headph ") == []  # a finished word is not a prefix


def test_phrase_match_ranks_above_scattered_words(backend):
    # p12 mentions "wireless headphones" only in the description, p1 in the title
    assert ids(backend, "wireless headphones")[0] == "p1"


def test_ascii_folding_and_stemming(backend):
    assert ids(backend, "creme brulee") == ["p14"]
    assert "p1" in ids(backend, "headphone")


def test_and_semantics_then_relaxation(backend):
    response = backend.search(SearchRequest(query="wireless headphones xyzzyq"))
    assert response.relaxed and response.hits
    strict = backend.search(SearchRequest(query="wireless headphones"))
    assert not strict.relaxed


def test_facet_counts_match_results(backend):
    response = backend.search(SearchRequest(query="headphones", page_size=50))
    brands = {f.value: f.count for f in response.facets["brand"]}
    expected: dict[str, int] = {}
    for hit in response.hits:
        expected[hit.brand] = expected.get(hit.brand, 0) + 1
    assert brands == expected
    categories = {f.value: f.count for f in response.facets["category"]}
    assert categories["electronics/audio"] == response.total
    stock = {f.value: f.count for f in response.facets["in_stock"]}
    assert sum(stock.values()) == response.total
    assert sum(f.count for f in response.facets["price"]) == response.total


def test_filters_are_exact(backend):
    assert set(ids(backend, "", brands=["Sony"])) == {"p1"}
    assert set(ids(backend, "", brands=["sony"])) == set()  # exact, case-sensitive
    audio = set(ids(backend, "", category_id="electronics/audio", page_size=50))
    assert audio == {"p1", "p2", "p3", "p4", "p12"}
    black = set(ids(backend, "", attributes={"color": ["black"]}, page_size=50))
    assert black == {"p1", "p4", "p7", "p9", "p13"}
    cheap = ids(backend, "", price_min=2500, price_max=3900, page_size=50)
    assert set(cheap) == {"p12", "p13", "p14"}
    assert "p4" not in ids(backend, "earbuds", in_stock=True)


def test_sorts(backend):
    hits = backend.search(SearchRequest(query="", sort="price_asc", page_size=50)).hits
    prices = [h.price for h in hits]
    assert prices == sorted(prices)
    hits = backend.search(SearchRequest(query="headphones", sort="price_desc")).hits
    assert [h.price for h in hits] == sorted((h.price for h in hits), reverse=True)
    assert ids(backend, "headphones", sort="newest")[0] == "p2"
    ratings = [h.rating for h in backend.search(SearchRequest(sort="rating", page_size=50)).hits]
    assert ratings == sorted(ratings, reverse=True)
    with pytest.raises(QueryError):
        backend.search(SearchRequest(sort="cheapest"))


def test_highlights_are_marked_and_escaped(backend):
    hit = backend.search(SearchRequest(query="couch")).hits[0]
    assert hit.product_id == "p11"
    assert hit.highlight == "Leather <mark>Couch</mark> &lt;Deluxe&gt; &amp; Co"
    typo = backend.search(SearchRequest(query="hedphones")).hits[0]
    assert "<mark>Headphones</mark>" in typo.highlight


def test_did_you_mean_when_few_results(backend):
    response = backend.search(SearchRequest(query="aluminum stnad"))
    assert response.total < 3
    assert response.did_you_mean == "aluminium stand"
    assert backend.search(SearchRequest(query="headphones")).did_you_mean is None


def test_suggest_completes_last_word(backend):
    assert backend.suggest("headp")[0].startswith("headphone")
    assert backend.suggest("wireless h") == ["wireless headphones"]
    assert backend.suggest("") == []


def test_pagination_by_page_and_cursor(backend):
    first = backend.search(SearchRequest(query="", page_size=5))
    second = backend.search(SearchRequest(query="", page=2, page_size=5))
    assert first.next_cursor
    by_cursor = backend.search(SearchRequest(query="", page_size=5, cursor=first.next_cursor))
    assert [h.product_id for h in by_cursor.hits] == [h.product_id for h in second.hits]
    assert not {h.product_id for h in first.hits} & {h.product_id for h in second.hits}
    with pytest.raises(QueryError):
        backend.search(SearchRequest(query="sofa", page_size=5, cursor=first.next_cursor))
    with pytest.raises(QueryError):
        backend.search(SearchRequest(query="", cursor="not-a-cursor"))


def test_live_data_join_drops_archived_and_refreshes_price(backend):
    def provider(product_ids):
        return {"p1": LiveState(archived=True), "p2": LiveState(price=1, available=False)}

    backend.set_live_data(provider)
    try:
        hits = backend.search(SearchRequest(query="headphones")).hits
    finally:
        backend.set_live_data(None)
    by_id = {h.product_id: h for h in hits}
    assert "p1" not in by_id
    assert by_id["p2"].price == 1 and by_id["p2"].in_stock is False


def test_the_stock_demotion_reorders_only_the_asked_window(tmp_path):
    from search_catalog import doc

    backend = TantivyBackend(tmp_path / "index")  # result cache on: windows must not share
    backend.build(
        [
            doc("y1", "Yoga Mat", "Zen", "sports/yoga", 2900, in_stock=False),
            doc("y2", "Yoga Mat with Carry Strap, Extra Thick", "Zen", "sports/yoga", 3900),
            doc("y3", "Cork Yoga Mat for Travel and Studio Use", "Lotus", "sports/yoga", 4900),
        ]
    )
    assert ids(backend, "yoga mat", demote_out_of_stock=False)[0] == "y1"
    assert ids(backend, "yoga mat", page_size=3, window=1)[0] == "y1"  # alone in its window
    assert ids(backend, "yoga mat", page_size=3, window=2) == ["y2", "y1", "y3"]
    assert ids(backend, "yoga mat", page_size=3)[-1] == "y1"
    with pytest.raises(QueryError):
        backend.search(SearchRequest(query="yoga", window=0))
