"""A small time-bounded cache of serialised read responses (product pages, listings).

Product reads are the shop's hottest path. Serving them from memory for a short TTL (one second
by default) removes the database round trip and the JSON encoding from almost every request,
while stock and price shown are at most that old; writes made through this process drop the
affected entries at once. Checkout never trusts these figures: it reserves with a conditional
UPDATE in the database.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass

import orjson


@dataclass(frozen=True)
class CachedBody:
    body: bytes
    etag: str
    expires: float


def encode(payload: object, ttl: float) -> CachedBody:
    body = orjson.dumps(payload)
    etag = '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'
    return CachedBody(body, etag, time.monotonic() + ttl)


class ReadCache:
    """LRU with per-entry expiry; safe to share between the event loop and worker threads."""

    def __init__(self, max_entries: int = 50_000, ttl: float = 1.0) -> None:
        self.max_entries = max_entries
        self.ttl = ttl
        self._data: OrderedDict[Hashable, CachedBody] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable) -> CachedBody | None:
        if self.ttl <= 0:
            return None
        entry = self._data.get(key)
        if entry is None or entry.expires < time.monotonic():
            self.misses += 1
            return None
        self.hits += 1
        return entry

    def put(self, key: Hashable, payload: object) -> CachedBody:
        entry = encode(payload, self.ttl)
        if self.ttl <= 0:
            return entry
        with self._lock:
            self._data[key] = entry
            self._data.move_to_end(key)
            while len(self._data) > self.max_entries:
                self._data.popitem(last=False)
        return entry

    def invalidate(self, key: Hashable) -> None:
        with self._lock:
            self._data.pop(key, None)

    def invalidate_prefix(self, kind: str) -> None:
        """Drop every key that is a tuple starting with ``kind`` (e.g. all listings)."""
        with self._lock:
            for key in [k for k in self._data if isinstance(k, tuple) and k and k[0] == kind]:
                del self._data[key]

    def invalidate_product(self, product_id: int) -> None:
        self.invalidate(("product", product_id))
        self.invalidate_prefix("listing")
