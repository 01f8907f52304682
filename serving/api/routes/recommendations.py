"""Recommendations for users, sessions and products (docs/api.md, docs/models.md).

Each handler asks ``RecsServing`` for ranked products with the business rules applied and
returns them with a fresh ``rec_id``; the storefront logs impressions and clicks with it, so
online click-through per model version reaches the warehouse. Impressions are not logged here:
a served list is not a seen list, and ``rec_impression`` is a client event type.

The personal endpoint is the hot path (issue 7): it is ``async`` and, once products,
purchases and best sellers are in memory, answers on the event loop with two primary-key reads
on a bare connection (the caller's role, the cart) and no threadpool hop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from serving.api.deps import SessionId, TokenDep
from serving.api.schemas.common import MAX_DB_INT, PathId
from serving.api.schemas.recommendations import Recommendations
from serving.core.errors import Forbidden, NotFound, ProblemError, Unauthorized
from serving.services.caller_cache import check_caller
from serving.services.catalog_sync import ProductInfo
from serving.services.recs_serving import RecsServing, new_rec_id

router = APIRouter(prefix="/api/v1/recommendations", tags=["recommendations"])

K = Annotated[int, Query(ge=1, le=100, description="Number of items")]
CategoryKey = Annotated[
    str | None, Query(max_length=120, description="id or slug; includes descendants")
]


def _serving(request: Request) -> RecsServing:
    serving = getattr(request.app.state, "recs_serving", None)
    if serving is None:
        raise ProblemError(503, "Service Unavailable", "Recommendations are not running")
    return serving


def _answer(items: list[tuple[int, ProductInfo, float]], strategy: str, version: str) -> Response:
    payload = {
        "items": [
            {
                "product_id": pid,
                "score": round(float(score), 6) if score == score else 0.0,  # NaN-safe
                "title": info.title,
                "price_minor": info.price_minor,
                "currency": info.currency,
                "image_url": info.image_url,
                "available": info.available,
            }
            for pid, info, score in items
        ],
        "rec_id": new_rec_id(),
        "model_version": version,
        "strategy": strategy,
    }
    return Response(orjson.dumps(payload), media_type="application/json")


@dataclass(frozen=True, slots=True)
class Caller:
    id: int
    role: str


async def get_caller(request: Request, token: TokenDep) -> Caller:
    """The signed-in caller, as ``CurrentUser`` checks it, without a Session or a thread.

    Same rules: a bad or expired token, an unknown or inactive user is a 401, and the role is
    read from the database, not the token (a demoted admin loses access at once in this
    process, within ``auth_user_cache_seconds`` in the others). The row comes from
    ``app.state.callers`` (services/caller_cache.py).
    """
    if token is None:
        raise Unauthorized()
    state = request.app.state
    row = check_caller(state.tokens, state.callers, token)
    request.state.user_id = row.id
    return Caller(row.id, row.role)


CallerDep = Annotated[Caller, Depends(get_caller)]


def _check_category(serving: RecsServing, category: str | None) -> None:
    if category is not None and serving.categories.lookup(category) is None:
        raise NotFound("Category", category)


def _check_product(serving: RecsServing, product_id: int) -> None:
    if product_id not in serving.live.get([product_id]):
        raise NotFound("Product", product_id)


@router.get(
    "/users/{user_id}",
    response_model=Recommendations,
    responses={401: {}, 403: {}, 404: {}},
)
async def for_user(
    request: Request,
    user_id: PathId,
    token: TokenDep,
    k: K = 10,
    category: CategoryKey = None,
    exclude: Annotated[
        list[Annotated[int, Query(ge=1, le=MAX_DB_INT)]] | None,
        Query(max_length=100, description="Product ids never to show, repeatable"),
    ] = None,
) -> Response:
    """Personal picks for the signed-in user (admins may ask for anyone).

    Fresh views and cart adds fold in within seconds; users the model does not know get
    session-based or popular items, never an empty list while anything is for sale.
    """
    if token is None:
        raise Unauthorized()
    claims = request.app.state.tokens.verify(token)
    serving = _serving(request)
    # The checks of ``get_caller`` and the cart read share one pooled connection.
    caller, cart = serving.caller_and_cart(claims.user_id, serving.cart_owner(user_id, None))
    if caller is None or not caller[1]:
        raise Unauthorized("Invalid access token")
    request.state.user_id = claims.user_id
    if claims.user_id != user_id and caller[0] != "admin":
        raise Forbidden("You can only ask for your own recommendations")
    session = request.headers.get("x-session-id")
    args: dict[str, Any] = {
        "user_id": user_id,
        "cart": cart,
        "session_id": session if claims.user_id == user_id else None,
        "k": k,
        "category": category,
        "exclude": exclude or [],
    }
    if serving.in_memory(category):
        _check_category(serving, category)
        items, strategy, version = serving.for_owner(**args)
    else:  # something must come from the database first: keep the event loop free
        await run_in_threadpool(_check_category, serving, category)
        items, strategy, version = await run_in_threadpool(lambda: serving.for_owner(**args))
    return _answer(items, strategy, version)


@router.get("/status", responses={401: {}, 403: {}})
async def status(user: CallerDep, request: Request) -> dict[str, Any]:
    """Admins: the served model, refused versions, catalog freshness, cached candidates."""
    if user.role != "admin":
        raise Forbidden("This action needs the admin role")
    return _serving(request).status()


@router.get("/session", response_model=Recommendations)
def for_session(request: Request, session_id: SessionId, k: K = 10) -> Response:
    """Anonymous picks from this session's recent views and cart (``X-Session-Id``)."""
    items, strategy, version = _serving(request).for_owner(
        user_id=None, session_id=session_id, k=k, category=None, exclude=[]
    )
    return _answer(items, strategy, version)


@router.get("/products/{product_id}/similar", response_model=Recommendations, responses={404: {}})
def similar(request: Request, product_id: PathId, k: K = 10) -> Response:
    """Products like this one (the model's neighbours, else its category's best sellers)."""
    serving = _serving(request)
    _check_product(serving, product_id)
    return _answer(*serving.similar(product_id, k))


@router.get(
    "/products/{product_id}/bought-together",
    response_model=Recommendations,
    responses={404: {}},
)
def bought_together(request: Request, product_id: PathId, k: K = 10) -> Response:
    """Products bought in the same orders, topped up with similar items."""
    serving = _serving(request)
    _check_product(serving, product_id)
    return _answer(*serving.bought_together(product_id, k))


@router.get("/popular", response_model=Recommendations, responses={404: {}})
def popular(request: Request, k: K = 10, category: CategoryKey = None) -> Response:
    """Best sellers of recent weeks, optionally within a category, in stock only."""
    serving = _serving(request)
    _check_category(serving, category)
    return _answer(*serving.popular(k, category))


@router.get("/trending", response_model=Recommendations)
def trending(request: Request, k: K = 10) -> Response:
    """Products selling faster this week than before (topped up with best sellers)."""
    return _answer(*_serving(request).trending(k))
