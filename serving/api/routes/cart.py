"""The cart of the caller: the account's when signed in, else the anonymous session's."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from serving.api.deps import DatabaseDep, EventsDep, OptionalCallerId, SessionId
from serving.api.schemas.cart import CartItemAdd, CartItemUpdate, CartPublic
from serving.services.shop import cart

router = APIRouter(prefix="/api/v1/cart", tags=["cart"])

ProductIdPath = Annotated[int, Path(ge=1, le=2**31 - 1)]


def _owner(user_id: int | None, session_id: str) -> str:
    return cart.owner_key(user_id=user_id, session_id=session_id)


@router.get("", response_model=CartPublic)
# Cart writes queue on the database's write gate like the checkout's transactions: without it
# a cart write that meets a busy SQLite lock sleeps in the busy handler (1, 2, 5 … 100 ms
# steps) while the gate's users go first, which put cart p99 at 0.3–0.7 s in the load mix.


def get_cart(db: DatabaseDep, user: OptionalCallerId, session_id: SessionId) -> dict:
    """The cart at current prices, with whether each line can still be bought."""
    with db.session() as session:
        return cart.get_cart(session, owner=_owner(user, session_id))


@router.post("/items", response_model=CartPublic, responses={404: {}, 409: {}})
def add_item(
    body: CartItemAdd,
    db: DatabaseDep,
    user: OptionalCallerId,
    session_id: SessionId,
    events: EventsDep,
) -> dict:
    """Add units of a product (409 when more than is available is wanted)."""
    with db.write_gate(), db.session(write=True) as session:
        result = cart.add_item(
            session,
            owner=_owner(user, session_id),
            product_id=body.product_id,
            quantity=body.quantity,
        )
    events.emit(
        "cart_add",
        user_id=user,
        session_id=session_id,
        product_id=body.product_id,
        props={"quantity": body.quantity},
    )
    return result


@router.patch("/items/{product_id}", response_model=CartPublic, responses={404: {}, 409: {}})
def update_item(
    product_id: ProductIdPath,
    body: CartItemUpdate,
    db: DatabaseDep,
    user: OptionalCallerId,
    session_id: SessionId,
    events: EventsDep,
) -> dict:
    """Set a line's quantity (0 removes it)."""
    with db.write_gate(), db.session(write=True) as session:
        result = cart.set_quantity(
            session, owner=_owner(user, session_id), product_id=product_id, quantity=body.quantity
        )
    events.emit(
        "cart_add" if body.quantity else "cart_remove",
        user_id=user,
        session_id=session_id,
        product_id=product_id,
        props={"quantity": body.quantity, "set": True},
    )
    return result


@router.delete("/items/{product_id}", response_model=CartPublic, responses={404: {}})
def remove_item(
    product_id: ProductIdPath,
    db: DatabaseDep,
    user: OptionalCallerId,
    session_id: SessionId,
    events: EventsDep,
) -> dict:
    with db.write_gate(), db.session(write=True) as session:
        result = cart.remove_item(session, owner=_owner(user, session_id), product_id=product_id)
    events.emit(
        "cart_remove",
        user_id=user,
        session_id=session_id,
        product_id=product_id,
    )
    return result
