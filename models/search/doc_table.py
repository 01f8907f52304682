"""Per-document columns kept in memory next to the index, addressed by a dense row number.

The index returns row numbers (a fast field); everything needed afterwards — rendering hits,
LTR features, live-data joins — is an array lookup here instead of a stored-document fetch.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from features.text_runs import split_runs
from models.search.analysis import analyze
from models.search.documents import ProductDocument
from models.search.facet_table import FacetTable

_NUMERIC = {
    "price": np.int64,
    "in_stock": np.bool_,
    "rating": np.float64,
    "created_at": np.int64,
    "popularity": np.float64,
    "ctr_prior": np.float64,
    "conversion_prior": np.float64,
    # ``ProductDocument.signature``: tables written before it existed load it as 0 (unknown).
    "signature": np.int64,
}
_TEXT = ("product_id", "title", "brand", "category_path")
_TERMS = ("title_terms", "brand_terms", "category_terms")
#: Facet values per row (``FacetTable``), stored joined by ``_SEP``; tables written before
#: they existed load without them, and facets are then always counted by the index.
_LISTS = ("category_ids", "attribute_pairs")
_SEP = "\x1f"


class TokenColumn:
    """Every row's tokens as catalog-wide integer ids: one flat id array with row offsets.

    Why: per-search features gather 200 candidates' tokens with numpy instead of walking their
    strings in Python (``gather``); ``words[id]`` is a token and ``id_of`` its inverse.
    """

    def __init__(self) -> None:
        self.id_of: dict[str, int] = {}
        self.words: list[str] = []
        self.ids = np.zeros(0, dtype=np.int64)
        self.offsets = np.zeros(1, dtype=np.int64)

    def extend(self, rows: Sequence[Sequence[str]]) -> None:
        """Append rows of tokens."""
        id_of = self.id_of
        flat = [id_of.setdefault(w, len(id_of)) for words in rows for w in words]
        self.words.extend(list(id_of)[len(self.words) :])
        lengths = np.fromiter(map(len, rows), dtype=np.int64, count=len(rows))
        self.ids = np.concatenate([self.ids, np.asarray(flat, dtype=np.int64)])
        self.offsets = np.concatenate([self.offsets, self.offsets[-1] + np.cumsum(lengths)])

    def gather(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(candidate index, token id) of every token of ``rows``, row by row, in order."""
        rows = np.asarray(rows, dtype=np.int64)
        starts, ends = self.offsets[rows], self.offsets[rows + 1]
        lengths = ends - starts
        owner = np.repeat(np.arange(len(rows)), lengths)
        within = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        return owner, self.ids[np.repeat(starts, lengths) + within]


class DocTable:
    """Column arrays for every row ever indexed in this index version (deleted rows stay)."""

    def __init__(self, columns: dict[str, list | np.ndarray]) -> None:
        self.text: dict[str, list[str]] = {k: list(columns[k]) for k in _TEXT}
        size = len(columns["product_id"])
        self.numeric: dict[str, np.ndarray] = {
            k: np.asarray(columns[k], dtype=t) if k in columns else np.zeros(size, dtype=t)
            for k, t in _NUMERIC.items()
        }
        # Term columns as stored (space-joined) too: the catalog sync saves the table after
        # every pass, and re-joining 100k rows' tokens held the GIL for ~55 ms each time.
        self._term_text: dict[str, list[str]] = {
            k: [s if isinstance(s, str) else " ".join(s) for s in columns[k]] for k in _TERMS
        }
        self.terms: dict[str, list[tuple[str, ...]]] = {
            k: [tuple(s.split()) for s in self._term_text[k]] for k in _TERMS
        }
        #: Title terms with glued letter/digit tokens split into runs, as query planning splits
        #: them ("lvv6014er" -> lvv 6014 er): what the ranker's title features compare with.
        self.title_pieces: list[tuple[str, ...]] = [
            split_runs(t) for t in self.terms["title_terms"]
        ]
        #: The same pieces, and the brand and category terms, as integer ids.
        self.encoded: dict[str, TokenColumn] = {
            k: TokenColumn() for k in ("title_pieces", "brand_terms", "category_terms")
        }
        self._encode(0)
        self.row_of: dict[str, int] = {pid: i for i, pid in enumerate(self.text["product_id"])}
        self._list_text: dict[str, list[str]] | None = None
        # Title document frequencies for ``title_idf``, counted on first use and then kept
        # current by ``append`` (a recount of 100k titles inside a search is a long pause).
        self._title_df: Counter[str] = Counter()
        self._df_rows = -1
        self._arrow: pa.Table | None = None  # what ``save`` wrote last (rows only get appended)
        self.facets: FacetTable | None = None
        if all(k in columns for k in _LISTS):
            self._list_text = {k: list(columns[k]) for k in _LISTS}
            self.facets = FacetTable()
            self._append_facets(self.text["brand"], self._list_text)

    def _append_facets(self, brands: list[str], lists: dict[str, list[str]]) -> None:
        assert self.facets is not None
        ids, pairs = ([tuple(v.split(_SEP)) if v else () for v in lists[k]] for k in _LISTS)
        self.facets.append(brands, ids, pairs)

    def __len__(self) -> int:
        return len(self.text["product_id"])

    @staticmethod
    def _columns(docs: Sequence[ProductDocument]) -> dict[str, list]:
        cols: dict[str, list] = {k: [getattr(d, k) for d in docs] for k in (*_TEXT, *_NUMERIC)}
        cols["title_terms"] = [" ".join(analyze(d.title)) for d in docs]
        cols["brand_terms"] = [" ".join(analyze(d.brand)) for d in docs]
        cols["category_terms"] = [" ".join(analyze(d.category_path)) for d in docs]
        cols["category_ids"] = [_SEP.join(d.category_ids) for d in docs]
        cols["attribute_pairs"] = [_SEP.join(d.attribute_pairs) for d in docs]
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
        self.title_pieces.extend(split_runs(t) for t in self.terms["title_terms"][start:])
        self._encode(start)
        if self._list_text is not None:
            for k in _LISTS:
                self._list_text[k].extend(cols[k])
            self._append_facets(cols["brand"], cols)
        if self._df_rows == start:  # keep the title IDF current without a recount
            for words in self.title_pieces[start:]:
                self._title_df.update(set(words))
            self._df_rows = len(self)
        rows = list(range(start, start + len(docs)))
        for row, doc in zip(rows, docs, strict=True):
            self.row_of[doc.product_id] = row
        return rows

    def _encode(self, start: int) -> None:
        """Encode rows ``start:`` of the title pieces and the brand and category terms."""
        self.encoded["title_pieces"].extend(self.title_pieces[start:])
        for k in ("brand_terms", "category_terms"):
            self.encoded[k].extend(self.terms[k][start:])

    @property
    def piece_id(self) -> dict[str, int]:
        """Title piece -> catalog-wide id (``gather_pieces``)."""
        return self.encoded["title_pieces"].id_of

    @property
    def piece_words(self) -> list[str]:
        """Id -> title piece (``piece_id``'s inverse)."""
        return self.encoded["title_pieces"].words

    def gather_pieces(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(candidate index, piece id) of every title piece of ``rows``, row by row."""
        return self.encoded["title_pieces"].gather(rows)

    def title_idf(self, terms: Sequence[str]) -> list[float]:
        """log(N / df) of each term over the titles' pieces (``title_pieces``; df counted
        once, again after appends)."""
        if self._df_rows != len(self):
            counts: Counter[str] = Counter()
            for words in self.title_pieces:
                counts.update(set(words))
            self._title_df, self._df_rows = counts, len(self)
        n = max(len(self), 1)
        return [math.log((n + 1) / (self._title_df.get(t, 0) + 1)) for t in terms]

    def save(self, path: Path) -> None:
        """Write as Parquet (token lists as space-joined strings).

        Rows never change once written (updates append), so the Arrow form of the rows saved
        before is kept and only new rows are converted: the catalog sync saves after every
        pass, and converting 100k rows' Python strings again held the GIL for tens of
        milliseconds each time, a pause every search in flight waited for.
        """
        saved = self._arrow
        if saved is not None and saved.num_rows == 0:
            saved = None  # an empty table's columns have no types to append to
        start = 0 if saved is None else saved.num_rows
        data: dict[str, Iterable] = {k: self.text[k][start:] for k in _TEXT}
        data.update({k: v[start:] for k, v in self.numeric.items()})
        data.update({k: v[start:] for k, v in self._term_text.items()})
        if self._list_text is not None:
            data.update({k: v[start:] for k, v in self._list_text.items()})
        fresh = pa.table(data, schema=None if saved is None else saved.schema)
        table = fresh if saved is None else pa.concat_tables([saved, fresh])
        pq.write_table(table, path)
        self._arrow = table

    @classmethod
    def load(cls, path: Path) -> DocTable:
        """Read a table written by ``save``."""
        table = pq.read_table(path)
        loaded = cls({name: table.column(name).to_pylist() for name in table.column_names})
        if set(table.column_names) == set(loaded._saved_columns()):
            loaded._arrow = table.select(loaded._saved_columns())
        return loaded

    def _saved_columns(self) -> list[str]:
        lists = list(_LISTS) if self._list_text is not None else []
        return [*_TEXT, *_NUMERIC, *_TERMS, *lists]
