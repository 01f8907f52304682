"""Elasticsearch: mapping and body building always; a live round trip only with a cluster."""

from __future__ import annotations

import json
import os
import uuid

import pytest
from search_catalog import CATALOG

from models.search.api import SearchRequest
from models.search.es_backend import parse_facets
from models.search.es_query import document_body, index_body, search_body, suggest_body
from models.search.retrieval import RetrievalConfig
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
    assert match["operator"] == "and"
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
