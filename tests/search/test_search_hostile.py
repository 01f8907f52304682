"""Hostile and odd input: never a parser error, either a sensible result or a QueryError."""

from __future__ import annotations

import pytest

from models.search.api import SearchRequest
from models.search.errors import QueryError, QueryTooLongError

ODD_QUERIES = [
    "title:foo AND (",
    '"',
    "*",
    "?",
    "\\",
    "headphones)",
    "-",
    "+sony -bose",
    "NOT",
    "brand:Sony",
    "[1 TO 5]",
    "x\x00y",
    "\x00",
    "\u202e\u200bsofa",
    "蓝牙 耳机",
    "🎧",
    "a" * 999,
    "   ",
    "",
    "sofa " * 100,
    "ｈｅａｄｐｈｏｎｅｓ",
    "a~2 b^3",
]


@pytest.mark.parametrize("query", ODD_QUERIES)
def test_odd_queries_return_results_or_nothing(backend, query):
    response = backend.search(SearchRequest(query=query))
    assert response.total >= 0
    for hit in response.hits:
        assert "<script" not in hit.highlight


def test_fullwidth_and_format_characters_are_normalised(backend):
    assert backend.search(SearchRequest(query="ｈｅａｄｐｈｏｎｅｓ")).total >= 2
    assert backend.search(SearchRequest(query="\u200bsofa")).hits[0].product_id == "p10"


def test_punctuation_only_is_no_results_not_browse(backend):
    assert backend.search(SearchRequest(query="*")).total == 0


def test_huge_query_is_a_client_error(backend):
    with pytest.raises(QueryTooLongError):
        backend.search(SearchRequest(query="x" * 10_000))
    assert issubclass(QueryTooLongError, ValueError)


@pytest.mark.parametrize(
    "request_kw",
    [
        {"page_size": 0},
        {"page_size": 1000},
        {"page": 0},
        {"price_min": 10, "price_max": 1},
        {"page": 10_000},
    ],
)
def test_bad_paging_and_filters_are_query_errors(backend, request_kw):
    with pytest.raises(QueryError):
        backend.search(SearchRequest(query="sofa", **request_kw))


def test_suggest_is_safe(backend):
    for text in ['"', "*", "\x00", "title:(", "ü"]:
        assert isinstance(backend.suggest(text), list)
