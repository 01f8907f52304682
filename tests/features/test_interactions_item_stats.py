"""Item statistics and co-occurrence counts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from features.cooccurrence import cooccurrence_matrix, event_cooccurrence
from features.item_stats import popularity, price_bands, rating_stats, trending

DAY = 86_400.0
NOW = 1_700_000_000.0


def test_popularity_counts_distinct_users() -> None:
    frame = pd.DataFrame({"user_id": [1, 1, 1, 2, 3], "product_id": ["a", "a", "a", "a", "b"]})
    pop = popularity(frame)
    assert pop.to_dict() == {"a": 2, "b": 1}


def test_trending_prefers_rising_items() -> None:
    rows = [("steady", NOW - d * DAY) for d in range(0, 35)]  # one a day throughout
    rows += [("rising", NOW - d * DAY / 3) for d in range(0, 15)]  # burst in the last 5 days
    rows += [("fading", NOW - (10 + d) * DAY) for d in range(0, 20)]  # only older events
    frame = pd.DataFrame(rows, columns=["product_id", "ts"])
    scores = trending(frame, now=NOW)
    assert list(scores.index) == ["rising", "steady", "fading"]
    assert scores["steady"] == pytest.approx(1.0, abs=0.05)


def test_price_bands_are_quantiles() -> None:
    prices = pd.Series([1.0, 2.0, 3.0, 4.0, np.nan], index=list("abcde"))
    bands = price_bands(prices, n_bands=2)
    assert bands.to_dict() == {"a": 0, "b": 0, "c": 1, "d": 1, "e": -1}


def test_rating_stats_shrinks_small_counts() -> None:
    reviews = pd.DataFrame({"product_id": ["a"] + ["b"] * 10, "rating": [5] + [4] * 10})
    stats = rating_stats(reviews, prior_count=5.0)
    assert stats.loc["a", "rating_count"] == 1 and stats.loc["a", "rating_avg"] == 5
    assert stats.loc["a", "rating_shrunk"] < stats.loc["a", "rating_avg"]


def test_cooccurrence_counts_users_once_and_no_diagonal() -> None:
    matrix = sp.csr_matrix(np.array([[3, 1, 0], [1, 1, 1], [0, 0, 1]], dtype=float))
    co = cooccurrence_matrix(matrix).toarray()
    np.testing.assert_array_equal(co, [[0, 2, 1], [2, 0, 1], [1, 1, 0]])
    assert cooccurrence_matrix(matrix, min_count=2).nnz == 2


def test_event_cooccurrence_co_purchase() -> None:
    frame = pd.DataFrame(
        {
            "user_id": [1, 1, 2, 2, 2],
            "product_id": ["a", "b", "a", "b", "c"],
            "event_type": ["purchase", "purchase", "purchase", "purchase", "product_view"],
        }
    )
    co, items = event_cooccurrence(frame, ["purchase"])
    assert items.ids == ["a", "b"]
    assert co[items.index_of("a"), items.index_of("b")] == 2
