"""Bounded hyperparameter search on a validation split carved from training data only.

The test set must never influence the chosen parameters, so the caller passes the *training*
part; this module splits it again (same protocol, different seed), tries candidates in a seeded
random order — defaults first — and stops at a trial limit or a time budget.

The budget counts this process's CPU seconds, not wall-clock time: on a shared machine a busy
neighbour would otherwise change which hyperparameters are chosen (on a 2-core machine at
load average 25, a 60 s wall budget let EASE try one λ of eight on Last.fm).
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
        "weighting": ["raw", "log"],
    },
    "bpr": {
        "factors": [16, 32, 64],
        "learning_rate": [0.005, 0.01, 0.02],
        "regularization": [0.001, 0.01],
        "iterations": [50, 100],
    },
    "ease": {
        "l2": [25.0, 50.0, 100.0, 200.0, 400.0, 800.0, 1600.0, 3200.0],
        "weighting": ["binary", "log"],
    },
    "item2item": {"neighbors": [50, 100, 200, 400], "shrink": [0.0, 10.0, 50.0]},
    "rp3beta": {
        "alpha": [0.5, 0.7, 0.9],
        "beta": [0.1, 0.2, 0.3, 0.4],
        "neighbors": [100, 200],
    },
}
#: The parameter whose every value is tried, with the other defaults, right after them.
PRIORITY_AXIS = "weighting"
#: Models searched by a line search along one ordered parameter instead of random trials:
#: their λ-free work is cached between trials (one factorisation serves every λ, see
#: ``models.ease_solvers``), so ``max_trials`` does not bound them (only the CPU budget does),
#: and validation nDCG is (nearly) single-peaked in λ, so walking from the default outwards
#: until two steps in a row fail to improve finds the grid's best λ in fewer trials than the
#: whole grid (Last.fm: 8 of 16, the same choice as the full grid).
LINE_SEARCH = {"ease": "l2"}
#: Steps a line search takes past a value that did not improve: validation curves are flat
#: and a little noisy near their peak (synthetic MovieLens, time split, log weighting:
#: λ 200 → 0.3692, 400 → 0.3690, 800 → 0.3719), so one worse step does not end the walk.
PATIENCE = 1


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
    # How interactions are weighted matters more than any other knob (ALS on Last.fm: 0.18
    # raw, 0.25 log), so the defaults with each other weighting come right after them.
    if first and PRIORITY_AXIS in space:
        ordered += [{**first, PRIORITY_AXIS: v} for v in space[PRIORITY_AXIS]]
    seen: list[dict[str, Any]] = []
    for params in ordered + [grid[i] for i in order]:
        if params not in seen:
            seen.append(params)
    return seen


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
        Stop starting new trials after this many CPU seconds of this process.
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
    cpu_start = time.process_time()
    best: dict[str, Any] = {}
    best_score = -np.inf
    trials: list[dict[str, Any]] = []

    def over_budget() -> bool:
        return bool(trials) and time.process_time() - cpu_start > budget_seconds

    def trial(params: dict[str, Any]) -> float:
        nonlocal best, best_score
        score = float(evaluate(params))
        trials.append({"params": params, "score": score})
        if score > best_score:
            best, best_score = params, score
        return score

    if name in LINE_SEARCH:
        line_search(space, LINE_SEARCH[name], defaults, trial, over_budget)
    else:
        for params in candidates(space, defaults, seed)[:max_trials]:
            if over_budget():
                break
            trial(params)
    return TuningResult(best, float(best_score), trials, time.perf_counter() - start)


def line_search(
    space: dict[str, list[Any]],
    axis: str,
    defaults: dict[str, Any],
    trial: Callable[[dict[str, Any]], float],
    over_budget: Callable[[], bool],
) -> None:
    """Walk ``axis`` (an ordered grid) from the default outwards, for each setting of the rest.

    For every combination of the other parameters (the defaults' first), the default value of
    ``axis`` (or the grid point nearest it) is tried, then neighbours downwards until
    ``PATIENCE + 1`` steps in a row fail to beat the best of this combination, then (only if
    going down did not help) upwards the same way.
    """
    values = list(space[axis])
    others = sorted(n for n in space if n != axis)
    combos = [
        dict(zip(others, combo, strict=True))
        for combo in itertools.product(*(space[n] for n in others))
    ]
    first = {n: defaults[n] for n in others if n in defaults}
    combos.sort(key=lambda c: c != first)
    default = defaults.get(axis, values[len(values) // 2])
    start = min(range(len(values)), key=lambda i: abs(np.log(values[i] / default)))
    for combo in combos:
        if over_budget():
            return
        local = trial({axis: values[start], **combo})
        for step in (-1, 1):
            i, moved, misses = start + step, False, 0
            while 0 <= i < len(values) and not over_budget():
                score = trial({axis: values[i], **combo})
                if score > local:
                    local, moved, misses = score, True, 0
                else:
                    misses += 1
                    if misses > PATIENCE:
                        break
                i += step
            if moved:
                break  # the peak lies this way: the other direction only falls


def carve_validation(
    train: pd.DataFrame, protocol: str, test_fraction: float, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split the training part again into inner-train and validation, same protocol."""
    from models.evaluation.splits import split

    return split(train, protocol, test_fraction, seed + 1)
