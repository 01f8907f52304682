"""EASE's three solvers give the same model; the λ-free factorisation is computed once."""

from __future__ import annotations

import numpy as np
import pytest

from features.interactions import Interactions
from models import ease_solvers
from models.evaluation.runner import to_interactions
from models.evaluation.synthetic import movielens_like
from models.factory import build_model, load_model


@pytest.fixture(scope="module")
def wide() -> Interactions:
    """More items than users, like Last.fm (the dual solver's case)."""
    frame, _ = movielens_like(n_users=120, n_items=400, n_ratings=5000, seed=4)
    return to_interactions(frame)


def _scores(inter: Interactions, **params) -> np.ndarray:
    model = build_model("ease", l2=30.0, **params).fit(inter)
    return model._score_users(np.arange(inter.shape[0]))


def test_auto_picks_the_smaller_side(wide: Interactions) -> None:
    assert ease_solvers.choose_solver(120, 400, 20_000) == "dual"
    assert ease_solvers.choose_solver(5000, 800, 20_000) == "primal"
    assert ease_solvers.choose_solver(50_000, 30_000, 20_000) == "lowrank"


def test_dual_equals_primal(wide: Interactions) -> None:
    primal = _scores(wide, solver="primal")
    dual = _scores(wide, solver="dual")
    np.testing.assert_allclose(dual, primal, atol=1e-4 * np.abs(primal).max())


def test_full_rank_lowrank_equals_primal(wide: Interactions) -> None:
    primal = _scores(wide, solver="primal")
    lowrank = _scores(wide, solver="lowrank", rank=119)
    # rank 119 of 120 drops the smallest singular value only
    np.testing.assert_allclose(lowrank, primal, atol=5e-2 * np.abs(primal).max())


def test_dual_similar_items_and_fold_in_match_primal(wide: Interactions) -> None:
    primal = build_model("ease", l2=30.0, solver="primal").fit(wide)
    dual = build_model("ease", l2=30.0, solver="dual").fit(wide)
    items = wide.items.to_ids(np.arange(5))
    assert primal.similar_items(items, k=5)[0] == dual.similar_items(items, k=5)[0]
    assert primal.recommend_for_items(items, k=5)[0] == dual.recommend_for_items(items, k=5)[0]


def test_one_eigendecomposition_serves_every_lambda(
    wide: Interactions, monkeypatch: pytest.MonkeyPatch
) -> None:
    ease_solvers._CACHE.clear()
    calls = []
    original = np.linalg.eigh

    def counting(matrix):
        calls.append(matrix.shape)
        return original(matrix)

    monkeypatch.setattr(ease_solvers.np.linalg, "eigh", counting)
    for l2 in (10.0, 100.0, 1000.0):
        build_model("ease", l2=l2, solver="dual").fit(wide)
    assert len(calls) == 1


def test_larger_lambda_changes_the_dual_model(wide: Interactions) -> None:
    small = _scores(wide, solver="dual")
    large = build_model("ease", l2=3000.0, solver="dual").fit(wide)
    assert not np.allclose(small, large._score_users(np.arange(wide.shape[0])))


def _with_heavy_pair(inter: Interactions, user: int, item: int, plays: float) -> Interactions:
    """The same bundle with one (user, item) weight raised to ``plays``."""
    matrix = inter.matrix.tolil(copy=True)
    matrix[user, item] = plays
    return Interactions(matrix.tocsr().astype(np.float32), inter.users, inter.items)


def test_binary_ignores_weights_but_log_weighting_uses_them(wide: Interactions) -> None:
    user = 0
    item = int(wide.matrix[user].indices[0])
    heavy = _with_heavy_pair(wide, user, item, 500.0)
    binary = _scores(wide, weighting="binary")
    np.testing.assert_allclose(_scores(heavy, weighting="binary"), binary, rtol=1e-5)
    light = _scores(wide, weighting="log")
    assert not np.allclose(_scores(heavy, weighting="log"), light)


def test_log_weighting_keeps_the_scale_of_lambda(wide: Interactions) -> None:
    """log1p(w) is divided by its mean, so the same λ shrinks about as much as for 0/1."""
    model = build_model("ease", l2=30.0, weighting="log").fit(wide)
    inputs = model._inputs(wide.matrix)
    assert inputs.data.mean() == pytest.approx(1.0, rel=1e-4)
    assert model.scale == pytest.approx(float(np.log1p(wide.matrix.data).mean()), rel=1e-5)


def test_log_weighting_survives_save_and_load(wide: Interactions, tmp_path) -> None:
    model = build_model("ease", l2=30.0, weighting="log").fit(wide)
    model.save(tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    users = wide.users.to_ids(np.arange(5))
    assert loaded.recommend(users, k=5)[0] == model.recommend(users, k=5)[0]
    assert loaded.scale == pytest.approx(model.scale)


def test_legacy_binary_false_means_raw_weights(wide: Interactions) -> None:
    raw = _scores(wide, weighting="raw")
    np.testing.assert_allclose(_scores(wide, binary=False), raw, rtol=1e-5)


def test_unknown_weighting_is_a_clear_error(wide: Interactions) -> None:
    with pytest.raises(ValueError, match="unknown weighting"):
        build_model("ease", weighting="sqrt").fit(wide)
