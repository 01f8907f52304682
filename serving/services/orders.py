"""Order reads: one order as the API shows it, and a shopper's orders newest first.

Serialisation produces JSON-ready values (ISO timestamps) because the same dict is stored as
the idempotent response of ``POST /api/v1/orders`` and must replay byte for byte.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from serving.core.errors import BadRequest, NotFound
from serving.db.tables.orders import Order, OrderLine
from serving.db.tables.payments import Payment
from serving.services.shipping import shipment_of
from serving.services.shop.pagination import decode_cursor, encode_cursor


def order_dict(session: Session, order_id: str) -> dict[str, Any]:
    order = session.execute(select(Order).where(Order.id == order_id)).scalar_one()
    lines = session.execute(
        select(
            OrderLine.product_id,
            OrderLine.title,
            OrderLine.quantity,
            OrderLine.unit_price_minor,
            OrderLine.line_total_minor,
        )
        .where(OrderLine.order_id == order_id)
        .order_by(OrderLine.product_id)
    ).all()
    payment = session.execute(
        select(Payment.status, Payment.last4, Payment.refunded_minor, Payment.decline_code).where(
            Payment.order_id == order_id
        )
    ).first()
    return {
        "id": order.id,
        "status": order.status,
        "items": [dict(line._mapping) for line in lines],
        "subtotal_minor": order.subtotal_minor,
        "shipping_minor": order.shipping_minor,
        "total_minor": order.total_minor,
        "currency": order.currency,
        "shipping_address": order.shipping_address,
        "created_at": order.created_at.isoformat(),
        "updated_at": order.updated_at.isoformat(),
        "payment": None
        if payment is None
        else {
            "status": payment.status,
            "last4": payment.last4,
            "refunded_minor": payment.refunded_minor,
            "decline_code": payment.decline_code,
        },
        "shipment": shipment_of(session, order_id),
    }


def get_order(session: Session, *, order_id: str, user_id: int | None) -> dict[str, Any]:
    """One order; another user's order is a 404 so ids cannot be probed."""
    query = select(Order.id).where(Order.id == order_id)
    if user_id is not None:
        query = query.where(Order.user_id == user_id)
    if session.scalar(query) is None:
        raise NotFound("Order", order_id)
    return order_dict(session, order_id)


def list_orders(
    session: Session, *, user_id: int, limit: int, cursor: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    query = select(Order.id, Order.created_at).where(Order.user_id == user_id)
    if cursor:
        raw_time, last_id = decode_cursor(cursor, 2)
        try:
            last_time = datetime.fromisoformat(str(raw_time))
        except ValueError as exc:
            raise BadRequest("The cursor is not valid") from exc
        query = query.where(
            or_(
                Order.created_at < last_time,
                and_(Order.created_at == last_time, Order.id < str(last_id)),
            )
        )
    rows = session.execute(
        query.order_by(Order.created_at.desc(), Order.id.desc()).limit(limit + 1)
    ).all()
    page = rows[:limit]
    next_cursor = (
        encode_cursor(page[-1].created_at.isoformat(), page[-1].id) if len(rows) > limit else None
    )
    return [order_dict(session, r.id) for r in page], next_cursor
