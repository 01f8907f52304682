"""Relevance labels from search click logs, corrected for position bias.

Position-based model (PBM): a result at position k is examined with probability θ_k, and an
examined result for query q and product d is clicked with probability α_qd (its attractiveness):

    P(click | q, d, k) = θ_k · α_qd

Both are fitted by expectation–maximisation. For a non-click the posterior that the result was
examined but unattractive is θ(1−α)/(1−θα), and that it was attractive but unexamined is
(1−θ)α/(1−θα); a click means both happened. α_qd then estimates relevance free of the
position the old ranker happened to give the product, which raw CTR does not.

Two refinements matter on small logs:

* **Continuation after a click** (as in the dependent click model): many shoppers stop reading
  once they found something, so a result below c clicks is examined with θ_k · λ^c, λ fitted
  too. Plain PBM reads "not clicked below a click" as "unattractive" and so teaches rankers to
  copy whatever order produced the log.
* **Empirical-Bayes prior**: α_qd is shrunk towards the mean attractiveness of everything shown,
  re-estimated every round — not towards the raw click rate, which is attractiveness *times*
  examination and made every rarely shown (= low-ranked) pair look bad.

The ranker's training label is *not* α_qd (``label_prior``): when the shop always showed the same
order, every pair sits at one position and α cannot be told from θ for it; pairs with little
evidence (most of those shown below the fold) all get the mean α, and a ranker taught that a
never-clicked pair at position 15 is as good as a pair at position 1 lifts deep, rarely
relevant candidates. The label is the pair's click rate shrunk (``prior_strength``
pseudo-impressions) towards the click rate of the positions it was shown at
(``label_prior="position"``): a pair without evidence keeps the logged order's expectation and
only clicks above or below what its positions predict move it. ``label_prior="attractiveness"``
gives the old α label. Either is graded: × (1 + w_cart · P(cart | click) + w_purchase ·
P(purchase | click)), so a product that is clicked *and* bought ranks above one that only
attracts clicks. docs/search.md ("Labels that keep the logged order's prior") has the figures.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

IMPRESSION_COLUMNS = (
    "search_id",
    "query",
    "ts",
    "product_id",
    "position",
    "clicked",
    "added_to_cart",
    "purchased",
)


@dataclass(slots=True)
class PBMResult:
    """Fitted examination probabilities per position and a per (query, product) label table."""

    examination: np.ndarray
    labels: pd.DataFrame  # query, product_id, impressions, clicks, ctr, attractiveness, label
    continuation: float = 1.0  # P(scanning on | a click above); 1 = plain PBM


def check_impressions(frame: pd.DataFrame) -> None:
    """Fail early with the missing column names (the fact_search contract)."""
    missing = set(IMPRESSION_COLUMNS) - set(frame.columns)
    if missing:
        raise ValueError(f"impressions lack columns: {', '.join(sorted(missing))}")


def fit_pbm(
    impressions: pd.DataFrame,
    iterations: int = 50,
    max_position: int = 50,
    prior_strength: float = 2.0,
    w_cart: float = 1.0,
    w_purchase: float = 2.0,
    continuation: bool = True,
    label_prior: Literal["position", "attractiveness"] = "position",
) -> PBMResult:
    """Fit the PBM by EM on an impressions frame (one row per shown product per search).

    ``continuation=False`` gives the plain PBM (λ fixed at 1). ``label_prior`` chooses what the
    ``label`` column grades (module docstring): the click rate shrunk towards its positions'
    click rate, or the attractiveness α.
    """
    check_impressions(impressions)
    frame = impressions[list(IMPRESSION_COLUMNS)].copy()
    frame["query"] = frame["query"].astype(str)
    frame["product_id"] = frame["product_id"].astype(str)
    keys = frame[["query", "product_id"]]
    import pandas as pd  # a training path: serving starts without pandas

    pair_index = pd.MultiIndex.from_frame(keys.drop_duplicates())
    pair = pair_index.get_indexer(pd.MultiIndex.from_frame(keys))
    pos = np.clip(frame["position"].to_numpy(dtype=np.int64), 1, max_position) - 1
    click = frame["clicked"].to_numpy(dtype=np.float64)
    n_pairs, n_pos = len(pair_index), max_position
    shown_pair = np.bincount(pair, minlength=n_pairs).astype(np.float64)
    above = _clicks_above(frame) if continuation else np.zeros(len(frame))
    after_click = above > 0
    alpha = np.full(n_pairs, 0.5)
    theta = np.full(n_pos, 0.5)
    lam = 1.0
    prior = 0.5
    for _ in range(iterations):
        a = alpha[pair]
        carry = lam**above
        t = theta[pos] * carry
        denom = np.maximum(1.0 - t * a, 1e-12)
        attractive = click + (1 - click) * (1 - t) * a / denom
        examined = click + (1 - click) * t * (1 - a) / denom
        prior = float(attractive.mean()) if len(attractive) else 0.5
        alpha = (np.bincount(pair, attractive, n_pairs) + prior * prior_strength) / (
            shown_pair + prior_strength
        )
        theta = np.bincount(pos, examined, n_pos) / np.maximum(
            np.bincount(pos, carry, n_pos), 1e-12
        )
        theta = np.clip(theta, 1e-4, 1.0)
        if after_click.any():  # λ: examinations below clicks against what θ alone predicts
            expected = theta[pos[after_click]] * carry[after_click] / lam
            lam = float(np.clip(examined[after_click].sum() / expected.sum(), 0.05, 1.0))
    clicks = np.bincount(pair, click, n_pairs)
    carts = np.bincount(pair, frame["added_to_cart"].to_numpy(dtype=np.float64), n_pairs)
    buys = np.bincount(pair, frame["purchased"].to_numpy(dtype=np.float64), n_pairs)
    cart_rate = carts / (clicks + 1.0)
    buy_rate = buys / (clicks + 1.0)
    labels = pair_index.to_frame(index=False)
    labels["impressions"] = shown_pair
    labels["clicks"] = clicks
    labels["ctr"] = clicks / np.maximum(shown_pair, 1.0)
    labels["attractiveness"] = alpha
    if label_prior == "position":
        base = position_click_rate(pair, pos, click, n_pairs, prior_strength)
    elif label_prior == "attractiveness":
        base = alpha
    else:
        raise ValueError(f"label_prior must be 'position' or 'attractiveness', not {label_prior!r}")
    labels["label"] = base * (1.0 + w_cart * cart_rate + w_purchase * buy_rate)
    return PBMResult(examination=theta, labels=labels, continuation=lam)


def position_click_rate(
    pair: np.ndarray, pos: np.ndarray, click: np.ndarray, n_pairs: int, strength: float
) -> np.ndarray:
    """Per pair, its click rate shrunk towards what its positions predict.

    ``pair``, ``pos`` (0-based) and ``click`` are per impression. The prior of a pair is the mean,
    over its impressions, of the overall click rate at the position of each; ``strength`` is its
    weight in impressions.
    """
    at_position = np.bincount(pos, click) / np.maximum(np.bincount(pos), 1)
    shown = np.bincount(pair, minlength=n_pairs).astype(np.float64)
    expected = np.bincount(pair, at_position[pos], n_pairs)  # clicks the positions predict
    clicks = np.bincount(pair, click, n_pairs)
    prior = expected / np.maximum(shown, 1.0)
    return (clicks + strength * prior) / (shown + strength)


def _clicks_above(frame: pd.DataFrame) -> np.ndarray:
    """Per impression, the clicks on higher positions of the same search."""
    import pandas as pd  # a training path: serving starts without pandas

    search = pd.factorize(frame["search_id"].astype(str))[0]
    position = frame["position"].to_numpy(dtype=np.int64)
    click = frame["clicked"].to_numpy(dtype=np.float64)
    order = np.lexsort((position, search))
    running = np.cumsum(click[order])
    starts = np.r_[0, np.flatnonzero(np.diff(search[order])) + 1]
    offset = np.repeat(running[starts] - click[order][starts], np.diff(np.r_[starts, len(order)]))
    above = np.empty(len(frame))
    above[order] = running - click[order] - offset
    return above
