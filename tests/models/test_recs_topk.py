"""Exact top-k selection."""

from __future__ import annotations

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
