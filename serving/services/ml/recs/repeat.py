"""Which categories' products may be recommended again after a purchase (consumables).

Learned from the purchases (``models/repeat.py``), marked by the catalog's own attribute, or
named in ``recs_repeat_categories``; refitted when purchases change.
"""

from __future__ import annotations

import numpy as np
from sqlalchemy import Engine

from models.repeat import PurchasePairs, RepeatPurchaseModel
from serving.core.config import Settings
from serving.services.ml.catalog_view import CategoryIndex
from serving.services.ml.recs.live_catalog import LiveCatalog
from serving.services.ml.recs.purchases import PurchaseHistory, marked_consumable_categories


class RepeatKnowledge:
    """The fitted repeat-purchase model and the categories allowed to come back."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        categories: CategoryIndex,
        live: LiveCatalog,
        purchases: PurchaseHistory,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.categories = categories
        self.live = live
        self.purchases = purchases
        self.categories_allowed: frozenset[int] = frozenset()
        self.model = RepeatPurchaseModel()
        self.marked_consumable: frozenset[int] = frozenset()  # by the catalog's own attribute
        self._learned = -1  # purchases.version the model was fitted on

    def learn(self) -> bool:
        """Re-read the categories the catalog marks consumable, and refit which categories the
        purchases show to be consumable (and their intervals) when purchases changed since the
        last fit; True when a fit happened."""
        with self.engine.connect() as conn:
            self.marked_consumable = frozenset(marked_consumable_categories(conn))
        purchases = self.purchases
        if not purchases.loaded or purchases.version == self._learned:
            self.refresh()
            return False
        version = purchases.version
        rows = purchases.all_stats()
        live = self.live
        cats = [live.category_of(pid) for _, pid, _, _, _ in rows]
        pairs = PurchasePairs(
            user=np.fromiter((r[0] for r in rows), np.int64, len(rows)),
            item=np.fromiter((r[1] for r in rows), np.int64, len(rows)),
            category=np.fromiter((-1 if c is None else c for c in cats), np.int64, len(rows)),
            orders=np.fromiter((r[2] for r in rows), np.int64, len(rows)),
            first=np.fromiter((r[3] for r in rows), np.float64, len(rows)),
            last=np.fromiter((r[4] for r in rows), np.float64, len(rows)),
        )
        model = RepeatPurchaseModel().fit(pairs)
        self.model = model  # one reference assignment: readers see old or new
        self._learned = version
        self.refresh()
        return True

    def refresh(self) -> None:
        """Categories whose products may come back after a purchase: those the catalog marks
        consumable, those the purchases show to be, and any named in ``recs_repeat_categories``
        (with their descendants)."""
        repeat: set[int] = set(self.model.consumable) | self.marked_consumable
        for slug in filter(
            None, (s.strip() for s in self.settings.recs_repeat_categories.split(","))
        ):
            info = self.categories.lookup(slug)
            if info is not None:
                repeat.update(self.categories.descendant_ids(info.path))
        self.categories_allowed = frozenset(repeat)

    def no_repeat(self, bought: list[int]) -> set[int]:
        """Bought products that may not come back (their category allows no repeat)."""
        repeat = self.categories_allowed
        if not repeat:
            return set(bought)
        return {p for p in bought if self.live.category_of(p) not in repeat}
