"""Tune a blend's weights on the validation split carved from training.

Each component is fitted once on inner-train with its own tuned params; its standardised
scores for (a sample of) the validation users are kept, so trying a weight vector costs one
weighted sum and one top-k, not a refit. The search is coordinate ascent over a small grid
(the first component's weight is fixed at 1: only ratios matter), two passes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from features.interactions import Interactions
from models.base import Recommender
from models.blend import standardise
from models.evaluation.metrics import ndcg_at_k
from models.factory import build_model
from models.topk import topk_rows

BLEND = "blend"
#: ``(name, params, interactions) -> fitted model``.
Fit = Callable[[str, dict[str, Any], Interactions], Recommender]
WEIGHT_GRID = (0.0, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0)
#: Validation users scored for the weight search (dense scores are users × items), and a cap
#: on users × items per component so large catalogs sample fewer users (~200 MB float32).
MAX_USERS = 3000
MAX_CELLS = 50_000_000
MIN_USERS = 100
PASSES = 2


@dataclass
class Validation:
    """Inner-train matrix plus validation users (train rows) and their relevant items."""

    inner: Interactions
    rows: np.ndarray
    relevant: list[set]
    exclude_seen: bool = True


@dataclass
class BlendTuning:
    """Chosen weights, their validation nDCG and every vector tried."""

    params: dict[str, Any]
    score: float
    trials: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    def report(self) -> dict[str, Any]:
        """The summary the runner stores beside each model's result."""
        return {
            "validation_ndcg": self.score,
            "trials": len(self.trials),
            "seconds": round(self.seconds, 3),
        }


def component_scores(
    name: str,
    params: dict[str, Any],
    validation: Validation,
    rows: np.ndarray,
    fit: Fit | None = None,
) -> np.ndarray:
    """Standardised scores of one component for ``rows`` (cold rows get its fallback)."""
    if fit is None:
        model = build_model(name, **params).fit(validation.inner)
    else:
        model = fit(name, params, validation.inner)
    out = np.empty((len(rows), model.n_items), dtype=np.float32)
    known = rows >= 0
    if known.any():
        for start in range(0, int(known.sum()), 512):
            batch = rows[known][start : start + 512]
            position = np.flatnonzero(known)[start : start + 512]
            out[position] = standardise(model._score_users(batch))
    if (~known).any():
        out[~known] = standardise(model._fallback_scores())
    return out


def tune_blend(
    components: list[str],
    component_params: dict[str, dict[str, Any]],
    validation: Validation,
    k: int,
    seed: int = 0,
    fit: Fit | None = None,
) -> BlendTuning:
    """Coordinate-ascent search of the blend weights maximising validation nDCG@k.

    Parameters
    ----------
    components : list of str
        Component model names, in the blend's order.
    component_params : dict
        Tuned params per component.
    validation : Validation
        Carved from training only.
    k : int
        Cut-off.
    seed : int
        Seed of the validation-user sample.
    fit : callable, optional
        ``(name, params, interactions) -> fitted model`` (e.g. the evaluator's
        :class:`~models.evaluation.fit_cache.FitCache`); default: fit each component here.

    Returns
    -------
    BlendTuning
        ``params`` holds ``weights``.
    """
    start = time.perf_counter()
    rows, relevant = _sample(validation, seed)
    scores = [
        component_scores(name, component_params.get(name, {}), validation, rows, fit)
        for name in components
    ]
    seen_mask = _seen_mask(validation, rows) if validation.exclude_seen else None
    trials: list[dict[str, Any]] = []
    memo: dict[tuple[float, ...], float] = {}

    def objective(weights: tuple[float, ...]) -> float:
        if weights not in memo:
            total = np.zeros_like(scores[0])
            for w, part in zip(weights, scores, strict=True):
                if w:
                    total += np.float32(w) * part
            if seen_mask is not None:
                total[seen_mask] = -np.inf
            idx, val = topk_rows(total, k)
            idx = np.where(np.isfinite(val), idx, -1)
            memo[weights] = ndcg_at_k(idx, relevant, k)
            trials.append({"weights": list(weights), "score": memo[weights]})
        return memo[weights]

    best = tuple([1.0] + [0.0] * (len(components) - 1))
    best_score = objective(best)
    for _ in range(PASSES):
        for i in range(1, len(components)):
            for w in WEIGHT_GRID:
                trial = best[:i] + (w,) + best[i + 1 :]
                score = objective(trial)
                if score > best_score:
                    best, best_score = trial, score
    return BlendTuning(
        {"weights": list(best)}, float(best_score), trials, time.perf_counter() - start
    )


def _sample(validation: Validation, seed: int) -> tuple[np.ndarray, list[set]]:
    """A seeded sample of validation users with relevant items, within the size caps."""
    useful = np.flatnonzero([bool(r) for r in validation.relevant])
    n_items = max(1, validation.inner.shape[1])
    limit = max(MIN_USERS, min(MAX_USERS, MAX_CELLS // n_items))
    if len(useful) > limit:
        useful = np.sort(np.random.default_rng(seed).choice(useful, limit, replace=False))
    return validation.rows[useful], [validation.relevant[i] for i in useful]


def _seen_mask(validation: Validation, rows: np.ndarray) -> np.ndarray:
    """Boolean (len(rows), n_items): items each user saw in inner-train."""
    matrix = validation.inner.matrix.tocsr()
    mask = np.zeros((len(rows), matrix.shape[1]), dtype=bool)
    for i, row in enumerate(rows):
        if row >= 0:
            mask[i, matrix.indices[matrix.indptr[row] : matrix.indptr[row + 1]]] = True
    return mask
