"""Benchmark: exact top-k over 1,000,000 items × 64 float32 factors, and per-user latency.

Part 1 compares one user's full scoring + top-k (mat-vec, then ``argpartition``) with the
memory-bandwidth floor, measured as a plain ``np.sum`` over the same 256 MB matrix: scoring
must stream the whole matrix once, so it cannot be faster than that.

Part 2 measures one recommendation through :class:`models.inference.RecommendationService`
(100,000 items × 64 factors, availability mask, purchased filter, per-category cap) over 2000
calls and reports p50/p99.

Run: ``.venv/bin/python bench/bench_recs_topk.py``; writes ``bench/results/bench_recs_topk.json``.
"""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_info

from features.id_map import IdMap
from models.factorization import ALSRecommender
from models.inference import RecommendationService
from models.topk import topk_rows

RESULTS = Path(__file__).resolve().parent / "results" / "bench_recs_topk.json"


def timed(fn, repeats: int) -> np.ndarray:
    """Wall-clock milliseconds of ``repeats`` calls."""
    out = np.empty(repeats)
    for i in range(repeats):
        start = time.perf_counter()
        fn()
        out[i] = (time.perf_counter() - start) * 1e3
    return out


def bench_topk(n_items: int = 1_000_000, dim: int = 64, k: int = 10, repeats: int = 30) -> dict:
    rng = np.random.default_rng(0)
    items = rng.standard_normal((n_items, dim), dtype=np.float32)
    user = rng.standard_normal(dim, dtype=np.float32)
    floor = timed(lambda: items.sum(), repeats)
    matvec = timed(lambda: items @ user, repeats)
    scores = items @ user
    part = timed(lambda: topk_rows(scores, k), repeats)
    full = timed(lambda: topk_rows(items @ user, k), repeats)
    sort = timed(lambda: np.argsort(-scores)[:k], 5)
    idx, _ = topk_rows(scores, k)
    assert np.array_equal(idx, np.argsort(-scores, kind="stable")[:k])
    return {
        "n_items": n_items,
        "dim": dim,
        "k": k,
        "matrix_mb": items.nbytes / 2**20,
        "floor_np_sum_ms": float(np.median(floor)),
        "matvec_ms": float(np.median(matvec)),
        "argpartition_topk_ms": float(np.median(part)),
        "score_plus_topk_ms": float(np.median(full)),
        "full_argsort_ms": float(np.median(sort)),
        "ratio_to_floor": float(np.median(full) / np.median(floor)),
    }


def bench_service(n_items: int = 100_000, dim: int = 64, calls: int = 2000, k: int = 10) -> dict:
    rng = np.random.default_rng(1)
    n_users = 1000
    model = ALSRecommender(factors=dim)
    model.users = IdMap(list(range(n_users)))
    model.items = IdMap(list(range(n_items)))
    rows = rng.integers(0, n_users, 20 * n_users)
    cols = rng.integers(0, n_items, 20 * n_users)
    model.user_items = sp.csr_matrix(
        (np.ones(len(rows), np.float32), (rows, cols)), shape=(n_users, n_items)
    )
    model.item_popularity = np.diff(model.user_items.tocsc().indptr).astype(np.float32)
    model.user_factors = rng.standard_normal((n_users, dim), dtype=np.float32)
    model.item_factors = rng.standard_normal((n_items, dim), dtype=np.float32)
    service = RecommendationService(
        model,
        category=rng.integers(0, 50, n_items),
        available=rng.random(n_items) > 0.05,
        repeat_categories=[1, 2],
        max_per_category=3,
    )
    users = rng.integers(0, n_users, calls)
    bought = [list(rng.integers(0, n_items, 5)) for _ in range(calls)]
    for u in users[:50]:
        service.recommend(int(u), k=k)
    lat = np.empty(calls)
    for i, (u, b) in enumerate(zip(users, bought, strict=True)):
        start = time.perf_counter()
        out = service.recommend(int(u), k=k, purchased=b)
        lat[i] = (time.perf_counter() - start) * 1e3
        assert len(out.item_ids) == k
    cold = timed(lambda: service.recommend("new", k=k, recent_items=[1, 2, 3]), 200)
    return {
        "n_items": n_items,
        "dim": dim,
        "calls": calls,
        "rules": "availability mask, purchased filter with repeat categories, max 3 per category",
        "p50_ms": float(np.percentile(lat, 50)),
        "p99_ms": float(np.percentile(lat, 99)),
        "mean_ms": float(lat.mean()),
        "session_fold_in_p50_ms": float(np.percentile(cold, 50)),
    }


def main() -> None:
    blas = [
        {"api": i["internal_api"], "threads": i["num_threads"]}
        for i in threadpool_info()
        if i["user_api"] == "blas"
    ]
    result = {
        "machine": {"cpu_count": __import__("os").cpu_count(), "python": platform.python_version()},
        "blas": blas,
        "topk_1m": bench_topk(),
        "service_100k": bench_service(),
    }
    print(json.dumps(result, indent=2))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
