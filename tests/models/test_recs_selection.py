"""The gate's candidate choice: by validation score, a blend included."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from features.interactions import Interactions
from models.evaluation.runner import ModelResult, evaluate_models
from models.factory import build_model
from models.registry import ModelRegistry, PromotionGate
from models.selection import select_candidate


def _result(model: str, test: float, validation: float | None) -> ModelResult:
    tuning = {} if validation is None else {"validation_ndcg": validation}
    return ModelResult(model, {"ndcg@10": test}, {}, 0.0, 0.0, tuning)


def test_selection_uses_validation_not_test() -> None:
    results = [
        _result("ease", test=0.30, validation=0.20),
        _result("blend", test=0.29, validation=0.21),
        _result("popular", test=0.10, validation=None),
    ]
    chosen = select_candidate(results)
    assert chosen is not None and chosen.model == "blend"
    assert "validation" in chosen.reason and "ease 0.2000" in chosen.reason


def test_selection_needs_a_candidate_besides_the_baseline() -> None:
    assert select_candidate([_result("popular", 0.1, None)]) is None


def test_tuned_blend_can_be_chosen_published_and_served(
    small_ratings: pd.DataFrame, two_blocks: Interactions, tmp_path: Path
) -> None:
    results = evaluate_models(
        small_ratings, ["ease", "rp3beta", "blend", "popular"], max_trials=2, min_test_users=1
    )
    by_name = {r.model: r for r in results}
    blend = by_name["blend"]
    assert len(blend.params["weights"]) == len(blend.params["models"])
    ease = by_name["ease"].params
    assert blend.params["params"]["ease"] == {"l2": ease["l2"], "weighting": ease["weighting"]}
    chosen = select_candidate(results)
    best = max((r for r in results if r.tuning), key=lambda r: r.tuning["validation_ndcg"])
    assert chosen is not None and chosen.model == best.model

    # Whatever wins, a blend must be publishable and promotable under the serving name.
    model = build_model("blend", **blend.params).fit(two_blocks)
    registry = ModelRegistry(tmp_path, kind="recs")
    manifest = registry.publish_model(
        model,
        name="als",
        metrics={"ndcg@10": 0.5},
        baselines={"popular": {"ndcg@10": 0.1}},
        extra={"model": "blend"},
    )
    registry.promote("als", manifest["version"], gate=PromotionGate())
    served = registry.load_model("als")
    assert served.name == "blend"
    assert served.recommend([0], k=3)[0] == model.recommend([0], k=3)[0]
