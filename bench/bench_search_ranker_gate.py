"""The pipeline's search-ranker gate on a demo's data, over several model seeds.

Does what the ``search_ranker`` asset does (``pipelines/assets/ml.py``) on an existing
``DATA_DIR``: search impressions from its warehouse, the last ``RANKER_HOLDOUT_DAYS`` held out,
an index of the catalog as of the first held-out day, judgments from the same files
(``DataLayout.search_judgments``), ``train_ranker`` — once per seed, so a gate decided by a
thousandth can be told from one that holds. Publishes nothing. The same run prints the rivals
(BM25, the retrieval order), which are the baselines. Stop the demo first (or point it at a
copy): DuckDB opens the warehouse read-only and refuses while a writer holds it.

Run: .venv/bin/python bench/bench_search_ranker_gate.py DATA_DIR [--seeds 0 1 2]
[--label-prior attractiveness]  (the labels before issue 24, to compare on the same data)
Writes bench/results/search_ranker_gate.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from features.layout import DataLayout  # noqa: E402
from features.warehouse import search_document_rows  # noqa: E402
from models.search.documents import documents_from_rows  # noqa: E402
from models.search.ltr import train_ranker  # noqa: E402
from models.search.ltr_eval import holdout_cutoff  # noqa: E402
from models.search.tantivy_backend import TantivyBackend  # noqa: E402
from pipelines.assets.ml import EVAL_K, RANKER_HOLDOUT_DAYS  # noqa: E402
from pipelines.resources import SearchJudgments  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "search_ranker_gate.json"


def main() -> None:
    """Train and gate once per seed; print one line per seed and write the reports."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--label-prior", choices=("position", "attractiveness"), default="position")
    args = parser.parse_args()
    layout = DataLayout(args.data_dir)
    with duckdb.connect(str(layout.warehouse), read_only=True) as con:
        impressions = con.execute("SELECT * FROM search_impressions").df()
        cutoff = holdout_cutoff(impressions["ts"], RANKER_HOLDOUT_DAYS)
        rows = search_document_rows(con, as_of=cutoff)
    impressions["position"] = impressions["position"] + 1  # the click model counts from 1
    judgments = SearchJudgments(paths=[str(p) for p in layout.search_judgments]).load()
    load = os.getloadavg()
    reports = []
    with tempfile.TemporaryDirectory(prefix="storeloop-gate-") as tmp:
        backend = TantivyBackend(Path(tmp) / "index")
        backend.build(documents_from_rows(rows))
        for seed in args.seeds:
            started = time.perf_counter()
            _, report = train_ranker(
                impressions,
                backend,
                holdout_days=RANKER_HOLDOUT_DAYS,
                k=EVAL_K,
                seed=seed,
                judgments=judgments,
                label_prior=args.label_prior,
            )
            report = {"seed": seed, "seconds": round(time.perf_counter() - started, 1), **report}
            reports.append(report)
            k = EVAL_K
            print(
                f"seed {seed}: ranker {report[f'ranker_ndcg@{k}']:.4f} vs {report['gate_rival']}"
                f" (BM25 {report[f'bm25_ndcg@{k}']:.4f}; clicks: ranker"
                f" {report[f'clicks_ranker_ndcg@{k}']:.4f}, retrieval"
                f" {report[f'clicks_retrieval_ndcg@{k}']:.4f}) -> passed {report['gate_passed']}"
            )
    held_out = pd.to_datetime(impressions["ts"], utc=True) >= cutoff
    summary = {
        "data_dir": str(args.data_dir),
        "searches_train": int(impressions.loc[~held_out, "search_id"].nunique()),
        "searches_held_out": int(impressions.loc[held_out, "search_id"].nunique()),
        "loadavg_before": load,
        "loadavg_after": os.getloadavg(),
        "runs": reports,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(summary, indent=2, default=str), encoding="utf-8")
    print(f"load average {load[0]:.1f} -> {os.getloadavg()[0]:.1f}; wrote {RESULTS}")


if __name__ == "__main__":
    main()
