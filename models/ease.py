"""EASE, the Embarrassingly Shallow Autoencoder (Steck 2019), fast on any catalog size.

``B = argmin ‖X − XB‖² + λ‖B‖²  s.t. diag(B) = 0`` has the closed form ``P = (XᵀX + λI)⁻¹``,
``B = I − P · diag(1/diag(P))``. How ``P`` is computed (primal, exact dual or low-rank) is
chosen by :func:`models.ease_solvers.choose_solver`; see that module for why each is right.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from features.interactions import Interactions
from models import ease_solvers
from models.base import Recommender
from models.exceptions import NotFittedError

WEIGHTINGS = ("binary", "log", "raw")


class EASERecommender(Recommender):
    """EASE with an automatic solver.

    Parameters
    ----------
    l2 : float
        Ridge penalty λ.
    weighting : str
        How interaction weights (plays, purchases, ratings) enter the model: ``binary``
        (0/1, as the paper does), ``log`` (``log1p(w)`` divided by its mean over the training
        matrix, so λ keeps its scale: heavy users' favourites count more, but a 5,000-play
        artist not 1,000 times more than a 5-play one) or ``raw``. Chosen on validation with
        λ (:data:`models.evaluation.tuning.SEARCH_SPACES`): on Last.fm play counts ``log``
        wins, on 1–5 ratings ``binary`` usually does.
    binary : bool
        Legacy switch: ``False`` with ``weighting="binary"`` means ``raw``.
    solver : str
        ``auto``, ``primal``, ``dual`` or ``lowrank`` (see :mod:`models.ease_solvers`).
    max_items : int
        Largest dense side: the primal solver learns only the ``max_items`` most popular
        items (the rest score 0); ``auto`` switches to low-rank when both sides exceed it.
    rank : int
        Rank of the low-rank solver.
    """

    name = "ease"
    kept: np.ndarray | None = None
    weights: np.ndarray | None = None  # primal: dense B over the kept items
    factor_a: np.ndarray | None = None  # low-rank: Vᵀ (the dual's A is X itself)
    factor_m: np.ndarray | None = None
    diag: np.ndarray | None = None
    scale: float = 1.0  # ``log`` weighting: mean of log1p(w) over the training matrix

    @classmethod
    def default_params(cls) -> dict[str, Any]:
        return {
            "l2": 200.0,
            "max_items": 20_000,
            "binary": True,
            "weighting": "binary",
            "solver": "auto",
            "rank": 512,
        }

    def _fit(self, interactions: Interactions) -> None:
        self.scale = 1.0
        if self._weighting() == "log":
            data = self._require_fitted().data
            mean = float(np.log1p(np.clip(data, 0.0, None)).mean()) if data.size else 0.0
            self.scale = mean if mean > 0 else 1.0
        self._dual_cache = None
        x = self._inputs(self._require_fitted())
        solver = self._solver()
        l2 = float(self.params["l2"])
        self.weights = self.factor_a = self.factor_m = self.diag = None
        if solver == "primal":
            order = np.argsort(-self.item_popularity, kind="stable")
            kept = np.sort(order[: int(self.params["max_items"])]).astype(np.int64)
            self.kept = kept
            self.weights = ease_solvers.primal_weights(x[:, kept].tocsr(), l2)
        elif solver == "dual":
            self.kept = np.arange(self.n_items, dtype=np.int64)
            self.factor_m, self.diag = ease_solvers.dual_factors(x, l2)
        else:
            self.kept = np.arange(self.n_items, dtype=np.int64)
            self.factor_a, self.factor_m, self.diag = ease_solvers.lowrank_factors(
                x, l2, int(self.params["rank"])
            )

    def _solver(self) -> str:
        """The solver actually used (``auto`` resolved against the training matrix)."""
        solver = str(self.params.get("solver", "auto"))
        if solver not in ease_solvers.SOLVERS:
            raise ValueError(f"ease: unknown solver {solver!r}; use {ease_solvers.SOLVERS}")
        if solver != "auto":
            return solver
        n_users, n_items = self._require_fitted().shape
        return ease_solvers.choose_solver(n_users, n_items, int(self.params["max_items"]))

    def _weighting(self) -> str:
        """The weighting in force (``binary`` with the legacy ``binary=False`` is ``raw``)."""
        weighting = str(self.params.get("weighting", "binary"))
        if weighting not in WEIGHTINGS:
            raise ValueError(f"ease: unknown weighting {weighting!r}; use {WEIGHTINGS}")
        if weighting == "binary" and self.params.get("binary") is False:
            return "raw"
        return weighting

    def _inputs(self, x: sp.csr_matrix) -> sp.csr_matrix:
        """Rows as the model sees them: weights transformed by :meth:`_weighting`."""
        x = sp.csr_matrix(x, dtype=np.float32)
        weighting = self._weighting()
        if weighting == "raw":
            return x
        x = x.copy()
        if weighting == "binary":
            x.data = np.ones_like(x.data)
        else:
            x.data = (np.log1p(np.clip(x.data, 0.0, None)) / self.scale).astype(np.float32)
        return x

    def _apply(self, rows: sp.csr_matrix) -> np.ndarray:
        """``x B`` for sparse input rows over the full catalog (float32)."""
        if self.weights is not None:
            kept = self._kept()
            sub = np.asarray(rows[:, kept] @ self.weights, dtype=np.float32)
            if len(kept) == self.n_items:
                return sub
            out = np.zeros((rows.shape[0], self.n_items), dtype=np.float32)
            out[:, kept] = sub
            return out
        if self.factor_m is None or self.diag is None:
            raise NotFittedError("ease is not fitted")
        a = self.factor_a if self.factor_a is not None else self._dual_inputs()
        return ease_solvers.apply_lowrank_form(rows, a, self.factor_m, self.diag)

    def _dual_inputs(self) -> sp.csr_matrix:
        """The dual's ``A``: the (binarised) training matrix, prepared once per matrix."""
        matrix = self._require_fitted()
        cached = getattr(self, "_dual_cache", None)
        if cached is None or cached[0] is not matrix:
            cached = (matrix, self._inputs(matrix))
            self._dual_cache = cached
        return cached[1]

    def _score_users(self, rows: np.ndarray) -> np.ndarray:
        return self._apply(self._inputs(self._require_fitted()[rows]))

    def _fold_in_scores(self, item_rows: np.ndarray, weights: np.ndarray) -> np.ndarray:
        x = sp.csr_matrix(
            (weights.astype(np.float32), (np.zeros(len(item_rows), int), item_rows)),
            shape=(1, self.n_items),
        )
        return self._apply(x)[0]

    def _similarity_rows(self, item_rows: np.ndarray) -> np.ndarray:
        n = len(item_rows)
        unit = sp.csr_matrix(
            (np.ones(n, dtype=np.float32), (np.arange(n), item_rows)), shape=(n, self.n_items)
        )
        return self._apply(unit)

    def _kept(self) -> np.ndarray:
        if self.kept is None:
            raise NotFittedError("ease is not fitted")
        return self.kept

    def _state(self) -> dict[str, np.ndarray]:
        state = {"kept": self._kept(), "scale": np.asarray([self.scale], dtype=np.float64)}
        for key in ("weights", "factor_a", "factor_m", "diag"):
            value = getattr(self, key)
            if value is not None:
                state[key] = np.asarray(value)
        return state

    def _set_state(self, arrays: dict[str, np.ndarray]) -> None:
        self.kept = np.asarray(arrays["kept"], dtype=np.int64)
        self.scale = float(np.asarray(arrays.get("scale", [1.0])).ravel()[0])
        self._dual_cache = None
        for key in ("weights", "factor_a", "factor_m", "diag"):
            value = arrays.get(key)
            setattr(self, key, None if value is None else np.ascontiguousarray(value, np.float32))
