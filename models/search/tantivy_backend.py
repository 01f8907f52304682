"""The embedded default backend: tantivy index + in-memory doc table + spelling vocabulary.

Layout of an index directory: tantivy's own files, ``doc_table.parquet`` (per-row columns) and
``vocab.json`` (title word frequencies for "did you mean"). Versioning and manifests are handled
by ``index_store``; this class only reads and writes one directory.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
import tantivy

from models.search.analysis import (
    PLAIN_ANALYZER,
    TEXT_ANALYZER,
    clean_query,
    plain_analyzer,
    plain_word,
    query_words,
    text_analyzer,
)
from models.search.api import (
    DEFAULT_PRICE_RANGES,
    FacetValue,
    Hit,
    SearchBackend,
    SearchRequest,
    SearchResponse,
    encode_cursor,
)
from models.search.doc_table import DocTable
from models.search.documents import ProductDocument
from models.search.highlight import Highlighter
from models.search.retrieval import QueryPlan, RetrievalConfig, plan_query
from models.search.spelling import SpellingVocabulary
from models.search.synonyms import load_synonyms
from models.search.tantivy_query import (
    Occur,
    Q,
    build_schema,
    combine,
    filter_clauses,
    relaxed_min_should,
    text_query,
)

DOC_TABLE_FILE = "doc_table.parquet"
VOCAB_FILE = "vocab.json"
FEW_RESULTS = 3
_SORT_FIELDS = {
    "price_asc": ("price", tantivy.Order.Asc),
    "price_desc": ("price", tantivy.Order.Desc),
    "newest": ("created_at", tantivy.Order.Desc),
    "rating": ("rating", tantivy.Order.Desc),
}


class Reranker(Protocol):
    """What the backend needs from a learning-to-rank model."""

    depth: int

    def rerank_scores(self, plan: QueryPlan, rows: np.ndarray, scores: np.ndarray,
                      table: DocTable) -> np.ndarray:
        """Scores for the candidates (higher first)."""
        ...


def _tantivy_document(doc: ProductDocument, row: int) -> tantivy.Document:
    d = tantivy.Document()
    d.add_text("product_id", doc.product_id)
    d.add_unsigned("row", row)
    d.add_text("title", doc.title)
    d.add_text("brand", doc.brand)
    d.add_text("category", doc.category_path)
    d.add_text("attributes", doc.attribute_text)
    d.add_text("description", doc.description)
    d.add_text("suggest", f"{doc.title} {doc.brand}")
    if doc.brand:
        d.add_text("brand_kw", doc.brand)
    for cid in doc.category_ids:
        d.add_text("cat_ids", cid)
    for pair in doc.attribute_pairs:
        d.add_text("attr_kv", pair)
    d.add_integer("price", int(doc.price))
    d.add_integer("created_at", int(doc.created_at))
    d.add_float("rating", float(doc.rating))
    d.add_float("popularity", float(doc.popularity))
    d.add_boolean("in_stock", bool(doc.in_stock))
    return d


class TantivyBackend(SearchBackend):
    """Search over one tantivy index directory."""

    def __init__(
        self,
        path: str | Path,
        config: RetrievalConfig | None = None,
        ranker: Reranker | None = None,
        window: int = 200,
    ) -> None:
        self.path = Path(path)
        if config is None:
            config = RetrievalConfig(synonyms=load_synonyms())
        self.config = config
        self.ranker = ranker
        self.window = window
        self.schema = build_schema()
        self.index: tantivy.Index | None = None
        self.table: DocTable | None = None
        self.vocab = SpellingVocabulary({})
        self.live_data = None
        if (self.path / "meta.json").exists():
            self.open()

    # ---- building and opening -------------------------------------------------------------

    def _register(self, index: tantivy.Index) -> None:
        index.register_tokenizer(TEXT_ANALYZER, text_analyzer())
        index.register_tokenizer(PLAIN_ANALYZER, plain_analyzer())

    def build(self, documents: Iterable[ProductDocument]) -> None:
        """Write a fresh index into ``path`` (which must be empty or absent)."""
        docs = list({d.product_id: d for d in documents}.values())
        self.path.mkdir(parents=True, exist_ok=True)
        index = tantivy.Index(self.schema, path=str(self.path), reuse=False)
        self._register(index)
        writer = index.writer(heap_size=256_000_000, num_threads=2)
        for row, doc in enumerate(docs):
            writer.add_document(_tantivy_document(doc, row))
        writer.commit()
        writer.wait_merging_threads()
        table = DocTable.from_documents(docs)
        table.save(self.path / DOC_TABLE_FILE)
        vocab = SpellingVocabulary.from_titles(d.title for d in docs)
        (self.path / VOCAB_FILE).write_text(json.dumps(vocab.doc_freq), encoding="utf-8")
        self.open()

    def open(self) -> None:
        """Load the index, doc table and vocabulary from ``path``."""
        index = tantivy.Index.open(str(self.path))
        # Searchers only see commits this object reloaded, i.e. rows its doc table has: with
        # the default OnCommit policy, another process's commit to the same directory made
        # the index return rows beyond this table.
        index.config_reader(reload_policy="Manual")
        self._register(index)
        index.reload()
        self.table = DocTable.load(self.path / DOC_TABLE_FILE)
        self.vocab = SpellingVocabulary(json.loads((self.path / VOCAB_FILE).read_text("utf-8")))
        self.index = index
        self.schema = index.schema

    @property
    def num_docs(self) -> int:
        """Live (non-deleted) documents in the index."""
        return self._searcher().num_docs

    def _searcher(self) -> tantivy.Searcher:
        if self.index is None:
            raise RuntimeError(f"no index at {self.path}; call build() first")
        return self.index.searcher()

    # ---- live updates ---------------------------------------------------------------------

    def update_documents(self, documents: Iterable[ProductDocument]) -> None:
        """Replace by product id: delete the old row, append a new one, commit, reload."""
        docs = list({d.product_id: d for d in documents}.values())
        if not docs or self.index is None or self.table is None:
            return
        rows = self.table.append(docs)
        writer = self.index.writer(heap_size=50_000_000, num_threads=1)
        for doc, row in zip(docs, rows, strict=True):
            writer.delete_documents_by_term("product_id", doc.product_id)
            writer.add_document(_tantivy_document(doc, row))
        writer.commit()
        writer.wait_merging_threads()
        self.table.save(self.path / DOC_TABLE_FILE)
        self.index.reload()

    def delete_documents(self, product_ids: Iterable[str]) -> None:
        """Delete by product id (rows stay in the doc table but are unreachable)."""
        if self.index is None:
            return
        writer = self.index.writer(heap_size=50_000_000, num_threads=1)
        for pid in product_ids:
            writer.delete_documents_by_term("product_id", str(pid))
        writer.commit()
        writer.wait_merging_threads()
        self.index.reload()

    # ---- searching -------------------------------------------------------------------------

    def plan(self, text: str | None) -> QueryPlan:
        """Analyse query text with this backend's retrieval config."""
        return plan_query(text, self.config)

    def candidates(
        self, request: SearchRequest, limit: int, config: RetrievalConfig | None = None
    ) -> tuple[QueryPlan, tantivy.Query, np.ndarray, np.ndarray, int, bool]:
        """Retrieve up to ``limit`` rows: (plan, final query, rows, scores, total, relaxed)."""
        config = config or self.config
        plan = plan_query(request.query, config)
        searcher = self._searcher()
        filters = filter_clauses(self.schema, request)
        text = None if plan.is_empty else text_query(self.schema, plan, config)
        query = Q.empty_query() if plan.unmatchable else combine(text, filters)
        kwargs: dict = {}
        if request.sort in _SORT_FIELDS:
            field, order = _SORT_FIELDS[request.sort]
            kwargs = {"order_by_field": field, "order": order}
        elif plan.is_empty:
            kwargs = {"order_by_field": "popularity", "order": tantivy.Order.Desc}
        result = searcher.search(query, limit, **kwargs)
        relaxed = False
        if result.count == 0 and config.relax and len(plan.groups) > 1 and text is not None:
            text = text_query(self.schema, plan, config, relaxed_min_should(plan))
            query = combine(text, filters)
            result = searcher.search(query, limit, **kwargs)
            relaxed = True
        addresses = [addr for _, addr in result.hits]
        rows = np.asarray(searcher.fast_field_values("row", addresses), dtype=np.int64)
        if kwargs:
            scores = np.linspace(1.0, 0.0, num=len(rows), endpoint=False)
        else:
            scores = np.asarray([s for s, _ in result.hits], dtype=np.float64)
        return plan, query, rows, scores, int(result.count), relaxed

    def search(self, request: SearchRequest) -> SearchResponse:
        """Retrieve, rerank, join live data, paginate, facet, highlight, suggest spelling."""
        request.validate()
        offset = request.offset
        need = offset + request.page_size
        limit = max(need + 20, self.window if request.sort == "relevance" else 0)
        plan, query, rows, scores, total, relaxed = self.candidates(request, limit)
        if (
            self.ranker is not None and request.rerank and request.sort == "relevance"
            and not plan.is_empty and len(rows) > 1
        ):
            rows, scores = self._rerank(plan, rows, scores)
        hits = self._hits(rows, scores)
        hits = self._join_live(hits)
        page = hits[offset:need]
        if request.highlight and not plan.is_empty:
            marker = Highlighter(plan)
            for hit in page:
                hit.highlight = marker.to_html(hit.title)
        response = SearchResponse(hits=page, total=total, relaxed=relaxed)
        if need < min(total, len(hits)):
            response.next_cursor = encode_cursor(need, request.fingerprint())
        if request.facets:
            response.facets = self.facets(query)
        if plan.words and total < FEW_RESULTS:
            response.did_you_mean = self.vocab.did_you_mean(plan.words)
        return response

    def _rerank(self, plan: QueryPlan, rows: np.ndarray, scores: np.ndarray):
        assert self.ranker is not None and self.table is not None
        depth = min(self.ranker.depth, len(rows))
        head = self.ranker.rerank_scores(plan, rows[:depth], scores[:depth], self.table)
        order = np.argsort(-head, kind="stable")
        new_rows = np.concatenate([rows[:depth][order], rows[depth:]])
        new_scores = np.concatenate([head[order], scores[depth:]])
        return new_rows, new_scores

    def _hits(self, rows: np.ndarray, scores: np.ndarray) -> list[Hit]:
        t = self.table
        assert t is not None
        price, stock, rating = t.numeric["price"], t.numeric["in_stock"], t.numeric["rating"]
        known = rows < len(t)  # a row newer than this table (written elsewhere) is skipped
        rows, scores = rows[known], scores[known]
        return [
            Hit(
                product_id=t.text["product_id"][r],
                score=float(s),
                title=t.text["title"][r],
                brand=t.text["brand"][r],
                category_path=t.text["category_path"][r],
                price=int(price[r]),
                in_stock=bool(stock[r]),
                rating=float(rating[r]),
            )
            for r, s in zip(rows.tolist(), scores.tolist(), strict=True)
        ]

    def _join_live(self, hits: list[Hit]) -> list[Hit]:
        """Apply the serving layer's live state: drop archived, refresh price and stock."""
        if self.live_data is None or not hits:
            return hits
        states = self.live_data([h.product_id for h in hits])
        kept: list[Hit] = []
        for hit in hits:
            state = states.get(hit.product_id)
            if state is None:
                kept.append(hit)
                continue
            if state.archived:
                continue
            if state.price is not None:
                hit.price = int(state.price)
            if state.available is not None:
                hit.in_stock = bool(state.available)
            kept.append(hit)
        return kept

    def facets(self, query: tantivy.Query) -> dict[str, list[FacetValue]]:
        """Counts over every document matching ``query`` (aggregations run inside tantivy)."""
        ranges = [
            {k: v for k, v in (("from", lo), ("to", hi)) if v is not None}
            for _, lo, hi in DEFAULT_PRICE_RANGES
        ]
        spec = {
            "brand": {"terms": {"field": "brand_kw", "size": 30}},
            "category": {"terms": {"field": "cat_ids", "size": 50}},
            "attributes": {"terms": {"field": "attr_kv", "size": 100}},
            "in_stock": {"terms": {"field": "in_stock"}},
            "price": {"range": {"field": "price", "ranges": ranges}},
        }
        result = self._searcher().aggregate(query, spec)
        facets: dict[str, list[FacetValue]] = {
            "brand": [FacetValue(b["key"], b["doc_count"]) for b in result["brand"]["buckets"]],
            "category": [
                FacetValue(b["key"], b["doc_count"]) for b in result["category"]["buckets"]
            ],
            "in_stock": [
                FacetValue(b.get("key_as_string", str(b["key"])).lower(), b["doc_count"])
                for b in result["in_stock"]["buckets"]
            ],
            "price": [
                FacetValue(f"{lo or ''}-{hi or ''}", b["doc_count"], label)
                for (label, lo, hi), b in zip(
                    DEFAULT_PRICE_RANGES, result["price"]["buckets"], strict=True
                )
                if b["doc_count"] > 0
            ]
            if result["price"]["buckets"]  # an empty index returns no range buckets at all
            else [],
        }
        for bucket in result["attributes"]["buckets"]:
            key, _, value = str(bucket["key"]).partition("=")
            facets.setdefault(f"attr:{key}", []).append(FacetValue(value, bucket["doc_count"]))
        return facets

    def suggest(self, prefix: str, limit: int = 8) -> list[str]:
        """Complete the last word from title/brand vocabulary, conditioned on earlier words."""
        text = clean_query(prefix)
        words = [w.plain for w in query_words(text)]
        if not words or limit <= 0 or text.endswith(" "):
            return []
        *head, last = words
        last = plain_word(last) or last
        filt = None
        if head:
            musts = [(Occur.Must, Q.term_query(self.schema, "suggest", w)) for w in head]
            filt = Q.boolean_query(musts)
        terms = self._searcher().terms_with_prefix("suggest", last, filter_query=filt, limit=limit)
        lead = " ".join(head)
        return [f"{lead} {term}".strip() for term, count in terms if count > 0]

    def snapshot_rows(self, product_ids: Sequence[str]) -> np.ndarray:
        """Row numbers for product ids (−1 for unknown), used to build training features."""
        assert self.table is not None
        return np.asarray([self.table.row_of.get(str(p), -1) for p in product_ids], dtype=np.int64)
