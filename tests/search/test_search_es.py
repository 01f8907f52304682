"""Elasticsearch: mapping and body building always; a live round trip only with a cluster."""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import replace

import pytest
from search_catalog import CATALOG

from models.search.analysis import query_words
from models.search.api import SearchRequest
from models.search.es_backend import parse_facets
from models.search.es_query import (
    FULL_MATCH_BOOST,
    document_body,
    index_body,
    search_body,
    suggest_body,
)
from models.search.retrieval import RetrievalConfig
from models.search.spelling import SpellingVocabulary
from models.search.synonyms import load_synonyms

CONFIG = RetrievalConfig(synonyms=load_synonyms())


def test_mapping_has_analyzers_synonyms_and_keyword_fields():
    body = index_body(CONFIG.synonyms)
    analysis = body["settings"]["analysis"]
    assert analysis["analyzer"]["sl_text"]["filter"] == [
        "lowercase",
        "asciifolding",
        "english_stemmer",
    ]
    assert "sl_synonyms" in analysis["analyzer"]["sl_search"]["filter"]
    assert any("earbud" in line for line in analysis["filter"]["sl_synonyms"]["synonyms"])
    props = body["mappings"]["properties"]
    assert props["brand_kw"]["type"] == props["cat_ids"]["type"] == "keyword"
    assert props["price"]["type"] == "long"
    assert props["title"]["search_analyzer"] == "sl_search"


def test_document_body_matches_mapping():
    props = index_body(None)["mappings"]["properties"]
    source = document_body(CATALOG[0])
    assert set(source) <= set(props)
    assert source["cat_ids"] == ["electronics", "electronics/audio", "electronics/audio/headphones"]
    assert "color=black" in source["attr_kv"]


def test_search_body_boosts_typos_filters_and_never_uses_query_string():
    request = SearchRequest(
        query="title:foo AND (", brands=["Sony"], price_max=5000, in_stock=True, sort="price_asc"
    )
    body = search_body(request, "title:foo AND (", CONFIG, size=40)
    dumped = json.dumps(body)
    assert "query_string" not in dumped and "simple_query_string" not in dumped
    match = body["query"]["bool"]["must"][0]["bool"]["should"][0]["multi_match"]
    assert match["fields"][0] == "title^5" and match["fuzziness"] == "AUTO:5,9"
    assert {"terms": {"brand_kw": ["Sony"]}} in body["query"]["bool"]["filter"]
    assert {"range": {"price": {"lte": 5000}}} in body["query"]["bool"]["filter"]
    assert body["sort"] == [{"price": "asc"}]
    assert body["highlight"]["encoder"] == "html" and body["highlight"]["pre_tags"] == ["<mark>"]


def test_plain_bm25_body_is_unboosted_or_query():
    body = search_body(SearchRequest(query="sofa"), "sofa", RetrievalConfig.plain_bm25(), 10)
    match = body["query"]["bool"]["must"][0]["multi_match"]
    assert match["operator"] == "or" and "fuzziness" not in match
    assert all(f.endswith("^1") for f in match["fields"])


def test_suggest_body_and_facet_parsing():
    assert suggest_body("head", 5)["suggest"]["complete"]["completion"]["size"] == 5
    aggs = {
        "brand": {"buckets": [{"key": "Sony", "doc_count": 2}]},
        "category": {"buckets": [{"key": "electronics", "doc_count": 2}]},
        "in_stock": {"buckets": [{"key": 1, "key_as_string": "true", "doc_count": 2}]},
        "price": {"buckets": [{"key": "under 25", "to": 2500.0, "doc_count": 2}]},
        "attributes": {"buckets": [{"key": "color=black", "doc_count": 1}]},
    }
    facets = parse_facets(aggs)
    assert facets["in_stock"][0].value == "true"
    assert facets["price"][0].value == "-2500" and facets["price"][0].label == "under 25"
    assert facets["attr:color"][0].value == "black"


@pytest.mark.elasticsearch
@pytest.mark.skipif(
    not os.environ.get("ELASTICSEARCH_URL"),
    reason="set ELASTICSEARCH_URL to run against a real cluster",
)
def test_round_trip_against_cluster():
    from models.search.es_backend import ElasticsearchBackend

    backend = ElasticsearchBackend(
        os.environ["ELASTICSEARCH_URL"], index=f"storeloop-test-{uuid.uuid4().hex[:8]}"
    )
    try:
        backend.build(CATALOG)
        assert {"p1", "p2"} <= {
            h.product_id for h in backend.search(SearchRequest(query="hedphones")).hits
        }
        assert {"p3", "p4"} <= {
            h.product_id for h in backend.search(SearchRequest(query="earphones")).hits
        }
        response = backend.search(SearchRequest(query="couch"))
        assert "&lt;Deluxe&gt;" in response.hits[0].highlight
        assert backend.search(SearchRequest(query="", brands=["Sony"])).total == 1
    finally:
        backend.client.options(ignore_status=404).indices.delete(index=backend.index)


def test_relevance_puts_out_of_stock_last_unless_asked_not_to():
    body = search_body(SearchRequest(query="yoga mat"), "yoga mat", CONFIG, 10)
    assert body["sort"] == [{"in_stock": "desc"}, {"_score": "desc"}] and body["track_scores"]
    browse = search_body(SearchRequest(category_id="sports"), "", CONFIG, 10)
    assert browse["sort"] == [{"in_stock": "desc"}, {"popularity": "desc"}]
    assert {"term": {"cat_ids": "sports"}} in browse["query"]["bool"]["filter"]
    plain = search_body(SearchRequest(query="yoga", demote_out_of_stock=False), "yoga", CONFIG, 10)
    assert "sort" not in plain
    priced = search_body(SearchRequest(query="yoga", sort="price_asc"), "yoga", CONFIG, 10)
    assert priced["sort"] == [{"price": "asc"}]


def test_recall_first_any_word_retrieves_and_full_matches_rank_ahead():
    """As the tantivy backend: a query whose words no product has all of still retrieves the
    products having some of them, behind every product that has all of them."""
    body = search_body(SearchRequest(query="zinc angle "), "zinc angle", CONFIG, 10)
    recall = body["query"]["bool"]["must"][0]["multi_match"]
    assert recall["operator"] == "or" and recall["query"] == "zinc angle"
    (tier,) = [c for c in body["query"]["bool"]["should"] if "constant_score" in c]
    full = tier["constant_score"]["filter"]["multi_match"]
    assert full["operator"] == "and" and full["query"] == "zinc angle"
    assert tier["constant_score"]["boost"] == FULL_MATCH_BOOST
    # Facets count what matches every word, as tantivy's do.
    assert body["aggs"]["full"]["filter"] == tier["constant_score"]["filter"]
    # Without the fill (the old rule, and plain BM25's OR) there is no tier.
    strict = search_body(
        SearchRequest(query="zinc angle "), "zinc angle", replace(CONFIG, fill=False), 10
    )
    assert strict["query"]["bool"]["must"][0]["multi_match"]["operator"] == "and"
    assert not any("constant_score" in c for c in strict["query"]["bool"]["should"])


def test_spelling_corrections_from_the_titles_are_matched_as_an_alternative():
    """ES fuzziness edits the stemmed query term: "mechanicl" is three edits from "mechan"."""
    vocab = SpellingVocabulary.from_titles(["Mechanical Keyboard", "Gaming Mouse"])
    corrected = vocab.did_you_mean(query_words("mechanicl keyboard"))
    assert corrected == "mechanical keyboard"
    body = search_body(
        SearchRequest(query="mechanicl keyboard "), "mechanicl keyboard", CONFIG, 10, corrected
    )
    recall = body["query"]["bool"]["must"][0]["bool"]["should"]
    assert [c["multi_match"]["query"] for c in recall] == ["mechanicl keyboard", corrected]
    (tier,) = [c for c in body["query"]["bool"]["should"] if "constant_score" in c]
    full = tier["constant_score"]["filter"]["bool"]["should"]
    assert [c["multi_match"]["query"] for c in full] == ["mechanicl keyboard", corrected]


def test_facets_come_from_the_full_matches_unless_there_are_none():
    def aggs(brand: str, count: int) -> dict:
        return {
            "brand": {"buckets": [{"key": brand, "doc_count": count}]},
            "category": {"buckets": []},
            "in_stock": {"buckets": []},
            "price": {"buckets": []},
            "attributes": {"buckets": []},
        }

    both = {**aggs("Acme", 9), "full": {"doc_count": 2, **aggs("Zinc", 2)}}
    assert [(f.value, f.count) for f in parse_facets(both)["brand"]] == [("Zinc", 2)]
    none_full = {**aggs("Acme", 9), "full": {"doc_count": 0, **aggs("Zinc", 0)}}
    assert [(f.value, f.count) for f in parse_facets(none_full)["brand"]] == [("Acme", 9)]
