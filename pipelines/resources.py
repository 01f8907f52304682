"""Resources: one per outside system the pipelines touch.

Each is a small configurable object holding a location, so tests and deployments swap a path or
URL without touching assets. Defaults come from the shop's own ``Settings`` (``DATA_DIR``,
``DATABASE_URL``) so the pipelines read exactly what the shop writes.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg
import duckdb
from sqlalchemy import Engine, create_engine

from features.event_stream import DEFAULT_DURABLE, DEFAULT_STREAM
from features.layout import DataLayout
from features.rec_ids import RecIdVerifier, read_secret
from features.warehouse import connect
from models.registry import PromotionGate

if TYPE_CHECKING:
    from features.interactions import Interactions
    from models.base import Recommender
    from pipelines.event_stream import LandResult

#: Accepted values of ``STORELOOP_TRAINER``.
TRAINERS = ("implicit", "spark")
#: The recommender gate's tolerated drop against the serving model (see :class:`RecsGate`).
MAX_DROP_ENV = "STORELOOP_RECS_GATE_MAX_DROP"
TRUE_WORDS = ("1", "true", "yes", "on")


class ShopDatabase(dg.ConfigurableResource):
    """The shop's OLTP database (SQLite or PostgreSQL), read-only from the pipelines' side."""

    url: str  # a SQLAlchemy URL, as ``Settings.sqlalchemy_url`` builds it

    @contextmanager
    def engine(self) -> Iterator[Engine]:
        """A short-lived engine: runs are minutes apart, a pool would only hold idle sockets."""
        engine = create_engine(self.url)
        try:
            yield engine
        finally:
            engine.dispose()


class EventLogDir(dg.ConfigurableResource):
    """Where events come from: the event log directory (only closed ``*.jsonl`` segments are
    ever read) and, when ``stream_url`` is set (``EVENTS_URL``), the shared NATS JetStream
    stream, which :meth:`land` turns into closed segments in the same directory."""

    path: str
    stream_url: str = ""
    stream: str = DEFAULT_STREAM
    durable: str = DEFAULT_DURABLE

    @property
    def directory(self) -> Path:
        return Path(self.path)

    def land(self) -> LandResult | None:
        """Land what the lake's durable consumer has not taken yet (None without a stream)."""
        if not self.stream_url:
            return None
        from pipelines.event_stream import land_stream

        return land_stream(
            self.stream_url, self.directory, stream=self.stream, durable=self.durable
        )


class LakeDir(dg.ConfigurableResource):
    """Root of the Parquet lake (``DATA_DIR/lake``): raw partitions, quarantine, features."""

    path: str

    @property
    def directory(self) -> Path:
        return Path(self.path)


class Warehouse(dg.ConfigurableResource):
    """The DuckDB warehouse file. One writer at a time: jobs run in process for that reason.

    ``secret_dir`` is the shop's ``DATA_DIR``, where its signing secret lives (unless
    ``JWT_SECRET`` is set): the warehouse verifies signed rec ids with it, so offline CTR is
    credited to the model version the shop served, not to what a client claimed.
    """

    path: str
    secret_dir: str = ""

    def rec_ids(self) -> RecIdVerifier | None:
        """The rec id verifier, or None when the shop's secret cannot be read."""
        secret = read_secret(self.secret_dir or None)
        return RecIdVerifier(secret) if secret else None

    @contextmanager
    def connect(self, *, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        con = connect(self.path, read_only=read_only)
        try:
            yield con
        finally:
            con.close()


class RegistryDir(dg.ConfigurableResource):
    """Model and search-index registry root (``DATA_DIR/registry``), shared with serving."""

    path: str

    @property
    def directory(self) -> Path:
        return Path(self.path)


class Trainer(dg.ConfigurableResource):
    """Where recommenders are fitted: in process (``implicit``), or ALS on Spark MLlib
    (``STORELOOP_TRAINER=spark``, ``SPARK_MASTER``). Either way the artifact and the gate are
    the same; only ``als`` has a Spark fit, other models always fit in process."""

    kind: str = "implicit"
    spark_master: str = "local[2]"

    def fit(self, model_name: str, interactions: Interactions) -> Recommender:
        """The fitted candidate for ``model_name``."""
        from models.factory import build_model

        if self.kind not in TRAINERS:
            raise ValueError(
                f"STORELOOP_TRAINER must be one of {', '.join(TRAINERS)}, got {self.kind!r}"
            )
        if self.kind == "spark" and model_name == "als":
            from models.spark_als import fit_spark_als

            return fit_spark_als(interactions, master=self.spark_master)
        return build_model(model_name).fit(interactions)


class RecsGate(dg.ConfigurableResource):
    """How much worse than the serving model a retrained recommender may score and still
    replace it (``STORELOOP_RECS_GATE_MAX_DROP``, nDCG@10 points; ``..._RELATIVE=true`` reads
    it as a fraction of the serving score).

    The serving model's figure was measured on its own night's held-out days and the
    candidate's on tonight's, so a small drop is split noise as often as a worse model; shops
    whose held-out days swing (a few hours of new traffic, a sale) widen it. Beating
    popularity on the same split stays strict whatever this says.
    """

    max_drop: float = 0.01
    relative: bool = False

    def gate(self) -> PromotionGate:
        """The promotion rules the nightly gate applies."""
        return PromotionGate(max_drop=_max_drop(self.max_drop), relative=self.relative)


def _max_drop(raw: object) -> float:
    """``raw`` as a tolerated drop (a number >= 0), or one clear error naming the setting."""
    try:
        value = float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        value = float("nan")
    if not value >= 0:  # NaN fails this too
        raise ValueError(f"{MAX_DROP_ENV} must be a number >= 0, got {raw!r}")
    return value


def recs_gate_from_env(env: Mapping[str, str] = os.environ) -> RecsGate:
    """The gate's settings from the environment; a bad value stops the definitions loading."""
    max_drop = _max_drop(env.get(MAX_DROP_ENV, "0.01"))
    relative = env.get(f"{MAX_DROP_ENV}_RELATIVE", "false").strip().lower() in TRUE_WORDS
    return RecsGate(max_drop=max_drop, relative=relative)


class SearchJudgments(dg.ConfigurableResource):
    """Graded (query, product) judgments to gate search rankers on, if the shop has any.

    The first existing file wins: ``DATA_DIR/search_judgments.parquet`` (a rater panel's:
    ``query, product_id, grade``, as ``storeloop search evaluate`` reads) or, in a simulated
    shop, the simulator's hidden query grades. Without either, rankers are gated on clicks.
    """

    paths: list[str]

    def load(self) -> dict[str, dict[str, float]] | None:
        """Query → product id → grade from the first existing file, or None."""
        import pandas as pd

        for path in map(Path, self.paths):
            if path.exists():
                frame = pd.read_parquet(path, columns=["query", "product_id", "grade"])
                frame = frame.dropna(subset=["product_id"])
                ids = frame["product_id"]
                if pd.api.types.is_numeric_dtype(ids):  # shop ids are integers: "12", not "12.0"
                    ids = ids.astype("Int64")
                ids = ids.astype(str)
                out: dict[str, dict[str, float]] = {}
                for query, pid, grade in zip(frame["query"], ids, frame["grade"], strict=True):
                    out.setdefault(str(query), {})[pid] = float(grade)
                return out
        return None


def build_resources(
    data_dir: Path | str,
    sqlalchemy_url: str,
    *,
    events_url: str | None = None,
    events_stream: str = DEFAULT_STREAM,
    registry_dir: Path | str | None = None,
    lake_dir: Path | str | None = None,
) -> dict[str, dg.ConfigurableResource]:
    """Every resource for one ``DATA_DIR`` and database; used by ``defs`` and by tests.

    ``registry_dir`` and ``lake_dir`` put the registry and the lake elsewhere than under
    ``DATA_DIR`` (a path every host mounts), as the shop's settings of the same names do.
    """
    layout = DataLayout(Path(data_dir), lake_dir, registry_dir).resolved()
    return {
        "shop": ShopDatabase(url=sqlalchemy_url),
        "events": EventLogDir(
            path=str(layout.events), stream_url=events_url or "", stream=events_stream
        ),
        "lake": LakeDir(path=str(layout.lake)),
        "warehouse": Warehouse(path=str(layout.warehouse), secret_dir=str(layout.root)),
        "registry": RegistryDir(path=str(layout.registry)),
        "trainer": Trainer(
            kind=os.environ.get("STORELOOP_TRAINER", "implicit"),
            spark_master=os.environ.get("SPARK_MASTER", "local[2]"),
        ),
        "recs_gate": recs_gate_from_env(),
        "judgments": SearchJudgments(paths=[str(p) for p in layout.search_judgments]),
    }
