"""Search documents from the shop database, and the loop that keeps the served index fresh.

* ``catalog_documents`` turns product rows into ``ProductDocument``s, so a fresh shop can build
  its first search index without waiting for the pipelines;
* ``CatalogSync`` pushes products changed since its watermark into the served search index
  every few seconds, so new, edited and archived products show up within a minute instead of
  waiting for the nightly rebuild; ``CatalogSyncLock`` picks the one process that runs it.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import threading
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Protocol

from sqlalchemy import BigInteger, Engine, Integer, cast, create_engine, func, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.pool import NullPool
from sqlalchemy.sql.elements import ColumnElement

from models.search.documents import ProductDocument
from serving.db.tables import Category, Inventory, Product, StockMovement
from serving.db.tables.orders import Order, OrderLine
from serving.services.ml.catalog_view import NOT_SOLD, CategoryIndex

log = logging.getLogger("storeloop.catalog_sync")


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


# ---------------------------------------------------------------- sync loop


def _stamp_units(dialect: str, column: ColumnElement[datetime]) -> ColumnElement[int] | None:
    """A product's stamp as an exact integer in SQL, to sum: SQLite keeps stamps as text
    (``julianday`` reads them to the millisecond), PostgreSQL as timestamps (microseconds)."""
    if dialect == "sqlite":
        return cast((func.julianday(column) - 2440587.5) * 86_400_000.0, Integer)
    if dialect == "postgresql":
        return cast(func.extract("epoch", column) * 1_000_000, BigInteger)
    return None


def window_summary(conn: Connection, since: datetime | None) -> tuple | None:
    """Rows, latest stamp and the sum of the stamps of products stamped at ``since`` or later.

    After a bulk import every product shares one ``updated_at`` and sits in the overlap
    window on every pass: reading and parsing 100,000 stamps every ``interval`` held the
    GIL long enough to put half-second stalls in the shop's p99 latency. The database
    answers this summary without the GIL; a window whose summary did not move since it was
    last read in full holds no new or re-stamped product (a re-stamp moves the sum, an
    insert the count). ``None`` where the dialect has no exact stamp arithmetic: the pass
    then reads the stamps as before.
    """
    units = _stamp_units(conn.dialect.name, Product.updated_at)
    if units is None or since is None:
        return None
    query = select(func.count(), func.max(Product.updated_at), func.sum(units)).where(
        Product.updated_at >= since
    )
    count, latest, total = conn.execute(query).one()
    return (since, int(count), latest, int(total or 0))


def _stamps_since(conn: Connection, since: datetime | None) -> dict[int, datetime]:
    """Product id → ``updated_at`` of every product stamped at ``since`` or later (all without)."""
    query = select(Product.id, Product.updated_at)
    if since is not None:
        query = query.where(Product.updated_at >= since)
    return {int(pid): ts for pid, ts in conn.execute(query)}


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
        #: Summary (rows, latest stamp, stamp sum) of the overlap window as last read in full.
        self._window: tuple | None = None
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
            self._window = None
            if self.updated_watermark is not None:
                since = self.updated_watermark - self.overlap
                # Summarised before the stamps are read (as in ``run_once``), so the first
                # pass does not read a bulk import's whole window again right after start-up.
                self._window = window_summary(conn, since)
                self._pushed = _stamps_since(conn, since)
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
            window = window_summary(conn, since)
            stamps: dict[int, datetime] = {}
            if window is None or window != self._window:
                stamps = _stamps_since(conn, since)
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
        # The next pass reads its window in full again unless this summary still holds (it
        # names ``since``, so a moved watermark always reads the new window once).
        self._window = window
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
        self._window = None

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


# ---------------------------------------------------------------- who runs the sync


class CatalogSyncLock:
    """Decides the one process that runs the catalog sync for one served index.

    Several writers would fight over the index files, so exactly one process leads. With
    SQLite every process is on one machine and an ``flock`` on a file in the index folder
    decides (the kernel drops it when the owner dies). With PostgreSQL the API hosts may be
    several machines sharing the index folder on a network file system, where ``flock`` is not
    to be trusted; a PostgreSQL session-level advisory lock decides instead, held on a
    connection of its own and dropped by the server when the owner's session ends, however it
    ends. The key is the index folder's path and the database schema, so hosts that each keep
    their own index (different paths) each lead their own, and hosts sharing one folder share
    one leader.
    """

    def __init__(self, engine: Engine, index_root: Path) -> None:
        self.engine = engine
        self.index_root = Path(index_root)
        self._file: IO[str] | None = None
        self._conn: Connection | None = None
        self._lock_engine: Engine | None = None
        self.kind = "advisory" if engine.dialect.name == "postgresql" else "flock"

    def try_acquire(self) -> bool:
        """Take the lock without waiting; False when another process holds it."""
        if self.kind == "flock":
            return self._try_flock()
        # An engine of its own without a pool: the lock's session never mixes with the app's
        # pooled connections, and closing it really ends the session (and the lock).
        self._lock_engine = self._lock_engine or create_engine(self.engine.url, poolclass=NullPool)
        conn = self._lock_engine.connect()
        try:
            key = conn.scalar(
                text("SELECT hashtextextended(:name || current_schema(), 0)"),
                {"name": f"storeloop.catalog_sync:{self.index_root.resolve()}:"},
            )
            taken = bool(conn.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}))
            conn.commit()  # the lock is the session's; end the reading transaction
        except BaseException:
            conn.close()
            raise
        if not taken:
            conn.close()
            return False
        self._conn = conn
        return True

    def _try_flock(self) -> bool:
        self.index_root.mkdir(parents=True, exist_ok=True)
        handle = open(self.index_root / ".serving.lock", "a")  # noqa: SIM115 - held for life
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return False
        self._file = handle
        return True

    def release(self) -> None:
        """Give the lock up (closing the session or file releases it)."""
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
            self._file = None
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()  # no pool: the session ends, and its lock with it
            self._conn = None
