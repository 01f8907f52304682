"""Train/test splits: no leakage, per-group stratification, seeded determinism."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.evaluation.splits import split, stratified_split, time_split


def test_time_split_has_no_future_in_train(small_ratings: pd.DataFrame) -> None:
    train, test = time_split(small_ratings, 0.25)
    assert train["timestamp"].max() < test["timestamp"].min()
    assert len(test) / len(small_ratings) == pytest.approx(0.25, abs=0.02)
    assert len(train) + len(test) == len(small_ratings)


def test_per_user_split_is_stratified(small_ratings: pd.DataFrame) -> None:
    train, test = split(small_ratings, "per-user", 0.25, seed=3)
    sizes = small_ratings.groupby("user").size()
    test_sizes = test.groupby("user").size().reindex(sizes.index, fill_value=0)
    expected = np.minimum(np.rint(sizes * 0.25), sizes - 1)
    assert (test_sizes == expected).all()
    assert set(train["user"]) == set(small_ratings["user"])
    pairs = set(zip(train["user"], train["item"], strict=True))
    assert not pairs & set(zip(test["user"], test["item"], strict=True))


def test_per_item_split_keeps_every_item_in_train(small_ratings: pd.DataFrame) -> None:
    train, test = split(small_ratings, "per-item", 0.25, seed=3)
    assert set(train["item"]) == set(small_ratings["item"])
    assert len(test) > 0


def test_seeded_determinism(small_ratings: pd.DataFrame) -> None:
    a = stratified_split(small_ratings, "user", 0.25, seed=7)[1]
    b = stratified_split(small_ratings, "user", 0.25, seed=7)[1]
    c = stratified_split(small_ratings, "user", 0.25, seed=8)[1]
    pd.testing.assert_frame_equal(a, b)
    assert not a.index.equals(c.index)


def test_single_row_user_stays_in_train() -> None:
    frame = pd.DataFrame({"user": [1, 2, 2, 2, 2], "item": [1, 1, 2, 3, 4], "timestamp": range(5)})
    train, test = stratified_split(frame, "user", 0.5, seed=0)
    assert (train["user"] == 1).sum() == 1
    assert (test["user"] == 2).sum() == 2


def test_bad_arguments() -> None:
    frame = pd.DataFrame({"user": [1], "item": [1], "timestamp": [0]})
    with pytest.raises(ValueError):
        split(frame, "random", 0.25)
    with pytest.raises(ValueError):
        split(frame, "per-user", 1.5)
