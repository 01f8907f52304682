"""Per-item statistics used as baselines, business-rule inputs and model features.

Everything here is computed from plain tables (events, products, reviews) and returns one row
per product so that it can be joined onto a catalog or stored as a feature table.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.interactions import as_frame, to_epoch_seconds

_SECONDS_PER_DAY = 86_400.0


def popularity(events: pd.DataFrame | object, event_types: list[str] | None = None) -> pd.Series:
    """Number of distinct users who interacted with each product.

    Distinct users rather than raw event counts, so one bot or one obsessive shopper cannot
    make a product "popular".

    Parameters
    ----------
    events : pandas.DataFrame or pyarrow.Table
        Columns ``user_id``, ``product_id`` and optionally ``event_type``.
    event_types : list of str, optional
        Restrict to these event types.

    Returns
    -------
    pandas.Series
        Indexed by ``product_id``, sorted descending.
    """
    frame = as_frame(events)
    if event_types is not None:
        frame = frame[frame["event_type"].isin(event_types)]
    counts = frame.groupby("product_id")["user_id"].nunique()
    return counts.sort_values(ascending=False).rename("popularity")


def trending_scores(
    timestamps: np.ndarray,
    item_index: np.ndarray,
    n_items: int,
    now: float,
    recent_days: float = 7.0,
    history_days: float = 28.0,
    prior: float = 1.0,
) -> np.ndarray:
    """Smoothed ratio of the recent daily rate to the older daily rate, per item.

    ``(recent / recent_days + prior) / (older / history_days + prior)``: the additive prior
    keeps a product with 2 views this week and 0 before from outranking a steady best-seller
    that doubled. Events older than ``recent_days + history_days`` are ignored.

    Parameters
    ----------
    timestamps : numpy.ndarray
        Epoch seconds per event.
    item_index : numpy.ndarray
        Item position per event (0 .. n_items-1).
    n_items : int
        Number of items.
    now : float
        Reference time in epoch seconds.
    recent_days, history_days : float
        Lengths of the recent and the comparison windows.
    prior : float
        Pseudo-count per day added to both rates.

    Returns
    -------
    numpy.ndarray
        Trend ratio per item (1.0 means steady).
    """
    age_days = (now - np.asarray(timestamps, dtype=np.float64)) / _SECONDS_PER_DAY
    recent = age_days < recent_days
    older = (age_days >= recent_days) & (age_days < recent_days + history_days)
    recent_counts = np.bincount(item_index[recent], minlength=n_items)
    older_counts = np.bincount(item_index[older], minlength=n_items)
    return (recent_counts / recent_days + prior) / (older_counts / history_days + prior)


def trending(
    events: pd.DataFrame | object,
    now: float | pd.Timestamp | None = None,
    recent_days: float = 7.0,
    history_days: float = 28.0,
    prior: float = 1.0,
) -> pd.Series:
    """Trend ratio per product from an event table (see :func:`trending_scores`).

    Parameters
    ----------
    events : pandas.DataFrame or pyarrow.Table
        Columns ``product_id`` and ``ts``.
    now : float or pandas.Timestamp, optional
        Reference time; defaults to the latest event.
    recent_days, history_days, prior
        As in :func:`trending_scores`.

    Returns
    -------
    pandas.Series
        Indexed by ``product_id``, sorted descending.
    """
    frame = as_frame(events)
    ts = to_epoch_seconds(frame["ts"])
    codes, uniques = pd.factorize(frame["product_id"], sort=True)
    if now is None:
        reference = float(ts.max()) if len(ts) else 0.0
    elif isinstance(now, pd.Timestamp):
        reference = now.timestamp()
    else:
        reference = float(now)
    scores = trending_scores(ts, codes, len(uniques), reference, recent_days, history_days, prior)
    series = pd.Series(scores, index=pd.Index(uniques, name="product_id"), name="trending")
    return series.sort_values(ascending=False)


def price_bands(prices: pd.Series, n_bands: int = 5) -> pd.Series:
    """Quantile band (0 = cheapest) of each product's price within the catalog.

    Quantiles rather than fixed edges so bands stay balanced when the catalog's price mix
    changes; ties at band edges fall into the lower band.

    Parameters
    ----------
    prices : pandas.Series
        Price per product, indexed by product id.
    n_bands : int
        Number of bands.

    Returns
    -------
    pandas.Series
        Integer band per product (missing prices give -1).
    """
    ranks = prices.rank(method="average", pct=True)
    bands = np.ceil(ranks * n_bands) - 1
    return bands.fillna(-1).clip(lower=-1, upper=n_bands - 1).astype(int).rename("price_band")


def rating_stats(reviews: pd.DataFrame, prior_count: float = 5.0) -> pd.DataFrame:
    """Average rating, review count and a Bayesian-shrunk average per product.

    The shrunk average pulls products with few reviews towards the catalog mean, so a single
    5-star review does not top a ranking of 500 reviews averaging 4.8.

    Parameters
    ----------
    reviews : pandas.DataFrame
        Columns ``product_id`` and ``rating``.
    prior_count : float
        Weight of the catalog mean in pseudo-reviews.

    Returns
    -------
    pandas.DataFrame
        Columns ``rating_avg``, ``rating_count``, ``rating_shrunk``, indexed by product id.
    """
    grouped = reviews.groupby("product_id")["rating"]
    stats = pd.DataFrame({"rating_avg": grouped.mean(), "rating_count": grouped.size()})
    mean = float(reviews["rating"].mean()) if len(reviews) else 0.0
    stats["rating_shrunk"] = (stats["rating_avg"] * stats["rating_count"] + mean * prior_count) / (
        stats["rating_count"] + prior_count
    )
    return stats
