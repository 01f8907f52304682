"""Serving-side recommendations: model scores plus the shop's business rules.

A model ranks by taste; the shop also must never show what it cannot sell, should not push a
fridge to someone who just bought one (but may suggest coffee again), and should not fill a
carousel with ten near-identical items. Those rules live here, once, for every model, and the
answer is never empty: unknown users get a session fold-in from their recent items, and
anything still missing is filled from the popularity ranking.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from threadpoolctl import ThreadpoolController

from models.base import Recommender
from models.factorization import FactorModel
from models.topk import topk_rows

_POOL_FACTOR = 5
_CONTROLLER: ThreadpoolController | None = None


def single_thread_blas():  # -> context manager
    """Limit BLAS to one thread for a per-request mat-vec.

    One user's scoring is memory-bound and short; waking BLAS worker threads between requests
    costs more than it saves (measured: p50 6 ms with two threads vs 0.9 ms with one, under
    load), and a server parallelises across requests anyway. The controller is built once
    because discovering the loaded libraries takes milliseconds.
    """
    global _CONTROLLER
    if _CONTROLLER is None:
        _CONTROLLER = ThreadpoolController()
    return _CONTROLLER.limit(limits=1, user_api="blas")


@dataclass
class Recommendation:
    """Ranked item ids with scores and which path produced them."""

    item_ids: list
    scores: np.ndarray
    source: str  # "model", "session" or "popular"


class RecommendationService:
    """Wrap a loaded model bundle and apply business rules after scoring.

    Parameters
    ----------
    model : Recommender
        Fitted or loaded model (its id maps define item positions).
    category, brand : numpy.ndarray, optional
        Integer codes per item position (-1 = unknown; unknown codes are never capped).
    available : numpy.ndarray, optional
        Boolean mask per item position; False = out of stock or archived.
    repeat_categories : iterable of int
        Category codes whose items may be recommended again after a purchase.
    max_per_category, max_per_brand : int, optional
        Diversity caps within one answer.
    """

    def __init__(
        self,
        model: Recommender,
        category: np.ndarray | None = None,
        brand: np.ndarray | None = None,
        available: np.ndarray | None = None,
        repeat_categories: Iterable[int] = (),
        max_per_category: int | None = None,
        max_per_brand: int | None = None,
    ) -> None:
        self.model = model
        n = model.n_items
        self.category = _codes(category, n)
        self.brand = _codes(brand, n)
        self.available = np.ones(n, dtype=bool) if available is None else np.asarray(available)
        self.repeat_categories = np.asarray(sorted(set(repeat_categories)), dtype=np.int64)
        self.max_per_category = max_per_category
        self.max_per_brand = max_per_brand
        self._popular = model._fallback_scores()
        self._item_vectors = model.item_factors if isinstance(model, FactorModel) else None

    def update_rules(
        self,
        category: np.ndarray | None = None,
        brand: np.ndarray | None = None,
        available: np.ndarray | None = None,
    ) -> None:
        """Swap in fresh per-item arrays (each one reference assignment; readers never lock)."""
        n = self.model.n_items
        if category is not None:
            self.category = _codes(category, n)
        if brand is not None:
            self.brand = _codes(brand, n)
        if available is not None:
            mask = np.asarray(available, dtype=bool)
            if mask.shape != (n,):
                raise ValueError(f"availability must have one flag per item ({n})")
            self.available = mask

    def set_unavailable(self, item_ids: Iterable) -> None:
        """Mark items out of stock/archived (replaces the previous availability)."""
        mask = np.ones(self.model.n_items, dtype=bool)
        rows = self.model.items.to_index(item_ids)
        mask[rows[rows >= 0]] = False
        self.available = mask

    def recommend(
        self,
        user_id: object,
        k: int = 10,
        recent_items: Sequence | None = None,
        recent_weights: Sequence[float] | None = None,
        purchased: Iterable | None = None,
        exclude: Iterable | None = None,
        exclude_seen: bool = True,
    ) -> Recommendation:
        """Top-k items for one user after business rules.

        Parameters
        ----------
        user_id : object
            External user id; unknown users use ``recent_items`` or popularity.
        k : int
            Number of items.
        recent_items, recent_weights : sequence, optional
            Latest session items (and their weights) for the fold-in of unknown users.
        purchased : iterable, optional
            Items the user bought; excluded unless their category allows repeats.
        exclude : iterable, optional
            Further items never to show (e.g. already in the cart).
        exclude_seen : bool
            Drop the user's training items.

        Returns
        -------
        Recommendation
        """
        model = self.model
        row = model.users.index_of(user_id)
        if row >= 0:
            scores, source = self._user_scores(row), "model"
        else:
            seeds = model.items.to_index(recent_items or [])
            weights = np.ones(len(seeds)) if recent_weights is None else np.asarray(recent_weights)
            known = seeds >= 0
            if known.any():
                seed_rows = seeds[known]
                with single_thread_blas():
                    scores = model._fold_in_scores(seed_rows, weights[known].astype(np.float32))
                scores = np.array(scores, dtype=np.float32)
                scores[seed_rows] = -np.inf
                source = "session"
            else:
                scores, source = self._popular.copy(), "popular"

        blocked = ~self.available
        if exclude_seen and row >= 0:
            ui = model.user_items
            blocked = blocked.copy()
            blocked[ui.indices[ui.indptr[row] : ui.indptr[row + 1]]] = True
        blocked = self._block(blocked, purchased, repeat_ok=True)
        blocked = self._block(blocked, exclude, repeat_ok=False)
        scores[blocked] = -np.inf

        chosen = self._diverse_topk(scores, k)
        if len(chosen) < k:
            fill = self._popular.copy()
            fill[blocked] = -np.inf
            fill[chosen] = -np.inf
            extra, extra_val = topk_rows(fill, k - len(chosen))
            extra = extra[np.isfinite(extra_val)]
            chosen = np.concatenate([chosen, extra]).astype(np.int64)
            if len(extra) and source != "popular":
                source += "+popular"
        return Recommendation(model.items.to_ids(chosen), scores[chosen], source)

    def recommend_from_candidates(
        self,
        candidates: np.ndarray,
        scores: np.ndarray,
        k: int,
        purchased: Iterable | None = None,
        exclude: Iterable | None = None,
    ) -> Recommendation | None:
        """The same answer as :meth:`recommend` for a known user, from a precomputed top list.

        ``candidates`` are the user's best item positions (training items already excluded),
        best first. The rules only remove items, and the capped walk goes in score order, so
        if ``k`` items survive within the list the answer equals a full scoring; otherwise
        ``None`` tells the caller to score in full.
        """
        keep = self.available[candidates]
        for items, repeat_ok in ((purchased, True), (exclude, False)):
            rows = self._rows(items, repeat_ok)
            if len(rows):
                keep &= ~np.isin(candidates, rows)
        cand, vals = candidates[keep], scores[keep]
        if self.max_per_category is None and self.max_per_brand is None:
            positions = np.arange(min(k, len(cand)))
        else:
            positions = self._walk_positions(cand, k)
        if len(positions) < k:
            return None
        chosen = cand[positions].astype(np.int64)
        return Recommendation(self.model.items.to_ids(chosen), vals[positions], "model")

    # ----------------------------------------------------------------- helpers
    def _rows(self, item_ids: Iterable | None, repeat_ok: bool) -> np.ndarray:
        if not item_ids:
            return np.empty(0, dtype=np.int64)
        rows = self.model.items.to_index(item_ids)
        rows = rows[rows >= 0]
        if repeat_ok and len(self.repeat_categories):
            rows = rows[~np.isin(self.category[rows], self.repeat_categories)]
        return rows

    def _user_scores(self, row: int) -> np.ndarray:
        """One user's scores; a float32 mat-vec for factor models (the hot path)."""
        with single_thread_blas():
            if self._item_vectors is not None:
                return self._item_vectors @ self.model.user_factors[row]
            return self.model._score_users(np.array([row]))[0].copy()

    def _block(self, blocked: np.ndarray, item_ids: Iterable | None, repeat_ok: bool) -> np.ndarray:
        rows = self._rows(item_ids, repeat_ok)
        if not len(rows):
            return blocked
        blocked = blocked.copy()
        blocked[rows] = True
        return blocked

    def _diverse_topk(self, scores: np.ndarray, k: int) -> np.ndarray:
        """Greedy top-k respecting the per-category and per-brand caps."""
        if self.max_per_category is None and self.max_per_brand is None:
            idx, val = topk_rows(scores, k)
            return idx[np.isfinite(val)]
        pool = min(len(scores), k * _POOL_FACTOR)
        while True:
            idx, val = topk_rows(scores, pool)
            idx = idx[np.isfinite(val)]
            chosen = self._walk(idx, k)
            if len(chosen) >= k or pool >= len(scores) or len(idx) < pool:
                return chosen
            pool = min(len(scores), pool * 4)

    def _walk(self, candidates: np.ndarray, k: int) -> np.ndarray:
        return candidates[self._walk_positions(candidates, k)].astype(np.int64)

    def _walk_positions(self, candidates: np.ndarray, k: int) -> np.ndarray:
        """Positions in ``candidates`` the capped greedy walk keeps, at most ``k``."""
        per_cat: dict[int, int] = {}
        per_brand: dict[int, int] = {}
        chosen = []
        cats = self.category[candidates].tolist()
        brands = self.brand[candidates].tolist()
        for pos, (cat, brand) in enumerate(zip(cats, brands, strict=True)):
            cat_full = self.max_per_category is not None and cat >= 0
            if cat_full and per_cat.get(cat, 0) >= self.max_per_category:
                continue
            brand_full = self.max_per_brand is not None and brand >= 0
            if brand_full and per_brand.get(brand, 0) >= self.max_per_brand:
                continue
            per_cat[cat] = per_cat.get(cat, 0) + 1
            per_brand[brand] = per_brand.get(brand, 0) + 1
            chosen.append(pos)
            if len(chosen) == k:
                break
        return np.asarray(chosen, dtype=np.int64)


def _codes(values: np.ndarray | None, n: int) -> np.ndarray:
    if values is None:
        return np.full(n, -1, dtype=np.int64)
    codes = np.asarray(values, dtype=np.int64)
    if codes.shape != (n,):
        raise ValueError(f"metadata must have one code per item ({n}), got {codes.shape}")
    return codes
