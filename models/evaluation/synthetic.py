"""Synthetic rating logs shaped like MovieLens-100k, with known latent structure.

The real file cannot be downloaded at test time, so tests and benchmarks generate one with
the same shape (943 users, 1682 items, ~100k 1–5 ratings, ≥ 20 ratings per user, a long-tail
item popularity and a seven-month time span). Users and items have latent taste vectors
grouped in genres, so a model that learns structure beats popularity, as on the real data.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: MovieLens-100k's time span (1997-09-20 .. 1998-04-22), in epoch seconds.
ML100K_START, ML100K_END = 874_724_710, 893_286_638


def movielens_like(
    n_users: int = 943,
    n_items: int = 1682,
    n_ratings: int = 100_000,
    n_genres: int = 18,
    dim: int = 16,
    taste_strength: float = 5.0,
    seed: int = 0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Generate a rating log and its ground-truth relevance.

    Each user picks items with probability ∝ popularity · exp(taste_strength · u·v) (a
    Gumbel top-k draw without replacement) and rates them 1–5 from the same affinity plus
    noise. Timestamps are increasing within a user's active period.

    Parameters
    ----------
    n_users, n_items, n_ratings : int
        Shape of the log (the count is approximate, within a few percent).
    n_genres : int
        Number of item clusters.
    dim : int
        Latent dimension.
    taste_strength : float
        How much taste (vs popularity) drives choice; 0 gives a pure popularity world.
    seed : int
        Random seed.

    Returns
    -------
    (pandas.DataFrame, pandas.DataFrame)
        ``ratings`` with columns ``user``, ``item``, ``rating``, ``timestamp`` and ``truth``
        with ``user_id``, ``product_id``, ``grade`` (grade 1–3 for each user's 30 best
        unrated items by true affinity).
    """
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_genres, dim))
    genre = rng.integers(0, n_genres, size=n_items)
    items = centres[genre] + 0.5 * rng.normal(size=(n_items, dim))
    items /= np.linalg.norm(items, axis=1, keepdims=True)
    # Users like one to three genres.
    users = np.zeros((n_users, dim))
    for u in range(n_users):
        liked = rng.choice(n_genres, size=rng.integers(1, 4), replace=False)
        users[u] = centres[liked].sum(axis=0) + 0.3 * rng.normal(size=dim)
    users /= np.linalg.norm(users, axis=1, keepdims=True)
    affinity = users @ items.T

    log_pop = -0.7 * np.log(rng.permutation(n_items) + 1.0)  # Zipf-like long tail
    activity = rng.lognormal(mean=0.0, sigma=0.9, size=n_users)
    counts = 20 + activity / activity.sum() * (n_ratings - 20 * n_users)
    counts = np.minimum(np.rint(counts).astype(int), n_items // 2)

    logits = log_pop[None, :] + taste_strength * affinity
    keys = logits + rng.gumbel(size=logits.shape)
    order = np.argsort(-keys, axis=1)

    rows, cols = [], []
    for u in range(n_users):
        chosen = order[u, : counts[u]]
        rows.append(np.full(len(chosen), u))
        cols.append(chosen)
    user_idx = np.concatenate(rows)
    item_idx = np.concatenate(cols)

    raw = 3.1 + 1.6 * affinity[user_idx, item_idx] + 0.8 * rng.normal(size=len(user_idx))
    ratings = np.clip(np.rint(raw), 1, 5).astype(int)

    span = ML100K_END - ML100K_START
    starts = rng.uniform(ML100K_START, ML100K_END - 0.2 * span, size=n_users)
    lengths = rng.exponential(0.1 * span, size=n_users)
    offsets = rng.random(len(user_idx))
    stamps = starts[user_idx] + offsets * lengths[user_idx]
    stamps = np.minimum(stamps, ML100K_END).astype(np.int64)

    frame = pd.DataFrame(
        {"user": user_idx + 1, "item": item_idx + 1, "rating": ratings, "timestamp": stamps}
    ).sort_values(["user", "timestamp"], kind="stable", ignore_index=True)

    truth_rows = []
    rated = np.zeros((n_users, n_items), dtype=bool)
    rated[user_idx, item_idx] = True
    masked = np.where(rated, -np.inf, affinity)
    best = np.argsort(-masked, axis=1)[:, :30]
    for u in range(n_users):
        for rank, item in enumerate(best[u]):
            truth_rows.append((u + 1, int(item) + 1, 3 - rank // 10))
    truth = pd.DataFrame(truth_rows, columns=["user_id", "product_id", "grade"])
    return frame, truth


def grocery_like(
    n_users: int = 400,
    n_items: int = 500,
    weeks: int = 20,
    n_groups: int = 8,
    seed: int = 0,
) -> pd.DataFrame:
    """A repeat-heavy purchase log: staples bought most weeks, plus a few new items.

    Each user has 4–12 staples (chosen by popularity and by taste for a couple of item
    groups) bought with probability 0.3–0.8 each week, and tries 0–2 other items per week
    from the same tastes. About two thirds of rows repeat an earlier (user, item) pair, as
    in a real grocery log, which is what breaks row-level random splits.

    Returns
    -------
    pandas.DataFrame
        ``user``, ``item``, ``timestamp`` (epoch seconds, one basket per week), ``rating``
        (quantity, 1–3).
    """
    rng = np.random.default_rng(seed)
    group = rng.integers(0, n_groups, size=n_items)
    log_pop = -0.8 * np.log(rng.permutation(n_items) + 1.0)
    start = 1_700_000_000
    rows = []
    for user in range(n_users):
        liked = rng.choice(n_groups, size=2, replace=False)
        logits = log_pop + 2.5 * np.isin(group, liked)
        probs = np.exp(logits - logits.max())
        probs /= probs.sum()
        staples = rng.choice(n_items, size=rng.integers(4, 13), replace=False, p=probs)
        rate = rng.uniform(0.3, 0.8, size=len(staples))
        for week in range(weeks):
            stamp = start + week * 7 * 86_400 + user
            bought = staples[rng.random(len(staples)) < rate]
            tried = rng.choice(n_items, size=rng.integers(0, 3), replace=False, p=probs)
            for item in np.unique(np.r_[bought, tried]):
                rows.append((user + 1, int(item) + 1, stamp, int(rng.integers(1, 4))))
    return pd.DataFrame(rows, columns=["user", "item", "timestamp", "rating"])
