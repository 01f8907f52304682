"""A small cache of database-derived lists (best sellers, co-purchases) that never blocks twice.

An expired value is served once more while the owner's background loop reloads it, so a
request pays a query only for a key nobody asked for before.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

_MAX_KEYS = 50_000


class ReloadingCache:
    """key -> (when, value); expired keys are queued for :meth:`reload_stale`."""

    def __init__(self, background: Callable[[], bool]) -> None:
        #: True when a loop will call :meth:`reload_stale` (else an expired key loads inline).
        self._background = background
        self._data: dict[tuple, tuple[float, Any]] = {}
        self._stale: dict[tuple, tuple[Callable[[], Any], bool]] = {}
        self._lock = threading.Lock()

    def __contains__(self, key: tuple) -> bool:
        return key in self._data

    def get(self, key: tuple, ttl: float, load: Callable[[], Any], keep_empty: bool = True) -> Any:
        """Cached ``load()``; an expired value is served once more while the loop reloads it.

        With ``keep_empty=False`` an empty answer is not kept (best sellers of a shop that has
        just started selling must not stay empty for a whole ``ttl``).
        """
        now = time.monotonic()
        hit = self._data.get(key)
        if hit is not None:
            if now - hit[0] >= ttl and self._background():
                self._stale[key] = (load, keep_empty)
            elif now - hit[0] >= ttl:
                hit = None
        if hit is not None:
            return hit[1]
        value = load()
        self._store(key, now, value, keep_empty)
        return value

    def _store(self, key: tuple, when: float, value: Any, keep_empty: bool) -> None:
        with self._lock:
            if not value and not keep_empty:
                self._data.pop(key, None)
                return
            if len(self._data) > _MAX_KEYS:
                self._data.clear()
            self._data[key] = (when, value)

    def reload_stale(self) -> None:
        """Reload every key served expired since the last call (the owner's loop calls it)."""
        while self._stale:
            key, (load, keep_empty) = self._stale.popitem()
            self._store(key, time.monotonic(), load(), keep_empty)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self._stale.clear()
