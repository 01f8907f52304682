"""The order state machine: every allowed transition, in one place.

A transition is one conditional ``UPDATE ... WHERE status IN (<states that may lead here>)``
checked by its row count, so two actors racing on one order (the checkout request, a webhook,
the recovery routine, a cancel) can never both win: the loser sees rowcount 0 and gets
:class:`IllegalTransition` (409 problem+json), never a silently overwritten state.

::

    pending ─▶ reserved ─▶ paid ─▶ fulfilled ─▶ shipped ─▶ delivered
       │          │  │       │         │
       │          │  └─▶ payment_failed│
       └──────────┴───────┴─────────┴──▶ cancelled ─▶ refunded
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session

from serving.core.clock import utcnow
from serving.core.errors import Conflict
from serving.db.bulk import Bound, BulkInsert
from serving.db.tables.orders import Order, OrderTransition

PENDING = "pending"
RESERVED = "reserved"
PAID = "paid"
FULFILLED = "fulfilled"
SHIPPED = "shipped"
DELIVERED = "delivered"
CANCELLED = "cancelled"
REFUNDED = "refunded"
PAYMENT_FAILED = "payment_failed"
#: Paid but held for a fraud review (services/checkout/holds.py); an admin releases or cancels.
HELD = "held"

TRANSITIONS: dict[str, frozenset[str]] = {
    PENDING: frozenset({RESERVED, CANCELLED}),
    RESERVED: frozenset({PAID, PAYMENT_FAILED, CANCELLED}),
    PAID: frozenset({FULFILLED, CANCELLED, HELD}),
    HELD: frozenset({PAID, CANCELLED}),
    FULFILLED: frozenset({SHIPPED, CANCELLED}),
    SHIPPED: frozenset({DELIVERED}),
    DELIVERED: frozenset(),
    CANCELLED: frozenset({REFUNDED}),
    REFUNDED: frozenset(),
    PAYMENT_FAILED: frozenset(),
}

#: States whose order still holds reserved stock.
HOLDS_STOCK = frozenset({RESERVED, PAID, FULFILLED, HELD})
#: States in which the saga has not finished yet (recovery looks at these).
IN_FLIGHT = frozenset({PENDING, RESERVED})
#: States in which money was taken and not given back.
CHARGED = frozenset({PAID, FULFILLED, SHIPPED, DELIVERED, HELD})


def sources_of(target: str) -> frozenset[str]:
    """The states from which ``target`` may be reached."""
    return frozenset(s for s, nexts in TRANSITIONS.items() if target in nexts)


class IllegalTransition(Conflict):
    def __init__(self, order_id: str, current: str | None, target: str) -> None:
        super().__init__(
            f"Order {order_id} is {current or 'unknown'} and cannot become {target}",
            order_id=order_id,
            current_status=current,
            target=target,
        )
        self.type = "https://storeloop.dev/problems/illegal-transition"
        self.title = "Illegal order transition"


def record(
    session: Session, *, order_id: str, from_status: str | None, to_status: str, reason: str = ""
) -> None:
    """Append a row to the transition log (inside the caller's transaction)."""
    session.execute(
        insert(OrderTransition).values(
            order_id=order_id,
            from_status=from_status,
            to_status=to_status,
            reason=reason[:200],
            created_at=utcnow(),
        )
    )


def transition(
    session: Session,
    *,
    order_id: str,
    to: str,
    reason: str = "",
    only_from: Iterable[str] | None = None,
) -> str:
    """Move an order to ``to`` if the machine allows it; returns the previous state.

    ``only_from`` narrows the allowed sources further (e.g. the checkout only marks an order
    paid if it is still ``reserved``). Does not commit.
    """
    allowed = sources_of(to)
    if only_from is not None:
        allowed = allowed & frozenset(only_from)
    current = session.scalar(select(Order.status).where(Order.id == order_id))
    if current is None or current not in allowed:
        raise IllegalTransition(order_id, current, to)
    result = session.execute(
        update(Order)
        .where(Order.id == order_id, Order.status == current)
        .values(status=to, updated_at=utcnow())
    )
    if result.rowcount != 1:
        # Someone else moved it between our read and our write; the write lost, say so.
        latest = session.scalar(select(Order.status).where(Order.id == order_id))
        raise IllegalTransition(order_id, latest, to)
    record(session, order_id=order_id, from_status=current, to_status=to, reason=reason)
    return current


_ORDERS = Order.__table__
_LOG = OrderTransition.__table__
#: Built once: the hot path skips statement construction (and its cache-key work) per order.
MOVE = (
    update(_ORDERS)
    .where(_ORDERS.c.id == bindparam("b_order_id"), _ORDERS.c.status == bindparam("b_from"))
    .values(status=bindparam("b_to"), updated_at=bindparam("b_now"))
)
_APPEND = insert(_LOG)
_APPEND_ROWS = BulkInsert(_LOG)
_STATUS = select(_ORDERS.c.status).where(_ORDERS.c.id == bindparam("b_order_id"))


def advance(
    session: Session,
    *,
    order_id: str,
    expected: str,
    steps: list[tuple[str, str]],
    now: datetime,
) -> None:
    """Walk ``expected`` through ``steps`` ([(state, reason)…]) in one conditional UPDATE.

    Every step must be a legal transition and each is logged, exactly as if
    :func:`transition` had been called once per step; the order is written once. For callers
    that know the current state (the checkout right after its own reservation). Does not commit.
    """
    final = _walk(order_id, expected, steps)
    conn = session.connection()
    moved = conn.execute(
        MOVE, {"b_order_id": order_id, "b_from": expected, "b_to": final, "b_now": now}
    )
    if moved.rowcount != 1:
        latest = conn.execute(_STATUS, {"b_order_id": order_id}).scalar()
        raise IllegalTransition(order_id, latest, steps[0][0])
    record_path(session, order_id=order_id, start=expected, steps=steps, now=now)


def _walk(order_id: str, start: str, steps: list[tuple[str, str]]) -> str:
    current = start
    for target, _reason in steps:
        if target not in TRANSITIONS[current]:
            raise IllegalTransition(order_id, current, target)
        current = target
    return current


def path_rows(
    *, order_id: str, start: str | None, steps: list[tuple[str, str]], now: datetime
) -> list[dict]:
    """The log rows of the legal walk from ``start`` through ``steps``, checked.

    ``start=None`` is the creation of the order (only into ``pending``)."""
    current, rows = start, []
    for target, reason in steps:
        legal = target == PENDING if current is None else target in TRANSITIONS[current]
        if not legal:
            raise IllegalTransition(order_id, current, target)
        rows.append(
            {
                "order_id": order_id,
                "from_status": current,
                "to_status": target,
                "reason": reason[:200],
                "created_at": now,
            }
        )
        current = target
    return rows


def bind_path(dialect: Dialect, rows: list[dict]) -> Bound:
    """:func:`path_rows` bound now, to insert later inside the caller's transaction."""
    return _APPEND_ROWS.bind(dialect, rows)


def append_path(session: Session, rows: list[dict]) -> None:
    """Insert :func:`path_rows` (of one order or of many) in one statement. Does not commit."""
    _APPEND_ROWS.execute(session.connection(), rows)


def record_path(
    session: Session,
    *,
    order_id: str,
    start: str | None,
    steps: list[tuple[str, str]],
    now: datetime,
) -> str:
    """Log the legal walk from ``start`` through ``steps`` (one statement); returns the end.

    ``start=None`` is the creation of the order (only into ``pending``). Does not commit.
    """
    rows = path_rows(order_id=order_id, start=start, steps=steps, now=now)
    append_path(session, rows)
    return rows[-1]["to_status"]
