"""Stable two-way maps between external ids and matrix positions.

A model only sees row/column positions; the shop only knows user and product ids. The map is
saved beside every model so that a model trained yesterday still answers in today's ids, and
so that adding new users never silently shifts the meaning of an existing position.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np


class IdMap:
    """An ordered, duplicate-free list of external ids with O(1) look-up both ways.

    Parameters
    ----------
    ids : sequence
        External ids (ints or strings) in position order. Duplicates are rejected because a
        position must mean exactly one entity.
    """

    def __init__(self, ids: Sequence | np.ndarray) -> None:
        values = [_plain(v) for v in ids]
        self._ids = values
        self._index = {v: i for i, v in enumerate(values)}
        if len(self._index) != len(values):
            raise ValueError("IdMap ids must be unique")

    @classmethod
    def from_values(cls, values: Iterable) -> IdMap:
        """Build a map from possibly repeated values, keeping first-seen order sorted.

        Sorting makes the map a pure function of the *set* of ids, so two builds on the same
        data give identical positions regardless of row order.
        """
        unique = sorted({_plain(v) for v in values}, key=_sort_key)
        return cls(unique)

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, value: object) -> bool:
        return _plain(value) in self._index

    def __eq__(self, other: object) -> bool:
        return isinstance(other, IdMap) and self._ids == other._ids

    def __hash__(self) -> int:  # pragma: no cover - maps are not meant as dict keys
        return hash(tuple(self._ids))

    @property
    def ids(self) -> list:
        """External ids in position order (a copy)."""
        return list(self._ids)

    def index_of(self, value: object, default: int = -1) -> int:
        """Position of ``value``, or ``default`` when the id is unknown."""
        return self._index.get(_plain(value), default)

    def to_index(self, values: Iterable, default: int = -1) -> np.ndarray:
        """Vectorised :meth:`index_of`; unknown ids become ``default``."""
        get = self._index.get
        return np.fromiter((get(_plain(v), default) for v in values), dtype=np.int64)

    def to_ids(self, positions: Iterable[int]) -> list:
        """External ids for the given positions."""
        ids = self._ids
        return [ids[int(p)] for p in positions]

    def ids_array(self) -> np.ndarray:
        """External ids as a numpy array (object dtype for strings), for fast fancy indexing."""
        if self._ids and all(isinstance(v, int) for v in self._ids):
            return np.asarray(self._ids, dtype=np.int64)
        return np.asarray(self._ids, dtype=object)

    def save(self, path: str | Path) -> None:
        """Write the map as JSON (human-readable, diff-able, no extra dependency)."""
        Path(path).write_text(json.dumps({"ids": self._ids}))

    @classmethod
    def load(cls, path: str | Path) -> IdMap:
        """Read a map written by :meth:`save`."""
        return cls(json.loads(Path(path).read_text())["ids"])


def _plain(value: object) -> object:
    """Turn numpy scalars into Python ones so that ``np.int64(3)`` and ``3`` are the same id."""
    if isinstance(value, np.generic):
        return value.item()
    return value


def _sort_key(value: object) -> tuple[int, object]:
    """Sort ints before strings without comparing across types."""
    if isinstance(value, int | float):
        return (0, value)
    return (1, str(value))
