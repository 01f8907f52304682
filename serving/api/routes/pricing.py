"""The quote: an order's totals (discounts, shipping, tax, duty) before it is placed.

The same computation the checkout fixes on the order (``serving/services/pricing``), so what
the shopper sees is what is charged as long as prices, rates and coupons do not change
in between.
"""

from __future__ import annotations

from fastapi import APIRouter

from serving.api.deps import CallerId, DatabaseDep, OptionalCallerId, SessionId, SettingsDep
from serving.api.routes.orders import OrderIdPath
from serving.api.schemas.pricing import QuotePublic, QuoteRequest
from serving.core.clock import utcnow
from serving.core.errors import NotFound, Unauthorized, Unprocessable
from serving.db.tables import Order
from serving.services.customer import addresses
from serving.services.pricing import service
from serving.services.shop import cart

router = APIRouter(prefix="/api/v1", tags=["pricing"])


def _lines(body: QuoteRequest, session, user: int | None, session_id: str) -> dict[int, int]:
    if body.items is not None:
        merged: dict[int, int] = {}
        for item in body.items:
            merged[item.product_id] = merged.get(item.product_id, 0) + item.quantity
        return merged
    return service.cart_lines(session, cart.owner_key(user_id=user, session_id=session_id))


def _country(body: QuoteRequest, session, user: int | None) -> str:
    if body.country is not None:
        return body.country.upper()
    if body.address_id is not None:
        if user is None:
            raise Unauthorized("An address from the address book needs a signed-in caller")
        return addresses.get_address(session, user, body.address_id).country
    default = addresses.default_address(session, user) if user is not None else None
    if default is None:
        raise Unprocessable(
            "Say where the order goes: a country, or an address of the address book",
            code="destination_required",
        )
    return default.country


@router.post(
    "/checkout/quote", response_model=QuotePublic, responses={401: {}, 404: {}, 409: {}, 422: {}}
)
def quote(
    body: QuoteRequest,
    db: DatabaseDep,
    settings: SettingsDep,
    user: OptionalCallerId,
    session_id: SessionId,
) -> dict:
    """Goods, discounts, every shipping option with its price, tax and duty, and the total
    that will be charged. Writes nothing (a coupon's use is taken when the order is placed)."""
    with db.session() as session:
        priced = service.quote(
            session,
            settings,
            lines=_lines(body, session, user, session_id),
            country=_country(body, session, user),
            speed=body.shipping_speed,
            coupon_code=body.coupon_code,
            user_id=user,
            now=utcnow(),
        )
    return priced.public()


@router.get("/orders/{order_id}/charges", responses={401: {}, 404: {}})
def order_charges(order_id: OrderIdPath, db: DatabaseDep, user_id: CallerId) -> dict:
    """What the order's total was made of, as fixed when it was placed: goods, discounts
    (per promotion), shipping, tax, duty. 404 for someone else's order, or one placed before
    pricing existed."""
    with db.session() as session:
        owner = session.get(Order, order_id)
        charges = service.charges_of(session, order_id) if owner is not None else None
    if owner is None or owner.user_id != user_id or charges is None:
        raise NotFound("Charges of order", order_id)
    return charges
