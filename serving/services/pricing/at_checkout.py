"""The pricing calls the checkout makes, named for the saga's steps.

* before anything is written (T1's reads): :func:`load_for` reads the rate tables once for the
  orders at hand, :func:`price` computes one order's totals from its body (destination
  country, ``shipping_speed``, ``coupon_code``) and raises the shopper's problems;
* in T1, after the order's rows and stock: :func:`hold` takes the promotions' uses (raises
  :class:`CouponExhausted`, which the saga answers like a sold-out product: rolled back, no
  stock reserved, nothing charged) and fixes the figures on the order (``order_charges``);
* in every compensation that gives stock back: :func:`release` gives the uses back.

``db`` is the saga's Session or the batch's Connection. The batch takes the uses of all its
orders at once instead (``promotions.BatchHolds``) and writes ``order_charges`` with its other
rows.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import insert

from serving.core.config import Settings
from serving.db.tables import OrderCharge

from . import promotions, snapshot
from .promotions import CouponExhausted
from .quote import PricingError, Quote
from .service import charge_row

__all__ = [
    "CouponExhausted",
    "PricingError",
    "Quote",
    "charge_row",
    "hold",
    "load_for",
    "price",
    "release",
]


def destination(body: dict[str, Any]) -> str:
    return str(body["shipping_address"]["country"]).upper()


def load_for(
    db: Any,
    settings: Settings,
    orders: list[tuple[dict[int, int], dict[str, Any], int]],
    now: datetime,
) -> snapshot.Snapshot:
    """One snapshot for ``orders`` = [(lines, body, user_id), …]."""
    return snapshot.load(
        db,
        settings,
        product_ids=[p for lines, _, _ in orders for p in lines],
        countries=[destination(body) for _, body, _ in orders],
        coupon_codes=[body["coupon_code"] for _, body, _ in orders if body.get("coupon_code")],
        user_ids=[user_id for _, _, user_id in orders],
        now=now,
    )


def price(
    snap: snapshot.Snapshot, *, lines: dict[int, int], body: dict[str, Any], user_id: int
) -> Quote:
    return snap.quote(
        lines=lines,
        country=destination(body),
        speed=body.get("shipping_speed"),
        coupon_code=body.get("coupon_code"),
        user_id=user_id,
    )


def hold(db: Any, *, order_id: str, user_id: int, quote: Quote, now: datetime) -> None:
    promotions.redeem(db, order_id=order_id, user_id=user_id, quote=quote, now=now)
    db.execute(insert(OrderCharge.__table__).values(**charge_row(order_id, quote, now)))


def release(db: Any, *, order_id: str, now: datetime) -> int:
    return promotions.release(db, order_id=order_id, now=now)
