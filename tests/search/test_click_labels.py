"""The ranker's training labels from a log whose shop always showed the same order."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.search.click_model import fit_pbm, position_click_rate


def _fixed_order_log(
    click_rate_by_product: dict[str, float], searches: int, query: str = "lamp"
) -> pd.DataFrame:
    """``searches`` searches of ``query`` showing the products in the given order every time;
    product p is clicked in round(rate × searches) of them (deterministic, no randomness)."""
    rows = []
    for s in range(searches):
        for position, (pid, rate) in enumerate(click_rate_by_product.items(), start=1):
            clicked = s < round(rate * searches)
            rows.append(
                {
                    "search_id": f"{query}{s}",
                    "query": query,
                    "ts": pd.Timestamp("2026-12-01", tz="UTC") + pd.Timedelta(minutes=s),
                    "product_id": pid,
                    "position": position,
                    "clicked": clicked,
                    "added_to_cart": False,
                    "purchased": False,
                }
            )
    return pd.DataFrame(rows)


def test_a_pair_without_evidence_keeps_its_positions_expectation():
    """The query "desk": its first result is clicked less than first results usually are (the other
    queries set what position 1 earns), and a product shown once at position 12 is not
    clicked. Nothing says the latter is better; the attractiveness label (the mean α for
    every pair without evidence) put it above, the click-rate label does not."""
    usual = {f"p{i}": 0.3 / i for i in range(1, 13)}
    others = [_fixed_order_log(usual, searches=40, query=q) for q in ("lamp", "sofa", "rug")]
    desk = _fixed_order_log({**usual, "p1": 0.1}, searches=40, query="desk")
    lone = (
        desk[desk["product_id"] == "p12"]
        .head(1)
        .assign(search_id="once", product_id="rare", clicked=False)
    )
    log = pd.concat([*others, desk[desk["product_id"] != "p12"], lone], ignore_index=True)

    def label(frame: pd.DataFrame, pid: str) -> float:
        return float(
            frame[(frame["query"] == "desk") & (frame["product_id"] == pid)]["label"].iloc[0]
        )

    new, old = fit_pbm(log).labels, fit_pbm(log, label_prior="attractiveness").labels
    assert label(old, "rare") > label(old, "p1")  # thin evidence read as "as good as the top"
    assert label(new, "rare") < label(new, "p1")


def test_clicks_above_what_the_position_predicts_lift_a_pair():
    """Two pairs at neighbouring low positions: the one clicked far more than its position
    predicts gets the higher label, and above the pair shown higher that is never clicked."""
    rates = {"a": 0.3, "b": 0.0, "c": 0.25, "d": 0.02}
    labels = fit_pbm(_fixed_order_log(rates, searches=60)).labels.set_index("product_id")["label"]
    assert labels["c"] > labels["d"]
    assert labels["c"] > labels["b"]


def test_position_click_rate_shrinks_towards_the_positions_rate():
    pair = np.array([0, 0, 1, 2])
    pos = np.array([0, 0, 0, 1])
    click = np.array([1.0, 1.0, 0.0, 0.0])
    rate = position_click_rate(pair, pos, click, 3, strength=2.0)
    at_first = 2 / 3  # position 0: two clicks in three impressions
    assert rate[0] == pytest.approx((2 + 2 * at_first) / 4)
    assert rate[1] == pytest.approx((0 + 2 * at_first) / 3)
    assert rate[2] == pytest.approx(0.0)  # position 1 is never clicked


def test_unknown_label_prior_is_refused():
    with pytest.raises(ValueError, match="label_prior"):
        fit_pbm(_fixed_order_log({"a": 0.5}, searches=4), label_prior="ctr")  # type: ignore[arg-type]
