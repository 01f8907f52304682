"""How long the disk takes to make a small write durable, sampled while a benchmark runs.

Why: a database commit that waits for its log to reach the disk (PostgreSQL with
``synchronous_commit=on``, SQLite with ``synchronous=FULL``) can be no faster than one
``fdatasync``. On a virtual machine that shares its disk, that call usually takes a fraction
of a millisecond and now and then hundreds; every order in flight during such a stall waits it
out, whatever the application does. The probe writes 512 bytes and syncs them every 20 ms
(about a tenth of the syncs PostgreSQL makes at 300 orders/s) so that a run's latency tail can
be set beside the disk's own.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from types import TracebackType


class FsyncProbe:
    """A thread timing ``fdatasync`` of a small file in ``directory`` until stopped."""

    def __init__(self, directory: Path, interval: float = 0.02) -> None:
        self._path = Path(directory) / "fsync-probe"
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fsync-probe", daemon=True)
        #: (seconds since the probe started, seconds the sync took)
        self.samples: list[tuple[float, float]] = []

    def __enter__(self) -> FsyncProbe:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        fd = os.open(self._path, os.O_WRONLY | os.O_CREAT, 0o644)
        start = time.perf_counter()
        try:
            while not self._stop.wait(self._interval):
                began = time.perf_counter()
                os.pwrite(fd, b"\0" * 512, 0)
                os.fdatasync(fd)
                self.samples.append((began - start, time.perf_counter() - began))
        finally:
            os.close(fd)
            self._path.unlink(missing_ok=True)

    def summary(self, skip_seconds: float = 0.0) -> dict:
        """Percentiles of the sync time, and how much of the run the disk spent stalled
        (summed time of syncs over 50 ms) — the part of the run no commit could escape.
        ``skip_seconds``: a warm-up at the start, left out as the load generator leaves it."""
        samples = [(at - skip_seconds, t) for at, t in self.samples if at >= skip_seconds]
        took = sorted(t for _, t in samples)
        if not took:
            return {"samples": 0}

        def pct(q: float) -> float:
            return round(took[min(len(took) - 1, int(q * len(took)))] * 1000, 2)

        return {
            "samples": len(took),
            "p50_ms": pct(0.50),
            "p99_ms": pct(0.99),
            "max_ms": round(took[-1] * 1000, 1),
            "stalled_ms_over_50ms": round(sum(t for t in took if t > 0.05) * 1000),
            "max_ms_by_second": _max_by_second(samples),
        }


def _max_by_second(samples: list[tuple[float, float]]) -> list[float]:
    worst: dict[int, float] = {}
    for at, took in samples:
        worst[int(at)] = max(worst.get(int(at), 0.0), took)
    return [round(worst[s] * 1000, 1) for s in sorted(worst)]
