"""Buy it again (models/repeat.py): consumables learned from repeat rates, due-ness by interval."""

from __future__ import annotations

import numpy as np
import pytest

from models.repeat import PurchasePairs, RepeatPurchaseModel

DAY = 86_400.0
NOW = 1_800_000_000.0


def _pairs(rows: list[tuple[int, int, int, int, float, float]]) -> PurchasePairs:
    cols = list(zip(*rows, strict=True))
    return PurchasePairs(*(np.asarray(c) for c in cols))


def _shop() -> PurchasePairs:
    """Coffee (category 1) bought every ~30 days, tea (2) every ~10, headphones (3) once."""
    rows = []
    for u in range(20):
        rows.append((u, 100, 1, 3, NOW - 90 * DAY, NOW - 30 * DAY))  # coffee: 30-day gaps
        rows.append((u, 200, 2, 4, NOW - 60 * DAY, NOW - 30 * DAY))  # tea: 10-day gaps
        rows.append((u, 300, 3, 1, NOW - 50 * DAY, NOW - 50 * DAY))  # headphones
    rows.append((99, 301, 3, 2, NOW - 100 * DAY, NOW - 20 * DAY))  # one odd double purchase
    return _pairs(rows)


def test_consumables_are_the_categories_people_buy_again():
    model = RepeatPurchaseModel().fit(_shop())
    assert model.consumable == frozenset({1, 2})
    assert model.category_rate[3] < 0.1
    assert model.item_interval[100] == pytest.approx(30 * DAY)
    assert model.item_interval[200] == pytest.approx(10 * DAY)


def test_small_categories_need_evidence():
    rows = [(1, 7, 5, 2, NOW - 20 * DAY, NOW - 10 * DAY), (2, 7, 5, 1, NOW, NOW)]
    assert RepeatPurchaseModel().fit(_pairs(rows)).consumable == frozenset()


def test_due_items_first_then_overdue_and_never_durables_or_just_bought():
    model = RepeatPurchaseModel().fit(_shop())
    # One buyer: coffee once 29 days ago (due about now), tea once 40 days ago (long overdue
    # at a 10-day rhythm), headphones, and a coffee of another kind bought an hour ago.
    items = np.asarray([100, 200, 300, 101])
    cats = np.asarray([1, 2, 3, 1])
    orders = np.asarray([1, 1, 1, 1])
    last = np.asarray([NOW - 29 * DAY, NOW - 40 * DAY, NOW - 50 * DAY, NOW - 3600])
    scores = model.due_scores(items, cats, orders, last, last, now=NOW)
    assert np.isneginf(scores[2]) and np.isneginf(scores[3])
    assert scores[0] > scores[1] > 0
    # The buyer's own rhythm wins over the item's: tea every 40 days for this buyer is due.
    own = model.due_scores(
        np.asarray([200]), np.asarray([2]), np.asarray([3]),
        np.asarray([NOW - 120 * DAY]), np.asarray([NOW - 40 * DAY]), now=NOW,
    )  # fmt: skip
    assert own[0] > scores[1]
    # A configured category counts even when the log has not shown it yet.
    forced = model.due_scores(items[2:3], cats[2:3], orders[2:3], last[2:3], last[2:3], NOW, {3})
    assert np.isfinite(forced[0])


def test_bad_parameters_and_ragged_input_are_refused():
    with pytest.raises(ValueError, match="min_rate"):
        RepeatPurchaseModel(min_rate=0)
    with pytest.raises(ValueError, match="item"):
        PurchasePairs(np.zeros(2), np.zeros(1), np.zeros(2), np.zeros(2), np.zeros(2), np.zeros(2))
    empty = RepeatPurchaseModel().fit(PurchasePairs(*(np.zeros(0) for _ in range(6))))
    assert empty.consumable == frozenset() and empty.summary()["shop_repeat_rate"] == 0.0
