"""The compiled ranker predicts exactly what scikit-learn predicts, or defers to it."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.linear_model import Ridge

from models.search.forest import CompiledForest, predict


@pytest.mark.parametrize("loss", ["squared_error", "poisson"])
def test_compiled_predictions_equal_sklearn(loss):
    rng = np.random.default_rng(3)
    x = rng.random((2000, 17))
    x[rng.random(x.shape) < 0.03] = np.nan  # missing values learn a direction per split
    y = np.exp(np.sin(np.nan_to_num(x) @ rng.random(17) * 5))
    model = HistGradientBoostingRegressor(
        loss=loss, max_iter=60, max_leaf_nodes=15, min_samples_leaf=10, random_state=0
    ).fit(x, y)
    assert CompiledForest.from_model(model) is not None
    probe = rng.random((200, 17))
    probe[:50] = x[:50]  # training values sit exactly on split thresholds
    probe[rng.random(probe.shape) < 0.05] = np.nan
    for rows in (probe, np.nan_to_num(probe), probe[:1]):
        assert np.array_equal(predict(model, rows), model.predict(rows))


def test_other_models_and_categorical_splits_fall_back():
    rng = np.random.default_rng(4)
    x = rng.random((300, 3))
    x[:, 0] = rng.integers(0, 4, 300)
    y = x[:, 0] + x[:, 1]
    categorical = HistGradientBoostingRegressor(categorical_features=[0], max_iter=10).fit(x, y)
    assert CompiledForest.from_model(categorical) is None
    assert np.array_equal(predict(categorical, x), categorical.predict(x))
    ridge = Ridge().fit(x, y)
    assert np.array_equal(predict(ridge, x), ridge.predict(x))
