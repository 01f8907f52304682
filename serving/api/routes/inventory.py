"""Stock adjustments and their audit trail (admin only)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from serving.api.deps import AdminUser, EventsDep, SessionDep
from serving.api.schemas.catalog import Stock, StockAdjustment, StockMovementsPublic
from serving.api.schemas.common import PathId
from serving.components import components_of
from serving.services.shop import inventory
from serving.services.shop.pagination import decode_cursor, encode_cursor

router = APIRouter(prefix="/api/v1/inventory", tags=["inventory"])


@router.post(
    "/{product_id}/adjustments",
    response_model=Stock,
    responses={401: {}, 403: {}, 404: {}, 409: {}},
)
def adjust_stock(
    request: Request,
    product_id: PathId,
    body: StockAdjustment,
    session: SessionDep,
    admin: AdminUser,
    events: EventsDep,
) -> dict:
    """Add (restock, return) or remove (damage, correction) on-hand units."""
    stock = inventory.adjust_on_hand(
        session,
        product_id=product_id,
        delta=body.delta,
        reason=body.reason,
        actor_user_id=admin.id,
        note=body.note,
    )
    components_of(request).read_cache.invalidate_product(product_id)
    events.emit(
        "stock_changed",
        product_id=product_id,
        user_id=admin.id,
        props={"delta": body.delta, "reason": body.reason, **stock},
    )
    return stock


@router.get(
    "/{product_id}/movements",
    response_model=StockMovementsPublic,
    responses={401: {}, 403: {}, 404: {}},
)
def list_movements(
    product_id: PathId,
    session: SessionDep,
    admin: AdminUser,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> dict:
    """Every change to a product's stock, oldest first: the books that explain the level."""
    stock = inventory.stock_of(session, product_id)
    after = int(decode_cursor(cursor, 1)[0]) if cursor else None
    rows = inventory.list_movements(session, product_id=product_id, limit=limit + 1, after_id=after)
    page = rows[:limit]
    data = [
        {
            "id": m.id,
            "product_id": m.product_id,
            "delta_on_hand": m.delta_on_hand,
            "delta_reserved": m.delta_reserved,
            "reason": m.reason,
            "actor_user_id": m.actor_user_id,
            "order_id": m.order_id,
            "note": m.note,
            "created_at": m.created_at,
        }
        for m in page
    ]
    next_cursor = encode_cursor(page[-1].id) if len(rows) > limit else None
    return {"data": data, "count": len(data), "stock": stock, "next_cursor": next_cursor}
