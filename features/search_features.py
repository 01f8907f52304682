"""Learning-to-rank features for (query, product) pairs, shared by training and serving.

One function computes the matrix from plain arrays, so the model is trained on exactly the
numbers it sees online. Inputs are analysed (stemmed) terms; no search-engine objects leak in.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np

FEATURE_NAMES: tuple[str, ...] = (
    "retrieval_score",
    "retrieval_score_rel",
    "title_coverage",
    "title_fuzzy_coverage",
    "title_phrase",
    "title_first_position",
    "brand_match",
    "category_coverage",
    "log_popularity",
    "ctr_prior",
    "conversion_prior",
    "price_percentile",
    "log_price",
    "rating",
    "log_age_days",
    "in_stock",
    "title_length",
)


@lru_cache(maxsize=500_000)
def _within(a: str, b: str, budget: int) -> bool:
    """True when ``a`` and ``b`` differ by at most ``budget`` edits (capped DP, cached)."""
    if a == b:
        return True
    if budget <= 0 or abs(len(a) - len(b)) > budget:
        return False
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        if min(cur) > budget:
            return False
        prev = cur
    return prev[-1] <= budget


def _budget(term: str) -> int:
    return 0 if len(term) < 5 else (1 if len(term) <= 8 else 2)


def _contains_phrase(tokens: Sequence[str], phrase: Sequence[str]) -> bool:
    n = len(phrase)
    if n < 2:
        return False
    return any(tuple(tokens[i : i + n]) == tuple(phrase) for i in range(len(tokens) - n + 1))


def search_features(
    query_terms: Sequence[str],
    scores: np.ndarray,
    title_terms: Sequence[Sequence[str]],
    brand_terms: Sequence[Sequence[str]],
    category_terms: Sequence[Sequence[str]],
    popularity: np.ndarray,
    ctr_prior: np.ndarray,
    conversion_prior: np.ndarray,
    price: np.ndarray,
    rating: np.ndarray,
    created_at: np.ndarray,
    in_stock: np.ndarray,
    now: float,
) -> np.ndarray:
    """Feature matrix (candidates × ``FEATURE_NAMES``) for one query's candidate set.

    ``price_percentile`` is relative to the candidate set, which is why features are computed per
    query rather than per product.
    """
    n = len(scores)
    out = np.zeros((n, len(FEATURE_NAMES)), dtype=np.float64)
    if n == 0:
        return out
    scores = np.asarray(scores, dtype=np.float64)
    q = list(dict.fromkeys(query_terms))
    nq = max(len(q), 1)
    out[:, 0] = scores
    top = scores.max()
    out[:, 1] = scores / top if top > 0 else 0.0
    for i in range(n):
        title = title_terms[i]
        tset = set(title)
        exact = [t in tset for t in q]
        fuzzy = sum(
            1
            for t, hit in zip(q, exact, strict=True)
            if hit or any(_within(t, w, _budget(t)) for w in tset)
        )
        out[i, 2] = sum(exact) / nq
        out[i, 3] = fuzzy / nq
        out[i, 4] = float(_contains_phrase(title, query_terms))
        first = min((title.index(t) for t in q if t in tset), default=len(title) + 1)
        out[i, 5] = 1.0 / (1.0 + first)
        out[i, 6] = float(bool(set(brand_terms[i]) & set(q)))
        cset = set(category_terms[i])
        out[i, 7] = sum(t in cset for t in q) / nq
        out[i, 16] = len(title)
    out[:, 8] = np.log1p(np.maximum(np.asarray(popularity, dtype=np.float64), 0))
    out[:, 9] = ctr_prior
    out[:, 10] = conversion_prior
    price = np.asarray(price, dtype=np.float64)
    out[:, 11] = (np.argsort(np.argsort(price, kind="stable"), kind="stable") + 0.5) / n
    out[:, 12] = np.log1p(np.maximum(price, 0))
    out[:, 13] = rating
    age_days = np.maximum(now - np.asarray(created_at, dtype=np.float64), 0) / 86_400.0
    out[:, 14] = np.log1p(age_days)
    out[:, 15] = np.asarray(in_stock, dtype=np.float64)
    return out
