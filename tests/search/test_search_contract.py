"""One contract for every search backend: what the shop relies on, whichever engine answers.

``SearchBackendContract`` is a mixin (as ``RecommenderContract`` is for the recommenders): a
backend's test class only says how to make an empty backend, and inherits every behaviour
test. tantivy runs always; Elasticsearch whenever ``ELASTICSEARCH_URL`` names a cluster.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest
from search_catalog import CATALOG, doc

from models.search.api import LiveState, SearchBackend, SearchRequest
from models.search.errors import QueryError
from models.search.tantivy_backend import TantivyBackend

#: Yoga mats spelled as the warehouse spells categories (slug paths, issue 20): the best text
#: match, the short-titled "Yoga Mat", is the one out of stock.
YOGA = [
    doc("y1", "Yoga Mat", "Zen", "sports/fitness/yoga", 2900, in_stock=False, popularity=990),
    doc("y2", "Yoga Mat with Carry Strap, Extra Thick", "Zen", "sports/fitness/yoga", 3900),
    doc("y3", "Cork Yoga Mat for Travel and Studio Use", "Lotus", "sports/fitness/yoga", 4900),
    doc("y4", "Resistance Band Set", "Lotus", "sports/fitness/bands", 1900, popularity=10),
]
DOCS = [*CATALOG, *YOGA]
ELECTRONICS = {d.product_id for d in CATALOG if d.category_path.startswith("Electronics")}


def ids(response) -> list[str]:
    return [h.product_id for h in response.hits]


class SearchBackendContract:
    """Mixin: subclasses implement ``make_backend`` and inherit every contract test."""

    backend_name: ClassVar[str]

    @classmethod
    def make_backend(cls, directory: Path) -> SearchBackend:
        """An empty backend of this kind (``build`` is called by the fixtures)."""
        raise NotImplementedError

    @classmethod
    def drop_backend(cls, backend: SearchBackend) -> None:
        """Release what ``make_backend`` created outside ``directory`` (a server's index)."""

    @pytest.fixture(scope="class")
    @classmethod
    def engine(cls, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SearchBackend]:
        """Read-only backend over ``DOCS``."""
        backend = cls.make_backend(tmp_path_factory.mktemp(cls.backend_name) / "index")
        backend.build(DOCS)
        yield backend
        cls.drop_backend(backend)

    @pytest.fixture
    def fresh(self, tmp_path: Path) -> Iterator[SearchBackend]:
        """A backend of its own for tests that change documents or live data."""
        backend = self.make_backend(tmp_path / "index")
        backend.build(DOCS)
        yield backend
        self.drop_backend(backend)

    # ---- categories

    def test_category_filter_includes_descendants(self, engine: SearchBackend) -> None:
        everything = SearchRequest(category_id="electronics", page_size=100)
        assert set(ids(engine.search(everything))) == ELECTRONICS
        assert engine.search(everything).total == len(ELECTRONICS)
        audio = engine.search(SearchRequest(category_id="electronics/audio", page_size=100))
        assert set(ids(audio)) == {"p1", "p2", "p3", "p4", "p12"}

    def test_slug_paths_match_their_ancestors(self, engine: SearchBackend) -> None:
        sports = engine.search(SearchRequest(category_id="sports", page_size=100))
        assert set(ids(sports)) == {"y1", "y2", "y3", "y4"}
        yoga = engine.search(SearchRequest(category_id="sports/fitness/yoga", page_size=100))
        assert set(ids(yoga)) == {"y1", "y2", "y3"}

    def test_category_facets_count_every_level(self, engine: SearchBackend) -> None:
        response = engine.search(SearchRequest(category_id="electronics", page_size=100))
        counts = {f.value: f.count for f in response.facets["category"]}
        assert counts["electronics"] == response.total
        assert counts["electronics/audio"] == 5
        assert counts["electronics/audio/headphones"] == 2
        assert "sports" not in counts  # conjunctive: over the filtered results only
        everything = engine.search(SearchRequest(page_size=100))
        counts = {f.value: f.count for f in everything.facets["category"]}
        assert counts["sports"] == 4 and counts["sports/fitness/yoga"] == 3

    # ---- stock

    def test_out_of_stock_ranks_after_in_stock_but_stays(self, engine: SearchBackend) -> None:
        plain = engine.search(SearchRequest(query="yoga mat", demote_out_of_stock=False))
        assert ids(plain)[0] == "y1"  # the best text match is the one that cannot be bought
        response = engine.search(SearchRequest(query="yoga mat"))
        assert set(ids(response)) == set(ids(plain)) == {"y1", "y2", "y3"}
        assert [h.in_stock for h in response.hits] == [True, True, False]
        assert response.total == plain.total
        stock = {f.value: f.count for f in response.facets["in_stock"]}
        assert stock == {"true": 2, "false": 1}

    def test_browsing_demotes_out_of_stock_too(self, engine: SearchBackend) -> None:
        response = engine.search(SearchRequest(category_id="sports", page_size=100))
        assert ids(response)[-1] == "y1"
        flags = [h.in_stock for h in response.hits]
        assert flags == sorted(flags, reverse=True)

    def test_explicit_sorts_keep_their_order(self, engine: SearchBackend) -> None:
        response = engine.search(SearchRequest(query="yoga mat", sort="price_asc"))
        assert ids(response) == ["y1", "y2", "y3"]

    def test_in_stock_filter_hides_them(self, engine: SearchBackend) -> None:
        response = engine.search(SearchRequest(query="yoga mat", in_stock=True))
        assert set(ids(response)) == {"y2", "y3"} and response.total == 2

    # ---- text, filters, pagination

    def test_typos_still_find_the_product(self, engine: SearchBackend) -> None:
        assert {"p1", "p2"} <= set(ids(engine.search(SearchRequest(query="hedphones"))))

    def test_filters_are_exact(self, engine: SearchBackend) -> None:
        assert ids(engine.search(SearchRequest(brands=["Sony"]))) == ["p1"]
        cheap = engine.search(SearchRequest(price_min=2500, price_max=3900, page_size=100))
        assert set(ids(cheap)) == {"p12", "p13", "p14", "y1", "y2"}
        black = engine.search(SearchRequest(attributes={"color": ["black"]}, page_size=100))
        assert set(ids(black)) == {"p1", "p4", "p7", "p9", "p13"}

    def test_facet_counts_add_up_to_the_total(self, engine: SearchBackend) -> None:
        response = engine.search(SearchRequest(query="headphones", page_size=100))
        assert sum(f.count for f in response.facets["in_stock"]) == response.total
        assert sum(f.count for f in response.facets["price"]) == response.total

    def test_cursor_pages_cover_every_hit_once(self, engine: SearchBackend) -> None:
        seen: list[str] = []
        cursor = None
        for _ in range(len(DOCS)):
            response = engine.search(SearchRequest(page_size=3, cursor=cursor))
            seen += ids(response)
            cursor = response.next_cursor
            if cursor is None:
                break
        assert len(seen) == len(set(seen)) == len(DOCS)
        stock = {d.product_id: d.in_stock for d in DOCS}
        assert [stock[p] for p in seen] == sorted(stock.values(), reverse=True)

    def test_highlights_escape_product_text(self, engine: SearchBackend) -> None:
        hit = engine.search(SearchRequest(query="couch")).hits[0]
        assert "&lt;Deluxe&gt;" in hit.highlight and "<mark>" in hit.highlight

    @pytest.mark.parametrize(
        "request_",
        [
            SearchRequest(sort="cheapest"),
            SearchRequest(page_size=0),
            SearchRequest(price_min=10, price_max=5),
            SearchRequest(cursor="not-a-cursor"),
        ],
        ids=["sort", "page_size", "price", "cursor"],
    )
    def test_bad_requests_raise_query_error(self, engine: SearchBackend, request_) -> None:
        with pytest.raises(QueryError):
            engine.search(request_)

    def test_suggest_completes_the_prefix(self, engine: SearchBackend) -> None:
        found = engine.suggest("head")
        assert found and all(s.lower().startswith("head") for s in found)

    # ---- changes

    def test_updates_and_deletes_are_visible(self, fresh: SearchBackend) -> None:
        fresh.update_documents([doc("n1", "Bamboo Yoga Block", "Zen", "sports/fitness/yoga", 990)])
        assert ids(fresh.search(SearchRequest(query="bamboo"))) == ["n1"]
        assert "n1" in ids(fresh.search(SearchRequest(category_id="sports", page_size=100)))
        fresh.delete_documents(["n1", "p1"])
        assert fresh.search(SearchRequest(query="bamboo")).total == 0
        assert "p1" not in ids(fresh.search(SearchRequest(query="headphones")))

    def test_live_data_drops_archived_and_refreshes_price(self, fresh: SearchBackend) -> None:
        fresh.set_live_data(
            lambda pids: {
                "p1": LiveState(archived=True),
                "p2": LiveState(price=100, available=False),
            }
        )
        hits = {h.product_id: h for h in fresh.search(SearchRequest(query="headphones")).hits}
        assert "p1" not in hits
        assert hits["p2"].price == 100 and hits["p2"].in_stock is False


class TestTantivyContract(SearchBackendContract):
    backend_name = "tantivy"

    @classmethod
    def make_backend(cls, directory: Path) -> SearchBackend:
        return TantivyBackend(directory)


@pytest.mark.elasticsearch
@pytest.mark.skipif(
    not os.environ.get("ELASTICSEARCH_URL"),
    reason="no Elasticsearch here: set ELASTICSEARCH_URL to run the contract against a cluster",
)
class TestElasticsearchContract(SearchBackendContract):
    backend_name = "elasticsearch"

    @classmethod
    def make_backend(cls, directory: Path) -> SearchBackend:
        from models.search.es_backend import ElasticsearchBackend

        index = f"storeloop-contract-{uuid.uuid4().hex[:8]}"
        return ElasticsearchBackend(os.environ["ELASTICSEARCH_URL"], index=index)

    @classmethod
    def drop_backend(cls, backend: SearchBackend) -> None:
        backend.client.options(ignore_status=404).indices.delete(index=backend.index)  # type: ignore[attr-defined]
