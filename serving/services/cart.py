"""Carts for guests (by session id) and accounts (by user id), and their merge at sign-in.

The cart shows current prices and availability; nothing is reserved until checkout, so a
cart can never hold stock hostage. Quantity limits are checked against what is available now.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from serving.core.clock import utcnow
from serving.core.errors import NotFound
from serving.db.tables import Inventory, Product
from serving.db.tables.cart import CartItem
from serving.services.inventory import OutOfStock
from serving.services.login_hooks import on_login


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
    return {
        "items": items,
        "subtotal_minor": sum(i["line_total_minor"] for i in items),
        "currency": items[0]["currency"] if items else "EUR",
        "item_count": sum(i["quantity"] for i in items),
    }


def _available(session: Session, product_id: int) -> int:
    row = session.execute(
        select(Product.status, (Inventory.on_hand - Inventory.reserved).label("available"))
        .join(Inventory, Inventory.product_id == Product.id)
        .where(Product.id == product_id)
    ).first()
    if row is None or row.status != "active":
        raise NotFound("Product", product_id)
    return int(row.available)


def add_item(session: Session, *, owner: str, product_id: int, quantity: int) -> dict[str, Any]:
    """Add units of a product; more than is available is a 409 (out-of-stock problem)."""
    available = _available(session, product_id)
    current = session.scalar(
        select(CartItem.quantity).where(
            CartItem.owner_key == owner, CartItem.product_id == product_id
        )
    )
    wanted = (current or 0) + quantity
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
    """Move the guest cart into the account's: quantities add up, capped by stock."""
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
    merged, capped = [], []
    for line in lines:
        try:
            available = _available(session, line.product_id)
        except NotFound:
            continue  # archived meanwhile: drop the line
        wanted = existing.get(line.product_id, 0) + line.quantity
        quantity = min(wanted, available)
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
    return {"cart_merged": merged, "cart_capped": capped}
