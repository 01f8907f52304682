"""Model-specific behaviour beyond the shared contract: fold-in, fit errors, tuning."""

from __future__ import annotations

import numpy as np
import pytest
from recs_toy import make_two_blocks

from features.interactions import Interactions
from models.evaluation.runner import evaluate_models
from models.evaluation.tuning import candidates, tune
from models.exceptions import ModelFitError
from models.factory import build_model
from models.neighbors import EASERecommender


def test_als_fold_in_matches_training_user() -> None:
    inter = make_two_blocks()
    model = build_model("als", factors=8, iterations=15, regularization=0.1).fit(inter)
    row = inter.users.index_of(4)
    seen = inter.items.to_ids(inter.matrix[row].indices)
    folded, _ = model.recommend_for_items(seen, k=5)
    trained, _ = model.recommend([4], k=5)
    assert len(set(folded) & set(trained[0])) >= 3


def test_ease_fold_in_equals_user_scores() -> None:
    inter = make_two_blocks()
    model = build_model("ease", l2=5.0).fit(inter)
    seen = inter.items.to_ids(inter.matrix[0].indices)
    assert model.recommend_for_items(seen, k=5)[0] == model.recommend([0], k=5)[0][0]


def test_nan_factors_raise_fit_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def poisoned(self: EASERecommender, interactions: Interactions) -> None:
        self.weights = np.full((self.n_items, self.n_items), np.nan, dtype=np.float32)
        self.kept = np.arange(self.n_items)

    monkeypatch.setattr(EASERecommender, "_fit", poisoned)
    with pytest.raises(ModelFitError, match="NaN"):
        build_model("ease").fit(make_two_blocks())


def test_tune_respects_trial_limit_and_picks_best() -> None:
    seen = []

    def objective(params: dict) -> float:
        seen.append(params)
        return -abs(params["l2"] - 400.0)

    result = tune("ease", objective, {"l2": 200.0}, max_trials=10, budget_seconds=60)
    assert seen[0] == {"l2": 200.0} and len(seen) == 6
    assert result.params == {"l2": 400.0}
    assert tune("popular", objective, {}).params == {}
    assert candidates({"a": [1, 2]}, {"a": 2}, seed=0)[0] == {"a": 2}


def test_tuning_never_sees_test_rows(small_ratings, monkeypatch: pytest.MonkeyPatch) -> None:
    import models.evaluation.runner as runner

    calls = []
    original = runner.score_model

    def spy(name, params, train, rows, relevant, k):
        calls.append(train.matrix.nnz)
        return original(name, params, train, rows, relevant, k)

    monkeypatch.setattr(runner, "score_model", spy)
    evaluate_models(small_ratings, ["ease"], "per-user", 0.25, max_trials=2)
    *tuning_fits, final_fit = calls
    assert tuning_fits and all(n < final_fit for n in tuning_fits)
    assert final_fit < len(small_ratings)


def test_als_fold_in_solves_implicits_least_squares() -> None:
    import scipy.sparse as sp
    from threadpoolctl import threadpool_limits

    inter = make_two_blocks()
    model = build_model("als", factors=8, iterations=5, alpha=2.0).fit(inter)
    rows = np.array([0, 3, 7])
    weights = np.array([1.0, 2.0, 0.5], dtype=np.float32)
    ours = model._fold_in_scores(rows, weights)
    with threadpool_limits(1, "blas"):
        reference = model._implicit_model()
        reference.item_factors = model.item_factors
        user_row = sp.csr_matrix((weights, (np.zeros(3, int), rows)), shape=(1, model.n_items))
        user = reference.recalculate_user(0, user_row)
    np.testing.assert_allclose(ours, model.item_factors @ user, rtol=1e-3, atol=1e-4)
