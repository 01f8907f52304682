"""Judged learning to rank on held-out queries: train on one half of a judged set, score the other.

Splits the judged queries 50/50 by query (``judged_ltr.split_queries``, seed 42: the halves
docs/search.md calls ``dev_a``, which trains, and ``dev_b``, which scores), trains with the code
behind ``storeloop search train-ranker`` (its own 20 % validation split and gate inside
``dev_a``), then scores ``dev_b`` with the code behind ``storeloop search evaluate --ranker``:
``bm25`` and ``storeloop`` (retrieval alone) are the same run's baselines beside
``storeloop+ltr``. Prints the table and writes bench/results/search_ltr_dev.json.

The data is not in the repository: by default ``../shared/data/search-dev`` (``catalog.csv``,
``judgments-dev.csv``). Takes several minutes on a busy 2-core machine.
Run: .venv/bin/python bench/bench_search_ltr_dev.py [--data DIR] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.search.evaluate import evaluate, format_table  # noqa: E402
from models.search.judged_ltr import split_queries, train_from_files  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "search_ltr_dev.json"
SPLIT_SEED = 42


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "search-dev"))
    parser.add_argument("--seed", type=int, default=0, help="the trainer's seed")
    args = parser.parse_args()
    data = Path(args.data)
    if not (data / "catalog.csv").is_file() or not (data / "judgments-dev.csv").is_file():
        print(
            f"bench_search_ltr_dev: no catalog.csv / judgments-dev.csv in {data}", file=sys.stderr
        )
        return 2
    catalog = pd.read_csv(data / "catalog.csv")
    judged = pd.read_csv(data / "judgments-dev.csv")
    queries = sorted(judged["query"].astype(str).unique())
    scoring, training = split_queries(queries, 0.5, SPLIT_SEED)  # (dev_b, dev_a)
    dev_a = judged[judged["query"].astype(str).isin(set(training))]
    dev_b = judged[judged["query"].astype(str).isin(set(scoring))]
    started = time.perf_counter()
    ranker, report = train_from_files(catalog, dev_a, seed=args.seed)
    trained = time.perf_counter() - started
    with tempfile.TemporaryDirectory(prefix="storeloop-ltr-bench-") as tmp:
        ranker.save(Path(tmp) / "ranker")
        results = evaluate(catalog, dev_b, ranker_dir=Path(tmp) / "ranker")
    print(
        f"trained on dev_a ({len(training)} queries) in {trained:.0f} s; own validation: "
        f"ranker {report['ranker_ndcg@10']:.4f}, retrieval {report['retrieval_ndcg@10']:.4f}, "
        f"bm25 {report['bm25_ndcg@10']:.4f}, gate passed {report['gate_passed']}"
    )
    print(f"scored on dev_b ({len(scoring)} queries):")
    print(format_table(results))
    rows = {r.configuration: r.as_dict() for r in results}
    ltr, base = rows["storeloop+ltr"]["ndcg@10"], rows["storeloop"]["ndcg@10"]
    load = os.getloadavg()[0]
    print(f"storeloop+ltr / storeloop nDCG@10: {ltr / base:.3f}; load average {load:.1f}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "split": {"seed": SPLIT_SEED, "dev_a": len(training), "dev_b": len(scoring)},
                "trainer_seed": args.seed,
                "gate": report,
                "dev_b": rows,
                "ltr_over_retrieval": ltr / base,
                "load_average": load,
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
