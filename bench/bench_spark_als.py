"""Benchmark: ALS fit time on Spark MLlib (local mode) against ``implicit`` in process.

Same synthetic interactions as ``bench_recs_train.py`` (long-tailed popularity, distinct
pairs), same hyperparameters (64 factors, 15 iterations); ``implicit`` on all cores of this
machine is the same-run baseline and the ratio is reported beside the absolute figures. Spark
runs ``local[N]`` in one JVM here, so this measures its overhead on one box, not a cluster's
speed-up; ``docs/operations.md`` turns the figures into the 100M-interaction plan.

Run: ``.venv/bin/python bench/bench_spark_als.py [--rows 1000000 10000000] [--master local[2]]
[--java-lapack]``; writes ``bench/results/spark_als.json`` (``--java-lapack``: keeps Spark off the
system LAPACK, to measure what it costs; written to ``spark_als_java_lapack.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_recs_train import synthetic_interactions  # noqa: E402
from models.factory import build_model  # noqa: E402
from models.spark_als import fit_spark_als  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "spark_als.json"
#: Java options that keep netlib (Spark's BLAS/LAPACK front) on its Java implementations.
JAVA_LAPACK = {
    "spark.driver.extraJavaOptions": "-Ddev.ludovic.netlib.blas.allowNative=false "
    "-Ddev.ludovic.netlib.lapack.allowNative=false"
}
PARAMS = {"factors": 64, "iterations": 15, "regularization": 1.0, "alpha": 1.0}


def bench(rows: int, master: str, conf: dict[str, str]) -> dict:
    n_users, n_items = max(50_000, rows // 20), max(20_000, rows // 50)
    inter = synthetic_interactions(rows, n_users=n_users, n_items=n_items)
    out: dict = {"rows": rows, "shape": list(inter.shape), "load_before": os.getloadavg()}
    start = time.perf_counter()
    build_model("als", **PARAMS).fit(inter)
    out["implicit_fit_seconds"] = time.perf_counter() - start
    print(f"{rows:,} rows: implicit {out['implicit_fit_seconds']:.1f} s", flush=True)
    start = time.perf_counter()
    model = fit_spark_als(inter, master=master, conf=conf, **PARAMS)
    out["spark_total_seconds"] = time.perf_counter() - start
    out["spark_session_seconds"] = model.spark_info["session_seconds"]
    out["spark_load_seconds"] = model.spark_info["load_seconds"]
    out["spark_fit_seconds"] = model.spark_info["fit_seconds"]
    out["spark_lapack"] = model.spark_info["lapack"]
    out["spark_over_implicit"] = out["spark_fit_seconds"] / out["implicit_fit_seconds"]
    out["load_after"] = os.getloadavg()
    print(
        f"{rows:,} rows: spark {master} ({out['spark_lapack']} LAPACK) "
        f"fit {out['spark_fit_seconds']:.1f} s "
        f"(+ {out['spark_session_seconds']:.1f} s session start), "
        f"{out['spark_over_implicit']:.1f}x implicit; load {out['load_after'][0]:.1f}",
        flush=True,
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--master", default=os.environ.get("SPARK_MASTER", "local[2]"))
    parser.add_argument(
        "--java-lapack", action="store_true", help="keep Spark on Java's BLAS/LAPACK"
    )
    parser.add_argument("--json", type=Path, help="where to write (default: see above)")
    args = parser.parse_args()
    conf = JAVA_LAPACK if args.java_lapack else {}
    result = {
        "master": args.master,
        "params": PARAMS,
        "cores": os.cpu_count(),
        "spark_conf": conf,
        "runs": [bench(rows, args.master, conf) for rows in args.rows],
    }
    path = args.json or (
        RESULTS.with_name("spark_als_java_lapack.json") if args.java_lapack else RESULTS
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
