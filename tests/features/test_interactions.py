"""Interaction matrices from shop events: weights, decay, de-duplication, id maps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from features.id_map import IdMap
from features.interactions import (
    Interactions,
    build_interactions,
    decay_factor,
    interactions_from_triples,
)

DAY = 86_400.0
T0 = 1_700_000_000.0


def events(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["user_id", "product_id", "event_type", "ts"])


def value(inter: Interactions, user, item) -> float:
    return float(inter.matrix[inter.users.index_of(user), inter.items.index_of(item)])


def test_event_type_weights_order() -> None:
    frame = events(
        [
            ("u", "view", "product_view", T0),
            ("u", "cart", "add_to_cart", T0),
            ("u", "buy", "purchase", T0),
        ]
    )
    inter = build_interactions(frame, half_life_days=None)
    assert value(inter, "u", "view") < value(inter, "u", "cart") < value(inter, "u", "buy")
    assert value(inter, "u", "buy") == 8.0


def test_custom_weights_and_unknown_types_dropped() -> None:
    frame = events([("u", "a", "product_view", T0), ("u", "b", "wishlist", T0)])
    inter = build_interactions(frame, weights={"product_view": 3.0}, half_life_days=None)
    assert value(inter, "u", "a") == 3.0
    assert "b" not in inter.items


def test_half_life_decay() -> None:
    frame = events([("u", "old", "purchase", T0 - 30 * DAY), ("u", "new", "purchase", T0)])
    inter = build_interactions(frame, half_life_days=30.0, now=T0)
    assert value(inter, "u", "new") == pytest.approx(8.0)
    assert value(inter, "u", "old") == pytest.approx(4.0)
    np.testing.assert_allclose(decay_factor(np.array([0.0, 10 * DAY]), 10.0), [1.0, 0.5])


def test_duplicates_count_once_but_types_add_up() -> None:
    frame = events(
        [("u", "p", "product_view", T0)] * 10
        + [("u", "p", "purchase", T0), ("u", "p", "purchase", T0 - DAY)]
    )
    inter = build_interactions(frame, half_life_days=None)
    assert value(inter, "u", "p") == 1.0 + 8.0
    assert inter.purchases.sum() == 2
    assert inter.timestamps[0, 0] == T0


def test_accepts_pyarrow_and_datetimes() -> None:
    frame = events([("u1", 1, "purchase", pd.Timestamp("2026-01-01", tz="UTC"))])
    inter = build_interactions(pa.Table.from_pandas(frame))
    assert inter.shape == (1, 1) and value(inter, "u1", 1) == 8.0


def test_reuses_given_id_maps() -> None:
    frame = events([("a", 1, "purchase", T0), ("zz", 9, "purchase", T0)])
    inter = build_interactions(frame, users=IdMap(["a", "b"]), items=IdMap([1, 2]))
    assert inter.shape == (2, 2) and inter.matrix.nnz == 1


def test_missing_columns_rejected() -> None:
    with pytest.raises(ValueError, match="ts"):
        build_interactions(pd.DataFrame({"user_id": [1], "product_id": [1], "event_type": ["x"]}))


def test_id_map_is_stable_and_round_trips(tmp_path: Path) -> None:
    a = IdMap.from_values([3, 1, 2, 3])
    b = IdMap.from_values([2, 3, 1])
    assert a == b and a.ids == [1, 2, 3]
    assert a.index_of(np.int64(2)) == 1 and a.index_of(42) == -1
    assert list(a.to_index([3, 99])) == [2, -1] and a.to_ids([0, 2]) == [1, 3]
    a.save(tmp_path / "m.json")
    assert IdMap.load(tmp_path / "m.json") == a
    with pytest.raises(ValueError):
        IdMap([1, 1])


def test_interactions_save_load(tmp_path: Path) -> None:
    inter = interactions_from_triples(np.array(["x", "y"]), np.array([5, 6]), np.array([2.0, 3.0]))
    inter.save(tmp_path)
    loaded = Interactions.load(tmp_path)
    assert loaded.users == inter.users and loaded.items == inter.items
    assert (loaded.matrix != inter.matrix).nnz == 0


def test_triples_keep_latest_duplicate() -> None:
    inter = interactions_from_triples(
        np.array([1, 1]), np.array([7, 7]), np.array([2.0, 5.0]), np.array([20.0, 10.0])
    )
    assert inter.matrix[0, 0] == 2.0
