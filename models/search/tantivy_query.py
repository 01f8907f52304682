"""The tantivy schema and the translation of query plans and filters into tantivy queries.

Queries are built programmatically from analysed tokens (``term_query``, ``fuzzy_term_query``,
``phrase_query``...); ``parse_query`` is never called with user text.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import tantivy

from models.search.analysis import PLAIN_ANALYZER, TEXT_ANALYZER
from models.search.api import SearchRequest
from models.search.retrieval import TEXT_FIELDS, Alternative, QueryPlan, RetrievalConfig

Q = tantivy.Query
Occur = tantivy.Occur
#: The terms of a field a fuzzy or prefix alternative accepts, or None to leave it to tantivy's
#: automaton (``term_expansion.TermExpander.expand``'s signature).
Expand = Callable[[str, str, int, bool], "list[str] | None"]


def build_schema() -> tantivy.Schema:
    """Text fields with the stemming analyzer, keyword/numeric fast fields for filters."""
    sb = tantivy.SchemaBuilder()
    sb.add_text_field("product_id", stored=True, tokenizer_name="raw")
    sb.add_unsigned_field("row", stored=True, fast=True)
    for name in TEXT_FIELDS:
        sb.add_text_field(name, tokenizer_name=TEXT_ANALYZER, index_option="position")
    sb.add_text_field("suggest", tokenizer_name=PLAIN_ANALYZER, index_option="basic")
    for name in ("brand_kw", "cat_ids", "attr_kv"):
        sb.add_text_field(name, fast=True, tokenizer_name="raw", index_option="basic")
    sb.add_integer_field("price", indexed=True, fast=True)
    sb.add_integer_field("created_at", indexed=True, fast=True)
    sb.add_float_field("rating", indexed=True, fast=True)
    sb.add_float_field("popularity", fast=True)
    sb.add_boolean_field("in_stock", indexed=True, fast=True)
    return sb.build()


def _alternative_query(
    schema: tantivy.Schema, field: str, alt: Alternative, expand: Expand | None = None
) -> tantivy.Query:
    if alt.kind == "term":
        return Q.term_query(schema, field, alt.terms[0])
    if alt.kind == "phrase":
        return Q.phrase_query(schema, field, list(alt.terms), alt.slop)
    prefix = alt.kind == "prefix"
    terms = None if expand is None else expand(field, alt.terms[0], alt.distance, prefix)
    if terms is None:
        return Q.fuzzy_term_query(schema, field, alt.terms[0], alt.distance, True, prefix)
    # The automaton's constant score 1.0 per match, from term postings an intersection can
    # skip through instead of a bitset of every posting of every accepted term.
    parts = [Q.const_score_query(Q.term_query(schema, field, t), 1.0) for t in terms]
    if not parts:
        return Q.empty_query()
    return parts[0] if len(parts) == 1 else Q.disjunction_max_query(parts, 0.0)


def text_query(
    schema: tantivy.Schema,
    plan: QueryPlan,
    config: RetrievalConfig,
    min_should: int | None = None,
    expand: Expand | None = None,
) -> tantivy.Query:
    """The scoring part: per group a disjunction over fields × alternatives, combined by
    AND (``min_should`` None and operator "and") or by at-least-``min_should``-of-N.

    ``expand`` resolves fuzzy and prefix alternatives to the index's terms (same matches and
    scores, cheaper to execute); without it they run as tantivy's automata.
    """
    groups = []
    for group in plan.groups:
        parts = [
            Q.boost_query(_alternative_query(schema, field, alt, expand), boost * alt.weight)
            for alt in group.alternatives
            for field, boost in config.boosts.items()
            if boost > 0 and not (alt.kind == "phrase" and len(alt.terms) < 2)
        ]
        if config.dismax_tie >= 1.0:
            groups.append(Q.boolean_query([(Occur.Should, p) for p in parts]))
        else:
            groups.append(Q.disjunction_max_query(parts, config.dismax_tie))
    if config.operator == "and" and min_should is None:
        clauses = [(Occur.Must, g) for g in groups]
    else:
        clauses = [(Occur.Should, g) for g in groups]
    terms = plan.terms
    if config.phrase_boost > 0 and len(terms) >= 2:
        phrase = Q.phrase_query(schema, "title", terms, config.phrase_slop)
        clauses.append((Occur.Should, Q.boost_query(phrase, config.phrase_boost * 5.0)))
    if min_should is not None:
        return Q.boolean_query(clauses, min_should)
    return Q.boolean_query(clauses)


def relaxed_min_should(plan: QueryPlan) -> int:
    """How many groups must still match after relaxing an AND query that found nothing."""
    n = len(plan.groups)
    return max(1, min(n - 1, math.ceil(n * 0.6)))


def filter_clauses(schema: tantivy.Schema, request: SearchRequest) -> list[tantivy.Query]:
    """Exact filters as non-scoring queries over keyword and numeric fast fields."""
    filters: list[tantivy.Query] = []
    if request.brands:
        filters.append(Q.term_set_query(schema, "brand_kw", list(request.brands)))
    if request.category_id:
        filters.append(Q.term_query(schema, "cat_ids", request.category_id))
    for key, values in request.attributes.items():
        if values:
            pairs = [f"{key}={v}" for v in values]
            filters.append(Q.term_set_query(schema, "attr_kv", pairs))
    if request.price_min is not None or request.price_max is not None:
        filters.append(
            Q.range_query(
                schema, "price", tantivy.FieldType.Integer, request.price_min, request.price_max
            )
        )
    if request.in_stock is not None:
        filters.append(Q.term_query(schema, "in_stock", request.in_stock))
    return [Q.const_score_query(f, 0.0) for f in filters]


def combine(text: tantivy.Query | None, filters: list[tantivy.Query]) -> tantivy.Query:
    """AND the scoring query with the filters (all documents when both are absent)."""
    clauses = [(Occur.Must, f) for f in filters]
    if text is not None:
        clauses.insert(0, (Occur.Must, text))
    if not clauses:
        return Q.all_query()
    if len(clauses) == 1 and text is not None:
        return text
    return Q.boolean_query(clauses)
