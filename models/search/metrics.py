"""Ranking metrics over graded judgments (unjudged products count as grade 0)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np


def dcg(gains: Sequence[float], k: int) -> float:
    """Discounted cumulative gain with exponential gain ``2^g - 1``."""
    g = np.asarray(gains[:k], dtype=np.float64)
    if g.size == 0:
        return 0.0
    return float(np.sum((2.0**g - 1.0) / np.log2(np.arange(2, g.size + 2))))


def ndcg_at_k(ranked: Sequence[str], grades: Mapping[str, float], k: int) -> float:
    """nDCG@k of a ranked id list; 0 when nothing is relevant."""
    ideal = dcg(sorted((g for g in grades.values() if g > 0), reverse=True), k)
    if ideal == 0:
        return 0.0
    return dcg([grades.get(pid, 0.0) for pid in ranked], k) / ideal


def reciprocal_rank(ranked: Sequence[str], grades: Mapping[str, float]) -> float:
    """1/rank of the first product with a positive grade."""
    for i, pid in enumerate(ranked, 1):
        if grades.get(pid, 0.0) > 0:
            return 1.0 / i
    return 0.0


def precision_at_k(ranked: Sequence[str], grades: Mapping[str, float], k: int) -> float:
    """Share of the top k positions holding a positively graded product."""
    return sum(1 for pid in ranked[:k] if grades.get(pid, 0.0) > 0) / k


def ndcg_scores(labels: np.ndarray, scores: np.ndarray, k: int) -> float:
    """nDCG@k of ordering items by ``scores`` against numeric ``labels`` (for LTR gates)."""
    order = np.argsort(-np.asarray(scores), kind="stable")
    labels = np.asarray(labels, dtype=np.float64)
    ideal = dcg(sorted(labels[labels > 0], reverse=True), k)
    return 0.0 if ideal == 0 else dcg(list(labels[order]), k) / ideal
