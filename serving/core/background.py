"""One daemon thread that runs a pass every few seconds until it is stopped.

The checkout's recovery and the after-sales pass (renewals, sellers' parcels, stuck refunds)
are both "do this now and then, keep going if one pass fails, stop promptly at shutdown";
one loop keeps those rules in one place.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger("storeloop.background")


class BackgroundLoop:
    """Runs ``tick`` every ``interval`` seconds on its own thread; ``run_first`` runs a pass
    at once (a start-up recovery), else the first pass comes after one interval."""

    def __init__(
        self, name: str, tick: Callable[[], object], interval: float, *, run_first: bool
    ) -> None:
        self.name = name
        self.tick = tick
        self.interval = interval
        self.run_first = run_first
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        if not self.run_first and self._stop.wait(self.interval):
            return
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:  # one failing pass must not end the loop
                log.exception("%s pass failed", self.name)
            self._stop.wait(self.interval)
