"""The reranker reorders full matches and recall fill separately (``tiered_order``)."""

import numpy as np

from models.search.tantivy_backend import tiered_order


def test_fill_never_jumps_ahead_of_a_full_match() -> None:
    predicted = np.asarray([0.1, 0.5, 0.3, 0.9, 0.2])
    # Rows 0-2 match every word, rows 3-4 are recall fill (the best-scored row among them).
    assert tiered_order(predicted, 3).tolist() == [1, 2, 0, 3, 4]


def test_one_tier_is_a_plain_stable_sort() -> None:
    predicted = np.asarray([0.2, 0.7, 0.7, 0.1])
    assert tiered_order(predicted, 4).tolist() == [1, 2, 0, 3]
    assert tiered_order(predicted, 0).tolist() == [1, 2, 0, 3]
