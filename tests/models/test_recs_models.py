"""Model-specific behaviour beyond the shared contract: fold-in, fit errors, tuning."""

from __future__ import annotations

import numpy as np
import pytest
from recs_toy import make_two_blocks

from features.interactions import Interactions
from models.ease import EASERecommender
from models.evaluation.runner import evaluate_models
from models.evaluation.tuning import SEARCH_SPACES, candidates, tune
from models.exceptions import ModelFitError
from models.factory import build_model


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

    # EASE's λ trials share one cached factorisation: a line search along λ from the default,
    # for each weighting, not bounded by max_trials.
    result = tune("ease", objective, {"l2": 200.0, "weighting": "binary"}, max_trials=3)
    assert seen[0] == {"l2": 200.0, "weighting": "binary"}
    assert result.params["l2"] == 400.0
    assert len(seen) > 3
    assert len(seen) < len(SEARCH_SPACES["ease"]["l2"]) * len(SEARCH_SPACES["ease"]["weighting"])
    assert tune("popular", objective, {}).params == {}
    assert candidates({"a": [1, 2]}, {"a": 2}, seed=0)[0] == {"a": 2}


def test_line_search_finds_the_peak_of_each_combination() -> None:
    seen: list[dict] = []
    peaks = {"binary": 50.0, "log": 1600.0}

    def objective(params: dict) -> float:
        seen.append(params)
        bonus = 0.5 if params["weighting"] == "log" else 0.0
        return bonus - abs(np.log(params["l2"] / peaks[params["weighting"]]))

    result = tune("ease", objective, {"l2": 200.0, "weighting": "binary"})
    assert result.params == {"l2": 1600.0, "weighting": "log"}
    binary = [p["l2"] for p in seen if p["weighting"] == "binary"]
    assert binary == [200.0, 100.0, 50.0, 25.0]  # down while it improves, never up
    log = [p["l2"] for p in seen if p["weighting"] == "log"]
    assert log == [200.0, 100.0, 50.0, 400.0, 800.0, 1600.0, 3200.0]


def test_line_search_walks_past_one_flat_step() -> None:
    """A curve flat next to the default (400 a hair below 200) still reaches the peak at 800."""
    curve = {25.0: 0.30, 50.0: 0.33, 100.0: 0.360, 200.0: 0.3692, 400.0: 0.3690, 800.0: 0.3719}
    curve |= {1600.0: 0.3700, 3200.0: 0.3600}
    result = tune("ease", lambda p: curve[p["l2"]], {"l2": 200.0, "weighting": "binary"})
    assert result.params["l2"] == 800.0


def test_tune_stops_at_trial_limit() -> None:
    seen: list[dict] = []
    tune("rp3beta", lambda p: seen.append(p) or p["alpha"], {"alpha": 0.8}, max_trials=4)
    assert len(seen) == 4 and seen[0]["alpha"] == 0.8


def test_tuning_never_sees_test_rows(small_ratings, monkeypatch: pytest.MonkeyPatch) -> None:
    import models.evaluation.runner as runner

    calls = []
    original = runner.score_model

    def spy(name, params, train, rows, relevant, k, **kwargs):
        calls.append(train.matrix.nnz)
        return original(name, params, train, rows, relevant, k, **kwargs)

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


def test_als_log_weighting_fits_and_folds_in_on_log1p_weights() -> None:
    """``weighting="log"``: training and fold-in both see log1p(w), so a fold-in equals
    implicit's own solve on the log-transformed row, and heavy counts stop dominating."""
    import scipy.sparse as sp
    from threadpoolctl import threadpool_limits

    inter = make_two_blocks()
    heavy = inter.matrix.copy()
    heavy.data = heavy.data * 1000.0
    inter_heavy = type(inter)(heavy, inter.users, inter.items)
    raw = build_model("als", factors=8, iterations=5).fit(inter_heavy)
    log = build_model("als", factors=8, iterations=5, weighting="log").fit(inter_heavy)
    assert not np.allclose(raw.item_factors, log.item_factors)

    rows = np.array([0, 3, 7])
    weights = np.array([1.0, 20.0, 500.0], dtype=np.float32)
    ours = log._fold_in_scores(rows, weights)
    with threadpool_limits(1, "blas"):
        reference = log._implicit_model()
        reference.item_factors = log.item_factors
        logged = np.log1p(weights)
        user_row = sp.csr_matrix((logged, (np.zeros(3, int), rows)), shape=(1, log.n_items))
        user = reference.recalculate_user(0, user_row)
    np.testing.assert_allclose(ours, log.item_factors @ user, rtol=1e-3, atol=1e-4)
    with pytest.raises(ValueError, match="unknown weighting"):
        build_model("als", factors=4, iterations=1, weighting="sqrt").fit(inter)


def test_weighting_is_tried_right_after_the_defaults() -> None:
    order = candidates(SEARCH_SPACES["als"], build_model("als").get_params(), seed=3)
    assert [p["weighting"] for p in order[:2]] == ["raw", "log"]
    assert {k: v for k, v in order[1].items() if k != "weighting"} == {
        k: v for k, v in order[0].items() if k != "weighting"
    }
    assert len(order) == len({tuple(sorted(p.items())) for p in order})


def test_a_blend_built_directly_knows_its_components(tmp_path) -> None:
    """Without models.factory imported first, BlendRecommender failed with KeyError: 'ease'
    (bench_recs_serving built one directly); a fresh interpreter shows it."""
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import numpy as np, scipy.sparse as sp\n"
        "from features.id_map import IdMap\n"
        "from features.interactions import Interactions\n"
        "from models.blend import BlendRecommender\n"
        "m = sp.csr_matrix(np.eye(4, 6, dtype=np.float32) + np.eye(4, 6, 1, dtype=np.float32))\n"
        "data = Interactions(m, IdMap(list(range(4))), IdMap(list(range(6))))\n"
        "blend = BlendRecommender(models=['ease', 'item2item'], weights=[1.0, 1.0]).fit(data)\n"
        "print(len(blend.components))\n"
        f"blend.save({str(tmp_path)!r})\n"
    )
    load = (
        "from models.factory import load_model\n"
        f"print(type(load_model({str(tmp_path)!r})).__name__)\n"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "2"
    out = subprocess.run(
        [sys.executable, "-c", load], cwd=root, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "BlendRecommender"
