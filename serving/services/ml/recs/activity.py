"""Fresh activity: each user's and session's latest views and cart adds, kept in memory.

The events route feeds them in (:func:`record_activity`), so they fold into recommendations
within seconds without retraining.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from collections.abc import Iterable, Sequence
from typing import Any

#: Confidence of each kind of fresh activity in a fold-in (a cart add says more than a view).
ACTIVITY_WEIGHTS: dict[str, float] = {
    "product_view": 1.0,
    "add_to_cart": 3.0,
    "cart_add": 3.0,
    "rec_click": 1.0,
    "search_click": 1.0,
}
#: Weight of a purchase made since the model was trained, as a fold-in seed.
PURCHASE_WEIGHT = 4.0


class RecentActivity:
    """Latest items per owner (``u:<user id>`` / ``s:<session id>``), bounded in both directions.

    In-process and lossy on purpose: it only has to bridge the seconds-to-hours until the next
    retrain has the same behaviour in its training matrix.
    """

    def __init__(self, max_owners: int = 100_000, max_items: int = 20) -> None:
        self.max_owners = max_owners
        self.max_items = max_items
        self._data: OrderedDict[str, deque[tuple[int, float]]] = OrderedDict()
        self._lock = threading.Lock()

    def record(self, owner: str, product_id: int, weight: float = 1.0) -> None:
        with self._lock:
            items = self._data.get(owner)
            if items is None:
                items = self._data[owner] = deque(maxlen=self.max_items)
            else:
                self._data.move_to_end(owner)
            items.append((product_id, weight))
            while len(self._data) > self.max_owners:
                self._data.popitem(last=False)

    def record_events(self, records: Iterable[dict[str, Any]]) -> None:
        """Take what matters from stored event records (views, cart adds, clicks)."""
        for r in records:
            weight = ACTIVITY_WEIGHTS.get(str(r.get("type")))
            pid = r.get("product_id")
            if weight is None or pid is None or not str(pid).isdigit():
                continue
            if r.get("user_id"):
                self.record(f"u:{r['user_id']}", int(pid), weight)
            if r.get("session_id"):
                self.record(f"s:{r['session_id']}", int(pid), weight)

    def items(self, owners: Sequence[str]) -> tuple[list[int], list[float]]:
        """Distinct recent items of the owners, newest first, with their strongest weight."""
        merged: dict[int, float] = {}
        with self._lock:
            lists = [list(self._data.get(o, ())) for o in owners]
        for entries in lists:
            for pid, weight in reversed(entries):
                merged[pid] = max(weight, merged.get(pid, 0.0))
        return list(merged), list(merged.values())


def record_activity(recs: Any, records: Iterable[dict[str, Any]]) -> None:
    """Hook for the events route: feed accepted events to the recent-activity store and the
    live online counters (impressions and clicks per served version and surface)."""
    if recs is not None:
        records = list(records)
        recs.recent.record_events(records)
        recs.online.record(records)
