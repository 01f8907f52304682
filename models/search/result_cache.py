"""A small LRU cache for the expensive, index-only part of a search, with two lifetimes.

Why: retrieval, the learned rerank of the top 200 and facet counting over every match cost
milliseconds of CPU, yet depend only on the index snapshot, the ranker and the normalised
request — and shoppers repeat queries heavily. Price, stock and archived state are *not*
cached here: the backend joins them fresh for the returned page on every request.

Lifetimes: an entry computed after the index last changed is exact, and is kept up to
``max_age`` (which only bounds memory churn and the drift of time-based features). Once the
index changes (the catalog sync writes stock and price changes every few seconds in a busy
shop), older entries are served for at most ``ttl`` more seconds after they were computed,
so results lag catalog edits by a bounded time instead of the cache emptying on every pass.

Keys come from the caller (the backend puts its index generation in the key, so a new index
version or ranker makes old entries unreachable instead of having to find and drop them).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")


class ResultCache(Generic[V]):
    """Thread-safe LRU mapping whose entries expire as described in the module docstring.

    ``max_entries <= 0`` or ``ttl <= 0`` disables caching (``get`` always misses), which the
    benchmarks use to measure the cold path.
    """

    def __init__(
        self,
        max_entries: int = 1024,
        ttl: float = 30.0,
        max_age: float = 600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_entries = max_entries
        self.ttl = ttl
        self.max_age = max(max_age, ttl)
        self.clock = clock
        self._data: OrderedDict[Hashable, tuple[float, V]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @property
    def enabled(self) -> bool:
        return self.max_entries > 0 and self.ttl > 0

    def get(self, key: Hashable, changed_at: float = float("-inf")) -> V | None:
        """The value for ``key`` if still valid given the source's last change (clock time)."""
        if not self.enabled:
            return None
        now = self.clock()
        with self._lock:
            entry = self._data.get(key)
            if entry is not None:
                age = now - entry[0]
                limit = self.max_age if entry[0] > changed_at else self.ttl
                if age < limit:
                    self._data.move_to_end(key)
                    self.hits += 1
                    return entry[1]
            self.misses += 1
            return None

    def put(self, key: Hashable, value: V, computed_at: float | None = None) -> None:
        """Store ``value`` computed from the source as of ``computed_at`` (default: now).

        Pass the time the computation *started*: a change landing while it ran must count as
        newer than the entry.
        """
        if not self.enabled:
            return
        with self._lock:
            self._data[key] = (self.clock() if computed_at is None else computed_at, value)
            self._data.move_to_end(key)
            while len(self._data) > self.max_entries:
                self._data.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    def __len__(self) -> int:
        return len(self._data)
