"""Resources: one per outside system the pipelines touch.

Each is a small configurable object holding a location, so tests and deployments swap a path or
URL without touching assets. Defaults come from the shop's own ``Settings`` (``DATA_DIR``,
``DATABASE_URL``) so the pipelines read exactly what the shop writes.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb
from sqlalchemy import Engine, create_engine

from features.warehouse import connect


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
    """The event log directory; only closed ``*.jsonl`` segments are ever read."""

    path: str

    @property
    def directory(self) -> Path:
        return Path(self.path)


class LakeDir(dg.ConfigurableResource):
    """Root of the Parquet lake (``DATA_DIR/lake``): raw partitions, quarantine, features."""

    path: str

    @property
    def directory(self) -> Path:
        return Path(self.path)


class Warehouse(dg.ConfigurableResource):
    """The DuckDB warehouse file. One writer at a time: jobs run in process for that reason."""

    path: str

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
    data_dir: Path | str, sqlalchemy_url: str
) -> dict[str, dg.ConfigurableResource]:
    """Every resource for one ``DATA_DIR`` and database; used by ``defs`` and by tests."""
    root = Path(data_dir).resolve()
    return {
        "shop": ShopDatabase(url=sqlalchemy_url),
        "events": EventLogDir(path=str(root / "events")),
        "lake": LakeDir(path=str(root / "lake")),
        "warehouse": Warehouse(path=str(root / "warehouse.duckdb")),
        "registry": RegistryDir(path=str(root / "registry")),
        "judgments": SearchJudgments(
            paths=[
                str(root / "search_judgments.parquet"),
                str(root / "ground_truth" / "query_product_relevance.parquet"),
            ]
        ),
    }
