"""The contract every recommender must honour, run against each model on a toy data set."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pytest
from recs_toy import block_of_item, block_of_user

from features.interactions import Interactions
from models.base import Recommender
from models.exceptions import NotFittedError, UnknownModelError
from models.factory import available_models, build_model, load_model


class RecommenderContract:
    """Mixin: subclasses set ``name`` / ``params`` and inherit every contract test."""

    name: ClassVar[str]
    params: ClassVar[dict[str, Any]] = {}
    personalised: ClassVar[bool] = True
    similar_in_block: ClassVar[bool] = True

    @pytest.fixture(scope="class")
    @classmethod
    def model(cls, two_blocks: Interactions) -> Recommender:
        return build_model(cls.name, **cls.params).fit(two_blocks)

    def test_recommends_k_unseen_items(self, model: Recommender, two_blocks: Interactions) -> None:
        ids, scores = model.recommend([0, 1, 2], k=5)
        for user, row, row_scores in zip([0, 1, 2], ids, scores, strict=True):
            assert len(row) == 5
            assert len(set(row)) == 5
            seen = set(two_blocks.items.to_ids(two_blocks.matrix[user].indices))
            assert not seen & set(row)
            assert np.all(np.diff(row_scores) <= 1e-6)

    def test_recommends_in_block(self, model: Recommender) -> None:
        if not self.personalised:
            pytest.skip("baseline ranks the same for everyone")
        users = list(range(20))
        ids, _ = model.recommend(users, k=5)
        in_block = [
            block_of_item(item) == block_of_user(user)
            for user, row in zip(users, ids, strict=True)
            for item in row
        ]
        assert np.mean(in_block) >= 0.9

    def test_exclude_seen_false_can_return_seen(self, model: Recommender) -> None:
        ids, _ = model.recommend([0], k=model.n_items, exclude_seen=False)
        assert len(ids[0]) == model.n_items

    def test_filter_items(self, model: Recommender) -> None:
        first, _ = model.recommend([0], k=3)
        ids, _ = model.recommend([0], k=3, filter_items=first[0])
        assert not set(first[0]) & set(ids[0])

    def test_unknown_user_gets_fallback(self, model: Recommender) -> None:
        ids, _ = model.recommend(["nobody"], k=4)
        assert len(ids[0]) == 4

    def test_save_load_round_trip(self, model: Recommender, tmp_path) -> None:
        model.save(tmp_path / "m")
        loaded = load_model(tmp_path / "m")
        assert type(loaded) is type(model)
        assert loaded.get_params() == model.get_params()
        a_ids, a_scores = model.recommend([0, 1, 5], k=5)
        b_ids, b_scores = loaded.recommend([0, 1, 5], k=5)
        assert a_ids == b_ids
        for a, b in zip(a_scores, b_scores, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-5)
        assert model.similar_items([3], k=3)[0] == loaded.similar_items([3], k=3)[0]

    def test_similar_items(self, model: Recommender) -> None:
        ids, _ = model.similar_items([3, 105, 999], k=4)
        assert 3 not in ids[0] and 105 not in ids[1]
        assert ids[2] == []
        if self.similar_in_block:
            assert all(block_of_item(i) == 0 for i in ids[0])
            assert all(block_of_item(i) == 1 for i in ids[1])

    def test_recommend_for_items(self, model: Recommender) -> None:
        ids, scores = model.recommend_for_items([100, 101, 102], weights=[1, 2, 1], k=5)
        assert len(ids) == 5
        assert not {100, 101, 102} & set(ids)
        if self.personalised:
            assert sum(block_of_item(i) == 1 for i in ids) >= 4
        ids, _ = model.recommend_for_items([100], k=5, exclude=[101, 102])
        assert not {100, 101, 102} & set(ids)
        cold, _ = model.recommend_for_items(["unknown"], k=3)
        assert len(cold) == 3


class TestALS(RecommenderContract):
    name = "als"
    params = {"factors": 8, "iterations": 10, "regularization": 0.1}


class TestALSLogWeighted(RecommenderContract):
    name = "als"
    params = {"factors": 8, "iterations": 10, "regularization": 0.1, "weighting": "log"}


class TestBPR(RecommenderContract):
    name = "bpr"
    params = {"factors": 8, "iterations": 100, "learning_rate": 0.05}


class TestEASE(RecommenderContract):
    name = "ease"
    params = {"l2": 10.0}


class TestItemToItem(RecommenderContract):
    name = "item2item"


class TestPopular(RecommenderContract):
    name = "popular"
    personalised = False


class TestTrending(RecommenderContract):
    name = "trending"
    personalised = False


class TestBoughtTogether(RecommenderContract):
    name = "bought_together"
    personalised = False
    similar_in_block = True


def test_factory_rejects_unknown_name() -> None:
    with pytest.raises(UnknownModelError, match="nonsense"):
        build_model("nonsense")
    assert {"als", "bpr", "ease", "item2item", "popular", "trending"} <= set(available_models())


def test_unfitted_model_raises() -> None:
    with pytest.raises(NotFittedError):
        build_model("ease").recommend([1], k=3)


def test_ease_max_items_keeps_shape(two_blocks: Interactions) -> None:
    model = build_model("ease", l2=10.0, max_items=10).fit(two_blocks)
    ids, _ = model.recommend([0], k=5)
    assert len(ids[0]) == 5


class TestEASEDual(RecommenderContract):
    name = "ease"
    params = {"l2": 10.0, "solver": "dual"}


class TestEASELogWeighted(RecommenderContract):
    name = "ease"
    params = {"l2": 10.0, "weighting": "log"}


class TestEASELowRank(RecommenderContract):
    name = "ease"
    params = {"l2": 10.0, "solver": "lowrank", "rank": 16}


class TestRP3beta(RecommenderContract):
    name = "rp3beta"
    params = {"neighbors": 20}


class TestBlend(RecommenderContract):
    name = "blend"
    params = {
        "models": ["ease", "rp3beta", "als"],
        "weights": [1.0, 0.5, 0.5],
        "params": {"ease": {"l2": 10.0}, "als": {"factors": 8, "iterations": 10}},
    }


class TestRerank(RecommenderContract):
    name = "rerank"
    params = {
        "generators": ["ease", "als", "popular"],
        "params": {"ease": {"l2": 10.0}, "als": {"factors": 8, "iterations": 10}},
        "candidates": 20,
        "rounds": 20,
        "min_data_in_leaf": 5,
    }
