"""Non-personalised baselines: popularity, trending, and bought-together.

Baselines are what every learned model must beat before it may serve (see the registry's
promotion gate), and they are the fallback when a learned model has nothing to say.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from features.cooccurrence import cooccurrence_matrix
from features.interactions import Interactions
from features.item_stats import trending_scores
from models.base import Recommender
from models.exceptions import NotFittedError
from models.neighbors import prune_rows


class PopularRecommender(Recommender):
    """Rank every user's unseen items by the number of distinct training users."""

    name = "popular"
    personalised = False

    def _fit(self, interactions: Interactions) -> None:
        """Nothing to learn: popularity is computed by the base class."""

    def _score_users(self, rows: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self._fallback_scores(), (len(rows), self.n_items)).copy()

    def _fold_in_scores(self, item_rows: np.ndarray, weights: np.ndarray) -> np.ndarray:
        return self._fallback_scores()


class TrendingRecommender(Recommender):
    """Rank by the smoothed recent/older rate ratio, tie-broken by popularity.

    Uses the per-pair latest timestamps carried by the interactions (see
    :func:`features.item_stats.trending_scores`); without timestamps it degrades to popularity.
    """

    name = "trending"
    personalised = False
    trend: np.ndarray | None = None

    @classmethod
    def default_params(cls) -> dict[str, Any]:
        return {"recent_days": 7.0, "history_days": 28.0, "prior": 1.0}

    def _fit(self, interactions: Interactions) -> None:
        pop = np.log1p(self.item_popularity)
        stamps = interactions.timestamps
        if stamps is None or stamps.nnz == 0:
            self.trend = pop.astype(np.float32)
            return
        coo = stamps.tocoo()
        p = self.params
        ratio = trending_scores(
            coo.data,
            coo.col,
            self.n_items,
            float(coo.data.max()),
            float(p["recent_days"]),
            float(p["history_days"]),
            float(p["prior"]),
        )
        # log-ratio dominates; popularity only breaks ties between equally trending items.
        self.trend = (np.log(ratio) + 1e-3 * pop).astype(np.float32)

    def _scores(self) -> np.ndarray:
        if self.trend is None:
            raise NotFittedError("trending is not fitted")
        return self.trend

    def _score_users(self, rows: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self._scores(), (len(rows), self.n_items)).copy()

    def _fold_in_scores(self, item_rows: np.ndarray, weights: np.ndarray) -> np.ndarray:
        return self._scores()

    def _state(self) -> dict[str, np.ndarray]:
        return {"trend": self._scores()}

    def _set_state(self, arrays: dict[str, np.ndarray]) -> None:
        self.trend = arrays["trend"]


class BoughtTogetherRecommender(Recommender):
    """ "Frequently bought together": co-purchase counts normalised by the seed's purchases.

    ``score(i → j) = co(i, j) / (buyers(i) + shrink)``, an estimate of P(buy j | bought i)
    that is damped for rarely bought seeds. It answers :meth:`similar_items` (and session
    fold-in); per-user :meth:`recommend` falls back to popularity because co-purchase alone
    says little about a user's whole history.
    """

    name = "bought_together"
    personalised = False
    weights: sp.csr_matrix | None = None

    @classmethod
    def default_params(cls) -> dict[str, Any]:
        return {"min_count": 1, "shrink": 2.0, "neighbors": 50}

    def _fit(self, interactions: Interactions) -> None:
        purchases = interactions.purchases
        source = purchases if purchases is not None and purchases.nnz else self.user_items
        co = cooccurrence_matrix(source, min_count=int(self.params["min_count"]))
        buyers = np.diff(sp.csc_matrix(source).indptr).astype(np.float32)
        scale = 1.0 / (buyers + float(self.params["shrink"]))
        scaled = sp.diags(scale) @ co
        self.weights = prune_rows(scaled.tocsr(), int(self.params["neighbors"]))

    def _b(self) -> sp.csr_matrix:
        if self.weights is None:
            raise NotFittedError("bought_together is not fitted")
        return self.weights

    def _score_users(self, rows: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self._fallback_scores(), (len(rows), self.n_items)).copy()

    def _similarity_rows(self, item_rows: np.ndarray) -> np.ndarray:
        block = self._b()[item_rows].toarray().astype(np.float32)
        # Items never co-bought are not "bought together": mark them excluded.
        block[block <= 0] = -np.inf
        return block

    def _fold_in_scores(self, item_rows: np.ndarray, weights: np.ndarray) -> np.ndarray:
        block = self._b()[item_rows].toarray().astype(np.float32)
        scores = weights @ block
        # Co-bought items first, then the popular head as a tail so sessions never go empty.
        fallback = self._fallback_scores()
        tail = fallback / (fallback.max() + 1.0) * 1e-6
        return np.where(scores > 0, scores + 1.0, tail).astype(np.float32)

    def _state(self) -> dict[str, np.ndarray]:
        b = self._b()
        return {"b_data": b.data, "b_indices": b.indices, "b_indptr": b.indptr}

    def _set_state(self, arrays: dict[str, np.ndarray]) -> None:
        n = len(arrays["b_indptr"]) - 1
        self.weights = sp.csr_matrix(
            (arrays["b_data"], arrays["b_indices"], arrays["b_indptr"]), shape=(n, n)
        )
