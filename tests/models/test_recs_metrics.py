"""Ranking metrics on hand-computed examples."""

from __future__ import annotations

import math

import numpy as np
import pytest

from models.evaluation.metrics import (
    catalog_coverage,
    hit_rate_at_k,
    map_at_k,
    ndcg_at_k,
    ndcg_graded,
    precision_at_k,
    ranking_metrics,
    recall_at_k,
)

# User A: hits at ranks 1 and 3 of 3, 4 relevant. User B: one hit at rank 2, 1 relevant.
# User C has no relevant items and must be ignored by every ranking metric.
RECS = np.array([[1, 2, 3], [4, 5, 6], [7, 8, 9]])
RELEVANT = [{1, 3, 10, 11}, {5}, set()]


def test_precision() -> None:
    assert precision_at_k(RECS, RELEVANT, 3) == pytest.approx((2 / 3 + 1 / 3) / 2)


def test_recall() -> None:
    assert recall_at_k(RECS, RELEVANT, 3) == pytest.approx((2 / 4 + 1 / 1) / 2)


def test_ndcg() -> None:
    a = (1 + 1 / math.log2(4)) / (1 + 1 / math.log2(3) + 1 / math.log2(4))
    b = (1 / math.log2(3)) / 1.0
    assert ndcg_at_k(RECS, RELEVANT, 3) == pytest.approx((a + b) / 2)


def test_map() -> None:
    a = (1 / 1 + 2 / 3) / min(4, 3)
    b = (1 / 2) / 1
    assert map_at_k(RECS, RELEVANT, 3) == pytest.approx((a + b) / 2)


def test_hit_rate_and_coverage() -> None:
    assert hit_rate_at_k(RECS, RELEVANT, 3) == 1.0
    assert catalog_coverage(RECS, 18) == pytest.approx(9 / 18)
    assert catalog_coverage(np.array([[1, -1], [1, -1]]), 4) == 0.25


def test_cutoff_below_list_length() -> None:
    assert precision_at_k(RECS, RELEVANT, 1) == pytest.approx((1 + 0) / 2)
    assert ndcg_at_k(RECS, RELEVANT, 1) == pytest.approx(0.5)


def test_padding_counts_as_miss() -> None:
    recs = np.array([[1, -1, -1]])
    assert precision_at_k(recs, [{1, 2}], 3) == pytest.approx(1 / 3)
    assert ndcg_at_k(recs, [{1, 2}], 3) == pytest.approx(1 / (1 + 1 / math.log2(3)))


def test_perfect_ranking_scores_one() -> None:
    recs = np.array([[1, 2, 3]])
    metrics = ranking_metrics(recs, [{1, 2, 3}], 3, n_items=3)
    assert metrics["ndcg@3"] == pytest.approx(1.0)
    assert metrics["map@3"] == pytest.approx(1.0)
    assert metrics["precision@3"] == pytest.approx(1.0)
    assert metrics["coverage"] == pytest.approx(1.0)


def test_no_relevant_users_gives_zero() -> None:
    assert ndcg_at_k(RECS, [set(), set(), set()], 3) == 0.0


def test_graded_ndcg() -> None:
    recs = np.array([[1, 2, 3]])
    grades = [{1: 1.0, 2: 0.0, 3: 2.0}]
    dcg = 1 / math.log2(2) + 0 + 3 / math.log2(4)
    idcg = 3 / math.log2(2) + 1 / math.log2(3)
    assert ndcg_graded(recs, grades, 3) == pytest.approx(dcg / idcg)
    assert ndcg_graded(np.array([[3, 1, 2]]), grades, 3) == pytest.approx(1.0)
