"""Which title words go with which query words, learned from graded judgments.

Shoppers' words and the catalog's differ ("l bracket" is sold as "angle", "sheetrock" as
"drywall"), and some title words mark the products raters keep preferring for a query word
whatever else matches. From the judged queries' candidates the ranker reranks, each (query term,
title term) pair gets the log lift of "judged relevant" when the title has that term, over the
query term's base rate, shrunk towards no lift by ``SMOOTHING`` pseudo-candidates. A candidate's
feature is the sum of its title terms' lifts over the query's terms (naive-Bayes log-odds), and
the share of the query's terms the table knows. Learned per catalog by a command
(``storeloop search train-ranker``) and carried in the ranker artifact, never typed in.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Sequence

import numpy as np

ASSOCIATION_FEATURES = ("term_association", "term_association_known")
#: Pseudo-candidates at the query term's base rate behind every pair's lift.
SMOOTHING = 5.0
#: Pairs seen on fewer candidates, or with a smaller lift, are not kept.
MIN_SUPPORT = 3
MIN_LIFT = 0.05


class TermAssociation:
    """Lift per (query term, title term) pair."""

    def __init__(self, weights: dict[str, dict[str, float]] | None = None) -> None:
        self.weights = weights or {}
        # Per query term, its lifts as (token ids, values) of one vocabulary (``_encoded``).
        self._cache: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._cache_vocab: dict[str, int] | None = None
        self._cache_size = -1

    @classmethod
    def fit(
        cls,
        query_terms: Sequence[Sequence[str]],
        title_terms: Sequence[Sequence[Sequence[str]]],
        relevant: Sequence[np.ndarray],
    ) -> TermAssociation:
        """One entry per query: its terms, its candidates' title terms, which are relevant."""
        pair_all: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        pair_hit: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        base_all: dict[str, float] = defaultdict(float)
        base_hit: dict[str, float] = defaultdict(float)
        for terms, titles, labels in zip(query_terms, title_terms, relevant, strict=True):
            uniq = set(terms)
            hits = int(np.count_nonzero(labels))
            for q in uniq:
                base_all[q] += len(titles)
                base_hit[q] += hits
            for title, hit in zip(titles, np.asarray(labels, dtype=bool).tolist(), strict=True):
                words = set(title)
                for q in uniq:
                    counts = pair_all[q]
                    for t in words:
                        counts[t] += 1.0
                    if hit:
                        found = pair_hit[q]
                        for t in words:
                            found[t] += 1.0
        weights: dict[str, dict[str, float]] = {}
        for q, counts in pair_all.items():
            rate = (base_hit[q] + 0.5) / (base_all[q] + 1.0)
            found = pair_hit.get(q, {})
            kept = {}
            for t, n in counts.items():
                if n < MIN_SUPPORT:
                    continue
                lift = math.log((found.get(t, 0.0) + SMOOTHING * rate) / (n + SMOOTHING) / rate)
                if abs(lift) >= MIN_LIFT:
                    kept[t] = round(lift, 4)
            if kept:
                weights[q] = kept
        return cls(weights)

    def scores(self, terms: Sequence[str], titles: Sequence[Sequence[str]]) -> np.ndarray:
        """``ASSOCIATION_FEATURES`` for each candidate title of one query."""
        out = np.zeros((len(titles), len(ASSOCIATION_FEATURES)))
        tables = [self.weights[q] for q in dict.fromkeys(terms) if q in self.weights]
        if not tables or not len(titles):
            return out
        # One table for the whole query (each title word's lifts summed over the query's
        # terms): the rerank scores 200 titles per search, so one lookup per word, not one
        # per word and query term.
        merged: dict[str, float] = {}
        for table in tables:
            for t, lift in table.items():
                merged[t] = merged.get(t, 0.0) + lift
        get = merged.get
        for i, title in enumerate(titles):
            out[i, 0] = sum(get(t, 0.0) for t in set(title))
        out[:, 1] = len(tables) / len(dict.fromkeys(terms))
        return out

    def scores_encoded(
        self,
        terms: Sequence[str],
        owner: np.ndarray,
        token_ids: np.ndarray,
        n: int,
        token_id: dict[str, int],
    ) -> np.ndarray:
        """``scores`` for ``n`` titles given as integer tokens: ``token_ids[i]`` belongs to
        title ``owner[i]``, ids from ``token_id``. Same values as ``scores`` (up to float
        summation order), with numpy in place of a Python loop over every title's words."""
        out = np.zeros((n, len(ASSOCIATION_FEATURES)))
        tables = [self.weights[q] for q in dict.fromkeys(terms) if q in self.weights]
        if not tables or not n:
            return out
        known, values = self._encoded(
            [q for q in dict.fromkeys(terms) if q in self.weights], token_id
        )
        if len(known) and len(token_ids):
            at = np.minimum(np.searchsorted(known, token_ids), len(known) - 1)
            hit = known[at] == token_ids
            # Each distinct word of a title counts once, as in ``scores``.
            width = int(token_ids.max()) + 1
            pairs = np.unique(owner[hit] * width + token_ids[hit])
            rows, words = pairs // width, pairs % width
            weights = values[np.searchsorted(known, words)]
            out[:, 0] = np.bincount(rows, weights=weights, minlength=n)
        out[:, 1] = len(tables) / len(dict.fromkeys(terms))
        return out

    def _encoded(self, terms: list[str], token_id: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
        """(sorted token ids, summed lifts) over ``terms``' tables; per term cached while
        ``token_id`` is the same vocabulary at the same size (it only grows, so a word a
        later append adds is picked up; the cache holds the dict, so its id is not reused)."""
        if self._cache_vocab is not token_id or self._cache_size != len(token_id):
            self._cache, self._cache_vocab, self._cache_size = {}, token_id, len(token_id)
        parts = []
        for q in terms:
            part = self._cache.get(q)
            if part is None:
                pairs = sorted(
                    (token_id[t], w) for t, w in self.weights[q].items() if t in token_id
                )
                part = (
                    np.asarray([i for i, _ in pairs], dtype=np.int64),
                    np.asarray([w for _, w in pairs], dtype=np.float64),
                )
                self._cache[q] = part
            parts.append(part)
        if len(parts) == 1:
            return parts[0]
        ids = np.concatenate([p[0] for p in parts])
        known, inverse = np.unique(ids, return_inverse=True)
        values = np.bincount(inverse, weights=np.concatenate([p[1] for p in parts]))
        return known, values

    def to_json(self) -> str:
        """Serialise for the ranker artifact."""
        return json.dumps(self.weights, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> TermAssociation:
        """Inverse of ``to_json``."""
        return cls({q: dict(t) for q, t in json.loads(text).items()})
