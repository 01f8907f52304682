"""Elasticsearch backend: chosen when a cluster URL is configured.

The client is imported lazily so the default (tantivy) install never needs it; bodies come from
``es_query`` so they can be unit-tested without a cluster. Live-data joins and pagination follow
the same rules as the tantivy backend.
"""

from __future__ import annotations

from collections.abc import Iterable

from models.search.analysis import clean_query, query_words
from models.search.api import (
    FacetValue,
    Hit,
    SearchBackend,
    SearchRequest,
    SearchResponse,
    encode_cursor,
)
from models.search.documents import ProductDocument
from models.search.errors import BackendUnavailableError
from models.search.es_query import document_body, index_body, search_body, suggest_body
from models.search.retrieval import RetrievalConfig
from models.search.spelling import SpellingVocabulary
from models.search.synonyms import load_synonyms


def _client(url: str):
    try:
        from elasticsearch import Elasticsearch
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise BackendUnavailableError(
            "the Elasticsearch backend needs the client: pip install 'elasticsearch>=9,<10'"
        ) from exc
    return Elasticsearch(url)


class ElasticsearchBackend(SearchBackend):
    """Search over one Elasticsearch index (``index``) on the cluster at ``url``."""

    def __init__(
        self, url: str, index: str = "storeloop-products", config: RetrievalConfig | None = None
    ) -> None:
        self.url = url
        self.index = index
        self.config = config or RetrievalConfig(synonyms=load_synonyms())
        self.client = _client(url)
        self.live_data = None
        #: Title words of what was built, for corrections of words the catalog lacks.
        self.vocab = SpellingVocabulary({})

    def build(self, documents: Iterable[ProductDocument]) -> None:
        """Recreate the index and bulk-load documents (refreshes before returning)."""

        docs = list(documents)
        self.client.options(ignore_status=404).indices.delete(index=self.index)
        self.client.indices.create(index=self.index, **index_body(self.config.synonyms))
        self.vocab = SpellingVocabulary.from_titles(d.title for d in docs)
        self.update_documents(docs)

    def update_documents(self, documents: Iterable[ProductDocument]) -> None:
        """Index (upsert) documents by product id."""
        from elasticsearch import helpers

        actions = (
            {"_index": self.index, "_id": d.product_id, "_source": document_body(d)}
            for d in documents
        )
        helpers.bulk(self.client, actions, refresh="wait_for")

    def delete_documents(self, product_ids: Iterable[str]) -> None:
        """Delete by product id."""
        from elasticsearch import helpers

        actions = ({"_op_type": "delete", "_index": self.index, "_id": str(p)} for p in product_ids)
        helpers.bulk(self.client, actions, refresh="wait_for", raise_on_error=False)

    def search(self, request: SearchRequest) -> SearchResponse:
        """Run the body from ``es_query.search_body`` and map the response."""
        request.validate()
        text = clean_query(request.query)
        offset, need = request.offset, request.offset + request.page_size
        corrected = self.vocab.did_you_mean(query_words(text)) if self.config.spelling else None
        body = search_body(request, text, self.config, size=need + 20, corrected=corrected)
        result = self.client.search(index=self.index, **body)
        hits = []
        for raw in result["hits"]["hits"]:
            src = raw["_source"]
            hits.append(
                Hit(
                    product_id=src["product_id"],
                    score=float(raw.get("_score") or 0.0),
                    title=src["title"],
                    brand=src.get("brand", ""),
                    category_path=src.get("category_path", ""),
                    price=int(src.get("price", 0)),
                    in_stock=bool(src.get("in_stock", True)),
                    rating=float(src.get("rating", 0)),
                    highlight=(raw.get("highlight", {}).get("title") or [""])[0],
                )
            )
        hits = self._join_live(hits)
        total = int(result["hits"]["total"]["value"])
        response = SearchResponse(
            hits=hits[offset:need], total=total, facets=parse_facets(result.get("aggregations", {}))
        )
        if need < min(total, len(hits)):
            response.next_cursor = encode_cursor(need, request.fingerprint())
        options = result.get("suggest", {}).get("did_you_mean", [{}])[0].get("options", [])
        if options and total < 3:
            response.did_you_mean = options[0]["text"]
        return response

    def _join_live(self, hits: list[Hit]) -> list[Hit]:
        if self.live_data is None or not hits:
            return hits
        states = self.live_data([h.product_id for h in hits])
        kept = []
        for hit in hits:
            state = states.get(hit.product_id)
            if state is not None and state.archived:
                continue
            if state is not None and state.price is not None:
                hit.price = int(state.price)
            if state is not None and state.available is not None:
                hit.in_stock = bool(state.available)
            kept.append(hit)
        return kept

    def suggest(self, prefix: str, limit: int = 8) -> list[str]:
        """Completion-suggester titles for the typed prefix."""
        text = clean_query(prefix)
        if not text:
            return []
        result = self.client.search(index=self.index, **suggest_body(text, limit))
        return [o["text"] for o in result["suggest"]["complete"][0]["options"]]


def parse_facets(aggs: dict) -> dict[str, list[FacetValue]]:
    """Map ES aggregation buckets to the backend-neutral facet shape."""
    if not aggs:
        return {}
    if aggs.get("full", {}).get("doc_count", 0) > 0:
        aggs = aggs["full"]  # the documents matching every word (recall fill: not the rest)
    facets: dict[str, list[FacetValue]] = {
        name: [
            FacetValue(
                str(b.get("key_as_string", b["key"])).lower()
                if name == "in_stock"
                else str(b["key"]),
                int(b["doc_count"]),
            )
            for b in aggs[name]["buckets"]
        ]
        for name in ("brand", "category", "in_stock")
    }
    facets["price"] = [
        FacetValue(
            f"{int(b['from']) if 'from' in b else ''}-{int(b['to']) if 'to' in b else ''}",
            int(b["doc_count"]),
            b["key"],
        )
        for b in aggs["price"]["buckets"]
        if b["doc_count"] > 0
    ]
    for bucket in aggs["attributes"]["buckets"]:
        key, _, value = str(bucket["key"]).partition("=")
        facets.setdefault(f"attr:{key}", []).append(FacetValue(value, int(bucket["doc_count"])))
    return facets
