"""The database's own rules, for when no model knows better: best sellers, trending products,
products bought together. Each list is cached briefly (:class:`ReloadingCache`)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine, and_, func, select
from sqlalchemy.orm import aliased

from serving.core.clock import utcnow
from serving.core.config import Settings
from serving.db.tables import Inventory, Product
from serving.db.tables.orders import Order, OrderLine
from serving.services.ml.catalog_view import NOT_SOLD, CategoryIndex
from serving.services.ml.recs.ttl_cache import ReloadingCache

#: How many products each list keeps (answers take their top k after the live checks).
POOL = 300


class PopularityRules:
    """Best sellers, trending and bought-together lists read from the orders."""

    def __init__(
        self, settings: Settings, engine: Engine, categories: CategoryIndex, cache: ReloadingCache
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.categories = categories
        self.cache = cache

    def category_ids(self, key: str) -> list[int]:
        """The category (id or slug) and its descendants; empty for an unknown one."""
        info = self.categories.lookup(key)
        return [] if info is None else self.categories.descendant_ids(info.path)

    def popular_ids(self, category: str | None = None) -> list[tuple[int, float]]:
        """Best sellers of the last ``recs_popular_days`` (then best rated), cached 30 s."""

        def load() -> list[tuple[int, float]]:
            since = utcnow() - timedelta(days=self.settings.recs_popular_days)
            cond = [Product.status == "active"]
            if category is not None:
                cond.append(Product.category_id.in_(self.category_ids(category)))
            units = func.sum(OrderLine.quantity)
            sold = (
                select(Product.id, units)
                .join(OrderLine, OrderLine.product_id == Product.id)
                .join(Order, Order.id == OrderLine.order_id)
                .where(*cond, Order.status.not_in(NOT_SOLD), Order.created_at >= since)
                .group_by(Product.id)
                .order_by(units.desc(), Product.id)
                .limit(POOL)
            )
            rest = (
                select(Product.id, Product.rating_avg)
                .join(Inventory, Inventory.product_id == Product.id)
                .where(*cond, Inventory.on_hand - Inventory.reserved > 0)
                .order_by(Product.rating_avg.desc(), Product.id.desc())
                .limit(POOL)
            )
            with self.engine.connect() as conn:
                ranked = [(int(pid), float(n)) for pid, n in conn.execute(sold)]
                seen = {pid for pid, _ in ranked}
                ranked += [(int(pid), 0.0) for pid, _ in conn.execute(rest) if pid not in seen]
            return ranked

        return self.cache.get(("popular", category), 30.0, load, keep_empty=False)

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
            return scored[:POOL]

        return self.cache.get(("trending",), 30.0, load, keep_empty=False)

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

        return self.cache.get(("together", product_id), 60.0, load)
