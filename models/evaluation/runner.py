"""Offline evaluation of several models on one rating/interaction file.

This is the logic behind ``storeloop recs evaluate``: load, split, tune each model on a
validation split carved from the training part only, refit on the whole training part,
recommend for every test user with seen training items excluded, and score.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from features.interactions import Interactions, interactions_from_triples
from models.evaluation.metrics import ranking_metrics
from models.evaluation.splits import split
from models.evaluation.tuning import carve_validation, tune
from models.factory import build_model

DEFAULT_MODELS = ("ease", "als", "bpr", "item2item", "popular")
REQUIRED_COLUMNS = ("user", "item", "timestamp")


@dataclass
class ModelResult:
    """Metrics and provenance of one evaluated model."""

    model: str
    metrics: dict[str, float]
    params: dict[str, Any]
    fit_seconds: float
    total_seconds: float
    tuning: dict[str, Any] = field(default_factory=dict)

    def to_json(self, k: int) -> dict[str, Any]:
        """Flat JSON object: metric keys at top level plus params and timings."""
        out: dict[str, Any] = {"model": self.model}
        out.update(self.metrics)
        out.update(
            params=self.params,
            fit_seconds=round(self.fit_seconds, 4),
            run_seconds=round(self.total_seconds, 4),
            tuning=self.tuning,
            k=k,
        )
        return out


def load_ratings(path: str | Path) -> pd.DataFrame:
    """Read a Parquet or CSV file with ``user``, ``item``, ``timestamp`` and maybe ``rating``.

    Parameters
    ----------
    path : str or pathlib.Path
        ``.parquet``/``.pq`` is read as Parquet, anything else as CSV with a header.

    Returns
    -------
    pandas.DataFrame
        Columns ``user``, ``item``, ``timestamp`` (float seconds) and ``rating`` if present.

    Raises
    ------
    ValueError
        When a required column is missing.
    """
    path = Path(path)
    if path.suffix.lower() in {".parquet", ".pq"}:
        frame = pd.read_parquet(path)
    else:
        frame = pd.read_csv(path)
    frame.columns = [str(c).strip().lower() for c in frame.columns]
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: missing columns {missing}; need user, item, timestamp")
    keep = [*REQUIRED_COLUMNS, *(["rating"] if "rating" in frame.columns else [])]
    frame = frame[keep].dropna(subset=list(REQUIRED_COLUMNS)).copy()
    if not pd.api.types.is_numeric_dtype(frame["timestamp"]):
        stamps = pd.to_datetime(frame["timestamp"], utc=True)
        frame["timestamp"] = (stamps - pd.Timestamp(0, tz="UTC")).dt.total_seconds()
    frame["timestamp"] = frame["timestamp"].astype(float)
    return frame


def to_interactions(frame: pd.DataFrame) -> Interactions:
    """Training matrix: ratings (when present) become confidence weights."""
    values = frame["rating"].to_numpy(float) if "rating" in frame.columns else None
    return interactions_from_triples(
        frame["user"].to_numpy(), frame["item"].to_numpy(), values, frame["timestamp"].to_numpy()
    )


def relevant_sets(
    test: pd.DataFrame, train: Interactions, min_rating: float | None
) -> tuple[np.ndarray, list[set]]:
    """Test users (as train rows, -1 if cold) and their relevant items (as train columns).

    Test items unknown to training keep a unique negative code so they still count in
    recall's denominator but can never be hit.
    """
    if min_rating is not None and "rating" in test.columns:
        test = test[test["rating"] >= min_rating]
    users = pd.unique(test["user"])
    rows = train.users.to_index(users)
    cols = train.items.to_index(test["item"])
    unknown = cols < 0
    cols[unknown] = -2 - np.arange(int(unknown.sum()))
    by_user: dict[Any, set] = {}
    for user, col in zip(test["user"].to_numpy(), cols, strict=True):
        by_user.setdefault(user, set()).add(int(col))
    return rows, [by_user[u] for u in users]


def score_model(
    name: str,
    params: dict[str, Any],
    train: Interactions,
    rows: np.ndarray,
    relevant: list[set],
    k: int,
) -> tuple[dict[str, float], float]:
    """Fit ``name`` on ``train`` and return (metrics, fit seconds)."""
    model = build_model(name, **params)
    start = time.perf_counter()
    model.fit(train)
    fit_seconds = time.perf_counter() - start
    recs, _ = model.recommend_indices(rows, k, exclude_seen=True)
    return ranking_metrics(recs, relevant, k, model.n_items), fit_seconds


def _validation_ndcg(
    name: str,
    validation: tuple[Interactions, np.ndarray, list[set]],
    k: int,
    params: dict[str, Any],
) -> float:
    """Tuning objective: nDCG@k on the validation split of a model fitted on inner-train."""
    inner, rows, relevant = validation
    metrics, _ = score_model(name, params, inner, rows, relevant, k)
    return metrics[f"ndcg@{k}"]


def evaluate_models(
    frame: pd.DataFrame,
    models: list[str] | tuple[str, ...] = DEFAULT_MODELS,
    protocol: str = "per-user",
    test_fraction: float = 0.25,
    k: int = 10,
    seed: int = 42,
    min_rating: float | None = None,
    tune_models: bool = True,
    max_trials: int = 6,
    budget_seconds: float = 30.0,
) -> list[ModelResult]:
    """Split, tune, fit and score every model on one data set.

    Parameters
    ----------
    frame : pandas.DataFrame
        From :func:`load_ratings`.
    models : sequence of str
        Model names for :func:`models.factory.build_model`.
    protocol : str
        ``time``, ``per-user`` or ``per-item``.
    test_fraction : float
        Share of rows held out for test (and, again, for validation inside training).
    k : int
        Cut-off of every metric.
    seed : int
        Seed of the random splits and of the search order.
    min_rating : float, optional
        Only test rows rated at least this are relevant.
    tune_models : bool
        Search hyperparameters on the validation split; otherwise use defaults.
    max_trials, budget_seconds
        Bounds of each model's search.

    Returns
    -------
    list of ModelResult
        In the order of ``models``.
    """
    train_frame, test_frame = split(frame, protocol, test_fraction, seed)
    train = to_interactions(train_frame)
    rows, relevant = relevant_sets(test_frame, train, min_rating)

    validation = None
    if tune_models:
        inner_frame, val_frame = carve_validation(train_frame, protocol, test_fraction, seed)
        inner = to_interactions(inner_frame)
        val_rows, val_relevant = relevant_sets(val_frame, inner, min_rating)
        validation = (inner, val_rows, val_relevant)

    results = []
    for name in models:
        start = time.perf_counter()
        params: dict[str, Any] = {}
        tuning: dict[str, Any] = {}
        if validation is not None:
            defaults = build_model(name).get_params()
            objective = functools.partial(_validation_ndcg, name, validation, k)
            outcome = tune(name, objective, defaults, max_trials, budget_seconds, seed)
            params = outcome.params
            if outcome.trials:
                tuning = {
                    "validation_ndcg": outcome.score,
                    "trials": len(outcome.trials),
                    "seconds": round(outcome.seconds, 3),
                }
        metrics, fit_seconds = score_model(name, params, train, rows, relevant, k)
        full_params = build_model(name, **params).get_params()
        results.append(
            ModelResult(
                name, metrics, full_params, fit_seconds, time.perf_counter() - start, tuning
            )
        )
    return results


def results_table(results: list[ModelResult], k: int) -> str:
    """Fixed-width text table of the headline metrics, best nDCG first."""
    keys = [f"ndcg@{k}", f"precision@{k}", f"recall@{k}", f"map@{k}", "coverage"]
    header = f"{'model':<16}" + "".join(f"{key:>14}" for key in keys) + f"{'seconds':>10}"
    lines = [header, "-" * len(header)]
    for result in sorted(results, key=lambda r: -r.metrics[keys[0]]):
        cells = "".join(f"{result.metrics[key]:>14.4f}" for key in keys)
        lines.append(f"{result.model:<16}{cells}{result.total_seconds:>10.2f}")
    return "\n".join(lines)


def results_json(results: list[ModelResult], k: int, meta: dict[str, Any]) -> list[dict[str, Any]]:
    """JSON document: a list with one object per model, each carrying the run metadata."""
    return [{**r.to_json(k), **meta} for r in results]
