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

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from serving.core.clock import utcnow
from serving.core.errors import Conflict
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

TRANSITIONS: dict[str, frozenset[str]] = {
    PENDING: frozenset({RESERVED, CANCELLED}),
    RESERVED: frozenset({PAID, PAYMENT_FAILED, CANCELLED}),
    PAID: frozenset({FULFILLED, CANCELLED}),
    FULFILLED: frozenset({SHIPPED, CANCELLED}),
    SHIPPED: frozenset({DELIVERED}),
    DELIVERED: frozenset(),
    CANCELLED: frozenset({REFUNDED}),
    REFUNDED: frozenset(),
    PAYMENT_FAILED: frozenset(),
}

#: States whose order still holds reserved stock.
HOLDS_STOCK = frozenset({RESERVED, PAID, FULFILLED})
#: States in which the saga has not finished yet (recovery looks at these).
IN_FLIGHT = frozenset({PENDING, RESERVED})
#: States in which money was taken and not given back.
CHARGED = frozenset({PAID, FULFILLED, SHIPPED, DELIVERED})


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
