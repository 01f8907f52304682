"""Per-document columns kept in memory next to the index, addressed by a dense row number.

The index returns row numbers (a fast field); everything needed afterwards — rendering hits,
LTR features, live-data joins — is an array lookup here instead of a stored-document fetch.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from models.search.analysis import analyze
from models.search.documents import ProductDocument

_NUMERIC = {
    "price": np.int64,
    "in_stock": np.bool_,
    "rating": np.float64,
    "created_at": np.int64,
    "popularity": np.float64,
    "ctr_prior": np.float64,
    "conversion_prior": np.float64,
}
_TEXT = ("product_id", "title", "brand", "category_path")
_TERMS = ("title_terms", "brand_terms", "category_terms")


class DocTable:
    """Column arrays for every row ever indexed in this index version (deleted rows stay)."""

    def __init__(self, columns: dict[str, list | np.ndarray]) -> None:
        self.text: dict[str, list[str]] = {k: list(columns[k]) for k in _TEXT}
        self.numeric: dict[str, np.ndarray] = {
            k: np.asarray(columns[k], dtype=t) for k, t in _NUMERIC.items()
        }
        # Term columns as stored (space-joined) too: the catalog sync saves the table after
        # every pass, and re-joining 100k rows' tokens held the GIL for ~55 ms each time.
        self._term_text: dict[str, list[str]] = {
            k: [s if isinstance(s, str) else " ".join(s) for s in columns[k]] for k in _TERMS
        }
        self.terms: dict[str, list[tuple[str, ...]]] = {
            k: [tuple(s.split()) for s in self._term_text[k]] for k in _TERMS
        }
        self.row_of: dict[str, int] = {pid: i for i, pid in enumerate(self.text["product_id"])}

    def __len__(self) -> int:
        return len(self.text["product_id"])

    @staticmethod
    def _columns(docs: Sequence[ProductDocument]) -> dict[str, list]:
        cols: dict[str, list] = {k: [getattr(d, k) for d in docs] for k in (*_TEXT, *_NUMERIC)}
        cols["title_terms"] = [" ".join(analyze(d.title)) for d in docs]
        cols["brand_terms"] = [" ".join(analyze(d.brand)) for d in docs]
        cols["category_terms"] = [" ".join(analyze(d.category_path)) for d in docs]
        return cols

    @classmethod
    def from_documents(cls, docs: Sequence[ProductDocument]) -> DocTable:
        """Build from documents; row ``i`` is ``docs[i]``."""
        return cls(cls._columns(docs))

    def append(self, docs: Sequence[ProductDocument]) -> list[int]:
        """Add rows for new or replaced documents; returns their row numbers."""
        start = len(self)
        cols = self._columns(docs)
        for k in _TEXT:
            self.text[k].extend(cols[k])
        for k, t in _NUMERIC.items():
            self.numeric[k] = np.concatenate([self.numeric[k], np.asarray(cols[k], dtype=t)])
        for k in _TERMS:
            self._term_text[k].extend(cols[k])
            self.terms[k].extend(tuple(s.split()) for s in cols[k])
        rows = list(range(start, start + len(docs)))
        for row, doc in zip(rows, docs, strict=True):
            self.row_of[doc.product_id] = row
        return rows

    def save(self, path: Path) -> None:
        """Write as Parquet (token lists as space-joined strings)."""
        data: dict[str, Iterable] = {k: self.text[k] for k in _TEXT}
        data.update(self.numeric)
        data.update(self._term_text)
        pq.write_table(pa.table(data), path)

    @classmethod
    def load(cls, path: Path) -> DocTable:
        """Read a table written by ``save``."""
        table = pq.read_table(path)
        return cls({name: table.column(name).to_pylist() for name in table.column_names})
