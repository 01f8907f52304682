"""The evaluator's fitted-model cache: the blend reuses its components' fits, exactly."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import pytest

from features.interactions import Interactions
from models.ease import EASERecommender
from models.evaluation.fit_cache import FitCache
from models.evaluation.runner import evaluate_models
from models.factorization import ALSRecommender
from models.factory import build_model

BLEND_PARAMS = {
    "models": ["ease", "als"],
    "weights": [1.0, 0.5],
    "params": {"ease": {"l2": 50.0}, "als": {"factors": 8, "iterations": 3}},
}


def test_same_name_params_and_matrix_give_the_same_fit(two_blocks: Interactions) -> None:
    cache = FitCache(names=["ease"])
    first = cache.fit("ease", {"l2": 50.0}, two_blocks)
    # Params are compared with the defaults filled in.
    assert cache.fit("ease", {"l2": 50.0, "solver": "auto"}, two_blocks) is first
    assert cache.fit("ease", {"l2": 100.0}, two_blocks) is not first
    assert FitCache(names=[]).fit("ease", {"l2": 50.0}, two_blocks) is not first


def test_a_model_bigger_than_the_budget_is_not_kept(two_blocks: Interactions) -> None:
    cache = FitCache(names=["ease"], max_bytes=16)
    first = cache.fit("ease", {"l2": 50.0}, two_blocks)
    assert cache.fit("ease", {"l2": 50.0}, two_blocks) is not first


def test_blend_from_cached_components_scores_like_a_fresh_blend(
    two_blocks: Interactions,
) -> None:
    cache = FitCache(names=["ease", "als"])
    ease = cache.fit("ease", {"l2": 50.0}, two_blocks)
    blend = cache.fit("blend", BLEND_PARAMS, two_blocks)
    assert blend.components is not None and blend.components[0] is ease
    fresh = build_model("blend", **BLEND_PARAMS).fit(two_blocks)
    rows = np.arange(6)
    np.testing.assert_allclose(blend._score_users(rows), fresh._score_users(rows), rtol=1e-5)


def test_evaluating_the_blend_fits_no_component_twice(
    small_ratings: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before the cache, the blend refitted EASE and ALS on inner-train and on train with the
    params tuning and the per-model scoring had already fitted there."""
    fits: list[tuple] = []
    for cls in (EASERecommender, ALSRecommender):
        original = cls._fit

        def spy(self, interactions, _original=original):
            matrix = self.user_items
            digest = hashlib.sha1(matrix.data.tobytes() + matrix.indices.tobytes()).hexdigest()
            fits.append((self.name, json.dumps(self.params, sort_keys=True, default=str), digest))
            return _original(self, interactions)

        monkeypatch.setattr(cls, "_fit", spy)
    results = evaluate_models(
        small_ratings, ["ease", "als", "blend"], "per-user", max_trials=2, budget_seconds=5.0
    )
    assert len(fits) == len(set(fits)), [f for f in fits if fits.count(f) > 1]
    assert {r.model for r in results} == {"ease", "als", "blend"}
