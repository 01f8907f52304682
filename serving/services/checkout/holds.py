"""Fraud holds: the order's history read from the database, and ``paid → held`` when the
rules (:mod:`serving.services.fraud`, pure) find it suspicious.

:func:`hold_if_suspicious` is called at the start of :func:`steps.fulfil`, which every path to
``fulfilled`` goes through; :func:`review_needed` is the read-only pre-check of the request's
common path. The admin's decision on a held order is :mod:`review`.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from serving.core.clock import utcnow
from serving.core.config import Settings
from serving.db.tables.orders import Order, OrderTransition
from serving.services.checkout import order_states as st
from serving.services.fraud import HELD, FraudRules, History, OrderFacts, address_key, assess

_GLOBAL_CACHE_SECONDS = 300.0
_global_cache: dict[str, tuple[float, int, int | None]] = {}
_global_lock = threading.Lock()
_rules: FraudRules | None = None
_enabled = False


def configure(settings: Settings) -> None:
    """Rules for this process (called by the app factory)."""
    global _rules, _enabled
    _rules = FraudRules.from_settings(settings)
    _enabled = settings.fraud_enabled


def _global_percentile(session: Session, percentile: float) -> tuple[int, int | None]:
    """(count, amount at the percentile) of all orders, recomputed every five minutes."""
    key = f"{session.get_bind().url}:{percentile}"
    now = time.monotonic()
    with _global_lock:
        cached = _global_cache.get(key)
    if cached is not None and now - cached[0] < _GLOBAL_CACHE_SECONDS:
        return cached[1], cached[2]
    count = session.scalar(select(func.count()).select_from(Order)) or 0
    value = None
    if count:
        offset = min(count - 1, int(count * (1 - percentile)))
        value = session.scalar(
            select(Order.total_minor).order_by(Order.total_minor.desc()).offset(offset).limit(1)
        )
    with _global_lock:
        _global_cache[key] = (now, count, value)
    return count, value


def gather_history(
    session: Session, *, order_id: str, facts: OrderFacts, since: datetime, rules: FraudRules
) -> History:
    """Counts in the window; recent orders are found through ``(status, updated_at)``."""
    recent = (
        select(Order.id, Order.user_id, Order.payment_method, Order.shipping_address)
        .where(Order.updated_at >= since, Order.created_at >= since, Order.id != order_id)
        .where(Order.status.in_(list(_ALL_STATUSES)))
    )
    account = card = 0
    others_at_address: set[int] = set()
    for row in session.execute(recent):
        if row.user_id == facts.user_id:
            account += 1
        if row.payment_method == facts.payment_method:
            card += 1
        if row.user_id != facts.user_id and address_key(row.shipping_address) == facts.address_key:
            others_at_address.add(row.user_id)
    totals = session.scalars(
        select(Order.total_minor)
        .where(Order.user_id == facts.user_id, Order.id != order_id)
        .where(Order.status.in_(["paid", "fulfilled", "shipped", "delivered"]))
        .order_by(Order.created_at.desc())
        .limit(50)
    ).all()
    count, percentile = _global_percentile(session, rules.amount_global_percentile)
    return History(
        account_orders_in_window=account,
        card_orders_in_window=card,
        other_accounts_at_address_in_window=len(others_at_address),
        user_previous_totals=tuple(totals),
        global_order_count=count,
        global_percentile_minor=percentile,
    )


_ALL_STATUSES = (
    "pending",
    "reserved",
    "paid",
    "fulfilled",
    "shipped",
    "delivered",
    "cancelled",
    "refunded",
    "payment_failed",
    HELD,
)


def hold_if_suspicious(session: Session, *, order_id: str) -> bool:
    """Assess a ``paid`` order; hold it (``paid → held``) and return True if suspicious.

    An order an admin already reviewed (it was held once) is never held again. Does not commit.
    """
    if not _enabled:
        return False
    reviewed = session.scalar(
        select(OrderTransition.id)
        .where(OrderTransition.order_id == order_id, OrderTransition.to_status == HELD)
        .limit(1)
    )
    if reviewed is not None:
        return False
    row = session.execute(
        select(
            Order.user_id, Order.total_minor, Order.payment_method, Order.shipping_address
        ).where(Order.id == order_id)
    ).one()
    rules = _rules or FraudRules()
    facts = OrderFacts(
        user_id=row.user_id,
        total_minor=row.total_minor,
        payment_method=row.payment_method,
        address_key=address_key(row.shipping_address),
    )
    since = utcnow() - timedelta(minutes=rules.window_minutes)
    decision = assess(
        facts,
        gather_history(session, order_id=order_id, facts=facts, since=since, rules=rules),
        rules,
    )
    if not decision.hold:
        return False
    st.transition(
        session,
        order_id=order_id,
        to=HELD,
        only_from={st.PAID},
        reason=("fraud: " + decision.summary)[:200],
    )
    return True


def review_needed(db: Any, settings: Settings, *, order_id: str) -> bool:
    """Read-only pre-check for the checkout's fast path (no write lock held while it runs)."""
    if not settings.fraud_enabled:
        return False
    rules = FraudRules.from_settings(settings)
    with db.session() as session:
        row = session.execute(
            select(
                Order.user_id, Order.total_minor, Order.payment_method, Order.shipping_address
            ).where(Order.id == order_id)
        ).one()
        facts = OrderFacts(
            user_id=row.user_id,
            total_minor=row.total_minor,
            payment_method=row.payment_method,
            address_key=address_key(row.shipping_address),
        )
        since = utcnow() - timedelta(minutes=rules.window_minutes)
        history = gather_history(session, order_id=order_id, facts=facts, since=since, rules=rules)
    return assess(facts, history, rules).hold
