"""Query intent from clicks, and the click model's continuation after a click."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.query_intent import QueryIntent, category_key
from models.search.click_model import fit_pbm

SCHOOL = "Fashion > Accessories > Backpacks"
HIKING = "sports/outdoor/hiking-backpacks"
TENTS = "sports/outdoor/tents"


def _intent() -> QueryIntent:
    rows = [
        (["backpack"], SCHOOL, 5.0),
        (["backpack"], HIKING, 1.0),
        (["hike", "backpack"], HIKING, 4.0),
        (["tent"], TENTS, 3.0),
        (["backpack"], TENTS, 0.0),  # shown, not chosen: no evidence
    ]
    terms, cats, evidence = zip(*rows, strict=True)
    return QueryIntent.fit(terms, cats, evidence, universe=[TENTS])


def test_category_keys_match_both_spellings():
    assert category_key(SCHOOL) == "fashion/accessories/backpacks"
    assert category_key("fashion/accessories/backpacks") == category_key(SCHOOL)


def test_intent_follows_what_searchers_chose():
    intent = _intent()
    scores = intent.scores(["backpack"], [SCHOOL, HIKING, TENTS])
    share, parent, evidence = scores.T
    assert share[0] > share[1] > share[2]
    assert parent[1] >= share[1] + share[2] - 1e-12  # hiking and tents share "sports/outdoor"
    assert np.allclose(evidence, np.log1p(6.0))
    # A query never searched borrows from its words: "hike" only ever meant hiking backpacks.
    unseen = intent.scores(["hike", "bag"], [SCHOOL, HIKING])
    assert unseen[0, 0] < unseen[1, 0] and unseen[0, 2] == 0.0
    # No evidence at all: all zeros, no error.
    assert not QueryIntent().scores(["x"], [SCHOOL]).any()


def test_intent_round_trips_through_json():
    intent = _intent()
    again = QueryIntent.from_json(intent.to_json())
    paths = [SCHOOL, HIKING, TENTS]
    assert np.allclose(again.scores(["backpack"], paths), intent.scores(["backpack"], paths))


def _log(stop_after_click: float, searches: int = 4000, seed: int = 3) -> pd.DataFrame:
    """Ten results per search, examination 1/k, clicks by attractiveness; stop after a click."""
    rng = np.random.default_rng(seed)
    attract = rng.uniform(0.1, 0.8, 30)
    rows = []
    for s in range(searches):
        shown = rng.permutation(30)[:10]
        scanning = True
        for k, item in enumerate(shown, 1):
            click = scanning and rng.random() < 1.0 / k and rng.random() < attract[item]
            rows.append((f"s{s}", "q", pd.Timestamp("2026-01-01"), f"p{item}", k, click, 0, 0))
            if click and rng.random() < stop_after_click:
                scanning = False
    columns = ["search_id", "query", "ts", "product_id", "position", "clicked", "added_to_cart",
               "purchased"]  # fmt: skip
    return pd.DataFrame(rows, columns=columns)


def test_continuation_after_a_click_is_estimated():
    assert fit_pbm(_log(0.0)).continuation > 0.85
    cascade = fit_pbm(_log(0.5))
    assert 0.3 < cascade.continuation < 0.7
    assert fit_pbm(_log(0.5), continuation=False).continuation == 1.0
