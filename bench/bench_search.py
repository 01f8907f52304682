"""Search benchmark: 100k generated products — build time, search and suggest latency.

Prints figures and writes bench/results/bench_search.json. Search latency includes facets,
highlighting and LTR reranking of the top 200 (a ranker trained on a simulated click log).
The main figures are first computations (the per-query result cache is off); ``cached`` is
the same query stream answered again from the cache (live join, page and highlights only).
Run: .venv/bin/python bench/bench_search.py [--n 100000]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.search.api import SearchRequest  # noqa: E402
from models.search.ltr import train_ranker  # noqa: E402
from models.search.result_cache import ResultCache  # noqa: E402
from models.search.synthetic import (  # noqa: E402
    ADJECTIVES,
    BRANDS,
    CATEGORIES,
    COLORS,
    generate_catalog,
    generate_click_log,
)
from models.search.tantivy_backend import TantivyBackend  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "bench_search.json"


def _queries(rng: np.random.Generator, n: int) -> list[str]:
    out = []
    for i in range(n):
        noun = CATEGORIES[int(rng.integers(len(CATEGORIES)))]
        kind = i % 5
        if kind == 0:
            out.append(noun[1])
        elif kind == 1:
            out.append(f"{BRANDS[int(rng.integers(len(BRANDS)))].lower()} {noun[1]}")
        elif kind == 2:
            out.append(f"{ADJECTIVES[int(rng.integers(len(ADJECTIVES)))]} {noun[2] or noun[1]}")
        elif kind == 3:
            word = noun[1]
            j = int(rng.integers(1, len(word) - 1))
            out.append(f"{COLORS[int(rng.integers(len(COLORS)))]} {word[:j] + word[j + 1 :]}")
        else:
            out.append(noun[1][: int(rng.integers(3, len(noun[1])))])
    return out


def _pct(samples: list[float]) -> dict[str, float]:
    arr = np.asarray(samples) * 1000
    return {
        "p50_ms": float(np.percentile(arr, 50)),
        "p99_ms": float(np.percentile(arr, 99)),
        "mean_ms": float(arr.mean()),
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=500)
    args = parser.parse_args()
    docs = generate_catalog(args.n)
    rng = np.random.default_rng(1)
    with tempfile.TemporaryDirectory() as tmp:
        backend = TantivyBackend(Path(tmp) / "index", cache_entries=0)
        t0 = time.perf_counter()
        backend.build(docs)
        build_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        TantivyBackend(Path(tmp) / "index")
        open_s = time.perf_counter() - t0

        by_id = {d.product_id: d for d in docs}
        ranked = {}
        for q in _queries(np.random.default_rng(9), 40):
            hits = backend.search(SearchRequest(query=q, page_size=20, facets=False)).hits
            ranked[q] = [by_id[h.product_id] for h in hits]
        log = generate_click_log(ranked, sessions_per_query=100, days=6)
        ranker, report = train_ranker(log, backend, holdout_days=2)
        backend.ranker = ranker

        queries = _queries(rng, args.queries)
        for q in queries[:50]:
            backend.search(SearchRequest(query=q))
        search_t, plain_t = [], []
        for q in queries:
            t0 = time.perf_counter()
            backend.search(SearchRequest(query=q))
            search_t.append(time.perf_counter() - t0)
        for q in queries:
            t0 = time.perf_counter()
            backend.search(SearchRequest(query=q, facets=False, rerank=False, highlight=False))
            plain_t.append(time.perf_counter() - t0)
        backend.cache = ResultCache(max_entries=len(queries))
        for q in queries:
            backend.search(SearchRequest(query=q))
        cached_t = []
        for q in queries:
            t0 = time.perf_counter()
            backend.search(SearchRequest(query=q))
            cached_t.append(time.perf_counter() - t0)
        prefixes = [q[: max(1, int(rng.integers(1, len(q) + 1)))] for q in queries]
        suggest_t = []
        for p in prefixes:
            t0 = time.perf_counter()
            backend.suggest(p, 8)
            suggest_t.append(time.perf_counter() - t0)
    result = {
        "products": args.n,
        "build_s": round(build_s, 3),
        "open_s": round(open_s, 3),
        "search_full": _pct(search_t),
        "search_retrieval_only": _pct(plain_t),
        "search_cached": _pct(cached_t),
        "suggest": _pct(suggest_t),
        "ranker_gate": report,
        "targets": {"build_s": 30, "search_p99_ms": 20, "suggest_p99_ms": 5},
    }
    print(json.dumps(result, indent=2))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
