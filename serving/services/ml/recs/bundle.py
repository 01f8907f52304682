"""One loaded model with the business-rule arrays (availability, category, brand) of its items.

The arrays are re-derived from the live catalog after every change (:func:`sync_rules`), so
nothing out of stock or archived is shown and a request reads no product rows.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from models.base import Recommender
from models.inference import RecommendationService
from serving.core.config import Settings
from serving.services.ml.recs.candidates import CandidateCache
from serving.services.ml.recs.live_catalog import LiveCatalog


@dataclass
class RuleSync:
    """Which live-catalog state a bundle's rule arrays were derived from."""

    rows: np.ndarray | None = None  # live-catalog row per model item
    generation: int = -1
    version: int = -1
    repeat: frozenset[int] = frozenset()


@dataclass(frozen=True)
class Bundle:
    """One loaded model with the business-rule arrays built for its items."""

    name: str
    version: str
    model: Recommender
    service: RecommendationService
    product_ids: np.ndarray  # product id per item position (-1 when not a shop id)
    item_str: bool = False  # the model's id maps hold text ids ("12"), as events store them
    user_str: bool = False
    loaded_at: float = field(default_factory=time.monotonic)
    candidates: CandidateCache | None = None
    sync: RuleSync = field(default_factory=RuleSync)

    @property
    def label(self) -> str:
        return f"{self.name}:{self.version}"

    def items(self, product_ids: Iterable[int]) -> list:
        """Shop product ids in the model's id type."""
        return [str(p) for p in product_ids] if self.item_str else list(product_ids)

    def user(self, user_id: int) -> object:
        return str(user_id) if self.user_str else user_id


def build_bundle(name: str, version: str, model: Recommender, settings: Settings) -> Bundle:
    """Wrap a loaded model; its rule arrays are still to be synced (:func:`sync_rules`)."""
    ids = np.asarray(
        [int(i) if str(i).lstrip("-").isdigit() else -1 for i in model.items.ids],
        dtype=np.int64,
    )
    first_item = model.items.ids[:1]
    first_user = model.users.ids[:1]
    return Bundle(
        name,
        version,
        model,
        RecommendationService(
            model,
            max_per_category=settings.recs_max_per_category,
            max_per_brand=settings.recs_max_per_brand,
        ),
        ids,
        item_str=bool(first_item) and isinstance(first_item[0], str),
        user_str=bool(first_user) and isinstance(first_user[0], str),
        candidates=CandidateCache(model) if model.n_items and len(model.users) else None,
    )


def sync_rules(bundle: Bundle, live: LiveCatalog, repeat_categories: frozenset[int]) -> None:
    """Re-derive availability, category and brand per model item after catalog changes."""
    sync = bundle.sync
    state = (live.generation, live.version, repeat_categories)
    if (sync.generation, sync.version, sync.repeat) == state:
        return
    table = live.table
    if sync.rows is None or sync.generation != live.generation:
        sync.rows = live.rows_of(bundle.product_ids)
    rows = sync.rows
    known = rows >= 0
    n = len(rows)
    available = np.zeros(n, dtype=bool)
    category = np.full(n, -1, dtype=np.int64)
    brand = np.full(n, -1, dtype=np.int64)
    available[known] = table.sellable[rows[known]]
    category[known] = table.category[rows[known]]
    brand[known] = table.brand[rows[known]]
    service = bundle.service
    service.update_rules(category=category, brand=brand, available=available)
    service.repeat_categories = np.asarray(sorted(repeat_categories), dtype=np.int64)
    sync.generation, sync.version, sync.repeat = state
