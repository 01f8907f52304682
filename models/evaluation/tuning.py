"""Bounded hyperparameter search on a validation split carved from training data only.

The test set must never influence the chosen parameters, so the caller passes the *training*
part; this module splits it again (same protocol, different seed), tries candidates in a seeded
random order — defaults first — and stops at a trial limit or a time budget.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

#: Search spaces per model; models absent here are used with their defaults.
SEARCH_SPACES: dict[str, dict[str, list[Any]]] = {
    "als": {
        "factors": [16, 32, 64],
        "regularization": [0.1, 1.0, 10.0],
        "alpha": [0.5, 1.0, 2.0],
        "iterations": [15],
    },
    "bpr": {
        "factors": [16, 32, 64],
        "learning_rate": [0.005, 0.01, 0.02],
        "regularization": [0.001, 0.01],
        "iterations": [50, 100],
    },
    "ease": {"l2": [50.0, 100.0, 200.0, 400.0, 800.0, 1600.0]},
    "item2item": {"neighbors": [50, 100, 200, 400], "shrink": [0.0, 10.0, 50.0]},
}


@dataclass
class TuningResult:
    """Outcome of a search: the chosen params and every trial's score."""

    params: dict[str, Any]
    score: float
    trials: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0


def candidates(
    space: dict[str, list[Any]], defaults: dict[str, Any], seed: int
) -> list[dict[str, Any]]:
    """All grid points in a seeded random order, with the defaults' closest point first.

    Parameters
    ----------
    space : dict
        Parameter name → list of values.
    defaults : dict
        The model's default params (tried first so a tight budget still gives a sane model).
    seed : int
        Shuffle seed.

    Returns
    -------
    list of dict
    """
    names = sorted(space)
    grid = [
        dict(zip(names, values, strict=True))
        for values in itertools.product(*(space[n] for n in names))
    ]
    rng = np.random.default_rng(seed)
    order = list(rng.permutation(len(grid)))
    first = {n: defaults[n] for n in names if n in defaults}
    ordered = [first] if first else []
    ordered += [grid[i] for i in order if grid[i] != first]
    return ordered


def tune(
    name: str,
    evaluate: Callable[[dict[str, Any]], float],
    defaults: dict[str, Any],
    max_trials: int = 8,
    budget_seconds: float = 60.0,
    seed: int = 0,
) -> TuningResult:
    """Random search over :data:`SEARCH_SPACES` for ``name``, maximising ``evaluate``.

    Parameters
    ----------
    name : str
        Model name.
    evaluate : callable
        Params → validation score (higher is better); it fits on the inner-train split and
        scores on the validation split.
    defaults : dict
        The model's default params.
    max_trials : int
        Upper bound on candidates tried.
    budget_seconds : float
        Stop starting new trials after this much time.
    seed : int
        Order of the random search.

    Returns
    -------
    TuningResult
    """
    space = SEARCH_SPACES.get(name)
    if not space:
        return TuningResult(params={}, score=float("nan"))
    start = time.perf_counter()
    best: dict[str, Any] = {}
    best_score = -np.inf
    trials = []
    for params in candidates(space, defaults, seed)[:max_trials]:
        if trials and time.perf_counter() - start > budget_seconds:
            break
        score = float(evaluate(params))
        trials.append({"params": params, "score": score})
        if score > best_score:
            best, best_score = params, score
    return TuningResult(best, float(best_score), trials, time.perf_counter() - start)


def carve_validation(
    train: pd.DataFrame, protocol: str, test_fraction: float, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split the training part again into inner-train and validation, same protocol."""
    from models.evaluation.splits import split

    return split(train, protocol, test_fraction, seed + 1)
