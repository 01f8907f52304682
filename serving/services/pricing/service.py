"""Pricing an order from the database: the one function the quote endpoint and the checkout
share, so the total shown before payment is the total charged."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from serving.core.config import Settings
from serving.db.tables import CartItem, OrderCharge

from . import promotions, snapshot
from .quote import Quote


def cart_lines(session: Session, owner: str) -> dict[int, int]:
    rows = session.execute(
        select(CartItem.product_id, CartItem.quantity).where(CartItem.owner_key == owner)
    ).all()
    return dict(rows)


def quote(
    session: Session,
    settings: Settings,
    *,
    lines: dict[int, int],
    country: str,
    speed: str | None,
    coupon_code: str | None,
    user_id: int | None,
    now: datetime,
) -> Quote:
    """The order's totals; raises the shopper's problems (422 / 409 / 404) before anything is
    written. A snapshot of one order (``snapshot.load`` prices many with one read per
    table)."""
    snap = snapshot.load(
        session,
        settings,
        product_ids=lines,
        countries=[country],
        coupon_codes=[coupon_code] if coupon_code else [],
        user_ids=[user_id] if user_id is not None else [],
        now=now,
    )
    return snap.quote(
        lines=lines, country=country, speed=speed, coupon_code=coupon_code, user_id=user_id
    )


def fix_on_order(
    session: Session, *, order_id: str, user_id: int, priced: Quote, now: datetime
) -> None:
    """Inside the transaction that writes the order: hold the promotions' uses (raises
    :class:`promotions.CouponExhausted` when one is gone; the caller rolls back) and fix the
    figures on the order (``order_charges``)."""
    promotions.redeem(session, order_id=order_id, user_id=user_id, quote=priced, now=now)
    session.execute(insert(OrderCharge.__table__).values(**charge_row(order_id, priced, now)))


def charge_row(order_id: str, priced: Quote, now: datetime) -> dict:
    return {
        "order_id": order_id,
        "country": priced.country,
        "shipping_speed": priced.shipping_speed,
        "goods_minor": priced.goods_minor,
        "discount_minor": priced.discount_minor,
        "shipping_minor": priced.shipping_minor,
        "tax_minor": priced.tax_minor,
        "tax_mode": priced.tax["mode"],
        "tax_rate_ppm": priced.tax["rate_ppm"],
        "duty_minor": priced.duty_minor,
        "total_minor": priced.total_minor,
        "currency": priced.currency,
        "breakdown": {
            "discounts": priced.discounts,
            "lines": [
                {"product_id": line["product_id"], "discount_minor": line["discount_minor"]}
                for line in priced.lines
            ],
            "tax": priced.tax,
            "customs_value_minor": priced.customs_value_minor,
            "weight_g": priced.weight_g,
        },
        "created_at": now,
    }


def charges_of(session: Session, order_id: str) -> dict | None:
    """The figures fixed on an order, as the order's API shows them (None for orders placed
    before pricing existed)."""
    row = session.get(OrderCharge, order_id)
    if row is None:
        return None
    return {
        "country": row.country,
        "shipping_speed": row.shipping_speed,
        "goods_minor": row.goods_minor,
        "discount_minor": row.discount_minor,
        "shipping_minor": row.shipping_minor,
        "tax_minor": row.tax_minor,
        "tax_mode": row.tax_mode,
        "tax_rate_ppm": row.tax_rate_ppm,
        "duty_minor": row.duty_minor,
        "total_minor": row.total_minor,
        "discounts": row.breakdown.get("discounts", []),
    }
