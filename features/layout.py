"""Where everything lives under ``DATA_DIR``: the one spelling of the data layout.

The shop writes the event log and reads the registry; the pipelines read the events and the
shop database and write the lake, the warehouse and the registry; the models' tools read the
registry. Each side used to spell these paths itself (seven places); now each builds a
:class:`DataLayout` and asks it. It lives in ``features`` because that is the one package
every side may import (``features`` imports nothing of ours), and the paths are a contract
between the halves like the event schema beside it. The layout is a contract too: these names
are what existing data directories hold, so they never change.

    DATA_DIR/
      storeloop.db            the shop database when DATABASE_URL is not set (SQLite)
      events/                 the clickstream log's segments
      lake/                   Parquet partitions (or STORELOOP_LAKE_DIR)
      warehouse.duckdb        the warehouse
      registry/               published models and indexes (or STORELOOP_REGISTRY_DIR)
        recs/<model>/         recommendation models
        search_index/         search index versions
        search_ranker/        learned rankers
      recs/online/            live impression and click counters
      mail/                   the local outbox's mbox files
      ground_truth/           the simulator's hidden preferences (tests of the models)
      search_judgments.parquet  a rater panel's relevance judgments, when present
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

#: Sub-folders of the registry for search (the shop's settings may rename them).
SEARCH_INDEX_SUBDIR = "search_index"
SEARCH_RANKER_SUBDIR = "search_ranker"


@dataclass(frozen=True)
class DataLayout:
    """The paths of one ``DATA_DIR``; the lake and the registry may live elsewhere (a path
    every host mounts), as ``STORELOOP_LAKE_DIR`` and ``STORELOOP_REGISTRY_DIR`` say."""

    root: Path
    lake_dir: Path | None = None
    registry_dir: Path | None = None
    search_index_subdir: str = SEARCH_INDEX_SUBDIR
    search_ranker_subdir: str = SEARCH_RANKER_SUBDIR

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))
        for name in ("lake_dir", "registry_dir"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, Path(value))

    @property
    def database(self) -> Path:
        """The SQLite shop database used when no ``DATABASE_URL`` is set."""
        return self.root / "storeloop.db"

    @property
    def events(self) -> Path:
        return self.root / "events"

    @property
    def lake(self) -> Path:
        return self.lake_dir or self.root / "lake"

    @property
    def warehouse(self) -> Path:
        return self.root / "warehouse.duckdb"

    @property
    def registry(self) -> Path:
        return self.registry_dir or self.root / "registry"

    @property
    def search_index(self) -> Path:
        return self.registry / self.search_index_subdir

    @property
    def search_ranker(self) -> Path:
        return self.registry / self.search_ranker_subdir

    @property
    def recs_online(self) -> Path:
        return self.root / "recs" / "online"

    @property
    def mail(self) -> Path:
        return self.root / "mail"

    @property
    def ground_truth(self) -> Path:
        return self.root / "ground_truth"

    @property
    def search_judgments(self) -> list[Path]:
        """Relevance judgments, first existing one wins: a rater panel's, then the simulator's."""
        return [
            self.root / "search_judgments.parquet",
            self.root / "ground_truth" / "query_product_relevance.parquet",
        ]

    def resolved(self) -> DataLayout:
        """The same layout with absolute paths (what the pipelines hand to Dagster)."""
        return DataLayout(
            self.root.resolve(),
            self.lake_dir.resolve() if self.lake_dir else None,
            self.registry_dir.resolve() if self.registry_dir else None,
            self.search_index_subdir,
            self.search_ranker_subdir,
        )
