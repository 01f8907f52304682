"""Which category a query is after, learned from what searchers clicked and bought.

BM25 only sees words. The words of "backpack" match school backpacks and hiking backpacks
alike, and "urbana slides" matches Urbana jeans (brand) as well as other brands' slides (noun);
the shoppers who type the query show which of those they meant by what they click and buy. The
ranker gets, for every candidate, the share of the query's position-debiased evidence that fell
into the candidate's leaf category and parent category, and how much evidence there is.

Queries seen too rarely, or never, borrow from their words: each term has its own distribution
over categories, and a query's is their normalised product (naive Bayes over terms), which is
the prior the query's own counts are shrunk towards. Everything here is plain Python over
analysed terms and category paths, so training and serving compute the same numbers.
"""

from __future__ import annotations

import json
import math
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: Weight of the word-level prior against a query's own evidence (pseudo-observations).
QUERY_SMOOTHING = 2.0
#: Pseudo-observations of the uniform prior behind each term's distribution.
TERM_SMOOTHING = 1.0
INTENT_FEATURES = ("intent_category_share", "intent_parent_share", "intent_evidence")
_SEPARATORS = re.compile(r"\s*[>/]\s*")


def category_key(path: str) -> str:
    """``"Electronics > Audio > Headphones"`` or ``"electronics/audio/headphones"`` → the latter.

    Index documents and warehouse rows spell category paths both ways; the intent tables must
    match either.
    """
    parts = [p.strip().lower() for p in _SEPARATORS.split(path or "") if p.strip()]
    return "/".join("-".join(p.split()) for p in parts)


def parent_key(leaf: str) -> str:
    """The parent of a category key ('' for a top-level category)."""
    return leaf.rpartition("/")[0]


def query_key(terms: Sequence[str]) -> str:
    """The lookup key of a query: its analysed terms (so case and plurals do not matter)."""
    return " ".join(terms)


@dataclass(slots=True)
class QueryIntent:
    """Evidence per (query, leaf category) and per (term, leaf category)."""

    queries: dict[str, dict[str, float]] = field(default_factory=dict)
    terms: dict[str, dict[str, float]] = field(default_factory=dict)
    categories: list[str] = field(default_factory=list)

    @classmethod
    def fit(
        cls,
        query_terms: Sequence[Sequence[str]],
        categories: Sequence[str],
        evidence: Iterable[float],
        universe: Iterable[str] = (),
    ) -> QueryIntent:
        """Sum evidence per query and per term; one row per impression.

        ``evidence`` is what the impression says about the shopper's intent, e.g. clicks, carts
        and purchases divided by the probability that the position was looked at (so results
        that happened to be shown first do not claim the query). ``universe`` lists categories
        that may be ranked even if no impression fell into them.
        """
        queries: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        terms: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        seen = {category_key(c) for c in universe}
        for words, category, weight in zip(query_terms, categories, evidence, strict=True):
            leaf = category_key(category)
            seen.add(leaf)
            if weight <= 0 or not words:
                continue
            queries[query_key(words)][leaf] += float(weight)
            for term in set(words):
                terms[term][leaf] += float(weight)
        return cls(
            queries={q: dict(c) for q, c in queries.items()},
            terms={t: dict(c) for t, c in terms.items()},
            categories=sorted(c for c in seen if c),
        )

    def distribution(self, terms: Sequence[str]) -> tuple[dict[str, float], float]:
        """P(leaf | query) over known categories, and the query's own evidence."""
        n = len(self.categories)
        if not n or not terms:
            return {}, 0.0
        log_p = np.zeros(n)
        for term in dict.fromkeys(terms):
            counts = self.terms.get(term, {})
            total = sum(counts.values())
            row = np.array([counts.get(c, 0.0) for c in self.categories])
            log_p += np.log((row + TERM_SMOOTHING / n) / (total + TERM_SMOOTHING))
        prior = np.exp(log_p - log_p.max())
        prior /= prior.sum()
        own = self.queries.get(query_key(terms), {})
        mass = sum(own.values())
        row = np.array([own.get(c, 0.0) for c in self.categories])
        share = (row + QUERY_SMOOTHING * prior) / (mass + QUERY_SMOOTHING)
        return dict(zip(self.categories, share.tolist(), strict=True)), mass

    def scores(self, terms: Sequence[str], category_paths: Sequence[str]) -> np.ndarray:
        """``INTENT_FEATURES`` for each candidate (rows) of one query."""
        out = np.zeros((len(category_paths), len(INTENT_FEATURES)))
        dist, mass = self.distribution(terms)
        if not dist:
            return out
        parents: dict[str, float] = defaultdict(float)
        for leaf, share in dist.items():
            parents[parent_key(leaf)] += share
        for i, path in enumerate(category_paths):
            leaf = category_key(path)
            out[i, 0] = dist.get(leaf, 0.0)
            out[i, 1] = parents.get(parent_key(leaf), 0.0)
        out[:, 2] = math.log1p(mass)
        return out

    def to_json(self) -> str:
        """Serialise for the ranker artifact (plain JSON, no pickle)."""
        return json.dumps(
            {"queries": self.queries, "terms": self.terms, "categories": self.categories},
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> QueryIntent:
        """Inverse of ``to_json``."""
        data: Mapping[str, Any] = json.loads(text)
        return cls(
            queries={q: dict(c) for q, c in data["queries"].items()},
            terms={t: dict(c) for t, c in data["terms"].items()},
            categories=list(data["categories"]),
        )
