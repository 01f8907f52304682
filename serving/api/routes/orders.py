"""Orders: checkout with an Idempotency-Key, the shopper's orders, cancel; admin shipping."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response, status
from fastapi.responses import JSONResponse

from serving.api.deps import AdminUser, CurrentUser, EventsDep, SessionDep
from serving.api.schemas.orders import OrderCreate, OrderPage, OrderPublic
from serving.core.errors import PROBLEM_JSON
from serving.services import checkout, orders, recovery

router = APIRouter(prefix="/api/v1", tags=["orders"])


@router.post(
    "/orders",
    status_code=status.HTTP_201_CREATED,
    response_model=OrderPublic,
    responses={400: {}, 401: {}, 402: {}, 404: {}, 409: {}, 422: {}},
)
def create_order(
    body: OrderCreate,
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    events: EventsDep,
    idempotency_key: Annotated[str | None, Header(max_length=255)] = None,
) -> Response:
    """Place an order: reserve stock, charge the card, create the shipment, send the email.

    The same Idempotency-Key and body replay the first response (``Idempotent-Replayed``).
    """
    user_id = user.id
    # The saga runs its own short transactions; the request's (write) session must not hold
    # the database while the payment provider is called.
    session.close()
    outcome = checkout.place_order(
        recovery.runtime(request.app),
        user_id=user_id,
        key=idempotency_key,
        body=body.model_dump(mode="json"),
        events=events,
    )
    headers = {"Idempotent-Replayed": "true"} if outcome.replayed else {}
    if outcome.status == 201:
        headers["Location"] = f"/api/v1/orders/{outcome.body['id']}"
    return JSONResponse(
        outcome.body,
        status_code=outcome.status,
        headers=headers,
        media_type=PROBLEM_JSON if outcome.status >= 400 else None,
    )


@router.get("/orders", response_model=OrderPage, responses={401: {}})
def list_orders(
    session: SessionDep,
    user: CurrentUser,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=300)] = None,
) -> dict:
    """The caller's orders, newest first."""
    data, next_cursor = orders.list_orders(session, user_id=user.id, limit=limit, cursor=cursor)
    return {"data": data, "count": len(data), "next_cursor": next_cursor}


@router.get("/orders/{order_id}", response_model=OrderPublic, responses={401: {}, 404: {}})
def get_order(order_id: str, session: SessionDep, user: CurrentUser) -> dict:
    """One of the caller's orders; anyone else's is a 404."""
    return orders.get_order(session, order_id=order_id[:40], user_id=user.id)


@router.post(
    "/orders/{order_id}/cancel", response_model=OrderPublic, responses={401: {}, 404: {}, 409: {}}
)
def cancel_order(
    order_id: str, request: Request, session: SessionDep, user: CurrentUser, events: EventsDep
) -> dict:
    """Cancel before shipping: stock goes back, a payment is refunded (409 once shipped)."""
    user_id = user.id
    session.close()
    return checkout.cancel_order(
        recovery.runtime(request.app),
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
def ship(order_id: str, request: Request, session: SessionDep, admin: AdminUser) -> dict:
    """Hand a fulfilled order to the carrier: the reserved stock becomes sold."""
    session.close()
    rt = recovery.runtime(request.app)
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
def deliver(order_id: str, request: Request, session: SessionDep, admin: AdminUser) -> dict:
    session.close()
    rt = recovery.runtime(request.app)
    with rt.db.session() as s:
        orders.get_order(s, order_id=order_id[:40], user_id=None)
    recovery.deliver_order(rt, order_id=order_id)
    with rt.db.session() as s:
        return orders.get_order(s, order_id=order_id, user_id=None)
