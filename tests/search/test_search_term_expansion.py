"""Fuzzy and prefix alternatives resolved to index terms give tantivy's own answers."""

from __future__ import annotations

import pytest
from search_catalog import CATALOG, doc

from models.search.analysis import text_analyzer
from models.search.api import SearchRequest
from models.search.tantivy_backend import TantivyBackend
from models.search.term_expansion import TermExpander

QUERIES = [
    "headphone",  # fuzzy and prefix on a stem
    "headphnes",  # a typo
    "wirelss headphones",
    "wireless headp",  # the last word still being typed
    "sony wh",
    "bluetooth speakr",
    "yoga mta",
    "noise cancelling",
    "running shoes",
    "zzzz",
]


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> TantivyBackend:
    backend = TantivyBackend(tmp_path_factory.mktemp("expansion") / "index", cache_entries=0)
    backend.build(CATALOG)
    return backend


def answer(backend: TantivyBackend, query: str) -> tuple[int, list[tuple[str, float]]]:
    response = backend.search(SearchRequest(query=query, page_size=50, facets=False))
    return response.total, [(h.product_id, round(h.score, 6)) for h in response.hits]


@pytest.mark.parametrize("max_terms", [64, 1])
@pytest.mark.parametrize("query", QUERIES)
def test_expanded_alternatives_match_and_score_as_the_automaton_does(
    engine: TantivyBackend, query: str, max_terms: int
) -> None:
    expander = engine.expander
    assert expander is not None
    try:
        engine.expander = None
        automaton = answer(engine, query)
        engine.expander = TermExpander.from_searcher(
            engine._searcher(), expander.fields, text_analyzer(), max_terms=max_terms
        )
        assert answer(engine, query) == automaton
    finally:
        engine.expander = expander


def test_an_expansion_holds_the_terms_within_the_distance(engine: TantivyBackend) -> None:
    expander = engine.expander
    assert expander is not None
    assert expander.expand("title", "headphon", 1, False) == ["headphon"]
    assert expander.expand("title", "headphn", 1, False) == ["headphon"]
    assert "headphon" in (expander.expand("title", "headp", 0, True) or [])
    assert expander.expand("brand", "headphn", 1, False) == []


def test_too_many_accepted_terms_leave_the_alternative_to_the_automaton() -> None:
    expander = TermExpander(["title"], text_analyzer(), max_terms=2)
    expander.add_terms({"title": ["lamp", "lame", "lamb", "damp"]})
    assert expander.expand("title", "lamp", 1, False) is None
    assert expander.expand("title", "damp", 0, False) == ["damp"]


def test_a_typo_of_a_word_added_since_the_index_opened_finds_it(tmp_path) -> None:
    backend = TantivyBackend(tmp_path / "index", cache_entries=0)
    backend.build(CATALOG)
    query = SearchRequest(query="zyzzogetom", facets=False)  # two edits from the new word
    assert backend.search(query).total == 0  # and the empty expansion is remembered
    backend.update_documents([doc("new", "Zyzzogeton Desk Lamp", "Lumo", "home/lighting", 1999)])
    assert [h.product_id for h in backend.search(query).hits] == ["new"]
