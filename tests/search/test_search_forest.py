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


def test_compiled_lightgbm_ranker_predicts_what_lightgbm_predicts():
    lightgbm = pytest.importorskip("lightgbm")
    rng = np.random.default_rng(5)
    x = rng.random((3000, 12))
    relevance = np.clip(np.rint(x[:, 0] * 2 + x[:, 1] + rng.normal(0, 0.3, 3000)), 0, 3)
    model = lightgbm.LGBMRanker(
        n_estimators=40, num_leaves=15, min_child_samples=10, verbose=-1, n_jobs=1
    ).fit(x, relevance.astype(int), group=[100] * 30)
    assert CompiledForest.from_model(model) is not None
    probe = rng.random((200, 12))
    probe[:50] = x[:50]  # training values sit exactly on split thresholds
    for rows in (probe, probe[:1]):
        np.testing.assert_allclose(predict(model, rows), model.predict(rows), rtol=0, atol=1e-12)
    # Missing values: LightGBM's own routing, not a guess.
    probe[0, 0] = np.nan
    assert np.array_equal(predict(model, probe), model.predict(probe))


def test_the_model_context_is_entered_only_when_the_model_predicts():
    rng = np.random.default_rng(6)
    x = rng.random((200, 3))
    y = x[:, 0] + x[:, 1]
    entered: list[str] = []

    class Recorder:
        def __enter__(self):
            entered.append("in")

        def __exit__(self, *exc):
            return False

    compiled = HistGradientBoostingRegressor(max_iter=5).fit(x, y)
    predict(compiled, x, Recorder)
    assert entered == []  # the compiled copy predicted; no thread limit was set up
    ridge = Ridge().fit(x, y)
    assert np.array_equal(predict(ridge, x, Recorder), ridge.predict(x))
    assert entered == ["in"]


def test_the_compiled_walk_and_the_numpy_walk_agree_exactly():
    from models.search import forest_kernel

    assert forest_kernel.kernel() is not None  # numba is a pinned dependency: the fast path
    rng = np.random.default_rng(7)
    x = rng.random((1000, 9))
    x[rng.random(x.shape) < 0.05] = np.nan
    y = np.nan_to_num(x) @ rng.random(9)
    model = HistGradientBoostingRegressor(max_iter=40, random_state=0).fit(x, y)
    compiled = CompiledForest.from_model(model)
    assert compiled is not None
    for rows in (x[:203], np.nan_to_num(x[:7]), x[:1]):  # 4-row blocks and a remainder
        missing = bool(np.isnan(rows).any())
        assert np.array_equal(compiled.predict(rows), compiled._raw_numpy(rows, missing))
        assert np.array_equal(compiled.predict(rows), model.predict(rows))
