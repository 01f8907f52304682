"""Stock levels and the movements that explain them.

Every change is one conditional ``UPDATE`` (``... WHERE on_hand - reserved >= :qty``) checked by
its row count, never a read followed by a write, so two buyers can never both take the last
unit: the database serialises the two updates and the second one matches no row. Each change
also writes a :class:`StockMovement`, so ``on_hand`` and ``reserved`` always equal the sums of
the movements' deltas.
"""

from __future__ import annotations

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from serving.core.clock import utcnow
from serving.core.errors import Conflict, NotFound
from serving.db.tables import Inventory, StockMovement


class OutOfStock(Conflict):
    def __init__(self, product_id: int, requested: int, available: int) -> None:
        super().__init__(
            f"Only {available} of product {product_id} available, {requested} requested",
            type_="https://storeloop.dev/problems/out-of-stock",
            product_id=product_id,
            requested=requested,
            available=available,
        )
        self.type = "https://storeloop.dev/problems/out-of-stock"
        self.title = "Out of stock"


def _movement(
    session: Session,
    *,
    product_id: int,
    delta_on_hand: int = 0,
    delta_reserved: int = 0,
    reason: str,
    actor_user_id: int | None = None,
    order_id: str | None = None,
    note: str = "",
) -> None:
    session.add(
        StockMovement(
            product_id=product_id,
            delta_on_hand=delta_on_hand,
            delta_reserved=delta_reserved,
            reason=reason,
            actor_user_id=actor_user_id,
            order_id=order_id,
            note=note,
            created_at=utcnow(),
        )
    )


def stock_of(session: Session, product_id: int) -> dict[str, int]:
    row = session.execute(
        select(Inventory.on_hand, Inventory.reserved).where(Inventory.product_id == product_id)
    ).first()
    if row is None:
        raise NotFound("Product", product_id)
    return {
        "on_hand": row.on_hand,
        "reserved": row.reserved,
        "available": row.on_hand - row.reserved,
    }


def create_stock(
    session: Session, *, product_id: int, on_hand: int, actor_user_id: int | None
) -> None:
    """Open the inventory row of a new product (inside the caller's transaction)."""
    session.add(Inventory(product_id=product_id, on_hand=on_hand, reserved=0, updated_at=utcnow()))
    if on_hand:
        _movement(
            session,
            product_id=product_id,
            delta_on_hand=on_hand,
            reason="initial",
            actor_user_id=actor_user_id,
        )


def adjust_on_hand(
    session: Session,
    *,
    product_id: int,
    delta: int,
    reason: str,
    actor_user_id: int | None,
    note: str = "",
) -> dict[str, int]:
    """Add ``delta`` to on-hand stock; refuses to go below what is reserved. Commits."""
    result = session.execute(
        update(Inventory)
        .where(Inventory.product_id == product_id, Inventory.on_hand + delta >= Inventory.reserved)
        .values(on_hand=Inventory.on_hand + delta, updated_at=utcnow())
    )
    if result.rowcount != 1:
        session.rollback()
        current = stock_of(session, product_id)  # 404 when the product has no stock row
        raise Conflict(
            f"Adjusting by {delta} would leave on-hand stock below the {current['reserved']} "
            "units reserved",
            stock=current,
        )
    _movement(
        session,
        product_id=product_id,
        delta_on_hand=delta,
        reason=reason,
        actor_user_id=actor_user_id,
        note=note,
    )
    stock = stock_of(session, product_id)
    session.commit()
    return stock


def reserve(session: Session, *, product_id: int, quantity: int, order_id: str) -> None:
    """Reserve ``quantity`` units for an order, or raise :class:`OutOfStock`. Does not commit."""
    result = session.execute(
        update(Inventory)
        .where(
            Inventory.product_id == product_id,
            Inventory.on_hand - Inventory.reserved >= quantity,
        )
        .values(reserved=Inventory.reserved + quantity, updated_at=utcnow())
    )
    if result.rowcount != 1:
        available = session.scalar(
            select(Inventory.on_hand - Inventory.reserved).where(Inventory.product_id == product_id)
        )
        raise OutOfStock(product_id, quantity, int(available or 0))
    _movement(
        session, product_id=product_id, delta_reserved=quantity, reason="reserve", order_id=order_id
    )


def release(
    session: Session, *, product_id: int, quantity: int, order_id: str, reason: str = "release"
) -> None:
    """Give reserved units back (cancelled, declined or expired order). Does not commit."""
    result = session.execute(
        update(Inventory)
        .where(Inventory.product_id == product_id, Inventory.reserved >= quantity)
        .values(reserved=Inventory.reserved - quantity, updated_at=utcnow())
    )
    if result.rowcount != 1:
        raise Conflict(f"Cannot release {quantity} units of product {product_id}: not reserved")
    _movement(
        session, product_id=product_id, delta_reserved=-quantity, reason=reason, order_id=order_id
    )


def commit_sale(session: Session, *, product_id: int, quantity: int, order_id: str) -> None:
    """Turn reserved units into sold ones (they leave the warehouse). Does not commit."""
    result = session.execute(
        update(Inventory)
        .where(Inventory.product_id == product_id, Inventory.reserved >= quantity)
        .values(
            on_hand=Inventory.on_hand - quantity,
            reserved=Inventory.reserved - quantity,
            updated_at=utcnow(),
        )
    )
    if result.rowcount != 1:
        raise Conflict(f"Cannot ship {quantity} units of product {product_id}: not reserved")
    _movement(
        session,
        product_id=product_id,
        delta_on_hand=-quantity,
        delta_reserved=-quantity,
        reason="sale",
        order_id=order_id,
    )


def movement_totals(session: Session, product_id: int) -> dict[str, int]:
    """Sums of the movement deltas; equal to the inventory row when the books balance."""
    row = session.execute(
        select(
            func.coalesce(func.sum(StockMovement.delta_on_hand), 0),
            func.coalesce(func.sum(StockMovement.delta_reserved), 0),
        ).where(StockMovement.product_id == product_id)
    ).one()
    return {"on_hand": int(row[0]), "reserved": int(row[1])}


def list_movements(
    session: Session, *, product_id: int, limit: int, after_id: int | None
) -> list[StockMovement]:
    query = select(StockMovement).where(StockMovement.product_id == product_id)
    if after_id is not None:
        query = query.where(StockMovement.id > after_id)
    return list(session.scalars(query.order_by(StockMovement.id).limit(limit)))
