"""Two parts of a cold search, each beside the code path it replaced, in one run (issue 20).

* **Query execution** with fuzzy and prefix alternatives resolved to the index's terms
  (``TermExpander``) against tantivy's own automata (the baseline: ``backend.expander = None``),
  on the same queries, alternating: the retrieval of the top 200 (the AND query and, when it
  is short, the recall fill) and the facet aggregation of queries matching more than that.
  Results must be equal; the benchmark stops if they are not.
* **The ranker's forest** walked by compiled code against the numpy walk (the baseline), on
  200 candidates of the serving benchmark's 100-tree ranker.

Catalog: ``models.search.synthetic`` (``--n`` products); queries: the dev set's when present
(``../shared/data/search-dev``), else the synthetic benchmark's. Prints the figures and writes
``bench/results/search_parts.json``.

    .venv/bin/python bench/bench_search_parts.py [--n 100000] [--queries 600]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._server import write_result  # noqa: E402
from bench.bench_search import _queries as synthetic_queries  # noqa: E402
from bench.bench_search_serving import DEV_JUDGMENTS, dev_queries, ranker_model  # noqa: E402
from models.search import forest  # noqa: E402
from models.search.api import SearchRequest  # noqa: E402
from models.search.synthetic import generate_catalog  # noqa: E402
from models.search.tantivy_backend import TantivyBackend  # noqa: E402

ROUNDS = 3


def _cpu_ms_per_call(calls: list, fn) -> float:
    started = time.process_time()
    for call in calls:
        fn(call)
    return 1000 * (time.process_time() - started) / max(len(calls), 1)


def _answers(backend: TantivyBackend, queries: list[str]) -> list:
    out = []
    for q in queries:
        r = backend._retrieve(SearchRequest(query=q), backend.window)
        out.append((r.rows.tolist(), np.round(r.scores, 6).tolist(), r.total, r.relaxed))
    return out


def query_execution(backend: TantivyBackend, queries: list[str]) -> dict:
    """Retrieval and aggregation CPU per query, expanded terms vs automata, alternating."""
    expander = backend.expander
    assert expander is not None
    for q in queries:  # expansions are kept per word: measure the steady state of both
        backend._retrieve(SearchRequest(query=q), backend.window)
    backend.expander = None
    automaton_answers = _answers(backend, queries)
    backend.expander = expander
    if _answers(backend, queries) != automaton_answers:
        raise SystemExit("expanded alternatives gave other results than the automata")
    wide = []
    for q in queries:
        r = backend._retrieve(SearchRequest(query=q), backend.window)
        if r.matched < 0:
            wide.append(q)
    figures: dict[str, list[float]] = {k: [] for k in ("retrieval", "aggregation")}
    baseline: dict[str, list[float]] = {k: [] for k in ("retrieval", "aggregation")}
    for _ in range(ROUNDS):
        for mode, into in ((None, baseline), (expander, figures)):
            backend.expander = mode
            into["retrieval"].append(
                _cpu_ms_per_call(
                    queries, lambda q: backend._retrieve(SearchRequest(query=q), backend.window)
                )
            )
            built = [backend._retrieve(SearchRequest(query=q), backend.window).query for q in wide]
            into["aggregation"].append(_cpu_ms_per_call(built, backend.facets))
    backend.expander = expander
    return {
        "queries": len(queries),
        "aggregated_queries": len(wide),
        "results_equal": True,
        **{
            part: {
                "expanded_ms": round(min(figures[part]), 3),
                "automaton_ms": round(min(baseline[part]), 3),
                "ratio": round(min(figures[part]) / min(baseline[part]), 3),
            }
            for part in figures
        },
    }


def forest_walk(calls: int = 1000) -> dict:
    """CPU per prediction of 200 candidates: compiled walk vs numpy walk (same forest)."""
    model = ranker_model()
    compiled = forest.CompiledForest.from_model(model)
    assert compiled is not None
    x = np.random.default_rng(0).random((200, compiled.n_features))
    if not np.array_equal(compiled.predict(x), model.predict(x)):
        raise SystemExit("the compiled forest predicts other values than the model")
    runs = [None] * calls
    compiled_ms, numpy_ms = [], []
    for _ in range(ROUNDS):
        compiled_ms.append(_cpu_ms_per_call(runs, lambda _: compiled.predict(x)))
        numpy_ms.append(_cpu_ms_per_call(runs, lambda _: compiled._raw_numpy(x, False)))
    return {
        "trees": len(compiled.roots),
        "candidates": len(x),
        "compiled_ms": round(min(compiled_ms), 3),
        "numpy_ms": round(min(numpy_ms), 3),
        "ratio": round(min(compiled_ms) / min(numpy_ms), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="catalog size")
    parser.add_argument("--queries", type=int, default=600, help="distinct queries")
    args = parser.parse_args()
    if args.n < 1 or args.queries < 1:
        parser.error("--n and --queries must be positive")
    if DEV_JUDGMENTS.exists():
        source, queries = "dev set", dev_queries(DEV_JUDGMENTS)[: args.queries]
    else:
        source = "synthetic"
        queries = synthetic_queries(np.random.default_rng(1), args.queries)
    with tempfile.TemporaryDirectory() as tmp:
        backend = TantivyBackend(Path(tmp) / "index", cache_entries=0)
        backend.build(generate_catalog(args.n))
        execution = query_execution(backend, queries)
    walk = forest_walk()
    for part in ("retrieval", "aggregation"):
        f = execution[part]
        print(
            f"{part:12s} expanded {f['expanded_ms']:.3f} ms  automaton {f['automaton_ms']:.3f} ms"
            f"  ratio {f['ratio']:.2f}"
        )
    print(
        f"forest       compiled {walk['compiled_ms']:.3f} ms  numpy {walk['numpy_ms']:.3f} ms"
        f"  ratio {walk['ratio']:.2f}  ({walk['trees']} trees, {walk['candidates']} candidates)"
    )
    path = write_result(
        "search_parts",
        {"products": args.n, "queries": source, "query_execution": execution, "forest": walk},
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
