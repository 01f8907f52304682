"""A small LRU + TTL cache for the expensive, index-only part of a search.

Why: retrieval, the learned rerank of the top 200 and facet counting over every match cost
milliseconds of CPU, yet depend only on the index snapshot, the ranker and the normalised
request — and shoppers repeat queries heavily. Price, stock and archived state are *not*
cached here: the backend joins them fresh for the returned page on every request.

Entries are keyed by the caller (the backend puts its index generation in the key, so a new
index version or ranker makes old entries unreachable instead of having to find and drop them).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")


class ResultCache(Generic[V]):
    """Thread-safe mapping that forgets entries after ``ttl`` seconds or beyond ``max_entries``.

    ``max_entries <= 0`` or ``ttl <= 0`` disables caching (``get`` always misses), which the
    benchmarks use to measure the cold path.
    """

    def __init__(
        self,
        max_entries: int = 1024,
        ttl: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_entries = max_entries
        self.ttl = ttl
        self.clock = clock
        self._data: OrderedDict[Hashable, tuple[float, V]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @property
    def enabled(self) -> bool:
        return self.max_entries > 0 and self.ttl > 0

    def get(self, key: Hashable) -> V | None:
        """The fresh value for ``key`` or None (and count the hit or miss)."""
        if not self.enabled:
            return None
        now = self.clock()
        with self._lock:
            entry = self._data.get(key)
            if entry is None or now - entry[0] >= self.ttl:
                self.misses += 1
                return None
            self._data.move_to_end(key)
            self.hits += 1
            return entry[1]

    def put(self, key: Hashable, value: V) -> None:
        """Store ``value``; evict the least recently used entries beyond the size cap."""
        if not self.enabled:
            return
        with self._lock:
            self._data[key] = (self.clock(), value)
            self._data.move_to_end(key)
            while len(self._data) > self.max_entries:
                self._data.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    def __len__(self) -> int:
        return len(self._data)
