"""Pricing: the order as it will be written, and the rows T1 inserts for it.

Shared by the per-order saga (:mod:`saga`) and the batch (:mod:`batch`): both merge the lines,
read the prices with :data:`PRICES`, price with :func:`price_order` (which raises the shopper's
errors before anything is written) and build the rows with :func:`reservation_rows`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, select

from serving.core.errors import Conflict, NotFound, Unprocessable
from serving.db.tables import Product, Seller, SellerProduct
from serving.services.checkout import order_states as st
from serving.services.checkout.runtime import CheckoutRuntime
from serving.services.marketplace.fulfilment import SellerShare, line_shares
from serving.services.pricing import at_checkout


def merge_lines(items: list[dict[str, Any]]) -> dict[int, int]:
    """Two lines of one product become one, so they cannot each pass the stock check."""
    merged: dict[int, int] = {}
    for item in items:
        merged[item["product_id"]] = merged.get(item["product_id"], 0) + item["quantity"]
    return merged


_PRODUCTS = Product.__table__
_OWNERS = SellerProduct.__table__
_SELLERS = Seller.__table__
# Prebuilt once: per order the hot path only binds values (no statement construction, and the
# compiled-statement cache is hit by identity). Each product comes with its seller and their
# commission (NULL for the platform's own, two primary-key probes), so the transaction that
# labels the order can open the sellers' parcels without reading anything (issue 23).
PRICES = (
    select(
        _PRODUCTS.c.id,
        _PRODUCTS.c.title,
        _PRODUCTS.c.price_minor,
        _PRODUCTS.c.currency,
        _OWNERS.c.seller_id,
        _SELLERS.c.commission_bps,
    )
    .select_from(
        _PRODUCTS.outerjoin(_OWNERS, _OWNERS.c.product_id == _PRODUCTS.c.id).outerjoin(
            _SELLERS, _SELLERS.c.id == _OWNERS.c.seller_id
        )
    )
    .where(_PRODUCTS.c.id.in_(bindparam("b_ids", expanding=True)), _PRODUCTS.c.status == "active")
)


@dataclass
class Placed:
    """What T1 wrote, kept in memory so the charge and T2 need not read it back."""

    order_id: str
    user_id: int
    currency: str
    subtotal_minor: int
    shipping_minor: int
    total_minor: int
    shipping_address: dict[str, Any]
    payment_method: str
    from_cart: bool
    created_at: datetime
    last4: str
    lines: list[dict[str, Any]]
    #: Shipping, tax, duty and discounts (serving/services/pricing), fixed in T1 (None for an
    #: order read back: its figures are in ``order_charges``).
    quote: Any = None
    #: Each third-party seller's share of the lines (empty: the platform's own lines only;
    #: None for an order read back, whose label then reads them: ``marketplace.open_parcels``).
    sellers: list[SellerShare] | None = None

    def body(self, *, status: str, updated_at: datetime, payment: str, shipment: Any) -> dict:
        """The order as :func:`orders.order_dict` shows it (a test pins the equality)."""
        return {
            "id": self.order_id,
            "status": status,
            "items": [dict(line) for line in self.lines],
            "subtotal_minor": self.subtotal_minor,
            "shipping_minor": self.shipping_minor,
            "total_minor": self.total_minor,
            "currency": self.currency,
            "shipping_address": self.shipping_address,
            "created_at": self.created_at.isoformat(),
            "updated_at": updated_at.isoformat(),
            "payment": {
                "status": payment,
                "last4": self.last4,
                "refunded_minor": 0,
                "decline_code": None,
            },
            "shipment": shipment,
        }


def price_order(
    rt: CheckoutRuntime,
    *,
    order_id: str,
    user_id: int,
    body: dict[str, Any],
    method: Any,
    lines: dict[int, int],
    products: dict[int, Any],
    from_cart: bool,
    now: datetime,
    snap: Any,
) -> Placed:
    """The order as it will be written, priced from ``products`` (rows of ``PRICES``).

    Raises the shopper's errors (empty, unknown product, mixed currencies, too many units of
    a product, too large a total) before anything is written; shared by the per-order saga
    and the batched one."""
    if not lines:
        raise Unprocessable("The cart is empty and the request names no items")
    for product_id in lines:
        if product_id not in products:
            raise NotFound("Product", product_id)
    currencies = {products[p].currency for p in lines}
    if len(currencies) != 1:
        raise Unprocessable("All items of one order must share a currency")
    currency = currencies.pop()
    settings = rt.settings
    for product_id, quantity in lines.items():  # merged lines and cart lines alike
        if quantity > settings.max_line_quantity:
            raise Unprocessable(
                f"At most {settings.max_line_quantity} units of one product per order "
                f"(product {product_id}: {quantity}, lines of one product count together)",
                code="quantity_too_large",
                product_id=product_id,
                quantity=quantity,
                max_quantity=settings.max_line_quantity,
            )
    ordered = sorted(lines)  # ascending product id: two orders never wait on each other
    line_rows = [
        {
            "product_id": p,
            "title": products[p].title,
            "quantity": lines[p],
            "unit_price_minor": products[p].price_minor,
            "line_total_minor": products[p].price_minor * lines[p],
        }
        for p in ordered
    ]
    subtotal = sum(row["line_total_minor"] for row in line_rows)
    # Shipping, tax, duty and discounts, computed once here and fixed on the order in T1
    # (``at_checkout.hold``); its problems (no shipping option, a coupon that does not apply)
    # are raised before anything is written, like the ones above.
    quote = at_checkout.price(snap, lines=lines, body=body, user_id=user_id)
    if quote.goods_minor != subtotal:  # a price changed between the two reads
        raise Conflict("A price changed while the order was being priced; please try again")
    shipping_minor, total = quote.shipping_minor, quote.total_minor
    if total > settings.max_order_total_minor:
        raise Unprocessable(
            f"An order may total at most {settings.max_order_total_minor} minor units "
            f"({currency}); this one is {total}",
            code="order_total_too_large",
            total_minor=total,
            max_total_minor=settings.max_order_total_minor,
        )
    return Placed(
        order_id=order_id,
        user_id=user_id,
        currency=currency,
        subtotal_minor=subtotal,
        shipping_minor=shipping_minor,
        total_minor=total,
        shipping_address=body["shipping_address"],
        payment_method=body["payment_method"],
        from_cart=from_cart,
        created_at=now,
        last4=method.last4,
        lines=line_rows,
        quote=quote,
        sellers=line_shares(
            (products[p].seller_id, products[p].commission_bps, row["line_total_minor"], lines[p])
            for p, row in zip(ordered, line_rows, strict=True)
        ),
    )


@dataclass
class ReservationRows:
    """The rows T1 inserts for one order; the batch concatenates several orders' rows."""

    order: dict[str, Any]
    lines: list[dict[str, Any]]
    path: list[dict[str, Any]]
    payment: dict[str, Any]
    movements: list[dict[str, Any]]


def reservation_rows(rt: CheckoutRuntime, placed: Placed, method: Any) -> ReservationRows:
    now = placed.created_at
    order_id = placed.order_id
    settings = rt.settings
    ttl = min(settings.reservation_ttl_seconds, settings.checkout_saga_timeout_seconds)
    return ReservationRows(
        order={
            "id": order_id,
            "user_id": placed.user_id,
            "status": st.RESERVED,
            "currency": placed.currency,
            "subtotal_minor": placed.subtotal_minor,
            "shipping_minor": placed.shipping_minor,
            "total_minor": placed.total_minor,
            "shipping_address": placed.shipping_address,
            "payment_method": placed.payment_method,
            "from_cart": placed.from_cart,
            "reserved_until": now + timedelta(seconds=ttl),
            "created_at": now,
            "updated_at": now,
        },
        lines=[{"order_id": order_id, **row} for row in placed.lines],
        path=st.path_rows(
            order_id=order_id,
            start=None,
            steps=[(st.PENDING, "placed"), (st.RESERVED, "stock")],
            now=now,
        ),
        payment={
            "order_id": order_id,
            "provider": rt.provider.name,
            "idempotency_key": f"{order_id}:charge",
            "intent_id": None,
            "status": "pending",
            "amount_minor": placed.total_minor,
            "refunded_minor": 0,
            "currency": placed.currency,
            "brand": method.brand,
            "last4": method.last4,
            "decline_code": None,
            "created_at": now,
            "updated_at": now,
        },
        movements=[
            {
                "product_id": line["product_id"],
                "delta_on_hand": 0,
                "delta_reserved": line["quantity"],
                "reason": "reserve",
                "actor_user_id": None,
                "order_id": order_id,
                "note": "",
                "created_at": now,
            }
            for line in placed.lines
        ],
    )
