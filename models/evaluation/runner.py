"""Offline evaluation of several models on one rating/interaction file.

This is the logic behind ``storeloop recs evaluate``: load, de-duplicate repeated pairs (for
random splits), split, tune each model on a validation split carved from the training part
only, refit on the whole training part, recommend for every test user with seen training
items excluded (or, with ``repeat``, allowed and counted), and score.
"""

from __future__ import annotations

import functools
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from features.interactions import Interactions, interactions_from_triples
from models.evaluation.blending import BLEND, Validation, tune_blend
from models.evaluation.fit_cache import FitCache
from models.evaluation.metrics import ranking_metrics
from models.evaluation.splits import dedupe_pairs, split
from models.evaluation.tuning import carve_validation, tune
from models.factory import build_model

#: The learned reranker (models/rerank.py): opt-in (``--models ...,rerank``), see DEFAULT_MODELS.
RERANK = "rerank"

DEFAULT_MODELS = ("ease", "rp3beta", "item2item", "als", "blend", "popular")
#: Below this many test (or validation) users with relevant items, the runner warns.
MIN_TEST_USERS = 50


class EvaluationWarning(UserWarning):
    """A split is too small (or too odd) for its figures to mean much."""


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
    cpu_seconds: float = 0.0  # this process's CPU time for tuning, fit and scoring

    def to_json(self, k: int) -> dict[str, Any]:
        """Flat JSON object: metric keys at top level plus params and timings."""
        out: dict[str, Any] = {"model": self.model}
        out.update(self.metrics)
        out.update(
            params=self.params,
            fit_seconds=round(self.fit_seconds, 4),
            run_seconds=round(self.total_seconds, 4),
            cpu_seconds=round(self.cpu_seconds, 4),
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
    """Training matrix: ratings (when present) become confidence weights.

    Repeated (user, item) rows are summed first (three purchases of milk weigh three), with
    the latest timestamp kept, so no row is silently dropped.
    """
    frame = dedupe_pairs(frame)
    values = frame["rating"].to_numpy(float) if "rating" in frame.columns else None
    return interactions_from_triples(
        frame["user"].to_numpy(), frame["item"].to_numpy(), values, frame["timestamp"].to_numpy()
    )


def relevant_sets(
    test: pd.DataFrame, train: Interactions, min_rating: float | None, drop_seen: bool = False
) -> tuple[np.ndarray, list[set]]:
    """Test users (as train rows, -1 if cold) and their relevant items (as train columns).

    Test items unknown to training keep a unique negative code so they still count in
    recall's denominator but can never be hit. With ``drop_seen`` a test row whose pair is
    already in training is not relevant: it is excluded from the recommendations as "seen",
    so counting it would only cap every model's score (a time split of a purchase log).
    """
    if min_rating is not None and "rating" in test.columns:
        test = test[test["rating"] >= min_rating]
    rows_all = train.users.to_index(test["user"])
    cols = train.items.to_index(test["item"])
    if drop_seen and len(test):
        coo = train.matrix.tocoo()
        seen_keys = coo.row.astype(np.int64) * train.shape[1] + coo.col
        keys = rows_all.astype(np.int64) * train.shape[1] + cols
        fresh = ~(np.isin(keys, seen_keys) & (rows_all >= 0) & (cols >= 0))
        test, rows_all, cols = test[fresh], rows_all[fresh], cols[fresh]
    users = pd.unique(test["user"])
    rows = train.users.to_index(users)
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
    exclude_seen: bool = True,
    fits: FitCache | None = None,
) -> tuple[dict[str, float], float]:
    """Fit ``name`` on ``train`` (or take it from ``fits``) and return (metrics, fit seconds)."""
    start = time.perf_counter()
    model = (fits or FitCache()).fit(name, params, train)
    fit_seconds = time.perf_counter() - start
    recs, _ = model.recommend_indices(rows, k, exclude_seen=exclude_seen)
    return ranking_metrics(recs, relevant, k, model.n_items), fit_seconds


def _validation_ndcg(
    name: str,
    validation: Validation,
    k: int,
    params: dict[str, Any],
    fits: FitCache | None = None,
) -> float:
    """Tuning objective: nDCG@k on the validation split of a model fitted on inner-train."""
    metrics, _ = score_model(
        name,
        params,
        validation.inner,
        validation.rows,
        validation.relevant,
        k,
        exclude_seen=validation.exclude_seen,
        fits=fits,
    )
    return metrics[f"ndcg@{k}"]


def split_for_evaluation(
    frame: pd.DataFrame, protocol: str, test_fraction: float, seed: int, repeat: bool
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train/test split; pairs are de-duplicated first for random splits unless ``repeat``.

    Raises
    ------
    ValueError
        When the split leaves no training rows (a time split of a file whose timestamps are
        all equal, such as Last.fm's 0).
    """
    if not repeat and protocol != "time":
        frame = dedupe_pairs(frame)
    train, test = split(frame, protocol, test_fraction, seed)
    if train.empty:
        raise ValueError(
            f"the {protocol} split left no training rows (are all timestamps equal?); "
            "use --protocol per-user"
        )
    return train, test


def warn_if_few_users(relevant: list[set], part: str, min_users: int) -> None:
    """Warn when fewer than ``min_users`` users have something to find in ``part``."""
    n = sum(1 for r in relevant if r)
    if n < min_users:
        warnings.warn(
            f"the {part} part has only {n} users with relevant items (< {min_users}): "
            "its figures are noisy and may not rank the models reliably",
            EvaluationWarning,
            stacklevel=3,
        )


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
    repeat: bool = False,
    min_test_users: int = MIN_TEST_USERS,
) -> list[ModelResult]:
    """Split, tune, fit and score every model on one data set.

    Parameters
    ----------
    frame : pandas.DataFrame
        From :func:`load_ratings`.
    models : sequence of str
        Model names for :func:`models.factory.build_model`; ``blend`` combines the others
        (see :mod:`models.evaluation.blending`).
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
    repeat : bool
        Repeat-aware evaluation for consumables: rows are split as they are (a pair may be
        in both parts), seen items may be recommended and a re-purchase in the test part
        counts as a hit. Default: pairs de-duplicated, seen items excluded.
    min_test_users : int
        Warn (:class:`EvaluationWarning`) when the test or validation part has fewer users
        with relevant items.

    Returns
    -------
    list of ModelResult
        In the order of ``models``.
    """
    train_frame, test_frame = split_for_evaluation(frame, protocol, test_fraction, seed, repeat)
    train = to_interactions(train_frame)
    rows, relevant = relevant_sets(test_frame, train, min_rating, drop_seen=not repeat)
    warn_if_few_users(relevant, "test", min_test_users)

    validation = None
    if tune_models:
        inner_frame, val_frame = carve_validation(train_frame, protocol, test_fraction, seed)
        if inner_frame.empty:
            raise ValueError(f"the {protocol} validation split left no inner-training rows")
        inner = to_interactions(inner_frame)
        val_rows, val_relevant = relevant_sets(val_frame, inner, min_rating, drop_seen=not repeat)
        warn_if_few_users(val_relevant, "validation", min_test_users)
        validation = Validation(inner, val_rows, val_relevant, exclude_seen=not repeat)

    # The blend's components are refitted with tuned params on inner-train and train: the
    # same fits tuning and the per-model scoring made, so they are kept and handed over.
    reused = build_model(BLEND).get_params()["models"] if BLEND in models else ()
    fits = FitCache(names=reused)
    chosen: dict[str, tuple[dict[str, Any], dict[str, Any], float]] = {}
    chosen_cpu: dict[str, float] = {}

    def choose(name: str) -> tuple[dict[str, Any], dict[str, Any], float]:
        """Tuned params, tuning report and tuning seconds of ``name`` (memoised)."""
        if name in chosen:
            return chosen[name]
        start = time.perf_counter()
        cpu_start = time.process_time()
        params: dict[str, Any] = {}
        tuning: dict[str, Any] = {}
        if name == BLEND:
            components = list(build_model(BLEND).get_params()["models"])
            component_params = {c: choose(c)[0] for c in components}
            start = time.perf_counter()
            cpu_start = time.process_time()
            params = {"models": components, "params": component_params}
            if validation is not None:
                outcome = tune_blend(
                    components, component_params, validation, k, seed, fit=fits.fit
                )
                params["weights"] = outcome.params["weights"]
                tuning = outcome.report()
        elif name == RERANK:
            generators = list(build_model(RERANK).get_params()["generators"])
            generator_params = {g: choose(g)[0] for g in generators}
            start = time.perf_counter()
            cpu_start = time.process_time()
            params = {"generators": generators, "params": generator_params, "seed": seed}
            if validation is not None:
                # The reranker carves its own second split from inner-train when fitted
                # there, so its validation score is as honest as every other model's.
                score = _validation_ndcg(RERANK, validation, k, params)
                tuning = {
                    "validation_ndcg": score,
                    "trials": 1,
                    "seconds": round(time.perf_counter() - start, 3),
                }
        elif validation is not None:
            defaults = build_model(name).get_params()
            objective = functools.partial(_validation_ndcg, name, validation, k, fits=fits)
            outcome = tune(name, objective, defaults, max_trials, budget_seconds, seed)
            params = outcome.params
            if outcome.trials:
                tuning = {
                    "validation_ndcg": outcome.score,
                    "trials": len(outcome.trials),
                    "seconds": round(outcome.seconds, 3),
                }
        chosen_cpu[name] = time.process_time() - cpu_start
        chosen[name] = (params, tuning, time.perf_counter() - start)
        return chosen[name]

    results = []
    for name in models:
        params, tuning, tuning_seconds = choose(name)
        cpu_start = time.process_time()
        metrics, fit_seconds = score_model(
            name, params, train, rows, relevant, k, exclude_seen=not repeat, fits=fits
        )
        cpu = chosen_cpu.get(name, 0.0) + time.process_time() - cpu_start
        full_params = build_model(name, **params).get_params()
        total = tuning_seconds + fit_seconds
        results.append(
            ModelResult(name, metrics, full_params, fit_seconds, total, tuning, cpu_seconds=cpu)
        )
    return results


def results_table(results: list[ModelResult], k: int) -> str:
    """Fixed-width text table of the headline metrics, best nDCG first."""
    keys = [f"ndcg@{k}", f"precision@{k}", f"recall@{k}", f"map@{k}", f"map_msr@{k}", "coverage"]
    header = (
        f"{'model':<16}" + "".join(f"{key:>14}" for key in keys) + f"{'seconds':>10}{'cpu s':>8}"
    )
    lines = [header, "-" * len(header)]
    for result in sorted(results, key=lambda r: -r.metrics[keys[0]]):
        cells = "".join(f"{result.metrics[key]:>14.4f}" for key in keys)
        lines.append(
            f"{result.model:<16}{cells}{result.total_seconds:>10.2f}{result.cpu_seconds:>8.2f}"
        )
    return "\n".join(lines)


def results_json(results: list[ModelResult], k: int, meta: dict[str, Any]) -> list[dict[str, Any]]:
    """JSON document: a list with one object per model, each carrying the run metadata."""
    return [{**r.to_json(k), **meta} for r in results]
