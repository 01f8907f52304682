"""The catalog as search and recommendations see it: documents, live product state, sync loop.

Three jobs that all read the shop database on behalf of the ML serving code:

* ``catalog_documents`` turns product rows into ``ProductDocument``s, so a fresh shop can build
  its first search index without waiting for the pipelines;
* ``ProductInfoCache`` is the serve-time join for price, stock, archived state and display
  fields (title, image), cached for about a second because every search and every
  recommendation needs it and the database must not see one query per hit;
* ``CatalogSync`` pushes products changed since its watermark into the served search index
  every few seconds, so new, edited and archived products show up within a minute instead of
  waiting for the nightly rebuild.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import namedtuple
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from fastapi import FastAPI
from sqlalchemy import Engine, func, select
from sqlalchemy.engine import Connection

from models.search.api import LiveState
from models.search.documents import ProductDocument
from serving.db.tables import Category, Inventory, Product, StockMovement
from serving.db.tables.orders import Order, OrderLine

log = logging.getLogger("storeloop.catalog_sync")

#: Orders in these states never became sales; they do not count towards popularity.
NOT_SOLD = ("cancelled", "failed", "expired", "payment_failed")


# ---------------------------------------------------------------- categories


@dataclass(frozen=True, slots=True)
class CategoryInfo:
    """One category with what search facets and filters need to show and match it."""

    id: int
    slug: str
    name: str
    path: str  # slugs joined by "/", the id search documents carry


class CategoryIndex:
    """All categories by id, slug and path, reloaded at most every ``ttl`` seconds.

    Categories change rarely but facets need their names on every search; one small query per
    ``ttl`` keeps labels right without touching the database per request.
    """

    def __init__(self, engine: Engine, ttl: float = 30.0) -> None:
        self.engine = engine
        self.ttl = ttl
        self._loaded_at = float("-inf")
        self._by_id: dict[int, CategoryInfo] = {}
        self._by_slug: dict[str, CategoryInfo] = {}
        self._by_path: dict[str, CategoryInfo] = {}
        self._lock = threading.Lock()

    def _refresh(self) -> None:
        now = time.monotonic()
        if now - self._loaded_at < self.ttl:
            return
        with self._lock:
            if now - self._loaded_at < self.ttl:
                return
            with self.engine.connect() as conn:
                rows = conn.execute(
                    select(Category.id, Category.slug, Category.name, Category.path)
                ).all()
            infos = [CategoryInfo(r.id, r.slug, r.name, r.path) for r in rows]
            self._by_id = {c.id: c for c in infos}
            self._by_slug = {c.slug: c for c in infos}
            self._by_path = {c.path: c for c in infos}
            self._loaded_at = now

    def invalidate(self) -> None:
        """Force a reload on next use (a category was just created)."""
        self._loaded_at = float("-inf")

    def lookup(self, key: str) -> CategoryInfo | None:
        """A category by id or slug (the forms the product listing accepts too)."""
        self._refresh()
        found = self._by_id.get(int(key)) if key.isdigit() else self._by_slug.get(key)
        if found is None:
            self.invalidate()
            self._refresh()
            found = self._by_id.get(int(key)) if key.isdigit() else self._by_slug.get(key)
        return found

    def by_path(self, path: str) -> CategoryInfo | None:
        self._refresh()
        return self._by_path.get(path)

    def by_id(self, category_id: int) -> CategoryInfo | None:
        self._refresh()
        return self._by_id.get(category_id)

    def display_path(self, path: str) -> str:
        """``"electronics/audio"`` → ``"Electronics > Audio"`` (names, for people)."""
        self._refresh()
        parts = path.split("/")
        names = []
        for i in range(len(parts)):
            info = self._by_path.get("/".join(parts[: i + 1]))
            names.append(info.name if info else parts[i])
        return " > ".join(names)

    def descendant_ids(self, path: str) -> list[int]:
        """Ids of the category at ``path`` and every category below it."""
        self._refresh()
        return [c.id for p, c in self._by_path.items() if p == path or p.startswith(path + "/")]


# ---------------------------------------------------------------- documents from the database


def _ancestor_paths(path: str) -> list[str]:
    parts = path.split("/")
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


def _units_sold(conn: Connection, product_ids: Sequence[int] | None) -> dict[int, float]:
    query = (
        select(OrderLine.product_id, func.sum(OrderLine.quantity))
        .join(Order, Order.id == OrderLine.order_id)
        .where(Order.status.not_in(NOT_SOLD))
        .group_by(OrderLine.product_id)
    )
    if product_ids is not None:
        query = query.where(OrderLine.product_id.in_(list(product_ids)))
    return {int(pid): float(units or 0) for pid, units in conn.execute(query)}


def catalog_documents(
    conn: Connection,
    categories: CategoryIndex,
    product_ids: Sequence[int] | None = None,
    updated_since: datetime | None = None,
) -> tuple[list[ProductDocument], list[int], dict[int, datetime]]:
    """Documents for active products, ids of archived ones, and every row's ``updated_at``.

    ``category_ids`` are the database slug paths of the category and its ancestors, so a
    search filtered on a parent category matches products in every child, and the facet value
    maps back to a category without guessing from display names.
    """
    query = (
        select(
            Product.id,
            Product.title,
            Product.brand,
            Product.description,
            Product.attributes,
            Product.price_minor,
            Product.status,
            Product.rating_avg,
            Product.created_at,
            Product.updated_at,
            Category.path.label("category_path"),
            (Inventory.on_hand - Inventory.reserved).label("available"),
        )
        .join(Category, Category.id == Product.category_id)
        .join(Inventory, Inventory.product_id == Product.id)
    )
    if product_ids is not None:
        query = query.where(Product.id.in_(list(product_ids)))
    if updated_since is not None:
        query = query.where(Product.updated_at >= updated_since)
    rows = conn.execute(query.order_by(Product.id)).all()
    sold = _units_sold(conn, [r.id for r in rows] if product_ids or updated_since else None)
    docs: list[ProductDocument] = []
    archived: list[int] = []
    stamps: dict[int, datetime] = {}
    for row in rows:
        stamps[row.id] = row.updated_at
        if row.status != "active":
            archived.append(row.id)
            continue
        attributes = row.attributes if isinstance(row.attributes, dict) else {}
        docs.append(
            ProductDocument(
                product_id=str(row.id),
                title=row.title,
                brand=row.brand or "",
                category_path=categories.display_path(row.category_path),
                category_ids=_ancestor_paths(row.category_path),
                attributes={
                    k: str(v).lower() if isinstance(v, bool) else str(v)
                    for k, v in attributes.items()
                },
                description=row.description or "",
                price=int(row.price_minor),
                in_stock=int(row.available) > 0,
                rating=float(row.rating_avg or 0.0),
                created_at=row.created_at,
                popularity=sold.get(row.id, 0.0),
            )
        )
    return docs, archived, stamps


# ---------------------------------------------------------------- live product state


@dataclass(frozen=True, slots=True)
class ProductInfo:
    """What a result row shows that the database owns (and changes at any moment)."""

    product_id: int
    title: str
    brand: str
    category_id: int
    price_minor: int
    currency: str
    available: int
    archived: bool
    image_url: str | None
    rating: float

    @property
    def sellable(self) -> bool:
        return not self.archived and self.available > 0


def product_info_from_row(r) -> ProductInfo:
    """A :class:`ProductInfo` from a products-join-inventory row (``available`` column)."""
    return ProductInfo(
        product_id=r.id,
        title=r.title,
        brand=r.brand or "",
        category_id=r.category_id,
        price_minor=int(r.price_minor),
        currency=r.currency,
        available=max(int(r.available), 0),
        archived=r.status != "active",
        image_url=(r.image_urls or [None])[0],
        rating=float(r.rating_avg or 0.0),
    )


#: Live state by id as plain SQL on a pooled DBAPI connection. This runs for most search and
#: recommendation requests (entries live a second); for the ~20 ids of a page SQLAlchemy's
#: execution (expanding IN, row and type processing) cost as much CPU as SQLite itself.
_PRODUCT_INFO_SQL = (
    "SELECT p.id, p.title, p.brand, p.category_id, p.price_minor, p.currency, p.status,"
    " p.image_urls, p.rating_avg, i.on_hand - i.reserved"
    " FROM products AS p JOIN inventory AS i ON i.product_id = p.id WHERE p.id "
)
#: The id list as one parameter, so the statement text never depends on how many ids.
_ID_MATCH = {
    "sqlite": ("IN (SELECT value FROM json_each(?))", json.dumps),
    "postgresql": ("= ANY(%s)", list),
}
_InfoRow = namedtuple(
    "_InfoRow",
    "id title brand category_id price_minor currency status image_urls rating_avg available",
)


class ProductInfoCache:
    """Per-product state from the database, each entry kept for ``ttl`` seconds.

    Hits of one search or one carousel are fetched in a single ``IN`` query on a bare
    connection (a Session costs several times more); popular products stay cached, so under
    load most requests never reach the database, and nothing shown is older than ``ttl``.
    """

    def __init__(self, engine: Engine, ttl: float = 1.0, max_entries: int = 200_000) -> None:
        self.engine = engine
        self.ttl = ttl
        self.max_entries = max_entries
        self._data: dict[int, tuple[float, ProductInfo | None]] = {}
        self._lock = threading.Lock()

    def get(self, product_ids: Iterable[int]) -> dict[int, ProductInfo]:
        """Current info for the ids that exist (unknown ids are simply absent)."""
        ids = list(dict.fromkeys(int(p) for p in product_ids))
        now = time.monotonic()
        found: dict[int, ProductInfo] = {}
        missing: list[int] = []
        data = self._data
        for pid in ids:
            entry = data.get(pid)
            if entry is not None and now - entry[0] < self.ttl:
                if entry[1] is not None:
                    found[pid] = entry[1]
            else:
                missing.append(pid)
        if missing:
            fetched = self._fetch(missing)
            with self._lock:
                if len(self._data) + len(missing) > self.max_entries:
                    self._data = {}
                for pid in missing:
                    info = fetched.get(pid)
                    self._data[pid] = (now, info)
                    if info is not None:
                        found[pid] = info
        return found

    def invalidate(self, product_ids: Iterable[int]) -> None:
        """Forget entries (tests and writers that know something just changed)."""
        with self._lock:
            for pid in product_ids:
                self._data.pop(int(pid), None)

    def _fetch(self, ids: list[int]) -> dict[int, ProductInfo]:
        match, encode = _ID_MATCH[self.engine.dialect.name]
        conn = self.engine.raw_connection()
        try:
            cursor = conn.cursor()
            try:
                cursor.execute(_PRODUCT_INFO_SQL + match, (encode(ids),))
                rows = cursor.fetchall()
            finally:
                cursor.close()
        finally:
            conn.close()  # back to the pool, which rolls back whatever the read began
        infos = {}
        for r in rows:
            urls = json.loads(r[7]) if isinstance(r[7], str) else r[7]  # SQLite: JSON text
            info = product_info_from_row(_InfoRow(*r[:7], urls, *r[8:]))
            infos[info.product_id] = info
        return infos

    def live_state(self, product_ids: Sequence[str]) -> Mapping[str, LiveState]:
        """The search backends' ``LiveDataProvider``: ids are strings there.

        A product deleted from the database counts as archived, so it can never be shown.
        """
        numeric = [int(p) for p in product_ids if str(p).isdigit()]
        infos = self.get(numeric)
        out: dict[str, LiveState] = {}
        for pid in product_ids:
            info = infos.get(int(pid)) if str(pid).isdigit() else None
            if info is None:
                out[str(pid)] = LiveState(archived=True)
            else:
                out[str(pid)] = LiveState(
                    price=info.price_minor, available=info.available > 0, archived=info.archived
                )
        return out


# ---------------------------------------------------------------- sync loop


class IndexTarget(Protocol):
    """What the sync loop writes to (the search serving layer)."""

    def apply_changes(self, documents: list[ProductDocument], deleted: list[str]) -> bool:
        """Apply changes to the served index; False when there is no index to change yet."""
        ...


class CatalogSync:
    """Every ``interval`` seconds, push products changed since the watermark into the index.

    Two watermarks: ``products.updated_at`` (text, price, status) and the highest
    ``stock_movements.id`` seen (stock levels do not touch the product row), so the in-stock
    filter and facet follow the database too. Each pass re-reads an ``overlap`` window before
    the time watermark, because ``updated_at`` is stamped before a transaction commits and a
    slow writer can land behind the watermark; rows already pushed with the same stamp are
    skipped, so an unchanged product is never re-indexed.
    """

    def __init__(
        self,
        engine: Engine,
        categories: CategoryIndex,
        target: IndexTarget,
        interval: float = 10.0,
        overlap: timedelta = timedelta(seconds=5),
        popularity_seconds: float = 300.0,
    ) -> None:
        self.engine = engine
        self.categories = categories
        self.target = target
        self.interval = interval
        self.overlap = overlap
        self.updated_watermark: datetime | None = None
        self.stock_watermark: int = 0
        self._pushed: dict[int, datetime] = {}
        #: product id → in-stock flag as last pushed (unknown products are pushed in full).
        self._in_stock: dict[int, bool] = {}
        self.popularity_seconds = popularity_seconds
        self._popularity_at = time.monotonic()
        self._started = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.passes = 0
        self.pushed = 0

    def start_from_now(self) -> None:
        """Start the watermarks at the database's current state (an index was just built)."""
        with self.engine.connect() as conn:
            self.updated_watermark = conn.scalar(select(func.max(Product.updated_at)))
            self.stock_watermark = conn.scalar(select(func.max(StockMovement.id))) or 0
            # Like the stamps below: the index was just built from this state.
            self._in_stock = {
                int(pid): int(available) > 0
                for pid, available in conn.execute(
                    select(Inventory.product_id, Inventory.on_hand - Inventory.reserved)
                )
            }
            if self.updated_watermark is not None:
                since = self.updated_watermark - self.overlap
                self._pushed = dict(
                    conn.execute(
                        select(Product.id, Product.updated_at).where(Product.updated_at >= since)
                    ).all()
                )
        self._started = True

    def run_once(self) -> int:
        """One pass; returns how many products were pushed (0 when nothing changed)."""
        if not self._started:
            self.start_from_now()
            return 0
        since = None if self.updated_watermark is None else self.updated_watermark - self.overlap
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(StockMovement.id, StockMovement.product_id).where(
                    StockMovement.id > self.stock_watermark
                )
            ).all()
            stock_ids = sorted({r.product_id for r in rows})
            new_stock_watermark = max((r.id for r in rows), default=self.stock_watermark)
            # Stamps first, full rows only for what changed: after a bulk import thousands of
            # products share one ``updated_at`` and sit in the overlap window on every pass;
            # building their documents again each time held the GIL for whole seconds.
            stamp_query = select(Product.id, Product.updated_at)
            if since is not None:
                stamp_query = stamp_query.where(Product.updated_at >= since)
            stamps = {int(pid): ts for pid, ts in conn.execute(stamp_query)}
            changed = {pid for pid, ts in stamps.items() if self._pushed.get(pid) != ts}
            wanted = sorted(changed | self._stock_flips(conn, set(stock_ids) - changed))
            docs, archived = [], []
            for start in range(0, len(wanted), 900):  # stay under SQLite's bound-variable cap
                chunk = wanted[start : start + 900]
                more_docs, more_archived, _ = catalog_documents(conn, self.categories, chunk)
                docs += more_docs
                archived += more_archived
        self.passes += 1
        if docs or archived:
            if not self.target.apply_changes(docs, [str(p) for p in archived]):
                return 0  # no index yet: keep the watermarks, push again later
            log.info("catalog sync: %d updated, %d removed", len(docs), len(archived))
        for doc in docs:
            self._in_stock[int(doc.product_id)] = doc.in_stock
        self.stock_watermark = new_stock_watermark
        if stamps:
            self.updated_watermark = max(stamps.values())
            self._pushed = stamps
        self.pushed += len(docs) + len(archived)
        return len(docs) + len(archived)

    def _stock_flips(self, conn: Connection, stocked: set[int]) -> set[int]:
        """Of products whose only change is stock, those whose document changes: in-stock
        flipped, or due for a popularity refresh.

        Every checkout moves stock, and re-indexing each sold product every pass (documents,
        units sold over all order lines, the index write) stalled the worker for a tenth of a
        second every ``interval`` under load. Only the in-stock flag changes the product's
        search results at once; units sold (popularity, a ranking prior) follow every
        ``popularity_seconds``, and in full whenever the pipelines rebuild the index."""
        if not stocked:
            return set()
        now = time.monotonic()
        if now - self._popularity_at >= self.popularity_seconds:
            self._popularity_at = now
            return stocked
        ids = sorted(stocked)
        flips = set()
        for start in range(0, len(ids), 900):  # stay under SQLite's bound-variable cap
            levels = conn.execute(
                select(Inventory.product_id, Inventory.on_hand - Inventory.reserved).where(
                    Inventory.product_id.in_(ids[start : start + 900])
                )
            )
            for pid, available in levels:
                if self._in_stock.get(int(pid)) != (int(available) > 0):
                    flips.add(int(pid))
        return flips

    def rewind(self, delta: timedelta) -> None:
        """Re-push everything changed in the last ``delta`` on the next pass.

        Called after swapping to a version built elsewhere (the warehouse), whose snapshot may
        predate catalog edits this loop had already pushed into the previous version.
        """
        if self.updated_watermark is not None:
            self.updated_watermark -= delta
        self._pushed = {}
        self._in_stock = {}

    def start(self) -> None:
        """Run passes in a daemon thread until :meth:`stop`."""
        self._thread = threading.Thread(target=self._loop, name="catalog-sync", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.run_once()
            except Exception:  # keep syncing; the next pass retries from the same watermark
                log.exception("catalog sync pass failed")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)


def shared_catalog(app: FastAPI) -> tuple[CategoryIndex, ProductInfoCache]:
    """The category index and product-info cache that search and recommendations share.

    One cache per app means a product fetched for a search result is not fetched again for the
    carousel next to it within the same second.
    """
    state = app.state
    if getattr(state, "product_info", None) is None:
        state.product_info = ProductInfoCache(state.db.engine, state.settings.live_data_seconds)
        state.category_index = CategoryIndex(state.db.engine)
    return state.category_index, state.product_info
