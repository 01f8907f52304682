"""Facets counted from the retrieved rows equal the index's own aggregation."""

from __future__ import annotations

import pytest
from search_catalog import CATALOG, doc

from models.search.api import SearchRequest
from models.search.tantivy_backend import TantivyBackend

EXTRA = [
    doc("x1", "Black Wireless Headphones Lite", "", "electronics/audio/headphones", 4999),
    doc("x2", "Yoga Mat", "Zen", "sports/yoga", 2500, attributes={"color": "black"}),
]


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> TantivyBackend:
    backend = TantivyBackend(tmp_path_factory.mktemp("facets") / "index")
    backend.build([*CATALOG, *EXTRA])
    return backend


def as_sets(facets) -> dict[str, set[tuple[str, int, str]]]:
    return {name: {(f.value, f.count, f.label) for f in values} for name, values in facets.items()}


@pytest.mark.parametrize(
    "request_",
    [
        SearchRequest(query="headphones"),
        SearchRequest(query="wireless headphones"),
        SearchRequest(query="wireless headphones", sort="price_asc"),
        SearchRequest(query="yoga headphones"),  # nothing matches both: relaxed to either
        SearchRequest(query="zen yoga mat", in_stock=True),
        SearchRequest(query="black"),
        SearchRequest(query="earbuds", in_stock=True),
        SearchRequest(query="", category_id="electronics"),
        SearchRequest(query="", price_min=2500, price_max=5000),
        SearchRequest(query="nothing-matches-this"),
    ],
    ids=lambda r: f"{r.query or 'browse'}-{r.sort}-{r.in_stock}",
)
def test_counts_from_rows_match_the_aggregation(engine: TantivyBackend, request_) -> None:
    ranked = engine._ranked(request_, request_.page_size)
    assert ranked is not None
    # Every match fits in the window here, so retrieval saw them all; a multi-word query
    # widened with partial matches (recall fill) counts only its full matches, which come
    # first, as the index counts the matches of its AND query.
    assert ranked.matches is not None
    from_rows = engine._count_facets(ranked)
    from_index = engine.facets(ranked.query)
    assert as_sets(from_rows) == as_sets(from_index)
    for name in ("brand", "category", "in_stock"):
        counts = [f.count for f in from_rows[name]]
        assert counts == sorted(counts, reverse=True)


def test_tables_without_facet_columns_fall_back_to_the_index(engine, tmp_path) -> None:
    backend = TantivyBackend(tmp_path / "index")
    backend.build(CATALOG)
    assert backend.table is not None
    backend.table.facets = None  # as loaded from a table written before the columns existed
    response = backend.search(SearchRequest(query="headphones"))
    assert {f.value for f in response.facets["brand"]} == {"Sony", "Bose", "Satechi", "Samsung"}


def test_a_widened_query_counts_only_its_full_matches(engine: TantivyBackend) -> None:
    ranked = engine._ranked(SearchRequest(query="wireless headphones"), 20)
    assert ranked is not None and ranked.matches is not None
    assert 0 < len(ranked.matches) < len(ranked.rows)  # fill rows follow, uncounted
    in_stock = sum(f.count for f in engine._count_facets(ranked)["in_stock"])
    assert in_stock == len(ranked.matches) == engine._searcher().search(ranked.query, 1).count


def test_more_matches_than_fetched_are_counted_by_the_index(engine: TantivyBackend) -> None:
    request = SearchRequest(query="", page_size=1, sort="price_asc")
    rows = engine.tiered_candidates(request, 1)[2]
    retrieved = engine._retrieve(request, 1)
    assert len(rows) == 1 and retrieved.matched == -1
