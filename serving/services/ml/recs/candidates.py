"""Per model version, the top items of each known user, so a request only filters.

``CandidateCache``: training items excluded, computed lazily on a user's first request and in
the background for the most active users (batched matrix products). A new version is warmed
before it replaces a serving one (``reloader.py``).
"""

from __future__ import annotations

import logging
import time

import numpy as np

from models.base import Recommender
from models.factorization import FactorModel
from models.inference import single_thread_blas
from models.topk import topk_rows

log = logging.getLogger("storeloop.recs")


class CandidateCache:
    """Top ``size`` items per known user of one model version, training items excluded.

    ``get`` computes a missing user on the spot (one mat-vec and a partition) and keeps it,
    dropping the oldest entry beyond ``max_users``; ``warm`` fills the most active users in
    batches (one matrix product per batch) from a background thread.
    """

    def __init__(self, model: Recommender, size: int = 200, max_users: int = 100_000) -> None:
        self.model = model
        self.size = min(size, model.n_items)
        self.max_users = max_users
        self._data: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self.warmed = 0
        self.warm_seconds: float | None = None
        # Requests answered from the cache, and those that had to score a user first (a cold
        # user: what a swap to a version still warming would cost every user once).
        self.hits = 0
        self.computed = 0

    def __len__(self) -> int:
        return len(self._data)

    @property
    def complete(self) -> bool:
        """True when every item fits in ``size`` (a candidate list is then the full ranking)."""
        return self.size >= self.model.n_items

    def get(self, row: int) -> tuple[np.ndarray, np.ndarray]:
        hit = self._data.get(row)
        if hit is not None:
            self.hits += 1
        else:
            self.computed += 1
            hit = self._compute([row])[0]
            if len(self._data) >= self.max_users:
                self._data.pop(next(iter(self._data)), None)
            self._data[row] = hit
        return hit

    def _scores(self, rows: list[int]) -> np.ndarray:
        model = self.model
        with single_thread_blas():
            if isinstance(model, FactorModel):
                return model.user_factors[rows] @ model.item_factors.T
            return np.array(model._score_users(np.asarray(rows)), dtype=np.float32)

    def _compute(self, rows: list[int]) -> list[tuple[np.ndarray, np.ndarray]]:
        scores = self._scores(rows)
        ui = self.model.user_items
        for i, row in enumerate(rows):
            scores[i, ui.indices[ui.indptr[row] : ui.indptr[row + 1]]] = -np.inf
        idx, val = topk_rows(scores, self.size)
        out = []
        for i in range(len(rows)):
            keep = np.isfinite(val[i])
            out.append((idx[i][keep].astype(np.int32), val[i][keep].astype(np.float32)))
        return out

    def warm(self, still_wanted, batch: int = 256) -> None:
        """Fill the most active users first until ``max_users``; stops when unwanted."""
        started = time.monotonic()
        ui = self.model.user_items
        activity = np.diff(ui.indptr)
        order = np.argsort(-activity, kind="stable")[: self.max_users]
        for start in range(0, len(order), batch):
            if not still_wanted():
                return
            rows = [int(r) for r in order[start : start + batch] if int(r) not in self._data]
            if not rows:
                continue
            for row, hit in zip(rows, self._compute(rows), strict=True):
                self._data.setdefault(row, hit)
            self.warmed += len(rows)
            time.sleep(0.001)  # let request threads have the GIL between batches
        self.warm_seconds = time.monotonic() - started
        log.info(
            "recommendations: candidates for %d users in %.1f s", len(self._data), self.warm_seconds
        )
