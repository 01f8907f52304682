"""ALS fitted with Spark MLlib, for interaction sets that outgrow one process.

Why Spark and not a second model class: serving, the registry and the gate must not care
where factors were computed. This trainer fits the same ``ALSRecommender``
(name ``als``, same parameters, same saved arrays), only its factor solve runs on a Spark
cluster (``SPARK_MASTER``: ``local[2]`` here, ``spark://host:7077`` or ``k8s://…`` there), so
the artifact it publishes is the one the shop already loads, and the same gate decides
whether it serves.

Spark's implicit ALS is the same model (Hu, Koren & Volinsky 2008, confidence ``1 + α·r``)
but scales ``λ`` by each user's and item's number of ratings (ALS-WR), so equal parameters do
not give equal factors; the held-out gate, not parameter parity, judges it.

``pyspark`` is the optional extra ``[spark]`` and needs Java 17; it is imported lazily.

Where the time goes (profiled with ``jstack`` samples of the executor threads, see
``docs/operations.md``): almost all of it is the exact per-user and per-item solve, a packed
Cholesky factorisation (LAPACK ``dppsv``, ``O(k³)`` each) plus one packed rank-one update
(``dspr``, ``O(k²)``) per interaction. Without a system LAPACK (``liblapack.so.3``, e.g.
Debian's ``libopenblas0-pthread``) Spark falls back to a Java translation of Fortran LAPACK
that is several times slower, so :func:`fit_spark_als` reports which one ran. ``implicit``
solves the same equations with three conjugate-gradient steps per user (``O(k²)``), which is
most of the gap on one machine.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from features.interactions import Interactions
from models.factorization import ALSRecommender

log = logging.getLogger(__name__)

#: Heap of the driver JVM, which in local mode is also the only executor (Spark's default is
#: 1g: at 10M interactions its cached rating and factor blocks no longer fit and spill).
DEFAULT_DRIVER_MEMORY = "4g"


def import_pyspark() -> Any:
    """The pyspark package, or an ImportError naming the install command."""
    try:
        import pyspark
    except ImportError as exc:  # pragma: no cover - the extra is part of make install
        raise ImportError(
            "STORELOOP_TRAINER=spark needs pyspark: pip install -e '.[spark]'"
        ) from exc
    return pyspark


def spark_session(
    master: str, app_name: str = "storeloop-als", conf: Mapping[str, str] | None = None
) -> Any:
    """A Spark session for ``master`` with Arrow transfers and no web UI.

    ``conf`` adds or overrides Spark settings; settings that size the JVM (driver memory, Java
    options) only apply when this call starts it. ``SPARK_DRIVER_MEMORY`` sets the driver's
    heap (default :data:`DEFAULT_DRIVER_MEMORY`).
    """
    import_pyspark()
    from pyspark.sql import SparkSession

    settings = {
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.driver.memory": os.environ.get("SPARK_DRIVER_MEMORY", DEFAULT_DRIVER_MEMORY),
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.sql.shuffle.partitions": "4",
        **(conf or {}),
    }
    builder = SparkSession.builder.master(master).appName(app_name)
    for key, value in settings.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def lapack_implementation(spark: Any) -> str:
    """``native`` when Spark's LAPACK calls reach a system library, else ``java``."""
    try:
        spark.sparkContext._jvm.dev.ludovic.netlib.lapack.NativeLAPACK.getInstance()
    except Exception:  # noqa: BLE001 - py4j wraps the JVM's "unable to load" error
        return "java"
    return "native"


def _write_ratings(matrix: Any, ratings: np.ndarray, folder: Path, parts: int) -> None:
    """The interactions as ``parts`` Parquet files, which Spark's tasks read in parallel.

    Why not ``createDataFrame(pandas)``: that ships the whole table inside the tasks' closures
    from the driver (120 MB of task at 10M rows), where files are read by the executors.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table(
        {
            "user": matrix.row.astype(np.int32),
            "item": matrix.col.astype(np.int32),
            "rating": ratings.astype(np.float32),
        }
    )
    folder.mkdir(parents=True)
    step = -(-table.num_rows // parts) or 1
    for n, start in enumerate(range(0, max(table.num_rows, 1), step)):
        pq.write_table(table.slice(start, step), folder / f"part-{n:04d}.parquet")


def _factor_matrix(frame: pd.DataFrame, rows: int, rank: int) -> np.ndarray:
    """Spark's ``(id, features)`` rows as a dense matrix; ids Spark never saw stay zero."""
    out = np.zeros((rows, rank), dtype=np.float32)
    if len(frame):
        ids = frame["id"].to_numpy(dtype=np.int64)
        out[ids] = np.stack(frame["features"].to_numpy()).astype(np.float32)
    return out


def fit_spark_als(
    interactions: Interactions,
    *,
    master: str = "local[2]",
    conf: Mapping[str, str] | None = None,
    **params: Any,
) -> ALSRecommender:
    """Fit an ``als`` model whose factors Spark MLlib computed; returns it fitted.

    The base class's ``fit`` still sets the id maps and checks the learned arrays; only the
    factor solve is handed to Spark. The returned model's ``spark_info`` says, for
    benchmarks: ``session_seconds`` (JVM start), ``load_seconds`` (interactions into Spark),
    ``fit_seconds`` (ALS and the factors back) and ``lapack`` (``native`` or ``java``).
    """
    model = ALSRecommender(**params)
    info: dict[str, Any] = {"master": master}

    def solve(_: Interactions) -> None:
        from pyspark.ml.recommendation import ALS

        p = model.params
        matrix = model.user_items.tocoo()
        started = time.perf_counter()
        spark = spark_session(master, conf=conf)
        info["session_seconds"] = time.perf_counter() - started
        info["lapack"] = lapack_implementation(spark)
        if info["lapack"] == "java":
            log.warning(
                "Spark ALS solves with Java's LAPACK (no liblapack.so.3 on this machine); "
                "a system LAPACK such as Debian's libopenblas0-pthread makes its solves faster"
            )
        # One block per core: Spark's default of 10 only adds tasks on a small cluster.
        blocks = max(1, int(spark.sparkContext.defaultParallelism))
        with tempfile.TemporaryDirectory(prefix="storeloop-spark-") as work:
            spark.sparkContext.setCheckpointDir(str(Path(work) / "checkpoints"))
            started = time.perf_counter()
            # the same confidence as implicit's fit (raw or log1p weighting)
            confidence = model._confidence(matrix.data)
            _write_ratings(matrix, confidence, Path(work) / "ratings", blocks)
            ratings = spark.read.parquet(str(Path(work) / "ratings")).cache()
            ratings.count()
            info["load_seconds"] = time.perf_counter() - started
            started = time.perf_counter()
            fitted = ALS(
                numUserBlocks=blocks,
                numItemBlocks=blocks,
                rank=int(p["factors"]),
                maxIter=int(p["iterations"]),
                regParam=float(p["regularization"]),
                alpha=float(p["alpha"]),
                implicitPrefs=True,
                seed=int(p["random_state"] or 0),
                userCol="user",
                itemCol="item",
                ratingCol="rating",
                nonnegative=False,
                coldStartStrategy="nan",
            ).fit(ratings)
            users = fitted.userFactors.toPandas()
            items = fitted.itemFactors.toPandas()
            info["fit_seconds"] = time.perf_counter() - started
            ratings.unpersist()
        rank = int(p["factors"])
        model.user_factors = _factor_matrix(users, matrix.shape[0], rank)
        model.item_factors = _factor_matrix(items, matrix.shape[1], rank)

    model._fit = solve  # type: ignore[method-assign] - the one step Spark does instead
    model.fit(interactions)
    del model._fit
    model.spark_info = info  # type: ignore[attr-defined]
    return model
