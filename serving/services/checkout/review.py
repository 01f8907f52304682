"""An admin's review of orders the fraud rules held: list them, release or reject one."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from serving.db.tables.orders import Order, OrderTransition
from serving.services.checkout import order_states as st
from serving.services.checkout.runtime import CheckoutRuntime
from serving.services.checkout.steps import fulfil, release_lines, settle
from serving.services.fraud import HELD
from serving.services.infra import notifications


def release(rt: CheckoutRuntime, *, order_id: str) -> None:
    """held → paid → fulfilled (label, email): the review found nothing wrong."""
    with rt.db.session(write=True) as session:
        st.transition(session, order_id=order_id, to=st.PAID, only_from={HELD}, reason="review ok")
        fulfil(session, order_id=order_id)
        session.commit()


def cancel(rt: CheckoutRuntime, *, order_id: str) -> None:
    """held → cancelled, stock released, customer told; then the capture is refunded."""
    with rt.db.session(write=True) as session:
        st.transition(
            session, order_id=order_id, to=st.CANCELLED, only_from={HELD}, reason="fraud review"
        )
        release_lines(session, order_id=order_id, reason="cancel")
        user_id = session.scalar(select(Order.user_id).where(Order.id == order_id))
        notifications.enqueue(
            session,
            kind="order_cancelled",
            user_id=user_id,
            order_id=order_id,
            reason="cancelled after review",
        )
        session.commit()
    settle(rt, order_id)


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
