"""Items the model does not know, standing in through their category's best-known items.

A product added after the last training has no factors; a shopper who viewed it still says
something: its category's most popular known items take its place as fold-in seeds, at part
of its weight, walking up the category tree if its own category has none.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from serving.services.ml.catalog_view import CategoryIndex
from serving.services.ml.recs.bundle import Bundle
from serving.services.ml.recs.live_catalog import LiveCatalog

#: Known items standing in for one item the model does not know, and the share of its weight.
NEIGHBOURS = 3
NEIGHBOUR_WEIGHT = 0.5


class StandIns:
    """Per-bundle category tops, rebuilt every 60 s at most."""

    def __init__(self, categories: CategoryIndex, live: LiveCatalog) -> None:
        self.categories = categories
        self.live = live
        self._tops: dict[str, tuple[tuple, dict[int, list[tuple[int, float]]]]] = {}

    def known_seeds(
        self, bundle: Bundle, ids: Sequence[int], weights: Sequence[float]
    ) -> tuple[list[int], list[float], int]:
        """Seeds the model knows: an unknown item is replaced by its category's best-known
        items (walking up the tree if its category has none) at part of its weight.

        Returns the seeds, their weights and how many unknown items were stood in for.
        """
        index = bundle.model.items
        seeds: dict[int, float] = {}
        stood = 0
        for pid, w in zip(ids, weights, strict=True):
            if index.index_of(bundle.items([pid])[0]) >= 0:
                seeds[pid] = max(w, seeds.get(pid, 0.0))
                continue
            stand_ins = self.neighbours_of(bundle, pid)
            stood += bool(stand_ins)
            for other in stand_ins:
                if other not in ids:
                    seeds[other] = max(w * NEIGHBOUR_WEIGHT, seeds.get(other, 0.0))
        return list(seeds), list(seeds.values()), stood

    def neighbours_of(self, bundle: Bundle, product_id: int) -> list[int]:
        cat = self.live.category_of(product_id)
        info = self.categories.by_id(cat) if cat is not None else None
        if info is None:
            return []
        by_cat = self.category_tops(bundle)
        parts = info.path.split("/")
        for depth in range(len(parts), 0, -1):
            node = self.categories.by_path("/".join(parts[:depth]))
            if node is None:
                continue
            pooled = by_cat.get(node.id)
            if pooled is None and depth < len(parts):
                pooled = sorted(
                    (
                        x
                        for c in self.categories.descendant_ids(node.path)
                        for x in by_cat.get(c, ())
                    ),
                    key=lambda x: -x[1],
                )
            if pooled:
                return [p for p, _ in pooled[:NEIGHBOURS]]
        return []

    def category_tops(self, bundle: Bundle) -> dict[int, list[tuple[int, float]]]:
        """Per category, its most popular items the model knows (rebuilt every 60 s at most,
        or when the catalog's rows were replaced)."""
        key = (bundle.sync.generation, int(time.monotonic() // 60))
        hit = self._tops.get(bundle.label)
        if hit is not None and hit[0] == key:
            return hit[1]
        codes = bundle.service.category
        pop = np.asarray(bundle.model.item_popularity, dtype=np.float64)
        order = np.lexsort((-pop, codes))
        uniq, starts = np.unique(codes[order], return_index=True)
        tops: dict[int, list[tuple[int, float]]] = {}
        for cat, start in zip(uniq.tolist(), starts.tolist(), strict=True):
            if cat < 0:
                continue
            rows = order[start : start + NEIGHBOURS]
            rows = rows[(codes[rows] == cat) & (bundle.product_ids[rows] >= 0)]
            tops[cat] = [(int(bundle.product_ids[r]), float(pop[r])) for r in rows]
        if len(self._tops) > 4:
            self._tops.clear()
        self._tops[bundle.label] = (key, tops)
        return tops
