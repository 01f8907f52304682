"""Recall first and e-commerce query understanding (issue 20): typos on stemmed words, never
fewer results than plain BM25, sizes and units, compounds learned from the catalog's titles."""

from __future__ import annotations

import pytest

from models.search.api import SearchRequest
from models.search.documents import ProductDocument
from models.search.retrieval import RetrievalConfig
from models.search.tantivy_backend import TantivyBackend

TITLES = {
    "k1": "Wireless Keyboard and Mouse Combo",
    "k2": "Gaming Keyboard with Backlight",
    "k3": "Keyboard Wrist Rest Pad",
    "k4": "Compact Keyboard for Tablets",
    "k5": "Mechanical Keyboard with Brown Switches",
    "m1": "Wireless Mouse",
    "m2": "Wireless Charger Pad",
    "d1": "Prehung Interior Door 36 in. x 80 in. Primed",
    "d2": "Prehung Interior Door 32 in. x 80 in. Primed",
    "d3": "Prehung Interior Door 30 in. x 80 in. Primed",
    "f1": "Box Fan 20 in. White",
    "f2": "Box Fan 24 in. White",
    "s1": "Sheetrock Drywall Panel 1/2 in. x 4 ft. x 8 ft.",
    "s2": "Sheet Metal Screws",
    "s3": "Rock Salt 50 lb. Bag",
    "s4": "Sheetrock All Purpose Joint Compound",
    "z1": "Riding Mower Zero Turn 42 in.",
    "z2": "Riding Mower Lawn Tractor 42 in.",
    "z3": "Zero Clearance Insert",
}


def _build(path, config: RetrievalConfig | None = None) -> TantivyBackend:
    engine = TantivyBackend(path, config=config)
    engine.build([ProductDocument(product_id=p, title=t) for p, t in TITLES.items()])
    return engine


@pytest.fixture(scope="module")
def engines(tmp_path_factory):
    """Full retrieval and plain BM25 over the same index directory."""
    path = tmp_path_factory.mktemp("recall") / "index"
    full = _build(path)
    return full, TantivyBackend(path, config=RetrievalConfig.plain_bm25())


def ids(engine: TantivyBackend, query: str, page_size: int = 20) -> list[str]:
    request = SearchRequest(query=query, page_size=page_size, facets=False, highlight=False)
    return [h.product_id for h in engine.search(request).hits]


def test_typo_of_a_stemmed_word_finds_it(engines):
    full, _ = engines
    # "mechanical" is indexed as the stem "mechan", three edits from "mechanicl".
    assert "k5" in ids(full, "mechanicl")
    assert ids(full, "mechanicl keyboard")[0] == "k5"


@pytest.mark.parametrize(
    "query", ["wireless keyboard", "mechanicl keyboard", "gaming mouse pad", "rock sheet", "zz fan"]
)
def test_never_fewer_results_than_plain_bm25(engines, query):
    full, bm25 = engines
    plain = ids(bm25, query)
    assert plain, "the case needs BM25 results"
    assert len(ids(full, query)) >= len(plain)


def test_documents_matching_every_word_come_first(engines):
    full, _ = engines
    found = ids(full, "wireless keyboard")
    assert found[0] == "k1"
    assert {"k2", "m1"} <= set(found)  # partial matches follow instead of being dropped


def test_glued_dimensions_match_separate_title_tokens(engines):
    full, _ = engines
    assert ids(full, "30x80 door")[0] == "d3"
    assert ids(full, "door 32x80")[0] == "d2"


def test_unit_spellings_and_inch_marks(engines):
    full, _ = engines
    assert ids(full, "24inch box fan")[0] == "f2"
    assert ids(full, '24" box fan')[0] == "f2"
    assert ids(full, "box fan 20 inches")[0] == "f1"


def test_compounds_split_and_join_from_the_catalog_vocabulary(engines):
    full, _ = engines
    assert set(ids(full, "sheet rock")[:2]) == {"s1", "s4"}
    assert ids(full, "zeroturn mower")[0] == "z1"


def test_corrections_come_from_the_indexed_catalog(tmp_path):
    """Nothing is typed in for one catalog: another catalog's words give other corrections."""
    engine = TantivyBackend(tmp_path / "other")
    engine.build([ProductDocument(product_id="x", title="Mechanic Creeper Seat")])
    assert ids(engine, "mechanicl") == ["x"]
    plan = engine.plan("mechanicl")
    assert "mechan" in {a.terms[0] for a in plan.groups[0].alternatives if a.kind == "term"}
