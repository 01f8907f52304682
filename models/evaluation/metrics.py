"""Ranking metrics, defined as Microsoft Recommenders defines them.

Every ranking metric is computed per user and averaged over the users that have at least one
relevant item in the test set (users with none cannot score and would only dilute the mean).
Recommendation lists are rows of item positions, best first, padded with -1.

* precision@k = hits in the top k / k
* recall@k = hits in the top k / number of relevant items
* nDCG@k = DCG / IDCG with binary gains, DCG = Σ hit_i / log2(i + 1) over ranks i = 1..k,
  IDCG the same for an ideal list of min(|relevant|, k) hits
* MAP@k (``map@k``, storeloop's) = Σ over hit ranks i of precision@i, divided by
  min(|relevant|, k): a perfect list scores 1 even when a user has more than k relevant items
* MAP@k as Microsoft Recommenders' benchmark table computes it (``map_msr@k``): the same sum
  divided by |relevant|, so it is never above recall; report it to compare with that table
* hit rate@k = share of users with at least one hit
* coverage = distinct recommended items / catalog size
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np


def hit_matrix(recommended: np.ndarray, relevant: Sequence[set]) -> np.ndarray:
    """Boolean (n_users, k): whether each recommended item is relevant for its user."""
    hits = np.zeros(recommended.shape, dtype=bool)
    for u, (row, rel) in enumerate(zip(recommended, relevant, strict=True)):
        if rel:
            hits[u] = [int(item) in rel for item in row]
    return hits


def _discounts(k: int) -> np.ndarray:
    return 1.0 / np.log2(np.arange(2, k + 2))


def precision_at_k(recommended: np.ndarray, relevant: Sequence[set], k: int) -> float:
    """Mean over users with relevant items of (hits in top k) / k.

    Parameters
    ----------
    recommended : numpy.ndarray
        (n_users, >=k) item positions, best first, -1 padding.
    relevant : sequence of set
        Relevant item positions per user (same order).
    k : int
        Cut-off.

    Returns
    -------
    float
    """
    hits, users = _prepare(recommended, relevant, k)
    return float(hits[users].sum(axis=1).mean() / k) if users.any() else 0.0


def recall_at_k(recommended: np.ndarray, relevant: Sequence[set], k: int) -> float:
    """Mean over users with relevant items of (hits in top k) / |relevant| (see module doc)."""
    hits, users = _prepare(recommended, relevant, k)
    if not users.any():
        return 0.0
    sizes = np.array([len(r) for r in relevant], dtype=float)
    return float((hits[users].sum(axis=1) / sizes[users]).mean())


def ndcg_at_k(recommended: np.ndarray, relevant: Sequence[set], k: int) -> float:
    """Mean binary-gain nDCG@k over users with relevant items (see module doc)."""
    hits, users = _prepare(recommended, relevant, k)
    if not users.any():
        return 0.0
    disc = _discounts(k)
    dcg = (hits[users] * disc).sum(axis=1)
    ideal_n = np.minimum([len(relevant[u]) for u in np.flatnonzero(users)], k)
    idcg = np.cumsum(disc)[ideal_n - 1]
    return float((dcg / idcg).mean())


def map_at_k(recommended: np.ndarray, relevant: Sequence[set], k: int) -> float:
    """Mean average precision@k, normalised by min(|relevant|, k) (see module doc)."""
    hits, users = _prepare(recommended, relevant, k)
    if not users.any():
        return 0.0
    h = hits[users].astype(float)
    prec_at_i = np.cumsum(h, axis=1) / np.arange(1, k + 1)
    norm = np.minimum([len(relevant[u]) for u in np.flatnonzero(users)], k)
    return float(((prec_at_i * h).sum(axis=1) / norm).mean())


def map_msr_at_k(recommended: np.ndarray, relevant: Sequence[set], k: int) -> float:
    """MAP@k divided by |relevant| (Microsoft Recommenders' ``map_at_k``; see module doc)."""
    hits, users = _prepare(recommended, relevant, k)
    if not users.any():
        return 0.0
    h = hits[users].astype(float)
    prec_at_i = np.cumsum(h, axis=1) / np.arange(1, k + 1)
    sizes = np.array([len(relevant[u]) for u in np.flatnonzero(users)], dtype=float)
    return float(((prec_at_i * h).sum(axis=1) / sizes).mean())


def hit_rate_at_k(recommended: np.ndarray, relevant: Sequence[set], k: int) -> float:
    """Share of users (with relevant items) that have at least one hit in the top k."""
    hits, users = _prepare(recommended, relevant, k)
    return float(hits[users].any(axis=1).mean()) if users.any() else 0.0


def catalog_coverage(recommended: np.ndarray, n_items: int) -> float:
    """Distinct recommended items (ignoring -1 padding) / catalog size."""
    items = np.unique(recommended[recommended >= 0])
    return float(len(items) / n_items) if n_items else 0.0


def ndcg_graded(recommended: np.ndarray, grades: Sequence[Mapping[int, float]], k: int) -> float:
    """nDCG@k against graded ground truth (e.g. a simulator's true relevance).

    Gains are ``2**grade - 1`` and IDCG sorts the user's true grades; users without any
    positive grade are skipped, as in the binary metrics.

    Parameters
    ----------
    recommended : numpy.ndarray
        (n_users, >=k) item positions, best first.
    grades : sequence of mapping
        Per user, item position → grade (> 0 means relevant).
    k : int
        Cut-off.

    Returns
    -------
    float
    """
    disc = _discounts(k)
    scores = []
    for row, truth in zip(recommended[:, :k], grades, strict=True):
        positive = sorted((g for g in truth.values() if g > 0), reverse=True)[:k]
        if not positive:
            continue
        gains = np.array([2.0 ** truth.get(int(item), 0.0) - 1.0 for item in row])
        ideal = (2.0 ** np.array(positive) - 1.0) @ disc[: len(positive)]
        scores.append(float(gains @ disc[: len(gains)]) / ideal)
    return float(np.mean(scores)) if scores else 0.0


def ranking_metrics(
    recommended: np.ndarray, relevant: Sequence[set], k: int, n_items: int
) -> dict[str, float]:
    """All metrics of this module at cut-off ``k`` in one dict (keys like ``ndcg@10``)."""
    return {
        f"ndcg@{k}": ndcg_at_k(recommended, relevant, k),
        f"precision@{k}": precision_at_k(recommended, relevant, k),
        f"recall@{k}": recall_at_k(recommended, relevant, k),
        f"map@{k}": map_at_k(recommended, relevant, k),
        f"map_msr@{k}": map_msr_at_k(recommended, relevant, k),
        f"hit_rate@{k}": hit_rate_at_k(recommended, relevant, k),
        "coverage": catalog_coverage(recommended[:, :k], n_items),
        "n_users": float(sum(1 for r in relevant if r)),
    }


def _prepare(
    recommended: np.ndarray, relevant: Sequence[set], k: int
) -> tuple[np.ndarray, np.ndarray]:
    recommended = np.asarray(recommended)[:, :k]
    if recommended.shape[1] < k:
        pad = np.full((recommended.shape[0], k - recommended.shape[1]), -1)
        recommended = np.hstack([recommended, pad])
    users = np.array([bool(r) for r in relevant], dtype=bool)
    return hit_matrix(recommended, relevant), users
