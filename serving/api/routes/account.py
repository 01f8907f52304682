"""The signed-in customer's address book and wishlist."""

from __future__ import annotations

from fastapi import APIRouter, status
from fastapi.responses import Response

from serving.api.deps import CurrentUser, DatabaseDep, EventsDep
from serving.api.schemas.common import PathId
from serving.api.schemas.customer import AddressIn, AddressPatch, AddressPublic, WishlistPublic
from serving.services.customer import addresses, wishlist

router = APIRouter(prefix="/api/v1/me", tags=["account"])


@router.get("/addresses", response_model=list[AddressPublic], responses={401: {}})
def list_addresses(db: DatabaseDep, user: CurrentUser) -> list[dict]:
    """The address book, the default first."""
    with db.session() as session:
        return addresses.list_addresses(session, user.id)


@router.post(
    "/addresses",
    status_code=status.HTTP_201_CREATED,
    response_model=AddressPublic,
    responses={401: {}, 409: {}, 422: {}},
)
def add_address(body: AddressIn, db: DatabaseDep, user: CurrentUser) -> dict:
    """Save an address (the first one, or one sent with ``is_default``, becomes the default)."""
    values = body.model_dump(exclude={"is_default"})
    with db.write_gate(), db.transaction() as session:
        return addresses.add_address(session, user.id, values, make_default=body.is_default)


@router.patch(
    "/addresses/{address_id}", response_model=AddressPublic, responses={401: {}, 404: {}, 422: {}}
)
def update_address(
    address_id: PathId, body: AddressPatch, db: DatabaseDep, user: CurrentUser
) -> dict:
    changes = {
        k: v
        for k, v in body.model_dump(exclude_unset=True).items()
        if v is not None or k == "line2"
    }
    with db.write_gate(), db.transaction() as session:
        return addresses.update_address(session, user.id, address_id, changes)


@router.post(
    "/addresses/{address_id}/default", response_model=AddressPublic, responses={401: {}, 404: {}}
)
def make_default(address_id: PathId, db: DatabaseDep, user: CurrentUser) -> dict:
    with db.write_gate(), db.transaction() as session:
        return addresses.make_default(session, user.id, address_id)


@router.delete("/addresses/{address_id}", status_code=204, responses={401: {}, 404: {}})
def delete_address(address_id: PathId, db: DatabaseDep, user: CurrentUser) -> Response:
    with db.write_gate(), db.transaction() as session:
        addresses.delete_address(session, user.id, address_id)
    return Response(status_code=204)


@router.get("/wishlist", response_model=WishlistPublic, responses={401: {}})
def get_wishlist(db: DatabaseDep, user: CurrentUser) -> dict:
    with db.session() as session:
        return {"items": wishlist.list_items(session, user.id)}


@router.put(
    "/wishlist/{product_id}", response_model=WishlistPublic, responses={401: {}, 404: {}, 409: {}}
)
def add_to_wishlist(
    product_id: PathId, db: DatabaseDep, user: CurrentUser, events: EventsDep
) -> dict:
    """Put a product on the wishlist (idempotent: a second add changes nothing and writes no
    event)."""
    with db.write_gate(), db.transaction() as session:
        added = wishlist.add(session, user.id, product_id)
    if added:
        events.emit("wishlist_add", user_id=user.id, product_id=product_id)
    with db.session() as session:
        return {"items": wishlist.list_items(session, user.id)}


@router.delete("/wishlist/{product_id}", response_model=WishlistPublic, responses={401: {}})
def remove_from_wishlist(
    product_id: PathId, db: DatabaseDep, user: CurrentUser, events: EventsDep
) -> dict:
    with db.write_gate(), db.transaction() as session:
        removed = wishlist.remove(session, user.id, product_id)
    if removed:
        events.emit("wishlist_remove", user_id=user.id, product_id=product_id)
    with db.session() as session:
        return {"items": wishlist.list_items(session, user.id)}
