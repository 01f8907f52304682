"""Products each user bought, in memory, and the categories the catalog marks consumable.

``PurchaseHistory``: orders not in ``NOT_SOLD`` with order count and first/last order time per
user and product, loaded at start; users whose orders changed since the watermark get their set
re-read, so a cancelled order stops blocking its products again, and a request re-reads its own
buyer when that buyer's newest order is past the watermark (the order just placed is excluded
from the very next answer).
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

from sqlalchemy import Engine, bindparam, func, select

from serving.db.bulk import fetch_all
from serving.db.tables import Product, ProductAttribute
from serving.db.tables.orders import Order, OrderLine
from serving.services.checkout.order_states import TRANSITIONS
from serving.services.ml.catalog_view import NOT_SOLD
from serving.services.ml.recs.live_catalog import OVERLAP

# The order lines of a pass's new orders, the id list as one array parameter (``fetch_all``):
# the statement's text never changes, so neither SQLAlchemy nor the driver re-parses it.
_LINES = select(OrderLine.order_id, OrderLine.product_id).where(
    OrderLine.order_id.in_(bindparam("b_ids", expanding=True))
)


_ORDER_STATES = sorted(TRANSITIONS)  # lets the (status, updated_at) index serve the poll


class PurchaseHistory:
    """Products per user from orders that became sales, with how often and when each was bought.

    ``get`` gives the distinct products (the "already bought" rule); ``stats`` gives, per
    product, the number of orders that held it and the first and last order time (epoch
    seconds), which "buy it again" needs. Counts follow orders by their creation time: a line
    re-listed when its order moves on (reserved → paid) has the same time and is not counted
    twice.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.loaded = False
        self.watermark: datetime | None = None
        self.version = 0  # bumped whenever a user's purchases changed (learners refit then)
        self._bought: dict[int, tuple[int, ...]] = {}
        self._stats: dict[int, dict[int, tuple[int, float, float]]] = {}
        #: (order id, status) → stamp of the orders inside the overlap window already applied.
        self._seen: dict[tuple[str, str], datetime] = {}
        #: user → newest order stamp a request already re-read the user for (see ``note_latest``).
        self._checked: dict[int, float] = {}
        self._swept_at = float("-inf")
        self._lock = threading.Lock()

    def get(self, user_id: int | None) -> list[int]:
        if user_id is None:
            return []
        return list(self._bought.get(user_id, ()))

    def stats(self, user_id: int | None) -> dict[int, tuple[int, float, float]]:
        """product id → (orders, first, last order time in epoch seconds) for one buyer."""
        if user_id is None:
            return {}
        return dict(self._stats.get(user_id, {}))

    def all_stats(self) -> list[tuple[int, int, int, float, float]]:
        """Every (user, product, orders, first, last), for learning repeat rates."""
        return [
            (user, pid, n, first, last)
            for user, per in list(self._stats.items())
            for pid, (n, first, last) in list(per.items())
        ]

    def _bought_query(self):
        return (
            select(
                Order.user_id,
                OrderLine.product_id,
                func.count(func.distinct(Order.id)),
                func.min(Order.created_at),
                func.max(Order.created_at),
            )
            .join(Order, Order.id == OrderLine.order_id)
            .where(Order.status.not_in(NOT_SOLD))
            .group_by(Order.user_id, OrderLine.product_id)
        )

    @staticmethod
    def _collect(rows) -> dict[int, dict[int, tuple[int, float, float]]]:
        stats: dict[int, dict[int, tuple[int, float, float]]] = {}
        for user_id, pid, n, first, last in rows:
            stats.setdefault(user_id, {})[pid] = (int(n), _epoch(first), _epoch(last))
        return stats

    def reload(self) -> None:
        """Read everything again (start-up, tests, admin tools)."""
        with self._lock, self.engine.connect() as conn:
            watermark = conn.scalar(select(func.max(Order.updated_at)))
            stats = self._collect(conn.execute(self._bought_query()))
            self._stats = stats
            self._bought = {u: tuple(sorted(per)) for u, per in stats.items()}
            self.watermark = watermark
            self._seen = {}
            self._checked = {}
            self._swept_at = time.monotonic()
            self.loaded = True
            self.version += 1

    def reload_user(self, user_id: int) -> None:
        """Read one buyer's purchases again (after an order of theirs, before the poll sees it)."""
        with self._lock, self.engine.connect() as conn:
            rows = conn.execute(self._bought_query().where(Order.user_id == user_id))
            per = self._collect(rows).get(user_id, {})
            self._apply_users({user_id: per}, replace=True)

    def note_latest(self, user_id: int, latest: object) -> bool:
        """Given the buyer's newest order stamp (one indexed read per request), re-read the
        buyer if that order may not be applied yet; True when a re-read happened.

        The poll has applied every order stamped before its watermark, so only a stamp at or
        past it (an order placed or changed in the last second) costs a read, once per stamp.
        This is what makes a just-bought product disappear from the very next answer, in every
        worker, instead of after the next poll.
        """
        if latest is None or not self.loaded:
            return False
        stamp = _epoch(latest)
        watermark = self.watermark
        if watermark is not None and stamp < watermark.timestamp():
            return False
        if self._checked.get(user_id) == stamp:
            return False
        self.reload_user(user_id)
        if len(self._checked) > 10_000:
            self._checked.clear()
        self._checked[user_id] = stamp
        return True

    def _apply_users(self, changes: dict[int, dict[int, tuple[int, float, float]]], replace: bool):
        """Merge per-user changes (caller holds the lock); readers see whole new dicts."""
        stats = dict(self._stats)
        bought = dict(self._bought)
        for user_id, per in changes.items():
            if not replace:
                merged = dict(stats.get(user_id, {}))
                for pid, (n, first, last) in per.items():
                    old = merged.get(pid)
                    if old is None:
                        merged[pid] = (n, first, last)
                    elif last > old[2]:
                        merged[pid] = (old[0] + n, old[1], last)
                    elif first < old[1]:
                        merged[pid] = (old[0] + n, first, old[2])
                per = merged
            if per:
                stats[user_id] = per
                bought[user_id] = tuple(sorted(per))
            else:
                stats.pop(user_id, None)
                bought.pop(user_id, None)
        self._stats, self._bought = stats, bought
        self.version += 1

    def refresh(self) -> int:
        """Apply the orders that changed since the watermark; returns how many users changed.

        A new sale adds its lines' products to the buyer's set (its lines are the only rows
        read); an order that stopped being a sale (cancelled, failed) re-reads its buyer's
        history, since another order may still hold the same product. Orders re-listed by the
        overlap window in the same state as before are skipped, so a busy shop's poll reads
        each new order's lines once, not its buyers' whole histories every second.
        """
        if not self.loaded:
            self.reload()
            return len(self._bought)
        with self._lock, self.engine.connect() as conn:
            query = select(
                Order.id, Order.user_id, Order.status, Order.updated_at, Order.created_at
            ).where(Order.status.in_(_ORDER_STATES))
            now = time.monotonic()
            if self.watermark is None:
                self._swept_at = now  # everything is read: that is a sweep too
            elif now - self._swept_at >= OVERLAP.total_seconds():
                self._swept_at = now  # the whole overlap window, every few seconds
                query = query.where(Order.updated_at >= self.watermark - OVERLAP)
            else:
                query = query.where(Order.updated_at >= self.watermark)
            seen = self._seen
            changed = [r for r in conn.execute(query) if (r.id, r.status) not in seen]
            if not changed:
                return 0
            unsold = {r.user_id for r in changed if r.status in NOT_SOLD}
            buyer = {r.id: r.user_id for r in changed if r.user_id not in unsold}
            created = {r.id: _epoch(r.created_at) for r in changed}
            added: dict[int, dict[int, tuple[int, float, float]]] = {}
            ids = sorted(buyer)
            (lines,) = fetch_all(conn, [(_LINES, {"b_ids": ids})]) if ids else ([],)
            for order_id, pid in lines:
                ts = created[order_id]
                per = added.setdefault(buyer[order_id], {})
                old = per.get(pid)
                if old is None:
                    per[pid] = (1, ts, ts)
                elif ts != old[1] and ts != old[2]:  # another order of this pass
                    per[pid] = (old[0] + 1, min(old[1], ts), max(old[2], ts))
            reread: dict[int, dict[int, tuple[int, float, float]]] = {}
            if unsold:
                users = sorted(unsold)
                reread = self._collect(
                    conn.execute(self._bought_query().where(Order.user_id.in_(users)))
                )
                reread.update({u: {} for u in users if u not in reread})
            self._apply_users(added, replace=False)
            if reread:
                self._apply_users(reread, replace=True)
            newest = max(r.updated_at for r in changed)
            if self.watermark is None or newest > self.watermark:
                self.watermark = newest
            floor = self.watermark - OVERLAP
            seen.update(((r.id, r.status), r.updated_at) for r in changed)
            self._seen = {k: ts for k, ts in seen.items() if ts >= floor}
        return len({r.user_id for r in changed})


def _epoch(value: object) -> float:
    """Seconds since the epoch from a datetime or the text SQLite's raw cursor returns."""
    if value is None:
        return 0.0
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


# ---------------------------------------------------------------- consumables in the catalog

#: The product attribute a catalog marks consumables with (``"consumable": true``).
CONSUMABLE_ATTRIBUTE = "consumable"


def marked_consumable_categories(conn, min_share: float = 0.5) -> set[int]:
    """Categories in which at least ``min_share`` of the products carry ``consumable: true``.

    Two grouped reads (the typed attribute rows are indexed by key and text), run by the
    background loop, never per request.
    """
    flagged = dict(
        conn.execute(
            select(Product.category_id, func.count())
            .join(ProductAttribute, ProductAttribute.product_id == Product.id)
            .where(
                ProductAttribute.key == CONSUMABLE_ATTRIBUTE,
                ProductAttribute.value_text == "true",
            )
            .group_by(Product.category_id)
        ).all()
    )
    if not flagged:
        return set()
    totals = dict(
        conn.execute(
            select(Product.category_id, func.count())
            .where(Product.category_id.in_(sorted(flagged)))
            .group_by(Product.category_id)
        ).all()
    )
    return {c for c, n in flagged.items() if n >= min_share * totals.get(c, n)}
