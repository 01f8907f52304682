"""Orders: checkout with an Idempotency-Key, the shopper's orders, cancel; admin shipping."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, Request, Response, status

from serving.api.deps import AdminUser, CallerDep, CallerId, CheckoutDep, EventsDep, SessionDep
from serving.api.schemas.orders import HeldOrders, OrderCreate, OrderPage, OrderPublic
from serving.services import orders
from serving.services.checkout import recovery, review, saga
from serving.services.checkout import service as checkout

router = APIRouter(prefix="/api/v1", tags=["orders"])


OrderIdPath = Annotated[str, Path(max_length=40)]


@router.post(
    "/orders",
    status_code=status.HTTP_201_CREATED,
    response_model=OrderPublic,
    responses={400: {}, 401: {}, 402: {}, 404: {}, 409: {}, 422: {}},
)
async def create_order(
    body: OrderCreate,
    rt: CheckoutDep,
    buyer: CallerDep,
    events: EventsDep,
    idempotency_key: Annotated[str | None, Header(max_length=255)] = None,
) -> Response:
    """Place an order: reserve stock, charge the card, create the shipment, send the email.

    The same Idempotency-Key and body replay the first response (``Idempotent-Replayed``).
    """
    outcome = await checkout.place(
        rt,
        caller=buyer,
        key=idempotency_key,
        body=body.model_dump(mode="json"),
        events=events,
    )
    return checkout.order_response(outcome)


@router.get("/orders", response_model=OrderPage, responses={401: {}})
def list_orders(
    session: SessionDep,
    user_id: CallerId,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=300)] = None,
) -> dict:
    """The caller's orders, newest first."""
    data, next_cursor = orders.list_orders(session, user_id=user_id, limit=limit, cursor=cursor)
    return {"data": data, "count": len(data), "next_cursor": next_cursor}


@router.get("/orders/{order_id}", response_model=OrderPublic, responses={401: {}, 404: {}})
def get_order(order_id: OrderIdPath, session: SessionDep, user_id: CallerId) -> dict:
    """One of the caller's orders; anyone else's is a 404."""
    return orders.get_order(session, order_id=order_id[:40], user_id=user_id)


@router.post(
    "/orders/{order_id}/cancel", response_model=OrderPublic, responses={401: {}, 404: {}, 409: {}}
)
def cancel_order(
    order_id: OrderIdPath, request: Request, user_id: CallerId, events: EventsDep
) -> dict:
    """Cancel before shipping: stock goes back, a payment is refunded (409 once shipped)."""
    return saga.cancel_order(
        checkout.runtime(request.app),
        order_id=order_id[:40],
        user_id=user_id,
        reason="cancelled by customer",
        events=events,
    )


@router.post(
    "/admin/orders/{order_id}/ship",
    response_model=OrderPublic,
    responses={401: {}, 403: {}, 404: {}, 409: {}},
)
def ship(order_id: OrderIdPath, request: Request, session: SessionDep, admin: AdminUser) -> dict:
    """Hand a fulfilled order to the carrier: the reserved stock becomes sold."""
    session.close()
    rt = checkout.runtime(request.app)
    with rt.db.session() as s:
        orders.get_order(s, order_id=order_id[:40], user_id=None)
    recovery.ship_order(rt, order_id=order_id)
    with rt.db.session() as s:
        return orders.get_order(s, order_id=order_id, user_id=None)


@router.post(
    "/admin/orders/{order_id}/deliver",
    response_model=OrderPublic,
    responses={401: {}, 403: {}, 404: {}, 409: {}},
)
def deliver(order_id: OrderIdPath, request: Request, session: SessionDep, admin: AdminUser) -> dict:
    session.close()
    rt = checkout.runtime(request.app)
    with rt.db.session() as s:
        orders.get_order(s, order_id=order_id[:40], user_id=None)
    recovery.deliver_order(rt, order_id=order_id)
    with rt.db.session() as s:
        return orders.get_order(s, order_id=order_id, user_id=None)


@router.get("/admin/orders/held", response_model=HeldOrders, responses={401: {}, 403: {}})
def held_orders(
    session: SessionDep, admin: AdminUser, limit: Annotated[int, Query(ge=1, le=100)] = 50
) -> dict:
    """Orders held by the fraud rules, oldest first, with the rules that fired."""
    return review.list_held(session, limit=limit)


def _decide_held(request: Request, session, order_id: str, decide) -> dict:
    """Apply an admin's review decision to a held order and return the order as it is now."""
    session.close()  # the decision runs in its own short transactions
    rt = checkout.runtime(request.app)
    with rt.db.session() as s:
        orders.get_order(s, order_id=order_id, user_id=None)  # 404 for an unknown id
    decide(rt, order_id=order_id)
    with rt.db.session() as s:
        return orders.get_order(s, order_id=order_id, user_id=None)


@router.post(
    "/admin/orders/{order_id}/release",
    response_model=OrderPublic,
    responses={401: {}, 403: {}, 404: {}, 409: {}},
)
def release_held(
    order_id: OrderIdPath, request: Request, session: SessionDep, admin: AdminUser
) -> dict:
    """A held order passed review: fulfil it (label, confirmation email)."""
    return _decide_held(request, session, order_id, review.release)


@router.post(
    "/admin/orders/{order_id}/reject",
    response_model=OrderPublic,
    responses={401: {}, 403: {}, 404: {}, 409: {}},
)
def reject_held(
    order_id: OrderIdPath, request: Request, session: SessionDep, admin: AdminUser
) -> dict:
    """A held order failed review: cancel it, release the stock and refund the payment."""
    return _decide_held(request, session, order_id, review.cancel)
