"""Orders: checkout with an Idempotency-Key, the shopper's orders, cancel; admin shipping."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response, status
from starlette.concurrency import run_in_threadpool

from serving.api.deps import AdminUser, EventsDep, SessionDep, TokenDep
from serving.api.schemas.orders import OrderCreate, OrderPage, OrderPublic
from serving.core.errors import PROBLEM_JSON, Unauthorized
from serving.services import checkout, fraud, orders, recovery
from serving.services.caller_cache import MISS, check_caller

router = APIRouter(prefix="/api/v1", tags=["orders"])


async def optional_caller(request: Request, token: TokenDep) -> int | None:
    """The signed-in user's id, checked with a read-only connection.

    ``deps.CurrentUser`` once looked the user up in the request's write session, which on
    SQLite takes the write lock (BEGIN IMMEDIATE) in one threadpool hop and releases it only in
    a later one; under a checkout stampede the threads queued on that lock fill the threadpool
    and the holder never gets a thread back (a 30 s busy-timeout stall). The row comes from
    ``app.state.callers`` (services/caller_cache.py): a deferred read on a bare connection on a
    miss, which takes no lock, and no read at all for ``auth_user_cache_seconds`` after it.
    ``async`` with the read inline: a plain ``def`` dependency costs a threadpool hand-off.
    """
    if token is None:
        return None
    state = request.app.state
    user_id = check_caller(state.tokens, state.callers, token).id
    request.state.user_id = user_id
    return user_id


@dataclass(frozen=True)
class CheckoutCaller:
    """A checkout's caller: the token is verified; ``vouched`` when a fresh cached row already
    shows the user active, else the check is still to be made (by the batch, in T1)."""

    user_id: int
    vouched: bool
    token: str = field(repr=False)


async def checkout_caller(request: Request, token: TokenDep) -> CheckoutCaller:
    """Like :func:`caller` without the database read on a cache miss: the checkout batch reads
    every waiting caller's user in one query inside its first transaction instead (a read on
    the event loop cost more than the rest of the request's handling)."""
    if token is None:
        raise Unauthorized()
    state = request.app.state
    user_id = state.tokens.verify(token).user_id
    row = state.callers.peek(token)
    if row is not MISS and (row is None or not row.is_active):
        raise Unauthorized("Invalid access token")
    request.state.user_id = user_id
    return CheckoutCaller(user_id, vouched=row is not MISS, token=token)


async def caller(user_id: Annotated[int | None, Depends(optional_caller)]) -> int:
    if user_id is None:
        raise Unauthorized()
    return user_id


def _checkout_slots(request: Request) -> asyncio.Semaphore:
    """The worker's checkout semaphore (made on first use, inside the serving event loop)."""
    slots = getattr(request.app.state, "checkout_slots", None)
    if slots is None:
        state = request.app.state
        limit = state.settings.checkout_concurrency or (2 if state.db.is_sqlite else 8)
        slots = asyncio.Semaphore(limit)
        request.app.state.checkout_slots = slots
    return slots


OrderIdPath = Annotated[str, Path(max_length=40)]
CallerId = Annotated[int, Depends(caller)]
OptionalCallerId = Annotated[int | None, Depends(optional_caller)]


@router.post(
    "/orders",
    status_code=status.HTTP_201_CREATED,
    response_model=OrderPublic,
    responses={400: {}, 401: {}, 402: {}, 404: {}, 409: {}, 422: {}},
)
async def create_order(
    body: OrderCreate,
    request: Request,
    checkout_user: Annotated[CheckoutCaller, Depends(checkout_caller)],
    events: EventsDep,
    idempotency_key: Annotated[str | None, Header(max_length=255)] = None,
) -> Response:
    """Place an order: reserve stock, charge the card, create the shipment, send the email.

    The same Idempotency-Key and body replay the first response (``Idempotent-Replayed``).
    """
    # The saga runs its own short transactions: nothing holds the database while the payment
    # provider is called. Orders that qualify join the worker's next batch (group commit,
    # services/checkout_batch.py); the rest run one by one in the threadpool, at most
    # ``checkout_concurrency`` at once in this worker.
    rt = recovery.runtime(request.app)
    payload = body.model_dump(mode="json")
    batcher = rt.batcher()
    user_id = checkout_user.user_id
    if batcher is not None and batcher.accepts(payload):
        outcome = await batcher.place(
            user_id=user_id,
            key=idempotency_key,
            body=payload,
            events=events,
            verify_user=not checkout_user.vouched,
        )
    else:
        if not checkout_user.vouched:
            state = request.app.state
            check_caller(state.tokens, state.callers, checkout_user.token)
        async with _checkout_slots(request):
            outcome = await run_in_threadpool(
                checkout.place_order,
                rt,
                user_id=user_id,
                key=idempotency_key,
                body=payload,
                events=events,
            )
    return order_response(outcome)


def order_response(outcome: checkout.Outcome) -> Response:
    """A checkout's answer: the order (201, or the first answer replayed) or its problem.

    Shared with ``serving/middleware/checkout_fast_path.py`` so both give the same bytes."""
    headers = {"Idempotent-Replayed": "true"} if outcome.replayed else {}
    if outcome.status == 201:
        headers["Location"] = f"/api/v1/orders/{outcome.body['id']}"
    return Response(
        orjson.dumps(outcome.body),
        status_code=outcome.status,
        headers=headers,
        media_type=PROBLEM_JSON if outcome.status >= 400 else "application/json",
    )


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
def ship(order_id: OrderIdPath, request: Request, session: SessionDep, admin: AdminUser) -> dict:
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
def deliver(order_id: OrderIdPath, request: Request, session: SessionDep, admin: AdminUser) -> dict:
    session.close()
    rt = recovery.runtime(request.app)
    with rt.db.session() as s:
        orders.get_order(s, order_id=order_id[:40], user_id=None)
    recovery.deliver_order(rt, order_id=order_id)
    with rt.db.session() as s:
        return orders.get_order(s, order_id=order_id, user_id=None)


@router.get("/admin/orders/held", response_model=fraud.HeldOrders, responses={401: {}, 403: {}})
def held_orders(
    session: SessionDep, admin: AdminUser, limit: Annotated[int, Query(ge=1, le=100)] = 50
) -> dict:
    """Orders held by the fraud rules, oldest first, with the rules that fired."""
    return fraud.list_held(session, limit=limit)


def _decide_held(request: Request, session, order_id: str, decide) -> dict:
    """Apply an admin's review decision to a held order and return the order as it is now."""
    session.close()  # the decision runs in its own short transactions
    rt = recovery.runtime(request.app)
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
    return _decide_held(request, session, order_id, fraud.release)


@router.post(
    "/admin/orders/{order_id}/reject",
    response_model=OrderPublic,
    responses={401: {}, 403: {}, 404: {}, 409: {}},
)
def reject_held(
    order_id: OrderIdPath, request: Request, session: SessionDep, admin: AdminUser
) -> dict:
    """A held order failed review: cancel it, release the stock and refund the payment."""
    return _decide_held(request, session, order_id, fraud.cancel)
