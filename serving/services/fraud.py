"""Basic fraud signals on orders: velocity and amount outliers put a paid order on hold.

The rules are a pure function, :func:`assess`, of the order's facts and a small summary of
history, so they are tested without a database. :func:`hold_if_suspicious` is the one hook the
checkout calls (at the start of ``checkout.fulfil``, which every path to ``fulfilled`` goes
through: the request, the provider's webhook and recovery): it gathers the history, assesses,
and moves a suspicious order ``paid → held`` instead of fulfilling it. The money stays captured
and the stock reserved; an admin releases the order (``held → paid → fulfilled``) or cancels it
(``held → cancelled``, stock released, then refunded by ``checkout.settle``).

Signals (thresholds in ``Settings.fraud_*``):

* velocity per account: orders by the same user within the window;
* velocity per card token: orders paid with the same ``payment_method`` within the window;
* velocity per address: distinct accounts shipping to the same (normalised) address;
* amount vs the user's own history: more than ``factor`` × their median previous order;
* amount vs everyone: above the global percentile (needs enough orders to mean anything),
  or above an absolute ceiling.
"""

from __future__ import annotations

import re
import statistics
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from serving.core.config import Settings
from serving.db.tables.orders import Order, OrderTransition

HELD = "held"


@dataclass(frozen=True)
class FraudRules:
    window_minutes: int = 60
    max_orders_per_account: int = 5
    max_orders_per_card: int = 5
    max_accounts_per_address: int = 3
    amount_vs_history_factor: float = 10.0
    min_history_orders: int = 3
    amount_global_percentile: float = 0.995
    global_min_orders: int = 200
    absolute_max_minor: int = 1_000_000

    @classmethod
    def from_settings(cls, settings: Settings) -> FraudRules:
        return cls(
            window_minutes=settings.fraud_window_minutes,
            max_orders_per_account=settings.fraud_max_orders_per_account,
            max_orders_per_card=settings.fraud_max_orders_per_card,
            max_accounts_per_address=settings.fraud_max_accounts_per_address,
            amount_vs_history_factor=settings.fraud_amount_vs_history_factor,
            min_history_orders=settings.fraud_min_history_orders,
            amount_global_percentile=settings.fraud_amount_global_percentile,
            global_min_orders=settings.fraud_global_min_orders,
            absolute_max_minor=settings.fraud_absolute_max_minor,
        )


@dataclass(frozen=True)
class OrderFacts:
    """What is known about the order being assessed."""

    user_id: int
    total_minor: int
    payment_method: str
    address_key: str


@dataclass(frozen=True)
class History:
    """Counts exclude the order being assessed."""

    account_orders_in_window: int = 0
    card_orders_in_window: int = 0
    other_accounts_at_address_in_window: int = 0
    user_previous_totals: Sequence[int] = ()
    global_order_count: int = 0
    global_percentile_minor: int | None = None


@dataclass(frozen=True)
class FraudDecision:
    hold: bool
    reasons: tuple[str, ...] = field(default=())

    @property
    def summary(self) -> str:
        return "; ".join(self.reasons)


def assess(facts: OrderFacts, history: History, rules: FraudRules | None = None) -> FraudDecision:
    """Every rule that fires is a reason; any reason holds the order."""
    rules = rules or FraudRules()
    reasons: list[str] = []
    if history.account_orders_in_window + 1 > rules.max_orders_per_account:
        reasons.append(
            f"velocity:account {history.account_orders_in_window + 1} orders "
            f"in {rules.window_minutes} min"
        )
    if history.card_orders_in_window + 1 > rules.max_orders_per_card:
        reasons.append(
            f"velocity:card {history.card_orders_in_window + 1} orders "
            f"in {rules.window_minutes} min"
        )
    if history.other_accounts_at_address_in_window + 1 > rules.max_accounts_per_address:
        reasons.append(
            f"velocity:address {history.other_accounts_at_address_in_window + 1} accounts "
            f"in {rules.window_minutes} min"
        )
    previous = [t for t in history.user_previous_totals if t > 0]
    if len(previous) >= rules.min_history_orders:
        median = statistics.median(previous)
        if facts.total_minor > rules.amount_vs_history_factor * median:
            reasons.append(
                f"amount:history {facts.total_minor} > {rules.amount_vs_history_factor:g} x "
                f"median {median:g}"
            )
    if (
        history.global_percentile_minor is not None
        and history.global_order_count >= rules.global_min_orders
        and facts.total_minor > history.global_percentile_minor
    ):
        reasons.append(
            f"amount:global {facts.total_minor} > p{rules.amount_global_percentile * 100:g} "
            f"{history.global_percentile_minor}"
        )
    if facts.total_minor > rules.absolute_max_minor:
        reasons.append(f"amount:ceiling {facts.total_minor} > {rules.absolute_max_minor}")
    return FraudDecision(bool(reasons), tuple(reasons))


_SPACES = re.compile(r"[^a-z0-9]+")


def address_key(address: dict[str, Any] | None) -> str:
    """A normalised shipping address: case, punctuation and spacing do not make it new."""
    address = address or {}
    parts = [
        str(address.get(k) or "") for k in ("country", "postal_code", "city", "line1", "line2")
    ]
    return "|".join(_SPACES.sub(" ", p.lower()).strip() for p in parts)


# ---------------------------------------------------------------- history from the database

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
    from serving.core.clock import utcnow
    from serving.services import order_states as st

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


# ---------------------------------------------------------------- review by an admin


def release(rt: Any, *, order_id: str) -> None:
    """held → paid → fulfilled (label, email): the review found nothing wrong."""
    from serving.services import checkout
    from serving.services import order_states as st

    with rt.db.session(write=True) as session:
        st.transition(session, order_id=order_id, to=st.PAID, only_from={HELD}, reason="review ok")
        checkout.fulfil(session, order_id=order_id)
        session.commit()


def cancel(rt: Any, *, order_id: str) -> None:
    """held → cancelled, stock released, customer told; then the capture is refunded."""
    from serving.services import checkout, notifications
    from serving.services import order_states as st

    with rt.db.session(write=True) as session:
        st.transition(
            session, order_id=order_id, to=st.CANCELLED, only_from={HELD}, reason="fraud review"
        )
        checkout.release_lines(session, order_id=order_id, reason="cancel")
        user_id = session.scalar(select(Order.user_id).where(Order.id == order_id))
        notifications.enqueue(
            session,
            kind="order_cancelled",
            user_id=user_id,
            order_id=order_id,
            reason="cancelled after review",
        )
        session.commit()
    checkout.settle(rt, order_id)


def review_needed(db: Any, settings: Settings, *, order_id: str) -> bool:
    """Read-only pre-check for the checkout's fast path (no write lock held while it runs)."""
    if not settings.fraud_enabled:
        return False
    from serving.core.clock import utcnow

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


class HeldOrder(BaseModel):
    id: str
    user_id: int
    total_minor: int
    currency: str
    held_at: datetime
    reasons: str


class HeldOrders(BaseModel):
    data: list[HeldOrder]
    count: int


def list_held(session: Session, *, limit: int) -> dict[str, Any]:
    rows = session.execute(
        select(
            Order.id,
            Order.user_id,
            Order.total_minor,
            Order.currency,
            OrderTransition.created_at,
            OrderTransition.reason,
        )
        .join(OrderTransition, OrderTransition.order_id == Order.id)
        .where(Order.status == HELD, OrderTransition.to_status == HELD)
        .order_by(OrderTransition.created_at)
        .limit(limit)
    ).all()
    data = [
        {
            "id": r.id,
            "user_id": r.user_id,
            "total_minor": r.total_minor,
            "currency": r.currency,
            "held_at": r.created_at,
            "reasons": r.reason,
        }
        for r in rows
    ]
    return {"data": data, "count": len(data)}
