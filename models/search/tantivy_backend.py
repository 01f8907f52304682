"""The embedded default backend: tantivy index + in-memory doc table + spelling vocabulary.

Layout of an index directory: tantivy's own files, ``doc_table.parquet`` (per-row columns) and
``vocab.json`` (title word frequencies for "did you mean"). Versioning and manifests are handled
by ``index_store``; this class only reads and writes one directory.

One module past 500 lines on purpose: the schema, the query builder and the doc table share
the field names and the tokenizer set-up, and split apart each half would need the other's
private details.
"""

from __future__ import annotations

import json
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
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
from models.search.result_cache import ResultCache
from models.search.retrieval import TEXT_FIELDS, QueryPlan, RetrievalConfig, plan_query
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
from models.search.term_expansion import TermExpander

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

    def rerank_scores(
        self, plan: QueryPlan, rows: np.ndarray, scores: np.ndarray, table: DocTable
    ) -> np.ndarray:
        """Scores for the candidates (higher first)."""
        ...


@dataclass(slots=True)
class _Ranked:
    """The index-only part of one search: what the result cache keeps between requests.

    Everything here follows from the index snapshot, the ranker and the normalised request;
    live price/stock/archived state is joined per request on top of ``rows``.
    """

    plan: QueryPlan
    query: tantivy.Query
    rows: np.ndarray  # candidate rows, final (reranked) order
    scores: np.ndarray
    total: int
    relaxed: bool
    did_you_mean: str | None
    computed_at: float  # cache clock when the computation started
    #: Every match of ``query`` when retrieval saw them all (facets count them), else None.
    matches: np.ndarray | None = None
    facets: dict[str, list[FacetValue]] | None = None
    facets_at: float = float("-inf")  # cache clock when ``facets`` were counted
    highlighter: Highlighter | None = None


@dataclass(slots=True)
class _Retrieved:
    """One retrieval: ``tiered_candidates``'s values plus ``matched``, how many leading
    rows are exactly every match of ``query`` (−1: more matched than were fetched)."""

    plan: QueryPlan
    query: tantivy.Query
    rows: np.ndarray
    scores: np.ndarray
    total: int
    relaxed: bool
    leading: int
    matched: int


def _field_texts(doc: ProductDocument) -> dict[str, str]:
    """The analysed text fields of a product, by field name (``TEXT_FIELDS``)."""
    return {
        "title": doc.title,
        "brand": doc.brand,
        "category": doc.category_path,
        "attributes": doc.attribute_text,
        "description": doc.description,
    }


def _tantivy_document(doc: ProductDocument, row: int) -> tantivy.Document:
    d = tantivy.Document()
    d.add_text("product_id", doc.product_id)
    d.add_unsigned("row", row)
    for name, text in _field_texts(doc).items():
        d.add_text(name, text)
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


def _plan_key(plan: QueryPlan) -> Hashable:
    """Everything about the analysed query that retrieval, rerank and highlights depend on."""
    groups = tuple((g.words, tuple(g.alternatives)) for g in plan.groups)
    return tuple(plan.words), groups, plan.unmatchable


def _filter_key(request: SearchRequest) -> Hashable:
    """The request's filters and sort, order-insensitive where the filter is a set."""
    attributes = tuple(sorted((k, tuple(sorted(set(v)))) for k, v in request.attributes.items()))
    return (
        tuple(sorted(set(request.brands))),
        request.category_id,
        attributes,
        request.price_min,
        request.price_max,
        request.in_stock,
        request.sort,
        request.demote_out_of_stock,
    )


def tiered_order(predicted: np.ndarray, leading: int) -> np.ndarray:
    """Indices sorting ``predicted`` high to low within each tier: the first ``leading``
    (full matches), then the rest (recall fill), which never jumps ahead of a full match."""
    tier = np.arange(len(predicted)) >= leading
    return np.lexsort((-np.asarray(predicted, dtype=np.float64), tier))


def _uses_values(request: SearchRequest) -> bool:
    """Whether the request filters or sorts on price or stock (every match's values count)."""
    return (
        request.in_stock is not None
        or request.price_min is not None
        or request.price_max is not None
        or request.sort in ("price_asc", "price_desc")
    )


class TantivyBackend(SearchBackend):
    """Search over one tantivy index directory."""

    def __init__(
        self,
        path: str | Path,
        config: RetrievalConfig | None = None,
        ranker: Reranker | None = None,
        window: int = 200,
        cache_entries: int = 4096,
        cache_seconds: float = 30.0,
    ) -> None:
        self.path = Path(path)
        if config is None:
            config = RetrievalConfig(synonyms=load_synonyms())
        self.config = config
        # Bumped when the index is (re)opened or the ranker is swapped; it is part of every
        # cache key, so those entries are simply never looked up again. Live document updates
        # move clocks instead (cache clock time, see ``update_documents``): ``_changed_at``
        # when some product's text changed (any query may match it now), ``_values_changed_at``
        # when only prices or stock did, and ``_touched_at`` per row for the rows replaced.
        self._generation = 0
        self._changed_at = float("-inf")
        self._values_changed_at = float("-inf")
        self._touched_at = np.zeros(0)
        self.cache: ResultCache[_Ranked] = ResultCache(cache_entries, cache_seconds)
        self.suggest_cache: ResultCache[list[str]] = ResultCache(cache_entries, cache_seconds)
        # Analysing the text (normalising, stemming, typo budgets, synonyms) only depends on
        # the text and this backend's fixed config: repeated queries skip it.
        self._plans: ResultCache[tuple[QueryPlan, Hashable]] = ResultCache(
            cache_entries, cache_seconds
        )
        self.ranker = ranker
        self.window = window
        self.schema = build_schema()
        self.index: tantivy.Index | None = None
        self._reader: tantivy.Searcher | None = None
        self.table: DocTable | None = None
        self.vocab = SpellingVocabulary({})
        self.expander: TermExpander | None = None
        self.live_data = None
        if (self.path / "meta.json").exists():
            self.open()

    @property
    def ranker(self) -> Reranker | None:
        """The learning-to-rank model reranking relevance results (None: retrieval order)."""
        return self._ranker

    @ranker.setter
    def ranker(self, ranker: Reranker | None) -> None:
        self._ranker = ranker
        self._generation += 1

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
        # One indexing thread writes one segment: every query then builds its fuzzy and
        # prefix automata and walks the term dictionaries once, not once per segment (~14 %
        # of a query's execution). Building is Python-bound anyway: 100k docs take as long.
        writer = index.writer(heap_size=256_000_000, num_threads=1)
        for row, doc in enumerate(docs):
            writer.add_document(_tantivy_document(doc, row))
        writer.commit()
        writer.wait_merging_threads()
        table = DocTable.from_documents(docs)
        table.save(self.path / DOC_TABLE_FILE)
        vocab = SpellingVocabulary.from_titles(d.title for d in docs)
        # Sorted keys: the same titles give the same bytes (set order varies per process).
        text = json.dumps(vocab.doc_freq, sort_keys=True)
        (self.path / VOCAB_FILE).write_text(text, encoding="utf-8")
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
        self._touched_at = np.full(len(self.table), float("-inf"))
        self._reloaded()
        self.expander = TermExpander.from_searcher(self._searcher(), TEXT_FIELDS, text_analyzer())
        self._generation += 1

    def _reloaded(self) -> None:
        """After (re)loading: one searcher until the next reload.

        With the Manual reload policy a searcher only changes on ``reload()``, so requests
        share one instead of asking the index for a new one each time.
        """
        assert self.index is not None
        self._reader = self.index.searcher()

    @property
    def num_docs(self) -> int:
        """Live (non-deleted) documents in the index."""
        return self._searcher().num_docs

    def _searcher(self) -> tantivy.Searcher:
        reader = self._reader
        if reader is None:
            raise RuntimeError(f"no index at {self.path}; call build() first")
        return reader

    # ---- live updates ---------------------------------------------------------------------

    def update_documents(self, documents: Iterable[ProductDocument]) -> None:
        """Replace by product id: delete the old row, append a new one, commit, reload.

        What stays cached: a shop's catalog sync writes stock and price changes every few
        seconds, and clearing the cache on each pass would make nearly every search a first
        computation. So an answer whose candidates include a replaced product is recomputed
        at once; facet counts are recounted after any price or stock change; answers that
        filter or sort on price or stock, and every answer after a text change (which may
        make a product match queries it did not match), stay servable for ``cache_seconds``
        after they were computed. Other answers are untouched. Price, stock and archived
        state shown are joined live anyway.
        """
        docs = list({d.product_id: d for d in documents}.values())
        if not docs or self.index is None or self.table is None:
            return
        table = self.table
        old_rows = [table.row_of.get(d.product_id) for d in docs]
        signatures = table.numeric["signature"]
        text_changed = any(
            old is None or signatures[old] == 0 or signatures[old] != doc.signature
            for doc, old in zip(docs, old_rows, strict=True)
        )
        rows = self.table.append(docs)
        writer = self.index.writer(heap_size=50_000_000, num_threads=1)
        for doc, row in zip(docs, rows, strict=True):
            writer.delete_documents_by_term("product_id", doc.product_id)
            writer.add_document(_tantivy_document(doc, row))
        writer.commit()
        writer.wait_merging_threads()
        self.table.save(self.path / DOC_TABLE_FILE)
        if text_changed and self.expander is not None:
            # Before the new rows are searchable: a typo of a word only they contain finds them.
            self.expander.add_texts(_field_texts(d) for d in docs)
        self.index.reload()
        self._reloaded()
        self._touch([r for r in old_rows if r is not None] + rows, text_changed)

    def _touch(self, rows: list[int], text_changed: bool) -> None:
        """Record a change to ``rows`` (and whether text changed) for the cache checks."""
        assert self.table is not None
        now = self.cache.clock()
        touched = self._touched_at
        if len(touched) < len(self.table):
            grown = np.full(len(self.table), float("-inf"))
            grown[: len(touched)] = touched
            touched = grown
        touched[rows] = now
        self._touched_at = touched
        self._values_changed_at = now
        if text_changed:
            self._changed_at = now

    def delete_documents(self, product_ids: Iterable[str]) -> None:
        """Delete by product id (rows stay in the doc table but are unreachable)."""
        if self.index is None:
            return
        product_ids = [str(p) for p in product_ids]
        writer = self.index.writer(heap_size=50_000_000, num_threads=1)
        for pid in product_ids:
            writer.delete_documents_by_term("product_id", pid)
        writer.commit()
        writer.wait_merging_threads()
        self.index.reload()
        self._reloaded()
        if self.table is not None:
            rows = [self.table.row_of.get(p) for p in product_ids]
            # A removal changes totals outside the candidate window too: like a text change.
            self._touch([r for r in rows if r is not None], text_changed=True)

    # ---- searching -------------------------------------------------------------------------

    def plan(self, text: str | None) -> QueryPlan:
        """Analyse query text with this backend's retrieval config and title vocabulary."""
        return plan_query(text, self.config, self.vocab)

    def candidates(
        self,
        request: SearchRequest,
        limit: int,
        config: RetrievalConfig | None = None,
        plan: QueryPlan | None = None,
    ) -> tuple[QueryPlan, tantivy.Query, np.ndarray, np.ndarray, int, bool]:
        """Retrieve up to ``limit`` rows: (plan, final query, rows, scores, total, relaxed).

        ``plan`` is ``plan_query(request.query, config)`` when the caller already made it.
        """
        return self.tiered_candidates(request, limit, config, plan)[:6]

    def tiered_candidates(
        self,
        request: SearchRequest,
        limit: int,
        config: RetrievalConfig | None = None,
        plan: QueryPlan | None = None,
    ) -> tuple[QueryPlan, tantivy.Query, np.ndarray, np.ndarray, int, bool, int]:
        """``candidates`` plus how many leading rows match every word (the rest: recall fill).

        A reranker reorders the two tiers separately (``tiered_order``): the fill's partial
        matches follow the full matches whatever their scores, as in retrieval order.
        """
        r = self._retrieve(request, limit, config, plan)
        return r.plan, r.query, r.rows, r.scores, r.total, r.relaxed, r.leading

    def _retrieve(
        self,
        request: SearchRequest,
        limit: int,
        config: RetrievalConfig | None = None,
        plan: QueryPlan | None = None,
    ) -> _Retrieved:
        """``tiered_candidates``, also saying whether every match of the query was fetched."""
        config = config or self.config
        if plan is None:
            plan = plan_query(request.query, config, self.vocab)
        searcher = self._searcher()
        filters = filter_clauses(self.schema, request)
        expand = None if self.expander is None else self.expander.expand
        text = None if plan.is_empty else text_query(self.schema, plan, config, None, expand)
        query = Q.empty_query() if plan.unmatchable else combine(text, filters)
        kwargs: dict = {}
        if request.sort in _SORT_FIELDS:
            field, order = _SORT_FIELDS[request.sort]
            kwargs = {"order_by_field": field, "order": order}
        elif plan.is_empty:
            kwargs = {"order_by_field": "popularity", "order": tantivy.Order.Desc}
        result = searcher.search(query, limit, **kwargs)
        hits, total, relaxed = result.hits, int(result.count), False
        leading = -1  # every row in one tier
        matched = total if total <= len(hits) else -1
        # A sorted list is not tiered: it widens only when nothing matches every word.
        short = total == 0 if kwargs else total < limit
        wide = config.fill or config.relax
        if short and wide and len(plan.groups) > 1 and text is not None:
            # Recall first: documents matching only some of the words follow the ones matching
            # all of them (plain BM25, an OR, never finds more). Facets stay on the AND set
            # unless it is empty.
            loose = 1 if config.fill else relaxed_min_should(plan)
            wider = combine(text_query(self.schema, plan, config, loose, expand), filters)
            more = searcher.search(wider, limit, **kwargs)
            seen = {(a.segment_ord, a.doc) for _, a in hits}
            extra = [h for h in more.hits if (h[1].segment_ord, h[1].doc) not in seen]
            if hits and extra:
                leading = len(hits)
            hits = hits + extra[: limit - len(hits)]
            relaxed = total == 0
            if relaxed:
                query = wider
                # Nothing matched every word: the rows are the wider query's own top hits.
                matched = int(more.count) if int(more.count) <= len(more.hits) else -1
            # Otherwise ``short``: every match of ``query`` came first, in ``hits``.
            total = max(total, int(more.count))
        addresses = [addr for _, addr in hits]
        rows = np.asarray(searcher.fast_field_values("row", addresses), dtype=np.int64)
        if kwargs:
            scores = np.linspace(1.0, 0.0, num=len(rows), endpoint=False)
        else:
            scores = np.asarray([s for s, _ in hits], dtype=np.float64)
        leading = len(rows) if leading < 0 else leading
        return _Retrieved(plan, query, rows, scores, total, relaxed, leading, matched)

    def search(self, request: SearchRequest) -> SearchResponse:
        """Retrieve, rerank, join live data, paginate, facet, highlight, suggest spelling.

        The index-only part (candidates in final order, total, facets, spelling) comes from the
        result cache when the same normalised request was answered recently; the live join,
        pagination and highlights are done per request, for the returned page only. Facet
        lists may be shared between responses: treat them as read-only.
        """
        request.validate()
        offset = request.offset
        ranked = self._ranked(request, offset + request.page_size)
        assert ranked is not None
        return self._answer(request, ranked, offset)

    def search_cached(self, request: SearchRequest) -> SearchResponse | None:
        """``search`` if the request's index-only part is cached, else None (nothing computed).

        Lets the serving layer answer repeated queries inline and send only the expensive
        first computation to a worker thread.
        """
        request.validate()
        offset = request.offset
        ranked = self._ranked(request, offset + request.page_size, compute=False)
        if ranked is None or (request.facets and self._facets_stale(ranked)):
            return None
        return self._answer(request, ranked, offset)

    def _facets_stale(self, ranked: _Ranked) -> bool:
        """Whether ``ranked``'s facet counts must be (re)counted (stock and price buckets)."""
        return ranked.facets is None or ranked.facets_at < self._values_changed_at

    def _answer(self, request: SearchRequest, ranked: _Ranked, offset: int) -> SearchResponse:
        """The per-request part: live join and pagination, highlights, facets, cursor."""
        need = offset + request.page_size
        page, more = self._live_page(ranked.rows, ranked.scores, offset, need)
        plan = ranked.plan
        if request.highlight and not plan.is_empty:
            if ranked.highlighter is None:
                ranked.highlighter = Highlighter(plan)
            for hit in page:
                hit.highlight = ranked.highlighter.to_html(hit.title)
        response = SearchResponse(hits=page, total=ranked.total, relaxed=ranked.relaxed)
        if more and need < ranked.total:
            response.next_cursor = encode_cursor(need, request.fingerprint())
        if request.facets:
            if self._facets_stale(ranked):
                started = self.cache.clock()
                ranked.facets = self._count_facets(ranked)
                ranked.facets_at = started
            response.facets = ranked.facets
        response.did_you_mean = ranked.did_you_mean
        return response

    def _ranked(self, request: SearchRequest, need: int, compute: bool = True) -> _Ranked | None:
        """Candidates in final order for ``request`` (cached per normalised request).

        With ``compute`` False, a cache miss returns None instead of searching.
        """
        if not compute and not self.cache.enabled:
            # Nothing can be cached: analysing the query only to miss would be done twice
            # (the serving layer asks ``search_cached`` first, then ``search``).
            return None
        generation, ranker, started = self._generation, self._ranker, self.cache.clock()
        planned = self._plans.get(request.query)
        if planned is None:
            plan = plan_query(request.query, self.config, self.vocab)
            planned = (plan, _plan_key(plan))
            self._plans.put(request.query, planned)
        plan, plan_key = planned
        rerank = (
            ranker is not None
            and request.rerank
            and request.sort == "relevance"
            and not plan.is_empty
        )
        demote = request.demote_out_of_stock and request.sort == "relevance"
        # Without a rerank or demotion the engine's own top-k order is final: fetch just past
        # the page. Both reorder the top ``window`` only, which is the same set of rows however
        # deep the page is, so every page of one query agrees on the order.
        window = self.window if request.window is None else min(request.window, self.window)
        limit = max(need + 20, window if rerank or demote else 0)
        key = (generation, limit, window, rerank, plan_key, _filter_key(request))
        changed_at = self._changed_at
        if _uses_values(request):
            changed_at = max(changed_at, self._values_changed_at)
        cached = self.cache.get(key, changed_at)
        if cached is not None and not self._rows_touched(cached):
            return cached
        if not compute:
            return None
        r = self._retrieve(request, limit, plan=plan)
        plan, query, rows, scores, total = r.plan, r.query, r.rows, r.scores, r.total
        # Facets count the matches of ``query``: when retrieval fetched them all (a few hundred
        # or fewer), counting their doc-table codes replaces a second pass over the index. A
        # multi-word query widened with rows matching only some words (recall fill) has its
        # full matches first, and only those match ``query``.
        matches = rows[: r.matched].copy() if r.matched >= 0 else None
        leading = r.leading
        if rerank and ranker is not None and len(rows) > 1:
            rows, scores = self._rerank(ranker, plan, rows, scores, leading)
        if demote:
            rows, scores = self._demote_out_of_stock(rows, scores, window)
        few = bool(plan.words) and total < FEW_RESULTS
        spelling = self.vocab.did_you_mean(plan.words) if few else None
        ranked = _Ranked(plan, query, rows, scores, total, r.relaxed, spelling, started, matches)
        self.cache.put(key, ranked, computed_at=started)
        return ranked

    def _rows_touched(self, ranked: _Ranked) -> bool:
        """Whether a product among ``ranked``'s candidates was replaced since it was computed."""
        touched = self._touched_at
        rows = ranked.rows
        if not len(rows) or not len(touched):
            return False
        return bool(
            touched[rows[rows < len(touched)]].max(initial=float("-inf")) > ranked.computed_at
        )

    def _live_page(
        self, rows: np.ndarray, scores: np.ndarray, offset: int, need: int
    ) -> tuple[list[Hit], bool]:
        """Hits ``offset:need`` of the candidates that are still live, and whether more follow.

        Live state is asked for in blocks from the top, only as far as the page needs: an
        archived product above the page still shifts it, as it would with a join over all.
        """
        kept: list[Hit] = []
        start = 0
        while start < len(rows) and len(kept) <= need:
            stop = start + need + 1 - len(kept) + (8 if start else 0)
            kept += self._join_live(self._hits(rows[start:stop], scores[start:stop]))
            start = stop
        return kept[offset:need], len(kept) > need

    def _rerank(
        self,
        ranker: Reranker,
        plan: QueryPlan,
        rows: np.ndarray,
        scores: np.ndarray,
        leading: int | None = None,
    ):
        assert self.table is not None
        depth = min(ranker.depth, len(rows))
        head = ranker.rerank_scores(plan, rows[:depth], scores[:depth], self.table)
        order = tiered_order(head, len(rows) if leading is None else leading)
        new_rows = np.concatenate([rows[:depth][order], rows[depth:]])
        new_scores = np.concatenate([head[order], scores[depth:]])
        return new_rows, new_scores

    def _demote_out_of_stock(
        self, rows: np.ndarray, scores: np.ndarray, window: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Move the top ``window``'s products out of stock behind its in-stock ones (stable).

        Stock comes from the indexed snapshot, which the catalog sync refreshes whenever a
        product's in-stock flag flips; out-of-stock products stay in the list (a shopper may
        still want to see or wait for them), they just stop outranking what can be bought.
        """
        assert self.table is not None
        stock = self.table.numeric["in_stock"]
        head = rows[:window]
        known = head < len(stock)
        missing = np.zeros(len(head), dtype=bool)
        missing[known] = ~stock[head[known]]
        if not missing.any():
            return rows, scores
        order = np.argsort(missing, kind="stable")
        depth = len(head)
        return (
            np.concatenate([head[order], rows[depth:]]),
            np.concatenate([scores[:depth][order], scores[depth:]]),
        )

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

    def _count_facets(self, ranked: _Ranked) -> dict[str, list[FacetValue]]:
        """Facets of ``ranked``: from its rows when they are every match, else by the index.

        The retrieval already returned every match of most text queries (a few hundred or
        fewer): counting their doc-table codes costs a fraction of running the query again
        inside an aggregation.
        """
        table = self.table
        rows = ranked.matches
        if (
            rows is not None
            and table is not None
            and table.facets is not None
            and len(table.facets) == len(table)
            and (not len(rows) or int(rows.max()) < len(table))
        ):
            return table.facets.count(rows, table.numeric["price"], table.numeric["in_stock"])
        return self.facets(ranked.query)

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

    def suggest_cached(self, prefix: str, limit: int = 8) -> list[str] | None:
        """``suggest`` if it was answered recently for this index generation, else None."""
        found = self.suggest_cache.get((self._generation, prefix, limit), self._changed_at)
        return None if found is None else list(found)

    def suggest(self, prefix: str, limit: int = 8) -> list[str]:
        """Complete the last word from title/brand vocabulary, conditioned on earlier words."""
        key = (self._generation, prefix, limit)
        found = self.suggest_cache.get(key, self._changed_at)
        if found is None:
            started = self.suggest_cache.clock()
            found = self._suggest(prefix, limit)
            self.suggest_cache.put(key, found, computed_at=started)
        return list(found)

    def _suggest(self, prefix: str, limit: int) -> list[str]:
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
