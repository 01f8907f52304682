"""Serving-side business rules on top of model scores."""

from __future__ import annotations

import numpy as np
import pytest
from recs_toy import make_two_blocks

from models.factory import build_model
from models.inference import RecommendationService


@pytest.fixture(scope="module")
def model():
    return build_model("als", factors=8, iterations=10, regularization=0.1).fit(make_two_blocks())


def positions(model, ids):
    return model.items.to_index(ids)


def test_known_user_gets_k_model_items(model) -> None:
    out = RecommendationService(model).recommend(0, k=5)
    assert len(out.item_ids) == 5 and out.source == "model"
    seen = set(model.items.to_ids(model.user_items[0].indices))
    assert not seen & set(out.item_ids)


def test_unavailable_items_never_shown(model) -> None:
    service = RecommendationService(model)
    top = service.recommend(0, k=5).item_ids
    service.set_unavailable(top[:3])
    assert not set(top[:3]) & set(service.recommend(0, k=5).item_ids)
    mask = np.ones(model.n_items, dtype=bool)
    mask[positions(model, top)] = False
    service = RecommendationService(model, available=mask)
    assert not set(top) & set(service.recommend(0, k=5).item_ids)


def test_purchased_excluded_unless_repeat_category(model) -> None:
    category = np.arange(model.n_items) % 3
    top = RecommendationService(model, category=category).recommend(0, k=5).item_ids
    bought = top[0]
    repeat = int(category[model.items.index_of(bought)])
    plain = RecommendationService(model, category=category).recommend(0, k=5, purchased=[bought])
    assert bought not in plain.item_ids
    again = RecommendationService(model, category=category, repeat_categories=[repeat])
    assert bought in again.recommend(0, k=5, purchased=[bought]).item_ids


def test_diversity_cap_per_category(model) -> None:
    category = np.arange(model.n_items) % 2
    service = RecommendationService(model, category=category, max_per_category=2)
    out = service.recommend(0, k=4)
    cats = category[positions(model, out.item_ids)]
    assert len(out.item_ids) == 4
    assert np.bincount(cats).max() <= 2


def test_unknown_user_session_fold_in_then_popular(model) -> None:
    service = RecommendationService(model)
    session = service.recommend("new-user", k=5, recent_items=[100, 101])
    assert session.source == "session"
    assert sum(item >= 100 for item in session.item_ids) >= 4
    assert not {100, 101} & set(session.item_ids)
    cold = service.recommend("new-user", k=5)
    assert cold.source == "popular" and len(cold.item_ids) == 5


def test_never_empty_when_caps_and_filters_bite(model) -> None:
    category = np.zeros(model.n_items, dtype=int)
    service = RecommendationService(model, category=category, max_per_category=1)
    out = service.recommend(0, k=5)
    assert len(out.item_ids) == 5 and out.source.endswith("+popular")


def test_non_factor_model_works(model) -> None:
    ease = build_model("ease", l2=10.0).fit(make_two_blocks())
    out = RecommendationService(ease).recommend(1, k=3)
    assert all(item >= 100 for item in out.item_ids)
