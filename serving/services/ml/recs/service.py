"""The recommendation service the routes call: every strategy, on the served model.

``models`` scores and applies rules on arrays (``RecommendationService``); the modules of this
package keep those arrays true to the shop, one job each:

* ``reloader.py`` follows the registry's serving version (``DATA_DIR/registry/recs/<name>``)
  and an A/B challenger; ``bundle.py`` is one loaded model with its rule arrays;
* product metadata and each user's purchases live in memory (``live_catalog.py``,
  ``purchases.py``), followed incrementally every ``live_data_seconds`` by this module's
  refresh thread, and the rule arrays are re-derived after every change, so nothing out of
  stock or archived is shown;
* known users' top candidates are cached per model version (``candidates.py``), so a
  request usually only filters a short list; the user's cart is the one per-request query;
* ``activity.py`` remembers each shopper's latest views and cart adds (fed by the events
  route), ``stand_ins.py`` maps items the model does not know onto known ones, and
  ``repeat.py`` knows which categories may be bought again;
* with no model published yet, or for products the model does not know, answers come from
  the database's popularity (``popularity.py``) — never an empty list while anything is for
  sale.

About 500 lines on purpose: what is left is the answers themselves (``for_owner`` and the
product surfaces share ``finish`` and the top-up rules) and the thread that keeps their
in-memory state fresh; each other job lives in its own module.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
from sqlalchemy import Engine

from serving.core.clock import utcnow
from serving.core.config import Settings
from serving.db.tables import User
from serving.db.tables.cart import CartItem
from serving.db.tables.orders import Order
from serving.services.ml.catalog_view import (
    CategoryIndex,
    ProductInfo,
    ProductInfoCache,
)
from serving.services.ml.recs.activity import ACTIVITY_WEIGHTS, PURCHASE_WEIGHT, RecentActivity
from serving.services.ml.recs.bundle import Bundle, sync_rules
from serving.services.ml.recs.live_catalog import LiveCatalog
from serving.services.ml.recs.online import OnlineCounters, RecIds
from serving.services.ml.recs.popularity import PopularityRules
from serving.services.ml.recs.purchases import PurchaseHistory
from serving.services.ml.recs.reloader import ModelReloader
from serving.services.ml.recs.repeat import RepeatKnowledge
from serving.services.ml.recs.stand_ins import StandIns
from serving.services.ml.recs.status import POPULAR_DB, online_report, status
from serving.services.ml.recs.ttl_cache import ReloadingCache

log = logging.getLogger("storeloop.recs")

REPEAT = "repeat"
_MAX_PURCHASE_SEEDS = 10
_ANONYMOUS = "\x00anonymous"  # never a real user id: makes the service fold in from seeds
_CANDIDATES = 4  # ask the model for this many times k, then apply live checks


class RecsServing:
    """Answers every recommendation surface; owns the refresh thread of the in-memory state."""

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
        self.recent = RecentActivity(settings.recs_recent_owners, settings.recs_recent_items)
        self.live = LiveCatalog(engine, settings.live_data_seconds)
        self.purchases = PurchaseHistory(engine)
        self.repeat = RepeatKnowledge(settings, engine, categories, self.live, self.purchases)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.models = ModelReloader(
            settings, settings.layout.registry, self._sync_rules, self._stop
        )
        self.rec_ids = RecIds(settings.jwt_secret)
        self.online = OnlineCounters(settings.layout.recs_online, self.rec_ids)
        self.cache = ReloadingCache(background=lambda: self._thread is not None)
        self.rules = PopularityRules(settings, engine, categories, self.cache)
        self.stand_ins = StandIns(categories, self.live)
        mark = "?" if engine.dialect.paramstyle == "qmark" else "%s"
        carts, users = CartItem.__tablename__, User.__tablename__
        self._cart_sql = f"SELECT product_id FROM {carts} WHERE owner_key = {mark}"
        self._caller_sql = f"SELECT role, is_active FROM {users} WHERE id = {mark}"
        orders = Order.__tablename__
        self._latest_sql = f"SELECT max(updated_at) FROM {orders} WHERE user_id = {mark}"

    # ---------------------------------------------------------------- what serves

    @property
    def current(self) -> Bundle | None:
        return self.models.current

    @property
    def challenger(self) -> Bundle | None:
        return self.models.challenger

    @property
    def refused(self) -> dict[str, str]:
        return self.models.refused

    def reload_if_changed(self) -> bool:
        return self.models.reload_if_changed()

    def bundle_for(self, user_id: int | None, session_id: str | None) -> Bundle | None:
        return self.models.bundle_for(user_id, session_id)

    def status(self) -> dict[str, Any]:
        """What serves and how fresh the in-memory state is (admin endpoint, benchmarks)."""
        return status(self)

    def online_report(self) -> dict[str, Any]:
        """Live CTR per served version and surface, and the A/B arms (ops page)."""
        return online_report(self)

    # ---------------------------------------------------------------- refresh thread

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
            self.models.reload_if_changed()
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
        last_repeat = last_reload = last_live = last_learn = time.monotonic()
        while not self._stop.wait(tick):
            now = time.monotonic()
            try:
                if now - last_live >= live_every:
                    last_live = now
                    self.live.refresh()
                    self.purchases.refresh()
                    self.cache.reload_stale()
                    self.online.flush()
                if now - last_learn >= settings.recs_repeat_learn_seconds:
                    last_learn = now
                    self.learn_repeat()
                if now - last_repeat >= settings.recs_catalog_refresh_seconds:
                    last_repeat = now
                    self.repeat.refresh()
                if now - last_reload >= settings.recs_reload_seconds:
                    last_reload = now
                    self.models.reload_if_changed()
                for bundle in self.models.bundles():
                    self._sync_rules(bundle)
            except Exception:
                log.exception("recommendations refresh failed")

    def refresh_catalog(self) -> None:
        """Bring products, purchases, repeat categories and the rule arrays up to date."""
        self.live.refresh()
        self.purchases.refresh()
        self.learn_repeat()
        for bundle in self.models.bundles():
            self._sync_rules(bundle)

    def learn_repeat(self) -> bool:
        """Refit the repeat-purchase knowledge if purchases changed (``repeat.py``)."""
        return self.repeat.learn()

    def _sync_rules(self, bundle: Bundle) -> None:
        sync_rules(bundle, self.live, self.repeat.categories_allowed)

    def clear_caches(self) -> None:
        """Forget cached popularity and co-purchases, re-read purchases (tests, admin tools)."""
        self.cache.clear()
        self.purchases.reload()

    # ---------------------------------------------------------------- database rules

    def popular_ids(self, category: str | None = None) -> list[tuple[int, float]]:
        return self.rules.popular_ids(category)

    def trending_ids(self) -> list[tuple[int, float]]:
        return self.rules.trending_ids()

    def bought_together_ids(self, product_id: int) -> list[tuple[int, float]]:
        return self.rules.bought_together_ids(product_id)

    # ---------------------------------------------------------------- per-request reads

    def cart(self, owner: str, buyer: int | None = None) -> list[int]:
        """Product ids in a cart: one primary-key range read on a pooled DBAPI connection."""
        return self.caller_and_cart(None, owner, buyer)[1]

    def caller_and_cart(
        self, caller_id: int | None, owner: str, buyer: int | None = None
    ) -> tuple[tuple[str, bool] | None, list[int]]:
        """The caller's (role, is_active), None if unknown, and a cart, in one checkout.

        The hot path's only reads, so they skip SQLAlchemy's statement machinery (about half
        of its cost); the SQL is what ``select(User.role, User.is_active)`` and
        ``select(CartItem.product_id)`` compile to. With ``buyer``, the buyer's newest order
        stamp is read too (one index range): an order newer than the purchase poll's watermark
        re-reads that buyer's purchases, so what was just bought is excluded at once.
        """
        raw = self.engine.raw_connection()
        latest = None
        try:
            cursor = raw.cursor()
            caller = None
            if caller_id is not None:
                cursor.execute(self._caller_sql, (caller_id,))
                row = cursor.fetchone()
                caller = None if row is None else (str(row[0]), bool(row[1]))
            cursor.execute(self._cart_sql, (owner,))
            rows = cursor.fetchall()
            if buyer is not None:
                cursor.execute(self._latest_sql, (buyer,))
                latest = cursor.fetchone()[0]
            cursor.close()
        finally:
            raw.close()
        if latest is not None:
            self.purchases.note_latest(buyer, latest)
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
        cache = self.cache
        return ("popular", None) in cache and ("popular", category) in cache

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
        allowed = set(self.rules.category_ids(category)) if category is not None else None
        chosen: list[tuple[int, ProductInfo, float]] = []
        taken = set(blocked)
        filled = False
        sources = [lambda: ranked, *fills]
        for i, source in enumerate(sources):
            if len(chosen) >= k:
                break
            candidates = [(p, s) for p, s in source() if p not in taken]
            info_of = self.live.lookup()
            # The live checks look at most this far down a source, item by item, and stop as
            # soon as k are chosen (usually within the first few of a model's list).
            for pid, score in candidates[: k * _CANDIDATES * 4]:
                info = info_of(pid)
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
        Everything the shopper did counts from the first click, signed in or not: recent
        views and cart adds, and purchases the model has not trained on. Items the model does
        not know stand in through their category's best known items, and the top-up comes
        from the best sellers of those items' categories before the shop-wide ones.
        """
        owners = [f"u:{user_id}"] if user_id is not None else []
        if session_id:
            owners.append(f"s:{session_id}")
        if cart is None:
            cart = self.cart(self.cart_owner(user_id, session_id), buyer=user_id)
        bought = self.purchases.get(user_id)
        recent_ids, recent_w = self.recent.items(owners)
        for pid in cart:
            if pid not in recent_ids:
                recent_ids.append(pid)
                recent_w.append(ACTIVITY_WEIGHTS["cart_add"])
        blocked = set(exclude) | set(cart)
        self.live.ensure_fresh()
        bundle = self.bundle_for(user_id, session_id)
        if bundle is None:
            fresh = recent_ids + [p for p in self._latest_purchases(user_id) if p not in recent_ids]
            items, filled = self.finish(
                [],
                k,
                blocked | self.repeat.no_repeat(bought),
                category,
                fills=self._fills(fresh, category),
            )
            return items, "popular", POPULAR_DB
        self._sync_rules(bundle)
        service, model = bundle.service, bundle.model
        want = min(k * _CANDIDATES, model.n_items)
        row = model.users.index_of(bundle.user(user_id)) if user_id is not None else -1
        to_model = bundle.items
        history: list[int] = []
        weights: list[float] = []
        if row >= 0:
            ui = model.user_items
            lo, hi = ui.indptr[row], ui.indptr[row + 1]
            history = bundle.product_ids[ui.indices[lo:hi]].tolist()
            weights = ui.data[lo:hi].tolist()
        viewed = set(recent_ids)  # views and cart: never shown back (purchases: ``_no_repeat``)
        if bought:  # purchases since the model was trained are fresh activity too
            known = set(history)
            for pid in self._latest_purchases(user_id):
                if pid not in known and pid not in recent_ids:
                    recent_ids.append(pid)
                    recent_w.append(PURCHASE_WEIGHT)
        fresh = list(recent_ids)
        seeds, seed_w, stand_ins = self.stand_ins.known_seeds(bundle, recent_ids, recent_w)
        if row >= 0 and fresh:
            # Fold the fresh items in with the user's training history: seen items stay out.
            known = set(history)
            rec = service.recommend(
                _ANONYMOUS,
                want,
                recent_items=to_model(history + [p for p in seeds if p not in known]),
                recent_weights=weights
                + [w for p, w in zip(seeds, seed_w, strict=True) if p not in known],
                purchased=to_model(bought),
                exclude=to_model(blocked | set(history)),
            )
            strategy = "model+fresh"
        else:
            rec = None
            cands = bundle.candidates
            if row >= 0 and cands is not None and want <= cands.size:
                # Only filter the user's cached top list; score in full if too few survive.
                idx, vals = cands.get(row)
                rec = service.recommend_from_candidates(
                    idx, vals, want, purchased=to_model(bought), exclude=to_model(blocked)
                )
            rec = rec or service.recommend(
                bundle.user(user_id) if row >= 0 else _ANONYMOUS,
                want,
                recent_items=to_model(seeds) or None,
                recent_weights=seed_w or None,
                purchased=to_model(bought),
                exclude=to_model(blocked | viewed),
            )
            strategy = rec.source
        if stand_ins and "popular" not in strategy.split("+")[0]:
            strategy += "+neighbours"
        ranked = zip((int(i) for i in rec.item_ids), rec.scores.tolist(), strict=True)
        if strategy.startswith("popular") and fresh:
            ranked = iter(())  # nothing known to fold in: the categories' sellers come first
        items, filled = self.finish(
            list(ranked),
            k,
            blocked | self.repeat.no_repeat(bought) | viewed,
            category,
            fills=self._fills(fresh, category),
        )
        if filled and "popular" not in strategy:
            strategy += "+popular"
        if strategy.startswith("popular") and fresh:
            strategy = "category-popular"
        return items, strategy, bundle.label

    def _latest_purchases(self, user_id: int | None) -> list[int]:
        """The buyer's products, most recently bought first (at most a handful)."""
        stats = self.purchases.stats(user_id)
        newest = sorted(stats.items(), key=lambda kv: -kv[1][2])[:_MAX_PURCHASE_SEEDS]
        return [pid for pid, _ in newest]

    def _fills(
        self, fresh: Sequence[int], category: str | None
    ) -> list[Callable[[], Iterable[tuple[int, float]]]]:
        """Top-ups: the asked category's sellers, then those of the shopper's latest items'
        categories (newest first, at most two), then the shop's."""
        popular = self.popular_ids
        fills: list[Callable[[], Iterable[tuple[int, float]]]] = []
        if category is not None:
            fills.append(lambda: popular(category))
        seen: list[int] = []
        for pid in fresh:
            cat = self.live.category_of(pid)
            if cat is not None and cat not in seen:
                seen.append(cat)
                if len(seen) == 2:
                    break
        for cat in seen:
            fills.append(lambda cat=cat: popular(str(cat)))
        fills.append(lambda: popular(None))
        return fills

    def buy_again(self, user_id: int, k: int, cart: Sequence[int]) -> tuple[list, str, str]:
        """Consumables this buyer bought before, those due again first (models/repeat.py).

        Empty when the buyer has nothing consumable to restock: this list is never topped up
        with other products, a storefront simply hides it.
        """
        stats = self.purchases.stats(user_id)
        if not stats:
            return [], "buy-again", REPEAT
        pids = list(stats)
        cats = [self.live.category_of(p) for p in pids]
        orders, first, last = (np.asarray([stats[p][i] for p in pids]) for i in range(3))
        scores = self.repeat.model.due_scores(
            np.asarray(pids),
            np.asarray([-1 if c is None else c for c in cats]),
            orders,
            first,
            last,
            now=utcnow().timestamp(),
            consumable=self.repeat.categories_allowed,
        )
        ranked = sorted(
            ((p, float(v)) for p, v in zip(pids, scores.tolist(), strict=True) if v > -np.inf),
            key=lambda x: (-x[1], x[0]),
        )
        items, _ = self.finish(ranked, k, set(cart))
        return items, "buy-again", REPEAT

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
