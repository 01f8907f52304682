"""Benchmark: ALS training on 1,000,000 interactions (target < 60 s on 2 cores).

Also times the other models' fits on the same matrix where they are practical, and the
synthetic MovieLens-100k evaluation of every model (quality figures for docs/models.md).

Run: ``.venv/bin/python bench/bench_recs_train.py [--skip-eval]``; writes
``bench/results/bench_recs_train.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from features.interactions import interactions_from_triples
from models.evaluation.metrics import ndcg_graded
from models.evaluation.runner import evaluate_models, to_interactions
from models.evaluation.splits import split
from models.evaluation.synthetic import movielens_like
from models.factory import build_model

RESULTS = Path(__file__).resolve().parent / "results" / "bench_recs_train.json"


def synthetic_interactions(n: int = 1_000_000, n_users: int = 50_000, n_items: int = 20_000):
    """Exactly ``n`` distinct (user, item) pairs with a long-tailed item popularity."""
    rng = np.random.default_rng(0)
    popularity = 1.0 / (np.arange(n_items) + 10.0) ** 0.8
    draws = int(n * 1.2)
    users = rng.integers(0, n_users, size=draws)
    items = rng.choice(n_items, size=draws, p=popularity / popularity.sum())
    pairs = np.unique(users.astype(np.int64) * n_items + items)
    pairs = rng.permutation(pairs)[:n]
    assert len(pairs) == n, "not enough distinct pairs drawn"
    weights = rng.choice([1.0, 2.0, 4.0, 8.0], size=n, p=[0.7, 0.1, 0.15, 0.05])
    return interactions_from_triples(
        pairs // n_items, pairs % n_items, weights, np.arange(n, dtype=float)
    )


def bench_training() -> dict:
    inter = synthetic_interactions()
    out = {"rows": 1_000_000, "shape": list(inter.shape), "nnz": int(inter.matrix.nnz)}
    for name, params in [
        ("als", {"factors": 64, "iterations": 15}),
        ("bpr", {"factors": 64, "iterations": 100}),
        ("item2item", {}),
    ]:
        model = build_model(name, **params)
        start = time.perf_counter()
        model.fit(inter)
        out[f"{name}_fit_seconds"] = time.perf_counter() - start
        out[f"{name}_params"] = model.get_params()
        print(f"{name}: {out[f'{name}_fit_seconds']:.2f}s", flush=True)
    return out


def bench_quality() -> dict:
    frame, truth = movielens_like(seed=0)
    results = evaluate_models(frame, ["ease", "als", "bpr", "item2item", "popular", "trending"])
    table = {
        r.model: {**r.metrics, "params": r.params, "seconds": r.total_seconds} for r in results
    }
    # nDCG against the simulator's graded ground truth (unrated items the user would like).
    train, _ = split(frame, "per-user", 0.25, 42)
    inter = to_interactions(train)
    users = sorted(truth["user_id"].unique())
    grades = [{} for _ in users]
    position = {u: i for i, u in enumerate(users)}
    cols = inter.items.to_index(truth["product_id"])
    for u, c, g in zip(truth["user_id"], cols, truth["grade"], strict=True):
        if c >= 0:
            grades[position[u]][int(c)] = float(g)
    for r in results:
        model = build_model(r.model, **r.params).fit(inter)
        recs, _ = model.recommend_indices(inter.users.to_index(users), 10)
        table[r.model]["truth_ndcg@10"] = ndcg_graded(recs, grades, 10)
    return table


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--skip-eval", action="store_true")
    args = parser.parse_args()
    result = {"cpu_count": os.cpu_count(), "training_1m": bench_training()}
    if not args.skip_eval:
        result["synthetic_ml100k_per_user"] = bench_quality()
    print(json.dumps(result, indent=2, default=str))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
