"""Elasticsearch index mapping and request bodies, as pure functions (testable without a server).

The same retrieval rules as tantivy: field boosts, typo tolerance ``AUTO:5,9`` (0 edits under 5
letters, 1 up to 8, 2 beyond) plus title-vocabulary corrections of unknown words, query-time
synonyms (``synonym_graph`` in the search analyzer), phrase proximity boost, prefix on the last
word, and recall first: any word may match, documents matching every word rank first. User
text only ever goes into ``match``-family queries as a value — never into ``query_string`` —
so it cannot inject query syntax.
"""

from __future__ import annotations

from models.search.api import DEFAULT_PRICE_RANGES, SearchRequest
from models.search.documents import ProductDocument
from models.search.retrieval import RetrievalConfig
from models.search.synonyms import Synonyms

_SORTS = {
    "price_asc": [{"price": "asc"}],
    "price_desc": [{"price": "desc"}],
    "newest": [{"created_at": "desc"}],
    "rating": [{"rating": "desc"}],
}


def index_body(synonyms: Synonyms | None) -> dict:
    """Settings (analyzers) and mappings for the product index."""
    filters = ["lowercase", "asciifolding", "english_stemmer"]
    search_filters = ["lowercase", "asciifolding"]
    analysis: dict = {
        "filter": {"english_stemmer": {"type": "stemmer", "language": "english"}},
        "analyzer": {
            "sl_text": {"type": "custom", "tokenizer": "standard", "filter": filters},
            "sl_plain": {
                "type": "custom",
                "tokenizer": "standard",
                "filter": ["lowercase", "asciifolding"],
            },
        },
    }
    if synonyms is not None:
        analysis["filter"]["sl_synonyms"] = {
            "type": "synonym_graph",
            "synonyms": synonyms.as_solr_lines(),
            "lenient": True,
        }
        search_filters = [*search_filters, "english_stemmer", "sl_synonyms"]
    else:
        search_filters = [*search_filters, "english_stemmer"]
    analysis["analyzer"]["sl_search"] = {
        "type": "custom",
        "tokenizer": "standard",
        "filter": search_filters,
    }
    text = {"type": "text", "analyzer": "sl_text", "search_analyzer": "sl_search"}
    return {
        "settings": {"analysis": analysis},
        "mappings": {
            "dynamic": "strict",
            "properties": {
                "product_id": {"type": "keyword"},
                "title": {**text, "fields": {"plain": {"type": "text", "analyzer": "sl_plain"}}},
                "brand": text,
                "category": text,
                "attributes": text,
                "description": text,
                "suggest": {"type": "completion", "analyzer": "sl_plain"},
                "brand_kw": {"type": "keyword"},
                "cat_ids": {"type": "keyword"},
                "attr_kv": {"type": "keyword"},
                "category_path": {"type": "keyword", "index": False},
                "price": {"type": "long"},
                "created_at": {"type": "date", "format": "epoch_second"},
                "rating": {"type": "float"},
                "popularity": {"type": "float"},
                "in_stock": {"type": "boolean"},
            },
        },
    }


def document_body(doc: ProductDocument) -> dict:
    """The JSON source stored for one product."""
    return {
        "product_id": doc.product_id,
        "title": doc.title,
        "brand": doc.brand,
        "category": doc.category_path,
        "category_path": doc.category_path,
        "attributes": doc.attribute_text,
        "description": doc.description,
        "suggest": [s for s in (doc.title, doc.brand) if s],
        "brand_kw": doc.brand,
        "cat_ids": doc.category_ids,
        "attr_kv": doc.attribute_pairs,
        "price": doc.price,
        "created_at": doc.created_at,
        "rating": doc.rating,
        "popularity": doc.popularity,
        "in_stock": doc.in_stock,
    }


def _fields(config: RetrievalConfig) -> list[str]:
    return [f"{name}^{boost:g}" for name, boost in config.boosts.items() if boost > 0]


#: Added to the score of documents matching every word (in any spelling): with the recall fill
#: they rank ahead of partial matches, as the tantivy backend's tiers do. BM25 scores of even
#: long boosted queries stay far below it.
FULL_MATCH_BOOST = 10_000.0


def _match(text: str, config: RetrievalConfig, operator: str) -> dict:
    match: dict = {
        "multi_match": {
            "query": text,
            "fields": _fields(config),
            "type": "best_fields" if config.dismax_tie < 1 else "most_fields",
            "operator": operator,
        }
    }
    if config.dismax_tie < 1:
        match["multi_match"]["tie_breaker"] = config.dismax_tie
    if config.fuzzy:
        match["multi_match"]["fuzziness"] = "AUTO:5,9"
        match["multi_match"]["prefix_length"] = 1
    return match


def _any_of(clauses: list[dict]) -> dict:
    return (
        clauses[0]
        if len(clauses) == 1
        else {"bool": {"should": clauses, "minimum_should_match": 1}}
    )


def full_match_filter(text: str, config: RetrievalConfig, corrected: str | None = None) -> dict:
    """Documents matching every word of ``text`` (or of its spelling-corrected form)."""
    return _any_of([_match(t, config, "and") for t in (text, corrected) if t])


def text_query(
    text: str, config: RetrievalConfig, typing: bool = True, corrected: str | None = None
) -> dict:
    """The scoring query for cleaned user text.

    ``corrected`` is the text with words the catalog's titles lack replaced by their nearest
    title word (``SpellingVocabulary.did_you_mean``): Elasticsearch applies fuzziness to the
    *stemmed* query term, which misses when the stemmer cut the indexed word short
    ("mechanicl" is three edits from "mechan"), so the correction is matched as an alternative.
    With ``config.fill`` (recall first) any word may match, and documents matching every word
    get ``FULL_MATCH_BOOST`` on top, so the partial matches come after them, never instead.
    """
    texts = [t for t in (text, corrected) if t]
    should: list[dict] = []
    if config.fill:
        must = _any_of([_match(t, config, "or") for t in texts])
        should.append(
            {
                "constant_score": {
                    "filter": full_match_filter(text, config, corrected),
                    "boost": FULL_MATCH_BOOST,
                }
            }
        )
    else:
        must = _any_of([_match(t, config, config.operator) for t in texts])
    if config.phrase_boost > 0:
        should.append(
            {
                "match_phrase": {
                    "title": {
                        "query": text,
                        "slop": config.phrase_slop,
                        "boost": config.phrase_boost * 5,
                    }
                }
            }
        )
    if config.prefix_last and typing:
        prefix = {
            "multi_match": {
                "query": text,
                "type": "bool_prefix",
                "fields": _fields(config),
                "operator": "or" if config.fill else config.operator,
            }
        }
        must = {"bool": {"should": [must, prefix], "minimum_should_match": 1}}
    return {"bool": {"must": [must], "should": should}}


def filter_clauses(request: SearchRequest) -> list[dict]:
    """Exact, non-scoring filters."""
    filters: list[dict] = []
    if request.brands:
        filters.append({"terms": {"brand_kw": list(request.brands)}})
    if request.category_id:
        filters.append({"term": {"cat_ids": request.category_id}})
    for key, values in request.attributes.items():
        if values:
            filters.append({"terms": {"attr_kv": [f"{key}={v}" for v in values]}})
    if request.price_min is not None or request.price_max is not None:
        bounds = {}
        if request.price_min is not None:
            bounds["gte"] = request.price_min
        if request.price_max is not None:
            bounds["lte"] = request.price_max
        filters.append({"range": {"price": bounds}})
    if request.in_stock is not None:
        filters.append({"term": {"in_stock": request.in_stock}})
    return filters


def aggregations() -> dict:
    """Facet aggregations (same buckets as the tantivy backend)."""
    ranges = [
        {"key": label, **{k: v for k, v in (("from", lo), ("to", hi)) if v is not None}}
        for label, lo, hi in DEFAULT_PRICE_RANGES
    ]
    return {
        "brand": {"terms": {"field": "brand_kw", "size": 30}},
        "category": {"terms": {"field": "cat_ids", "size": 50}},
        "attributes": {"terms": {"field": "attr_kv", "size": 100}},
        "in_stock": {"terms": {"field": "in_stock"}},
        "price": {"range": {"field": "price", "ranges": ranges}},
    }


def search_body(
    request: SearchRequest,
    text: str,
    config: RetrievalConfig,
    size: int,
    corrected: str | None = None,
) -> dict:
    """Full ``_search`` body: query, filters, sort, facets, highlight, phrase suggester.

    With the recall fill, facets count the documents matching every word (``full`` holds the
    same aggregations under that filter; ``parse_facets`` uses them unless nothing matched
    every word), as the tantivy backend does.
    """
    filters = filter_clauses(request)
    if text:
        typing = not request.query.endswith(" ")
        query = text_query(text, config, typing=typing, corrected=corrected)
        query["bool"]["filter"] = filters
    else:
        query = {"bool": {"must": [{"match_all": {}}], "filter": filters}}
    body: dict = {
        "query": query,
        "size": size,
        "from": 0,
        "track_total_hits": True,
        "_source": ["product_id", "title", "brand", "category_path", "price", "in_stock", "rating"],
    }
    if request.sort in _SORTS:
        body["sort"] = _SORTS[request.sort]
    else:
        # Relevance: products out of stock after those in stock (as the tantivy backend
        # does), still in the results and the counts; browsing orders by popularity.
        order = [{"_score": "desc"}] if text else [{"popularity": "desc"}]
        if request.demote_out_of_stock:
            order.insert(0, {"in_stock": "desc"})
            body["track_scores"] = True
        if len(order) > 1 or not text:
            body["sort"] = order
    if request.facets:
        body["aggs"] = aggregations()
        if text and config.fill:
            body["aggs"]["full"] = {
                "filter": full_match_filter(text, config, corrected),
                "aggs": aggregations(),
            }
    if request.highlight and text:
        body["highlight"] = {
            "pre_tags": ["<mark>"],
            "post_tags": ["</mark>"],
            "encoder": "html",
            "fields": {"title": {"number_of_fragments": 0}},
        }
    if text:
        body["suggest"] = {
            "did_you_mean": {
                "text": text,
                "phrase": {
                    "field": "title.plain",
                    "size": 1,
                    "max_errors": 2,
                    "direct_generator": [{"field": "title.plain", "suggest_mode": "missing"}],
                },
            }
        }
    return body


def suggest_body(prefix: str, limit: int) -> dict:
    """Completion suggester request for autocomplete."""
    return {
        "_source": False,
        "suggest": {
            "complete": {
                "prefix": prefix,
                "completion": {"field": "suggest", "size": limit, "skip_duplicates": True},
            }
        },
    }
