"""The server's own ``search`` records, handed to the event log in batches.

Why batches: the event log commits (write + fsync) as soon as its writer thread wakes, and a
lone search at a time woke it once per search — a thread wake-up, a commit and a future per
request, which under a steady trickle of searches cost the serving process about as much CPU
as answering a cached search. Searches are answered on the event loop, so records are
collected there without a lock and submitted every ``delay`` seconds (or every
``max_batch`` records) as one group. The search answer never waited for its record anyway;
a crash can lose the last ``delay`` of search records, which were not durable yet either.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import Future
from typing import Any

log = logging.getLogger("storeloop.search")


class SearchEvents:
    """Collects search records on the event loop and submits them to the event log in groups."""

    def __init__(self, event_log: Any, delay: float = 0.05, max_batch: int = 256) -> None:
        self.event_log = event_log
        self.delay = delay
        self.max_batch = max_batch
        self._pending: list[dict[str, Any]] = []
        self._timer: asyncio.TimerHandle | None = None

    def add(self, record: dict[str, Any]) -> None:
        """Queue one record; call from the event loop thread."""
        self._pending.append(record)
        if len(self._pending) >= self.max_batch:
            self.flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.delay, self.flush)

    def flush(self) -> None:
        """Submit what is queued (the timer, a full batch and shutdown call this)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        records, self._pending = self._pending, []
        if not records:
            return
        try:
            future = self.event_log.submit(records)
        except Exception:
            log.warning("%d search records not logged", len(records), exc_info=True)
            return
        future.add_done_callback(_report)


def _report(future: Future[None]) -> None:
    error = future.exception()
    if error is not None:
        log.warning("search records not logged: %s", error)
