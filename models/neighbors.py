"""Item-based neighbourhood models: item-to-item cosine and EASE.

Both score a user as ``x_u · B`` for an item × item weight matrix ``B``; they differ in how
``B`` is learned. Item-to-item keeps only each item's strongest neighbours (sparse, scales to
large catalogs); EASE solves a ridge regression in closed form (dense, best accuracy on
catalogs up to some tens of thousands of items).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from features.interactions import Interactions
from models.base import Recommender
from models.exceptions import ModelFitError, NotFittedError


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


class EASERecommender(WeightMatrixModel):
    """Embarrassingly Shallow Autoencoder (Steck 2019).

    ``B = argmin ‖X − XB‖² + λ‖B‖²  s.t. diag(B) = 0`` has the closed form
    ``P = (XᵀX + λI)⁻¹``, ``B = I − P · diag(1/diag(P))``. Cost is one dense n_items² inverse,
    so ``max_items`` bounds the catalog: only the most popular items get learned weights
    (and memory is ``max_items²``, not ``n_items²``); the rest score 0.
    """

    name = "ease"
    kept: np.ndarray | None = None

    @classmethod
    def default_params(cls) -> dict[str, Any]:
        return {"l2": 200.0, "max_items": 20_000, "binary": True}

    def _fit(self, interactions: Interactions) -> None:
        x = self._require_fitted().copy()
        if self.params["binary"]:
            x.data = np.ones_like(x.data)
        order = np.argsort(-self.item_popularity, kind="stable")
        kept = np.sort(order[: int(self.params["max_items"])])
        xk = x[:, kept]
        gram = (xk.T @ xk).toarray().astype(np.float64)
        gram[np.diag_indices_from(gram)] += float(self.params["l2"])
        try:
            p = np.linalg.inv(gram)
        except np.linalg.LinAlgError as exc:
            raise ModelFitError(f"ease: Gram matrix not invertible ({exc})") from exc
        b = p / (-np.diag(p))
        b[np.diag_indices_from(b)] = 0.0
        self.kept = kept.astype(np.int64)
        self.weights = b.astype(np.float32)

    def _binary_rows(self, rows: np.ndarray) -> sp.csr_matrix:
        x = self._require_fitted()[rows]
        if self.params.get("binary"):
            x = x.copy()
            x.data = np.ones_like(x.data)
        return x

    def _score_users(self, rows: np.ndarray) -> np.ndarray:
        """``x_u B`` on the kept items; items outside the kept set score 0 (never learned)."""
        b, kept = self._b(), self._kept()
        sub = np.asarray(self._binary_rows(rows)[:, kept] @ b, dtype=np.float32)
        if len(kept) == self.n_items:
            return sub
        scores = np.zeros((len(rows), self.n_items), dtype=np.float32)
        scores[:, kept] = sub
        return scores

    def _similarity_rows(self, item_rows: np.ndarray) -> np.ndarray:
        b, kept = self._b(), self._kept()
        if len(kept) == self.n_items:
            return np.array(b[item_rows], dtype=np.float32)
        position = np.full(self.n_items, -1, dtype=np.int64)
        position[kept] = np.arange(len(kept))
        out = np.zeros((len(item_rows), self.n_items), dtype=np.float32)
        pos = position[item_rows]
        known = pos >= 0
        out[np.ix_(np.flatnonzero(known), kept)] = b[pos[known]]
        return out

    def _kept(self) -> np.ndarray:
        if self.kept is None:
            raise NotFittedError("ease is not fitted")
        return self.kept

    def _state(self) -> dict[str, np.ndarray]:
        return {"weights": np.asarray(self._b()), "kept": self._kept()}

    def _set_state(self, arrays: dict[str, np.ndarray]) -> None:
        self.kept = np.asarray(arrays["kept"], dtype=np.int64)
        self.weights = np.ascontiguousarray(arrays["weights"], dtype=np.float32)
