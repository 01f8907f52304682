"""The wishlist: products a customer keeps for later, one list per account.

Adding is idempotent (a product is on the list once); the route writes a ``wishlist_add``
event for every add that changed the list, which is what the recommenders read (the table
is only what the customer sees).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from serving.core.clock import utcnow
from serving.core.errors import Conflict, NotFound
from serving.db.tables import Inventory, Product, WishlistItem

MAX_ITEMS = 500


def list_items(session: Session, user_id: int) -> list[dict[str, Any]]:
    rows = session.execute(
        select(
            WishlistItem.product_id,
            WishlistItem.added_at,
            Product.title,
            Product.price_minor,
            Product.currency,
            Product.status,
            (Inventory.on_hand - Inventory.reserved).label("available"),
        )
        .join(Product, Product.id == WishlistItem.product_id)
        .outerjoin(Inventory, Inventory.product_id == WishlistItem.product_id)
        .where(WishlistItem.user_id == user_id)
        .order_by(WishlistItem.added_at.desc(), WishlistItem.product_id)
    ).all()
    return [
        {
            "product_id": r.product_id,
            "title": r.title,
            "price_minor": r.price_minor,
            "currency": r.currency,
            "in_stock": r.status == "active" and (r.available or 0) > 0,
            "added_at": r.added_at.isoformat(),
        }
        for r in rows
    ]


def add(session: Session, user_id: int, product_id: int) -> bool:
    """Put ``product_id`` on the list; True when it was not there yet."""
    status = session.execute(select(Product.status).where(Product.id == product_id)).scalar()
    if status is None or status != "active":
        raise NotFound("Product", product_id)
    count = session.execute(
        select(func.count()).select_from(WishlistItem).where(WishlistItem.user_id == user_id)
    ).scalar_one()
    if count >= MAX_ITEMS:
        raise Conflict(f"A wishlist holds at most {MAX_ITEMS} products", code="wishlist_full")
    dialect = session.get_bind().dialect.name
    insert_ = pg_insert if dialect == "postgresql" else sqlite_insert
    statement = (
        insert_(WishlistItem.__table__)
        .values(user_id=user_id, product_id=product_id, added_at=utcnow())
        .on_conflict_do_nothing(index_elements=["user_id", "product_id"])
        .returning(WishlistItem.__table__.c.product_id)
    )
    # RETURNING, not the row count: psycopg reports -1 for a compiled INSERT.
    return session.execute(statement).first() is not None


def remove(session: Session, user_id: int, product_id: int) -> bool:
    """Take ``product_id`` off the list; True when it was on it."""
    result = session.execute(
        delete(WishlistItem).where(
            WishlistItem.user_id == user_id, WishlistItem.product_id == product_id
        )
    )
    return result.rowcount == 1
