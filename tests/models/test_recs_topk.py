"""Exact top-k selection."""

from __future__ import annotations

import time

import numpy as np
import pytest

from models.topk import drop_excluded, topk_rows


@pytest.mark.parametrize("k", [0, 1, 5, 20, 50])
def test_topk_matches_full_sort(k: int) -> None:
    rng = np.random.default_rng(k)
    scores = rng.standard_normal((4, 20)).astype(np.float32)
    idx, val = topk_rows(scores, k)
    expected = -np.sort(-scores, axis=1)[:, : min(k, 20)]
    np.testing.assert_array_equal(val, expected)
    np.testing.assert_array_equal(np.take_along_axis(scores, idx, axis=1), val)


def test_one_dimensional_and_excluded() -> None:
    scores = np.array([0.1, -np.inf, 0.9, 0.5], dtype=np.float32)
    idx, val = topk_rows(scores, 4)
    assert list(idx[:3]) == [2, 3, 0]
    kept_idx, kept_val = drop_excluded(idx, val)
    assert list(kept_idx) == [2, 3, 0] and np.isfinite(kept_val).all()


def test_topk_on_rows_of_ties_keeps_the_winners() -> None:
    # Sparse models (item-to-item, RP3beta) score most of a row 0.
    rng = np.random.default_rng(1)
    scores = np.zeros((6, 3000), dtype=np.float32)
    scores[:, :4] = [0.4, 0.9, 0.1, 0.7]
    scores[1, :] = 0.0
    scores[2, 10:20] = -np.inf
    idx, val = topk_rows(scores, 10)
    assert list(idx[0, :4]) == [1, 3, 0, 2] and list(val[0, 4:]) == [0.0] * 6
    assert list(val[1]) == [0.0] * 10
    assert set(idx[2, 4:]).isdisjoint(range(10, 20))
    ints = rng.integers(0, 5, size=(3, 50)).astype(np.uint8)
    _, int_val = topk_rows(ints, 5)
    np.testing.assert_array_equal(int_val, -np.sort(-ints.astype(int), axis=1)[:, :5])


def test_topk_on_sparse_rows_is_not_slower_than_on_dense_rows() -> None:
    # numpy's argpartition with kth = n - k took ~14x longer on tie-heavy rows: Last.fm's
    # item-to-item scoring spent 0.9 s per 512-user batch in it (docs/models.md).
    rng = np.random.default_rng(0)
    dense = rng.random((256, 20_000), dtype=np.float32)
    sparse = np.where(rng.random(dense.shape) < 0.02, dense, 0.0).astype(np.float32)

    def best_cpu(scores: np.ndarray) -> float:
        times = []
        for _ in range(3):
            start = time.process_time()
            topk_rows(scores, 10)
            times.append(time.process_time() - start)
        return min(times)

    assert best_cpu(sparse) < 4 * best_cpu(dense) + 0.02


@pytest.mark.parametrize("seed", range(6))
def test_topk_matches_full_sort_on_wide_rows_with_ties_and_exclusions(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 5000
    scores = rng.standard_normal((40, n)).astype(np.float32)
    scores[5:15] = np.where(rng.random((10, n)) < 0.01, scores[5:15], 0.0)  # sparse rows
    scores[15:20] = np.round(scores[15:20])  # heavy ties
    scores[20:25, : n - 7] = -np.inf  # fewer finite entries than k
    scores[25:30] = np.where(rng.random((5, n)) < 0.5, -np.inf, scores[25:30])
    scores[30] = 0.0
    for k in (1, 10, 50):
        idx, val = topk_rows(scores, k)
        np.testing.assert_array_equal(val, -np.sort(-scores, axis=1)[:, :k])
        np.testing.assert_array_equal(np.take_along_axis(scores, idx, axis=1), val)
        assert all(len(set(row)) == k for row in idx)


def test_ties_at_the_cut_go_to_the_lowest_positions() -> None:
    rows = np.zeros((3, 4000), dtype=np.float32)
    rows[0, [3900, 17]] = 1.0  # two winners, then only zeros: the first zeros fill up
    rows[1, :] = np.tile(np.arange(8, dtype=np.float32), 500)  # ties everywhere
    rows[2] = np.random.default_rng(0).random(4000, dtype=np.float32)
    rows[2, [5, 2000, 3999]] = 2.0
    idx, _ = topk_rows(rows, 5)
    assert list(idx[0]) == [17, 3900, 0, 1, 2]
    assert list(idx[1]) == [7, 15, 23, 31, 39]
    assert list(idx[2, :3]) == [5, 2000, 3999]
    small, _ = topk_rows(rows[:, :30], 5)  # too few blocks for the pre-pass: same rule
    assert list(small[0]) == [17, 0, 1, 2, 3]
