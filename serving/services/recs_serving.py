"""Recommendations as the API serves them: the served model, fresh activity, business rules.

``models`` scores and applies rules on arrays (``RecommendationService``); this module keeps
those arrays true to the shop:

* it loads the registry's serving version (``DATA_DIR/registry/recs/<recs_model_name>``) at
  start-up and follows the serving pointer from a poll thread; a new version is loaded and
  verified completely, then swapped in with one reference assignment, so requests never see a
  half-loaded model, and a corrupt artifact is refused while the previous one keeps serving;
* product metadata (display fields, category, brand, stock, archived) and each user's
  purchases live in memory (``recs_live``), followed incrementally every
  ``live_data_seconds``; the rule arrays per model item are re-derived from them after every
  change, so nothing out of stock or archived is shown and a request reads no product rows;
* known users' top candidates are cached per model version (``CandidateCache``), so a
  request usually only filters a short list; the user's cart is the one per-request query;
* ``RecentActivity`` remembers each user's and session's latest views and cart adds, fed by
  the events route, so they fold into recommendations within seconds without retraining;
* with no model published yet, or for products the model does not know, answers come from
  the database's popularity — never an empty list while anything is for sale.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI
from sqlalchemy import Engine, and_, func, select
from sqlalchemy.orm import aliased

from models.base import Recommender
from models.inference import RecommendationService
from models.registry import ModelRegistry
from serving.core.clock import utcnow
from serving.core.config import Settings
from serving.db.tables import Inventory, Product, User
from serving.db.tables.cart import CartItem
from serving.db.tables.orders import Order, OrderLine
from serving.services.catalog_sync import (
    NOT_SOLD,
    CategoryIndex,
    ProductInfo,
    ProductInfoCache,
    shared_catalog,
)
from serving.services.recs_live import CandidateCache, LiveCatalog, PurchaseHistory

log = logging.getLogger("storeloop.recs")

#: Confidence of each kind of fresh activity in a fold-in (a cart add says more than a view).
ACTIVITY_WEIGHTS: dict[str, float] = {
    "product_view": 1.0,
    "add_to_cart": 3.0,
    "cart_add": 3.0,
    "rec_click": 1.0,
    "search_click": 1.0,
}
POPULAR_DB = "popular-db"
_ANONYMOUS = "\x00anonymous"  # never a real user id: makes the service fold in from seeds
_CANDIDATES = 4  # ask the model for this many times k, then apply live checks
_POPULAR_POOL = 300


# ---------------------------------------------------------------- fresh activity


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


def record_activity(app: FastAPI, records: Iterable[dict[str, Any]]) -> None:
    """Hook for the events route: feed accepted events to the recent-activity store."""
    recent = getattr(app.state, "recent_activity", None)
    if recent is not None:
        recent.record_events(records)


# ---------------------------------------------------------------- the served model


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


@dataclass
class Answer:
    """Items for one response and how they were chosen."""

    items: list[tuple[int, float]]
    strategy: str
    model_version: str


class RecsServing:
    """Owns the served model, its reload thread and every recommendation strategy."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        categories: CategoryIndex,
        products: ProductInfoCache,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.categories = categories
        self.products = products
        self.registry = ModelRegistry(Path(settings.data_dir) / "registry", kind="recs")
        self.name = settings.recs_model_name
        self.recent = RecentActivity(settings.recs_recent_owners, settings.recs_recent_items)
        self.current: Bundle | None = None
        self.refused: dict[str, str] = {}  # version → why it was refused
        self.live = LiveCatalog(engine, settings.live_data_seconds)
        self.purchases = PurchaseHistory(engine)
        self.repeat_categories: frozenset[int] = frozenset()
        self._cache: dict[tuple, tuple[float, Any]] = {}
        self._stale: dict[tuple, tuple[Callable[[], Any], bool]] = {}  # background reloads
        self._cache_lock = threading.Lock()
        mark = "?" if engine.dialect.paramstyle == "qmark" else "%s"
        carts, users = CartItem.__tablename__, User.__tablename__
        self._cart_sql = f"SELECT product_id FROM {carts} WHERE owner_key = {mark}"
        self._caller_sql = f"SELECT role, is_active FROM {users} WHERE id = {mark}"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.swaps = 0

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> None:
        """Load what serves now (if anything) and follow the pointer, both in a thread.

        Start-up does not wait for the catalog (seconds for 100,000 products): until it is in
        memory, requests read it inline and the personal endpoint leaves the event loop.
        """
        self._thread = threading.Thread(target=self._run, name="recs-reload", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self.refresh_catalog()
            if self.live.interval > 0:  # the top-up list every answer may need, kept fresh
                self.popular_ids(None)
            self.reload_if_changed()
        except Exception:  # the shop must start even if the registry is unreadable
            log.exception("recommendations: initial load failed; serving popularity")
        self._loop()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _loop(self) -> None:
        settings = self.settings
        live_every = max(self.live.interval, 0.05)
        tick = min(settings.recs_reload_seconds, live_every)
        last_repeat = last_reload = last_live = time.monotonic()
        while not self._stop.wait(tick):
            now = time.monotonic()
            try:
                if now - last_live >= live_every:
                    last_live = now
                    self.live.refresh()
                    self.purchases.refresh()
                    self._reload_stale()
                if now - last_repeat >= settings.recs_catalog_refresh_seconds:
                    last_repeat = now
                    self._refresh_repeat()
                if now - last_reload >= settings.recs_reload_seconds:
                    last_reload = now
                    self.reload_if_changed()
                if self.current is not None:
                    self._sync_rules(self.current)
            except Exception:
                log.exception("recommendations refresh failed")

    def reload_if_changed(self) -> bool:
        """Load and swap in the serving version if it changed; True when a swap happened."""
        version = self.registry.serving_version(self.name)
        current = self.current
        if version is None or (current is not None and current.version == version):
            return False
        if version in self.refused:
            return False
        try:
            model = self.registry.load_model(self.name, version)  # verifies checksums
            bundle = self._bundle(version, model)
        except Exception as exc:  # corrupt or unreadable: refuse it, keep the previous model
            self.refused[version] = str(exc)
            log.error("recommendations: %s/%s refused: %s", self.name, version, exc)
            return False
        self.current = bundle
        self.swaps += 1
        log.info("recommendations now serve %s", bundle.label)
        if bundle.candidates is not None:
            cache = bundle.candidates
            threading.Thread(
                target=cache.warm,
                args=(lambda: self.current is bundle and not self._stop.is_set(),),
                name="recs-warm",
                daemon=True,
            ).start()
        return True

    def refresh_catalog(self) -> None:
        """Bring products, purchases, repeat categories and the rule arrays up to date."""
        self.live.refresh()
        self.purchases.refresh()
        self._refresh_repeat()
        if self.current is not None:
            self._sync_rules(self.current)

    def _refresh_repeat(self) -> None:
        repeat: set[int] = set()
        for slug in filter(
            None, (s.strip() for s in self.settings.recs_repeat_categories.split(","))
        ):
            info = self.categories.lookup(slug)
            if info is not None:
                repeat.update(self.categories.descendant_ids(info.path))
        self.repeat_categories = frozenset(repeat)

    def _sync_rules(self, bundle: Bundle) -> None:
        """Re-derive availability, category and brand per model item after catalog changes."""
        live, sync = self.live, bundle.sync
        state = (live.generation, live.version, self.repeat_categories)
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
        service.repeat_categories = np.asarray(sorted(self.repeat_categories), dtype=np.int64)
        sync.generation, sync.version, sync.repeat = state

    def _bundle(self, version: str, model: Recommender) -> Bundle:
        ids = np.asarray(
            [int(i) if str(i).lstrip("-").isdigit() else -1 for i in model.items.ids],
            dtype=np.int64,
        )
        first_item = model.items.ids[:1]
        first_user = model.users.ids[:1]
        bundle = Bundle(
            self.name,
            version,
            model,
            RecommendationService(
                model,
                max_per_category=self.settings.recs_max_per_category,
                max_per_brand=self.settings.recs_max_per_brand,
            ),
            ids,
            item_str=bool(first_item) and isinstance(first_item[0], str),
            user_str=bool(first_user) and isinstance(first_user[0], str),
            candidates=CandidateCache(model) if model.n_items and len(model.users) else None,
        )
        self._sync_rules(bundle)
        return bundle

    # ---------------------------------------------------------------- small caches

    def _cached(
        self, key: tuple, ttl: float, load: Callable[[], Any], keep_empty: bool = True
    ) -> Any:
        """Cached ``load()``; an expired value is served once more while the loop reloads it.

        With ``keep_empty=False`` an empty answer is not kept (best sellers of a shop that has
        just started selling must not stay empty for a whole ``ttl``).
        """
        now = time.monotonic()
        hit = self._cache.get(key)
        if hit is not None:
            if now - hit[0] >= ttl and self._thread is not None:
                self._stale[key] = (load, keep_empty)
            elif now - hit[0] >= ttl:
                hit = None
        if hit is not None:
            return hit[1]
        value = load()
        self._store(key, now, value, keep_empty)
        return value

    def _store(self, key: tuple, when: float, value: Any, keep_empty: bool) -> None:
        with self._cache_lock:
            if not value and not keep_empty:
                self._cache.pop(key, None)
                return
            if len(self._cache) > 50_000:
                self._cache.clear()
            self._cache[key] = (when, value)

    def _reload_stale(self) -> None:
        while self._stale:
            key, (load, keep_empty) = self._stale.popitem()
            self._store(key, time.monotonic(), load(), keep_empty)

    def clear_caches(self) -> None:
        """Forget cached popularity and co-purchases, re-read purchases (tests, admin tools)."""
        with self._cache_lock:
            self._cache.clear()
            self._stale.clear()
        self.purchases.reload()

    def cart(self, owner: str) -> list[int]:
        """Product ids in a cart: one primary-key range read on a pooled DBAPI connection."""
        return self.caller_and_cart(None, owner)[1]

    def caller_and_cart(
        self, caller_id: int | None, owner: str
    ) -> tuple[tuple[str, bool] | None, list[int]]:
        """The caller's (role, is_active), None if unknown, and a cart, in one checkout.

        The hot path's only reads, so they skip SQLAlchemy's statement machinery (about half
        of its cost); the SQL is what ``select(User.role, User.is_active)`` and
        ``select(CartItem.product_id)`` compile to.
        """
        raw = self.engine.raw_connection()
        try:
            cursor = raw.cursor()
            caller = None
            if caller_id is not None:
                cursor.execute(self._caller_sql, (caller_id,))
                row = cursor.fetchone()
                caller = None if row is None else (str(row[0]), bool(row[1]))
            cursor.execute(self._cart_sql, (owner,))
            rows = cursor.fetchall()
            cursor.close()
        finally:
            raw.close()
        return caller, [int(r[0]) for r in rows]

    @staticmethod
    def cart_owner(user_id: int | None, session_id: str | None) -> str:
        return f"u:{user_id}" if user_id is not None else f"s:{session_id}"

    def owner_context(self, owner: str, user_id: int | None) -> tuple[list[int], list[int]]:
        """(cart product ids, purchased product ids) of a cart owner."""
        return self.cart(owner), self.purchases.get(user_id)

    def in_memory(self, category: str | None) -> bool:
        """True when a personal answer needs no database read beyond the cart.

        The route then answers on the event loop; otherwise (start-up, tests with no refresh
        interval, popularity not cached yet) it runs in the threadpool.
        """
        if self.live.stale or not self.purchases.loaded:
            return False
        cache = self._cache
        return ("popular", None) in cache and ("popular", category) in cache

    def status(self) -> dict[str, Any]:
        """What serves and how fresh the in-memory state is (admin endpoint, benchmarks)."""
        bundle, live = self.current, self.live
        cands = bundle.candidates if bundle is not None else None
        return {
            "model_version": bundle.label if bundle is not None else POPULAR_DB,
            "swaps": self.swaps,
            "refused": dict(self.refused),
            "catalog": {
                "products": len(live.table.infos),
                "version": live.version,
                "age_s": round(time.monotonic() - live.refreshed_at, 3),
                "updated_watermark": str(live.updated_watermark),
                "stock_watermark": live.stock_watermark,
            },
            "purchases_loaded": self.purchases.loaded,
            "candidates": None
            if cands is None
            else {
                "size": cands.size,
                "users": len(cands),
                "warmed": cands.warmed,
                "warm_seconds": cands.warm_seconds,
            },
        }

    def popular_ids(self, category: str | None = None) -> list[tuple[int, float]]:
        """Best sellers of the last ``recs_popular_days`` (then best rated), cached 30 s."""

        def load() -> list[tuple[int, float]]:
            since = utcnow() - timedelta(days=self.settings.recs_popular_days)
            cond = [Product.status == "active"]
            if category is not None:
                cond.append(Product.category_id.in_(self._category_ids(category)))
            units = func.sum(OrderLine.quantity)
            sold = (
                select(Product.id, units)
                .join(OrderLine, OrderLine.product_id == Product.id)
                .join(Order, Order.id == OrderLine.order_id)
                .where(*cond, Order.status.not_in(NOT_SOLD), Order.created_at >= since)
                .group_by(Product.id)
                .order_by(units.desc(), Product.id)
                .limit(_POPULAR_POOL)
            )
            rest = (
                select(Product.id, Product.rating_avg)
                .join(Inventory, Inventory.product_id == Product.id)
                .where(*cond, Inventory.on_hand - Inventory.reserved > 0)
                .order_by(Product.rating_avg.desc(), Product.id.desc())
                .limit(_POPULAR_POOL)
            )
            with self.engine.connect() as conn:
                ranked = [(int(pid), float(n)) for pid, n in conn.execute(sold)]
                seen = {pid for pid, _ in ranked}
                ranked += [(int(pid), 0.0) for pid, _ in conn.execute(rest) if pid not in seen]
            return ranked

        return self._cached(("popular", category), 30.0, load, keep_empty=False)

    def trending_ids(self) -> list[tuple[int, float]]:
        """Products selling faster in the last ``recs_trending_days`` than the weeks before."""

        def load() -> list[tuple[int, float]]:
            days = self.settings.recs_trending_days
            now = utcnow()
            recent_from, older_from = now - timedelta(days=days), now - timedelta(days=5 * days)
            recent = func.sum(OrderLine.quantity).filter(Order.created_at >= recent_from)
            older = func.sum(OrderLine.quantity).filter(Order.created_at < recent_from)
            query = (
                select(OrderLine.product_id, recent, older)
                .join(Order, Order.id == OrderLine.order_id)
                .join(Product, Product.id == OrderLine.product_id)
                .where(
                    Order.created_at >= older_from,
                    Order.status.not_in(NOT_SOLD),
                    Product.status == "active",
                )
                .group_by(OrderLine.product_id)
            )
            with self.engine.connect() as conn:
                rows = conn.execute(query).all()
            # Recent rate over the older weekly rate, smoothed so one sale is not a trend.
            scored = [
                (int(pid), float(r or 0) / ((float(o or 0) / 4.0) + 1.0)) for pid, r, o in rows if r
            ]
            scored.sort(key=lambda x: (-x[1], x[0]))
            return scored[:_POPULAR_POOL]

        return self._cached(("trending",), 30.0, load, keep_empty=False)

    def bought_together_ids(self, product_id: int) -> list[tuple[int, float]]:
        """Products in the same orders as ``product_id``, by number of shared orders."""

        def load() -> list[tuple[int, float]]:
            other = aliased(OrderLine)
            shared = func.count(func.distinct(other.order_id))
            query = (
                select(other.product_id, shared)
                .select_from(OrderLine)
                .join(
                    other,
                    and_(
                        other.order_id == OrderLine.order_id,
                        other.product_id != OrderLine.product_id,
                    ),
                )
                .join(Order, Order.id == OrderLine.order_id)
                .where(OrderLine.product_id == product_id, Order.status.not_in(NOT_SOLD))
                .group_by(other.product_id)
                .order_by(shared.desc(), other.product_id)
                .limit(100)
            )
            with self.engine.connect() as conn:
                return [(int(p), float(n)) for p, n in conn.execute(query)]

        return self._cached(("together", product_id), 60.0, load)

    def _category_ids(self, key: str) -> list[int]:
        info = self.categories.lookup(key)
        return [] if info is None else self.categories.descendant_ids(info.path)

    # ---------------------------------------------------------------- answers

    def finish(
        self,
        ranked: Iterable[tuple[int, float]],
        k: int,
        blocked: set[int],
        category: str | None = None,
        fills: Sequence[Callable[[], Iterable[tuple[int, float]]]] = (),
    ) -> tuple[list[tuple[int, ProductInfo, float]], bool]:
        """Apply the live checks and top up from ``fills``; True if a fill was needed."""
        allowed = set(self._category_ids(category)) if category is not None else None
        chosen: list[tuple[int, ProductInfo, float]] = []
        taken = set(blocked)
        filled = False
        sources = [lambda: ranked, *fills]
        for i, source in enumerate(sources):
            if len(chosen) >= k:
                break
            candidates = [(p, s) for p, s in source() if p not in taken]
            infos = self.live.get(p for p, _ in candidates[: k * _CANDIDATES * 4])
            for pid, score in candidates:
                info = infos.get(pid)
                if info is None or not info.sellable:
                    continue
                if allowed is not None and info.category_id not in allowed:
                    continue
                chosen.append((pid, info, score))
                taken.add(pid)
                filled = filled or i > 0
                if len(chosen) >= k:
                    break
        return chosen, filled

    def for_owner(
        self,
        *,
        user_id: int | None,
        session_id: str | None,
        k: int,
        category: str | None,
        exclude: Sequence[int],
        cart: list[int] | None = None,
    ) -> tuple[list[tuple[int, ProductInfo, float]], str, str]:
        """Personal recommendations for a user or an anonymous session (the hot path).

        ``cart`` may be passed when the caller already read it (see :meth:`caller_and_cart`).
        """
        owners = [f"u:{user_id}"] if user_id is not None else []
        if session_id:
            owners.append(f"s:{session_id}")
        if cart is None:
            cart = self.cart(self.cart_owner(user_id, session_id))
        bought = self.purchases.get(user_id)
        recent_ids, recent_w = self.recent.items(owners)
        for pid in cart:
            if pid not in recent_ids:
                recent_ids.append(pid)
                recent_w.append(ACTIVITY_WEIGHTS["cart_add"])
        blocked = set(exclude) | set(cart)
        self.live.ensure_fresh()
        bundle = self.current
        popular = self.popular_ids
        if bundle is None:
            items, _ = self.finish(
                popular(category),
                k,
                blocked | self._no_repeat(bought),
                category,
                fills=[lambda: popular(None)],
            )
            return items, "popular", POPULAR_DB
        self._sync_rules(bundle)
        service, model = bundle.service, bundle.model
        want = min(k * _CANDIDATES, model.n_items)
        row = model.users.index_of(bundle.user(user_id)) if user_id is not None else -1
        to_model = bundle.items
        fresh = list(recent_ids)
        if row >= 0 and fresh:
            # Fold the fresh items in with the user's training history: seen items stay out.
            ui = model.user_items
            lo, hi = ui.indptr[row], ui.indptr[row + 1]
            history = bundle.product_ids[ui.indices[lo:hi]].tolist()
            weights = ui.data[lo:hi].tolist()
            known = set(history)
            seeds = history + [p for p in fresh if p not in known]
            seed_w = weights + [w for p, w in zip(fresh, recent_w, strict=True) if p not in known]
            rec = service.recommend(
                _ANONYMOUS,
                want,
                recent_items=to_model(seeds),
                recent_weights=seed_w,
                purchased=to_model(bought),
                exclude=to_model(blocked),
            )
            strategy = "model+fresh"
        else:
            rec = None
            cands = bundle.candidates
            if row >= 0 and not fresh and cands is not None and want <= cands.size:
                # Only filter the user's cached top list; score in full if too few survive.
                idx, vals = cands.get(row)
                rec = service.recommend_from_candidates(
                    idx, vals, want, purchased=to_model(bought), exclude=to_model(blocked)
                )
            rec = rec or service.recommend(
                bundle.user(user_id) if row >= 0 else _ANONYMOUS,
                want,
                recent_items=to_model(recent_ids) or None,
                recent_weights=recent_w or None,
                purchased=to_model(bought),
                exclude=to_model(blocked),
            )
            strategy = rec.source
        ranked = zip((int(i) for i in rec.item_ids), rec.scores.tolist(), strict=True)
        items, filled = self.finish(
            list(ranked),
            k,
            blocked | self._no_repeat(bought),
            category,
            fills=[lambda: popular(category), lambda: popular(None)],
        )
        if filled and "popular" not in strategy:
            strategy += "+popular"
        return items, strategy, bundle.label

    def _no_repeat(self, bought: Sequence[int]) -> set[int]:
        """Bought products that may not come back (their category allows no repeat)."""
        repeat = self.repeat_categories
        if not repeat:
            return set(bought)
        return {p for p in bought if self.live.category_of(p) not in repeat}

    def similar(self, product_id: int, k: int) -> tuple[list, str, str]:
        """Items like this one: the model's neighbours, else best sellers of its category."""
        bundle = self.current
        ranked: list[tuple[int, float]] = []
        strategy, version = "category-popular", POPULAR_DB
        key = bundle.items([product_id])[0] if bundle is not None else None
        if bundle is not None and bundle.model.items.index_of(key) >= 0:
            ids, scores = bundle.model.similar_items([key], k * _CANDIDATES)
            ranked = list(zip((int(i) for i in ids[0]), scores[0].tolist(), strict=True))
            strategy, version = "similar", bundle.label
        return self._with_category_fill(product_id, ranked, k, strategy, version)

    def bought_together(self, product_id: int, k: int) -> tuple[list, str, str]:
        """Co-purchases from the orders, topped up with similar items and category sellers."""
        ranked = self.bought_together_ids(product_id)
        if ranked:
            items, strategy, version = self._with_category_fill(
                product_id, ranked, k, "bought-together", POPULAR_DB
            )
            return items, strategy, version
        return self.similar(product_id, k)

    def _with_category_fill(
        self, product_id: int, ranked: list[tuple[int, float]], k: int, strategy: str, version: str
    ) -> tuple[list, str, str]:
        info = self.live.get([product_id]).get(product_id)
        category = str(info.category_id) if info is not None else None
        fills = [lambda: self.popular_ids(None)]
        if category is not None:
            fills.insert(0, lambda: self.popular_ids(category))
        items, filled = self.finish(ranked, k, {product_id}, fills=fills)
        if filled and strategy != "category-popular":
            strategy += "+popular"
        return items, strategy, version

    def popular(self, k: int, category: str | None) -> tuple[list, str, str]:
        items, _ = self.finish(self.popular_ids(category), k, set(), category)
        return items, "popular", POPULAR_DB

    def trending(self, k: int) -> tuple[list, str, str]:
        items, filled = self.finish(self.trending_ids(), k, set(), fills=[self.popular_ids])
        return items, "trending+popular" if filled else "trending", POPULAR_DB


def new_rec_id() -> str:
    """Unique per response; the storefront sends it back with impressions and clicks."""
    return uuid.uuid4().hex


def start_recs(app: FastAPI) -> Callable[[], None]:
    """Lifecycle starter: load the serving model, start following the registry."""
    categories, products = shared_catalog(app)
    serving = RecsServing(app.state.settings, app.state.db.engine, categories, products)
    app.state.recs_serving = serving
    app.state.recent_activity = serving.recent
    serving.start()
    return serving.stop
