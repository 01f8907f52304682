"""Item-based neighbourhood models scored as ``x_u · B`` for an item × item matrix ``B``.

Item-to-item keeps only each item's strongest cosine neighbours (sparse, scales to large
catalogs); RP3beta (``models.graph``) and EASE (``models.ease``) learn ``B`` differently.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from features.interactions import Interactions
from models.base import Recommender
from models.exceptions import NotFittedError


def prune_rows(matrix: sp.csr_matrix, keep: int) -> sp.csr_matrix:
    """Keep the ``keep`` largest entries of each row (a sparse top-k)."""
    matrix = matrix.tocsr()
    rows, cols, vals = [], [], []
    for r in range(matrix.shape[0]):
        lo, hi = matrix.indptr[r], matrix.indptr[r + 1]
        data = matrix.data[lo:hi]
        idx = matrix.indices[lo:hi]
        if len(data) > keep:
            top = np.argpartition(-data, keep - 1)[:keep]
            data, idx = data[top], idx[top]
        rows.append(np.full(len(data), r, dtype=np.int64))
        cols.append(idx)
        vals.append(data)
    if not rows:
        return sp.csr_matrix(matrix.shape, dtype=np.float32)
    return sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=matrix.shape
    ).astype(np.float32)


class WeightMatrixModel(Recommender):
    """Shared scoring for models defined by an item × item weight matrix ``B``."""

    weights: np.ndarray | sp.csr_matrix | None = None

    def _b(self) -> np.ndarray | sp.csr_matrix:
        if self.weights is None:
            raise NotFittedError(f"{self.name} is not fitted")
        return self.weights

    def _score_users(self, rows: np.ndarray) -> np.ndarray:
        x = self._require_fitted()[rows]
        if self.params.get("binary"):
            x = x.copy()
            x.data = np.ones_like(x.data)
        scores = x @ self._b()
        if sp.issparse(scores):
            scores = scores.toarray()
        return np.asarray(scores, dtype=np.float32)

    def _similarity_rows(self, item_rows: np.ndarray) -> np.ndarray:
        b = self._b()
        block = b[item_rows]
        return np.asarray(block.toarray() if sp.issparse(block) else block, dtype=np.float32)


class ItemToItemRecommender(WeightMatrixModel):
    """Item-to-item collaborative filtering with (shrunk) cosine over co-occurrence.

    ``sim(i, j) = (X_iᵀ X_j) / (‖X_i‖ ‖X_j‖ + shrink)``, with ``X`` the (optionally
    binarised) user × item matrix; only the ``neighbors`` strongest per item are kept.
    """

    name = "item2item"

    @classmethod
    def default_params(cls) -> dict[str, Any]:
        return {"neighbors": 100, "shrink": 10.0, "binary": True}

    def _fit(self, interactions: Interactions) -> None:
        x = self._require_fitted().copy()
        if self.params["binary"]:
            x.data = np.ones_like(x.data)
        co = (x.T @ x).tocsr().astype(np.float32)
        co.setdiag(0)
        co.eliminate_zeros()
        norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=0)).ravel()).astype(np.float32)
        co = co.tocoo()
        denom = norms[co.row] * norms[co.col] + float(self.params["shrink"])
        sims = sp.csr_matrix((co.data / denom, (co.row, co.col)), shape=co.shape)
        # B[i, j] = how much having seen i supports j, so prune per *row* of the seed item.
        self.weights = prune_rows(sims, int(self.params["neighbors"]))

    def _state(self) -> dict[str, np.ndarray]:
        b = self._b().tocsr()
        return {"b_data": b.data, "b_indices": b.indices, "b_indptr": b.indptr}

    def _set_state(self, arrays: dict[str, np.ndarray]) -> None:
        n = len(arrays["b_indptr"]) - 1
        self.weights = sp.csr_matrix(
            (arrays["b_data"], arrays["b_indices"], arrays["b_indptr"]), shape=(n, n)
        )
