"""The learned reranker: its own holdout, honest validation in evaluate, and that it learns."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from features.id_map import IdMap
from features.interactions import Interactions
from models.evaluation.runner import DEFAULT_MODELS, evaluate_models
from models.factory import build_model
from models.rerank import holdout_split


def test_holdout_keeps_every_user_and_splits_disjointly() -> None:
    rng = np.random.default_rng(0)
    dense = (rng.random((40, 30)) < 0.3).astype(np.float32)
    dense[0] = 0
    dense[0, 3] = 1  # a one-item user keeps it
    matrix = sp.csr_matrix(dense)
    inner, held = holdout_split(matrix, 0.25, seed=1)
    assert len(held[0]) == 0 and inner[0, 3] == 1
    for row in range(matrix.shape[0]):
        own = set(matrix[row].indices)
        kept = set(inner[row].indices)
        assert set(held[row]) | kept == own
        assert not set(held[row]) & kept
        if len(own) >= 2:
            assert kept and len(held[row]) >= 1
    assert inner.nnz + sum(len(h) for h in held) == matrix.nnz


def test_generators_cannot_nest() -> None:
    ids = IdMap.from_values(range(4))
    frame = Interactions(sp.csr_matrix(np.eye(4, dtype=np.float32)), ids, ids)
    with pytest.raises(ValueError, match="cannot be rerankers or blends"):
        build_model("rerank", generators=["ease", "blend"]).fit(frame)


def test_reranker_learns_above_popularity_and_is_opt_in(small_ratings: pd.DataFrame) -> None:
    assert "rerank" not in DEFAULT_MODELS
    results = evaluate_models(
        small_ratings,
        ["ease", "als", "rp3beta", "rerank", "popular"],
        max_trials=1,
        min_test_users=1,
    )
    by_name = {r.model: r for r in results}
    rerank = by_name["rerank"]
    # Its validation score exists (the gate can choose it) and it uses the tuned generators.
    assert rerank.tuning["validation_ndcg"] > 0
    assert rerank.params["params"]["ease"]["l2"] == by_name["ease"].params["l2"]
    assert rerank.metrics["ndcg@10"] > by_name["popular"].metrics["ndcg@10"]


def test_nothing_to_learn_is_a_clear_error() -> None:
    ids = IdMap.from_values(range(5))
    one_item_each = Interactions(sp.csr_matrix(np.eye(5, dtype=np.float32)), ids, ids)
    with pytest.raises(ValueError, match="no user has a held-out item"):
        build_model("rerank", generators=["popular"]).fit(one_item_each)
