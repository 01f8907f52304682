"""Facet counts for a known set of matching rows, with numpy instead of a second query pass.

Why: tantivy counts facets with an aggregation, which executes the query again (fuzzy and
prefix automata, posting lists, scoring) — about as much CPU as the search itself. When the
search has already returned every matching row (a few hundred or fewer, most text queries),
the same counts are a few ``bincount`` calls over per-row integer codes kept beside the doc
table. Larger match sets (browsing a whole category) still use the aggregation.

Counts, ordering (count descending, then value) and bucket sizes follow the aggregation the
backend sends to tantivy, so a response does not depend on which path counted it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from models.search.api import DEFAULT_PRICE_RANGES, FacetValue

#: Buckets kept per facet, as in the tantivy aggregation (``TantivyBackend.facets``).
SIZES = {"brand": 30, "category": 50, "attributes": 100}
_EDGES = np.asarray([lo for _, lo, _ in DEFAULT_PRICE_RANGES[1:]], dtype=np.int64)


class _Codes:
    """Values per row as integer codes: a CSR list (``offsets``, ``flat``) and the names."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self._code: dict[str, int] = {}
        self.offsets = np.zeros(1, dtype=np.int64)
        self.flat = np.zeros(0, dtype=np.int64)

    def append(self, rows: Sequence[Sequence[str]]) -> None:
        codes: list[int] = []
        lengths = np.empty(len(rows), dtype=np.int64)
        for i, values in enumerate(rows):
            lengths[i] = len(values)
            for value in values:
                code = self._code.get(value)
                if code is None:
                    code = self._code[value] = len(self.names)
                    self.names.append(value)
                codes.append(code)
        self.offsets = np.concatenate([self.offsets, self.offsets[-1] + np.cumsum(lengths)])
        self.flat = np.concatenate([self.flat, np.asarray(codes, dtype=np.int64)])

    def counts(self, rows: np.ndarray) -> np.ndarray:
        """How many of ``rows`` carry each code."""
        starts, ends = self.offsets[rows], self.offsets[rows + 1]
        lengths = ends - starts
        at = np.repeat(starts - np.cumsum(lengths) + lengths, lengths) + np.arange(lengths.sum())
        return np.bincount(self.flat[at], minlength=len(self.names))

    def top(self, rows: np.ndarray, size: int) -> list[tuple[str, int]]:
        """The ``size`` most frequent values among ``rows`` (count descending, then value)."""
        counts = self.counts(rows)
        present = np.flatnonzero(counts)
        ranked = sorted(present.tolist(), key=lambda c: (-counts[c], self.names[c]))[:size]
        return [(self.names[c], int(counts[c])) for c in ranked]


class FacetTable:
    """Brand, category ids and attribute pairs per doc-table row, for ``count``."""

    def __init__(self) -> None:
        self.brand = _Codes()
        self.category = _Codes()
        self.attributes = _Codes()

    def __len__(self) -> int:
        return len(self.brand.offsets) - 1

    def append(
        self,
        brands: Sequence[str],
        category_ids: Sequence[Sequence[str]],
        attribute_pairs: Sequence[Sequence[str]],
    ) -> None:
        """Add rows in doc-table order (an empty brand has no bucket, as in the index)."""
        self.brand.append([(b,) if b else () for b in brands])
        self.category.append(category_ids)
        self.attributes.append(attribute_pairs)

    def count(
        self, rows: np.ndarray, price: np.ndarray, in_stock: np.ndarray
    ) -> dict[str, list[FacetValue]]:
        """Facets over exactly ``rows`` (``price`` and ``in_stock``: the doc table's columns)."""
        rows = np.asarray(rows, dtype=np.int64)
        facets: dict[str, list[FacetValue]] = {
            "brand": [FacetValue(v, c) for v, c in self.brand.top(rows, SIZES["brand"])],
            "category": [FacetValue(v, c) for v, c in self.category.top(rows, SIZES["category"])],
        }
        stock = np.bincount(in_stock[rows].astype(np.int64), minlength=2)
        buckets = [("true", int(stock[1])), ("false", int(stock[0]))]
        buckets.sort(key=lambda b: -b[1])
        facets["in_stock"] = [FacetValue(v, c) for v, c in buckets if c > 0]
        prices = np.bincount(
            np.searchsorted(_EDGES, price[rows], side="right"), minlength=len(_EDGES) + 1
        )
        facets["price"] = [
            FacetValue(f"{lo or ''}-{hi or ''}", int(n), label)
            for (label, lo, hi), n in zip(DEFAULT_PRICE_RANGES, prices.tolist(), strict=True)
            if n > 0
        ]
        for pair, n in self.attributes.top(rows, SIZES["attributes"]):
            key, _, value = pair.partition("=")
            facets.setdefault(f"attr:{key}", []).append(FacetValue(value, n))
        return facets
