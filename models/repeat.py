"""Buy it again: which categories are consumable, and when a bought item is due again.

Nobody types "coffee is consumable" per shop: it is read from the purchase log. A category is
*consumable* when a good share of the (buyer, product) pairs in it were bought in more than one
order (people buy the same coffee every few weeks, almost nobody buys the same headphones
twice). The share is shrunk towards zero (``prior`` pseudo-pairs that were never repeated),
so a category with three sales is not declared consumable by one repeat; shrinking towards the
shop-wide rate instead would make every category of a grocery-heavy shop "consumable".

For a consumable item a buyer has bought, the *due-ness* compares the time since the last
purchase with the expected interval: the buyer's own mean interval once they bought it twice,
else the item's median interval over all buyers, else the category's, else the shop's. An item
scores highest when the interval has just elapsed and fades slowly once overdue; items bought
more often score higher (habit); an item bought moments ago is not offered "again" yet.

The input is pair-level aggregates (buyer, product, category, orders, first and last purchase
time), which the shop keeps in memory and a warehouse query gives just as easily.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["PurchasePairs", "RepeatPurchaseModel"]

_DAY = 86_400.0


@dataclass(frozen=True)
class PurchasePairs:
    """One row per (buyer, product): how many orders held it, first and last order time.

    Times are seconds since the epoch; ``category`` is -1 when unknown.
    """

    user: np.ndarray
    item: np.ndarray
    category: np.ndarray
    orders: np.ndarray
    first: np.ndarray
    last: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.user)
        for name in ("item", "category", "orders", "first", "last"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"PurchasePairs.{name} must have {n} rows like user")


class RepeatPurchaseModel:
    """Consumable categories and re-purchase intervals learned from purchase pairs.

    Parameters
    ----------
    min_rate : float
        Smoothed share of repeated pairs from which a category counts as consumable.
    min_pairs : int
        Pairs a category needs before it can be called consumable at all.
    prior : float
        Pseudo-pairs never bought twice added to every category (evidence is needed).
    default_interval_days : float
        Expected interval when nothing in the log says otherwise.
    min_ratio : float
        Share of the expected interval that must have passed before an item is offered again.
    """

    def __init__(
        self,
        min_rate: float = 0.25,
        min_pairs: int = 8,
        prior: float = 10.0,
        default_interval_days: float = 30.0,
        min_ratio: float = 0.2,
    ) -> None:
        if not 0.0 < min_rate <= 1.0:
            raise ValueError("min_rate must be in (0, 1]")
        if min_pairs < 1 or prior < 0 or default_interval_days <= 0:
            raise ValueError("min_pairs must be >= 1, prior >= 0, default_interval_days > 0")
        self.min_rate = min_rate
        self.min_pairs = min_pairs
        self.prior = prior
        self.default_interval = default_interval_days * _DAY
        self.min_ratio = min_ratio
        self.consumable: frozenset[int] = frozenset()
        self.category_rate: dict[int, float] = {}
        self.item_interval: dict[int, float] = {}
        self.category_interval: dict[int, float] = {}
        self.shop_interval = self.default_interval
        self.shop_rate = 0.0

    def fit(self, pairs: PurchasePairs) -> RepeatPurchaseModel:
        """Learn repeat rates per category and median intervals per item and category."""
        orders = np.asarray(pairs.orders, dtype=np.int64)
        category = np.asarray(pairs.category, dtype=np.int64)
        item = np.asarray(pairs.item, dtype=np.int64)
        repeated = orders >= 2
        self.shop_rate = float(repeated.mean()) if len(orders) else 0.0
        rates: dict[int, float] = {}
        consumable = set()
        if len(category):
            cats, inverse = np.unique(category, return_inverse=True)
            n_pairs = np.bincount(inverse)
            n_repeat = np.bincount(inverse, weights=repeated.astype(np.float64))
            smoothed = n_repeat / (n_pairs + self.prior)
            for cat, n, rate in zip(
                cats.tolist(), n_pairs.tolist(), smoothed.tolist(), strict=True
            ):
                if cat < 0:
                    continue
                rates[cat] = round(rate, 4)
                if n >= self.min_pairs and rate >= self.min_rate:
                    consumable.add(cat)
        self.category_rate = rates
        self.consumable = frozenset(consumable)
        # Each repeated pair's mean gap between orders; medians are robust to one odd buyer.
        gaps = (np.asarray(pairs.last, np.float64) - np.asarray(pairs.first, np.float64))[
            repeated
        ] / (orders[repeated] - 1)
        ok = gaps > 0
        gaps, g_item, g_cat = gaps[ok], item[repeated][ok], category[repeated][ok]
        self.shop_interval = float(np.median(gaps)) if len(gaps) else self.default_interval
        self.item_interval = _medians(g_item, gaps)
        self.category_interval = _medians(g_cat, gaps)
        return self

    def expected_interval(self, item: int, category: int) -> float:
        """Seconds between purchases of ``item`` for a typical buyer."""
        found = self.item_interval.get(item)
        if found is None:
            found = self.category_interval.get(category, self.shop_interval)
        return found

    def due_scores(
        self,
        items: np.ndarray,
        categories: np.ndarray,
        orders: np.ndarray,
        first: np.ndarray,
        last: np.ndarray,
        now: float,
        consumable: Iterable[int] | None = None,
    ) -> np.ndarray:
        """Buy-again score per bought item of one buyer; -inf where not consumable.

        ``consumable`` overrides the learned categories (e.g. learned plus configured).
        ``ratio = (now - last) / expected``: the score climbs to its peak when the expected
        interval has passed (ratio 1) and then halves for every further interval overdue, so a
        coffee bought monthly comes back after about a month and fades if the buyer moved on.
        """
        items = np.asarray(items, dtype=np.int64)
        categories = np.asarray(categories, dtype=np.int64)
        orders = np.asarray(orders, dtype=np.float64)
        first = np.asarray(first, dtype=np.float64)
        last = np.asarray(last, dtype=np.float64)
        expected = np.array(
            [
                self.expected_interval(i, c)
                for i, c in zip(items.tolist(), categories.tolist(), strict=True)
            ],
            dtype=np.float64,
        )
        own = orders >= 2
        expected[own] = np.maximum((last[own] - first[own]) / (orders[own] - 1), 0.0)
        expected = np.where(expected > 0, expected, self.shop_interval)
        ratio = np.clip((now - last) / expected, 0.0, None)
        shape = np.where(ratio <= 1.0, 0.25 + 0.75 * ratio, 0.5 ** (ratio - 1.0))
        scores = shape * (1.0 + np.log(np.maximum(orders, 1.0)))
        allowed = self.consumable if consumable is None else consumable
        consumable_mask = np.isin(categories, np.fromiter(allowed, np.int64))
        # Bought moments ago: not "again" yet (the shopper has it in the basket or at home).
        wanted = consumable_mask & (ratio >= self.min_ratio)
        return np.where(wanted, scores, -np.inf).astype(np.float32)

    def summary(self) -> dict[str, Any]:
        """What was learned, for the status endpoint and docs."""
        return {
            "consumable_categories": sorted(self.consumable),
            "shop_repeat_rate": round(self.shop_rate, 4),
            "shop_interval_days": round(self.shop_interval / _DAY, 2),
            "min_rate": self.min_rate,
            "min_pairs": self.min_pairs,
        }


def _medians(keys: np.ndarray, values: np.ndarray) -> dict[int, float]:
    if not len(keys):
        return {}
    order = np.argsort(keys, kind="stable")
    keys, values = keys[order], values[order]
    uniq, starts = np.unique(keys, return_index=True)
    bounds = [*starts.tolist(), len(keys)]
    return {
        int(k): float(np.median(values[bounds[i] : bounds[i + 1]]))
        for i, k in enumerate(uniq.tolist())
    }
