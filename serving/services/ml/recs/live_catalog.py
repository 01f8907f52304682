"""Every product's display fields, category, brand, stock and archived state, in memory.

A personal recommendation must not cost database round trips per request: ``LiveCatalog``
keeps a ``ProductInfo`` per row plus numpy arrays (sellable, category, brand). One full read at
start, then every ``interval`` only the products whose row changed since the ``updated_at``
watermark (re-reading an overlap window, because ``updated_at`` is stamped before a
transaction commits) and the products of stock movements past the id watermark (stock changes
do not touch the product row; ids a little below the watermark are re-read, so a movement
committed out of id order is not missed). Reads run on a bare SQLAlchemy connection (a Session
costs several times more).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import numpy as np
from sqlalchemy import Engine, bindparam, func, select

from serving.db.bulk import fetch_all
from serving.db.tables import Inventory, Product, StockMovement
from serving.services.ml.catalog_view import ProductInfo, product_info_from_row

log = logging.getLogger("storeloop.recs")

#: How far before a watermark rows are re-read: ``updated_at`` is stamped before commit.
OVERLAP = timedelta(seconds=5)
_STOCK_ID_OVERLAP = 500  # movement ids re-read below the watermark (out-of-order commits)


# ---------------------------------------------------------------- products


@dataclass
class CatalogTable:
    """Rows of the live catalog; replaced as a whole when products are added."""

    rows: dict[int, int]  # product id → row
    infos: list[ProductInfo | None]
    sellable: np.ndarray  # bool per row
    category: np.ndarray  # int64 per row (-1 unknown)
    brand: np.ndarray  # int64 brand code per row (-1 none)


# Every pass on a busy shop reads the levels of a few hundred products and the lines of as many
# new orders. Read through ``fetch_all`` the id list is one array parameter (a JSON list on
# SQLite), so the statement's text never changes: with a literal IN list SQLAlchemy rendered
# and the driver parsed a new text of hundreds of values on every pass.
_LEVELS = select(Inventory.product_id, Inventory.on_hand - Inventory.reserved).where(
    Inventory.product_id.in_(bindparam("b_ids", expanding=True))
)


def _product_query():
    return select(
        Product.id,
        Product.title,
        Product.brand,
        Product.category_id,
        Product.price_minor,
        Product.currency,
        Product.status,
        Product.image_urls,
        Product.rating_avg,
        Product.updated_at,
        (Inventory.on_hand - Inventory.reserved).label("available"),
    ).join(Inventory, Inventory.product_id == Product.id)


class LiveCatalog:
    """Every product's display fields and sellability, at most ``interval`` seconds old.

    Readers never lock: in-place updates change single entries, and growth swaps in a new
    ``CatalogTable`` with one reference assignment. ``version`` counts passes that changed
    something, ``generation`` counts table replacements (row positions of new products).
    """

    def __init__(self, engine: Engine, interval: float = 1.0) -> None:
        self.engine = engine
        self.interval = interval
        self.table = CatalogTable(
            {}, [], np.zeros(0, bool), np.zeros(0, np.int64), np.zeros(0, np.int64)
        )
        self.loaded = False
        self.version = 0
        self.generation = 0
        self.refreshed_at = float("-inf")
        self.updated_watermark: datetime | None = None
        self.stock_watermark = 0
        self._seen_movements: set[int] = set()
        self._stamps: dict[int, datetime] = {}  # product id → updated_at last applied
        self._advanced_at = float("-inf")  # monotonic time the updated_at watermark moved
        self._swept_at = float("-inf")  # monotonic time the overlap window was last re-read
        self._brands: dict[str, int] = {}
        self._lock = threading.Lock()

    # ---- reads (hot path)

    def get(self, product_ids: Iterable[int]) -> dict[int, ProductInfo]:
        """Like ``ProductInfoCache.get``: info for the ids that exist."""
        self.ensure_fresh()
        table = self.table
        rows, infos = table.rows, table.infos
        out: dict[int, ProductInfo] = {}
        for pid in product_ids:
            row = rows.get(pid)
            if row is not None:
                info = infos[row]
                if info is not None:
                    out[pid] = info
        return out

    def lookup(self) -> Callable[[int], ProductInfo | None]:
        """``pid -> info`` (None when unknown) over the table as it is now, for a caller that
        stops as soon as it has enough: ``get`` builds a dict for every id it is given."""
        self.ensure_fresh()
        table = self.table
        rows, infos = table.rows, table.infos

        def info(pid: int) -> ProductInfo | None:
            row = rows.get(pid)
            return None if row is None else infos[row]

        return info

    def category_of(self, product_id: int) -> int | None:
        table = self.table
        row = table.rows.get(product_id)
        info = table.infos[row] if row is not None else None
        return None if info is None else info.category_id

    def rows_of(self, product_ids: np.ndarray) -> np.ndarray:
        """Table row per product id (-1 when unknown), for mapping a model's items."""
        rows = self.table.rows
        return np.fromiter(
            (rows.get(p, -1) for p in product_ids.tolist()), np.int64, len(product_ids)
        )

    @property
    def stale(self) -> bool:
        """True when a request must refresh inline (never loaded, or no background interval)."""
        return not self.loaded or self.interval <= 0

    def ensure_fresh(self) -> None:
        if self.stale:
            self.refresh()

    # ---- writes (background thread; inline when ``interval`` is 0)

    def refresh(self) -> bool:
        """One pass (the first is a full load); True if anything changed."""
        with self._lock:
            changed = self._load_all() if not self.loaded else self._load_changes()
            self.refreshed_at = time.monotonic()
            if changed:
                self.version += 1
            return changed

    def _load_all(self) -> bool:
        with self.engine.connect() as conn:
            self.stock_watermark = conn.scalar(select(func.max(StockMovement.id))) or 0
            rows = conn.execute(_product_query()).all()
        self._apply(rows)
        self._stamps = {r.id: r.updated_at for r in rows}
        self.updated_watermark = max(self._stamps.values(), default=None)
        self._advanced_at = time.monotonic()
        self.loaded = True
        return True

    def _load_changes(self) -> bool:
        """Products whose row or stock changed; full rows are read only for those.

        While the watermark moved recently, rows stamped up to ``OVERLAP`` before it are
        listed again (id and stamp only) in case a slower transaction committed behind it;
        once it has stood still for twice that long, only newer stamps are asked for, so a
        bulk import with one stamp is not re-listed every second.
        """
        wm = self.updated_watermark
        # The window below the watermarks (commits that landed out of order) is read again
        # every few seconds, not on every pass: on a busy shop it holds thousands of rows.
        now = time.monotonic()
        sweep = now - self._swept_at >= OVERLAP.total_seconds()
        if sweep:
            self._swept_at = now
        low = max(self.stock_watermark - (_STOCK_ID_OVERLAP if sweep else 0), 0)
        query = _product_query()
        with self.engine.connect() as conn:
            moves = conn.execute(
                select(StockMovement.id, StockMovement.product_id).where(StockMovement.id > low)
            ).all()
            fresh = [m for m in moves if m.id not in self._seen_movements]
            stamped = select(Product.id, Product.updated_at)
            if wm is None:
                listed = conn.execute(stamped).all()
            elif sweep and now - self._advanced_at < 2 * OVERLAP.total_seconds():
                listed = conn.execute(stamped.where(Product.updated_at >= wm - OVERLAP)).all()
            else:
                listed = conn.execute(stamped.where(Product.updated_at > wm)).all()
            stamps = self._stamps
            edited = {pid for pid, ts in listed if stamps.get(pid) != ts}
            # A stock movement alone (every checkout makes one) changes only the level: read
            # that, not the whole row, for products already in the table.
            known = self.table.rows
            restocked = {m.product_id for m in fresh} - edited
            edited.update(pid for pid in restocked if pid not in known)
            ids = sorted(edited)
            rows = []
            for start in range(0, len(ids), 5000):
                chunk = ids[start : start + 5000]
                rows += conn.execute(query.where(Product.id.in_(chunk))).all()
            level_ids = sorted(pid for pid in restocked if pid in known)
            # One array parameter however many ids: no chunks needed, unlike a literal IN.
            (levels,) = fetch_all(conn, [(_LEVELS, {"b_ids": level_ids})]) if level_ids else ([],)
        for r in rows:
            stamps[r.id] = r.updated_at
        if moves:
            top = max(m.id for m in moves)
            self.stock_watermark = max(self.stock_watermark, top)
            floor = self.stock_watermark - _STOCK_ID_OVERLAP
            # Kept across passes: a pass that skips the window must not forget what it holds.
            self._seen_movements = {i for i in self._seen_movements if i > floor}
            self._seen_movements.update(m.id for m in moves if m.id > floor)
        newest = max((ts for _, ts in listed if ts is not None), default=None)
        if newest is not None and (wm is None or newest > wm):
            self.updated_watermark = newest
            self._advanced_at = time.monotonic()
        applied = self._apply(rows)
        return self._apply_levels(levels) or applied

    def _apply_levels(self, levels) -> bool:
        """New stock levels for products already in the table (in place, like ``_apply``)."""
        table = self.table
        changed = False
        for pid, available in levels:
            row = table.rows.get(pid)
            info = table.infos[row] if row is not None else None
            level = max(int(available), 0)
            if info is None or info.available == level:
                continue
            info = replace(info, available=level)
            table.infos[row] = info
            table.sellable[row] = info.sellable
            changed = True
        return changed

    def _brand_code(self, brand: str | None) -> int:
        if not brand:
            return -1
        return self._brands.setdefault(brand, len(self._brands))

    def _apply(self, rows) -> bool:
        table = self.table
        new = [r for r in rows if r.id not in table.rows]
        if new:
            n_old, n_new = len(table.infos), len(table.infos) + len(new)
            rowmap = dict(table.rows)
            for i, r in enumerate(new):
                rowmap[r.id] = n_old + i
            table = CatalogTable(
                rowmap,
                [*table.infos, *([None] * len(new))],
                np.concatenate([table.sellable, np.zeros(len(new), bool)]),
                np.concatenate([table.category, np.full(len(new), -1, np.int64)]),
                np.concatenate([table.brand, np.full(len(new), -1, np.int64)]),
            )
            assert len(table.infos) == n_new
        changed = bool(new)
        for r in rows:
            row = table.rows[r.id]
            info = product_info_from_row(r)
            if table.infos[row] == info:
                continue
            table.infos[row] = info
            table.sellable[row] = info.sellable
            table.category[row] = info.category_id
            table.brand[row] = self._brand_code(r.brand)
            changed = True
        if table is not self.table:
            self.table = table
            self.generation += 1
        return changed
