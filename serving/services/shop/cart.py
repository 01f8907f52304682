"""Carts for guests (by session id) and accounts (by user id), and their merge at sign-in.

The cart shows current prices and availability; nothing is reserved until checkout, so a
cart can never hold stock hostage. Quantity limits are checked against what is available now.

A cart holds one currency: a product priced in another is refused (409), and a guest cart's
lines in another currency are left out of the account's at sign-in. Should a cart still end up
mixed (an admin re-priced a product in another currency), it shows one subtotal per currency
and no overall one: amounts in different currencies are never added up.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from serving.core.clock import utcnow
from serving.core.errors import Conflict, NotFound, Unprocessable
from serving.db.tables import Inventory, Product
from serving.db.tables.cart import CartItem
from serving.services.shop.inventory import OutOfStock
from serving.services.shop.login_hooks import on_login


def owner_key(*, user_id: int | None, session_id: str) -> str:
    return f"u:{user_id}" if user_id is not None else f"s:{session_id}"


def get_cart(session: Session, *, owner: str) -> dict[str, Any]:
    rows = session.execute(
        select(
            CartItem.product_id,
            CartItem.quantity,
            Product.title,
            Product.price_minor,
            Product.currency,
            Product.status,
            (Inventory.on_hand - Inventory.reserved).label("available"),
        )
        .join(Product, Product.id == CartItem.product_id)
        .join(Inventory, Inventory.product_id == CartItem.product_id)
        .where(CartItem.owner_key == owner)
        .order_by(CartItem.added_at, CartItem.product_id)
    ).all()
    items = [
        {
            "product_id": r.product_id,
            "title": r.title,
            "quantity": r.quantity,
            "unit_price_minor": r.price_minor,
            "currency": r.currency,
            "line_total_minor": r.price_minor * r.quantity,
            "available": r.status == "active" and r.available >= r.quantity,
        }
        for r in rows
    ]
    subtotals: dict[str, int] = {}
    for item in items:
        subtotals[item["currency"]] = subtotals.get(item["currency"], 0) + item["line_total_minor"]
    single = len(subtotals) <= 1
    return {
        "items": items,
        "subtotal_minor": sum(subtotals.values()) if single else None,
        "currency": (next(iter(subtotals)) if subtotals else "EUR") if single else None,
        "subtotals": [{"currency": c, "subtotal_minor": m} for c, m in subtotals.items()],
        "item_count": sum(i["quantity"] for i in items),
    }


#: Units of one product on one cart line (the checkout's own cap applies again at ordering).
MAX_LINE_UNITS = 1000


def _product(session: Session, product_id: int) -> tuple[int, str]:
    """Available units and currency of an active product (404 otherwise)."""
    row = session.execute(
        select(
            Product.status,
            Product.currency,
            (Inventory.on_hand - Inventory.reserved).label("available"),
        )
        .join(Inventory, Inventory.product_id == Product.id)
        .where(Product.id == product_id)
    ).first()
    if row is None or row.status != "active":
        raise NotFound("Product", product_id)
    return int(row.available), row.currency


def _available(session: Session, product_id: int) -> int:
    return _product(session, product_id)[0]


def _cart_currency(session: Session, owner: str) -> str | None:
    """The currency of the cart's lines (the first line's, should an old cart be mixed)."""
    return session.scalar(
        select(Product.currency)
        .join(CartItem, CartItem.product_id == Product.id)
        .where(CartItem.owner_key == owner)
        .order_by(CartItem.added_at, CartItem.product_id)
        .limit(1)
    )


class CurrencyMismatch(Conflict):
    def __init__(self, product_id: int, currency: str, cart_currency: str) -> None:
        super().__init__(
            f"This cart is in {cart_currency}; product {product_id} is priced in {currency}. "
            "A cart holds one currency: order it separately.",
            code="currency_mismatch",
            product_id=product_id,
            currency=currency,
            cart_currency=cart_currency,
        )


def add_item(session: Session, *, owner: str, product_id: int, quantity: int) -> dict[str, Any]:
    """Add units of a product; more than is available is a 409 (out-of-stock problem), as is
    a product in another currency than the cart's."""
    available, currency = _product(session, product_id)
    current = session.scalar(
        select(CartItem.quantity).where(
            CartItem.owner_key == owner, CartItem.product_id == product_id
        )
    )
    if current is None:
        cart_currency = _cart_currency(session, owner)
        if cart_currency is not None and cart_currency != currency:
            raise CurrencyMismatch(product_id, currency, cart_currency)
    wanted = (current or 0) + quantity
    if wanted > MAX_LINE_UNITS:
        raise Unprocessable(
            f"At most {MAX_LINE_UNITS} units of one product per cart line",
            code="quantity_too_large",
            product_id=product_id,
            quantity=wanted,
            max_quantity=MAX_LINE_UNITS,
        )
    if wanted > available:
        raise OutOfStock(product_id, wanted, available)
    now = utcnow()
    if current is None:
        session.execute(
            insert(CartItem).values(
                owner_key=owner,
                product_id=product_id,
                quantity=wanted,
                added_at=now,
                updated_at=now,
            )
        )
    else:
        session.execute(
            update(CartItem)
            .where(CartItem.owner_key == owner, CartItem.product_id == product_id)
            .values(quantity=wanted, updated_at=now)
        )
    session.commit()
    return get_cart(session, owner=owner)


def set_quantity(session: Session, *, owner: str, product_id: int, quantity: int) -> dict[str, Any]:
    """Set a line's quantity; 0 removes it. A product not in the cart is a 404."""
    if quantity == 0:
        return remove_item(session, owner=owner, product_id=product_id)
    available = _available(session, product_id)
    if quantity > available:
        raise OutOfStock(product_id, quantity, available)
    result = session.execute(
        update(CartItem)
        .where(CartItem.owner_key == owner, CartItem.product_id == product_id)
        .values(quantity=quantity, updated_at=utcnow())
    )
    if result.rowcount != 1:
        session.rollback()
        raise NotFound("Cart item", product_id)
    session.commit()
    return get_cart(session, owner=owner)


def remove_item(session: Session, *, owner: str, product_id: int) -> dict[str, Any]:
    result = session.execute(
        delete(CartItem).where(CartItem.owner_key == owner, CartItem.product_id == product_id)
    )
    if result.rowcount != 1:
        session.rollback()
        raise NotFound("Cart item", product_id)
    session.commit()
    return get_cart(session, owner=owner)


@on_login
def merge_guest_cart(
    session: Session, *, session_id: str, user_id: int, events: Any
) -> dict[str, Any] | None:
    """Move the guest cart into the account's: quantities add up, capped by stock and by the
    line limit; lines in another currency than the account cart's are left out."""
    guest = f"s:{session_id}"
    mine = f"u:{user_id}"
    lines = session.execute(
        select(CartItem.product_id, CartItem.quantity).where(CartItem.owner_key == guest)
    ).all()
    if not lines:
        return None
    existing = dict(
        session.execute(
            select(CartItem.product_id, CartItem.quantity).where(CartItem.owner_key == mine)
        ).all()
    )
    now = utcnow()
    merged, capped, dropped = [], [], []
    currency = _cart_currency(session, mine)
    for line in lines:
        try:
            available, line_currency = _product(session, line.product_id)
        except NotFound:
            continue  # archived meanwhile: drop the line
        currency = currency or line_currency
        if line_currency != currency:
            dropped.append({"product_id": line.product_id, "currency": line_currency})
            continue
        wanted = existing.get(line.product_id, 0) + line.quantity
        quantity = min(wanted, available, MAX_LINE_UNITS)
        if quantity < wanted:
            capped.append({"product_id": line.product_id, "requested": wanted, "kept": quantity})
        if quantity <= 0:
            continue
        if line.product_id in existing:
            session.execute(
                update(CartItem)
                .where(CartItem.owner_key == mine, CartItem.product_id == line.product_id)
                .values(quantity=quantity, updated_at=now)
            )
        else:
            session.execute(
                insert(CartItem).values(
                    owner_key=mine,
                    product_id=line.product_id,
                    quantity=quantity,
                    added_at=now,
                    updated_at=now,
                )
            )
        merged.append({"product_id": line.product_id, "quantity": quantity})
    session.execute(delete(CartItem).where(CartItem.owner_key == guest))
    session.commit()
    merge: dict[str, Any] = {"cart_merged": merged, "cart_capped": capped}
    if dropped:
        merge["cart_dropped"] = dropped
    return merge
