"""Recommendations for users, sessions and products (docs/api.md, docs/models.md).

Each handler asks ``RecsServing`` for ranked products with the business rules applied and
returns them with a fresh ``rec_id``; the storefront logs impressions and clicks with it, so
online click-through per model version reaches the warehouse. Impressions are not logged here:
a served list is not a seen list, and ``rec_impression`` is a client event type.

The personal endpoint is the hot path (issue 7): it is ``async`` and, once products,
purchases and best sellers are in memory, answers on the event loop with two primary-key reads
on a bare connection (the caller's role, the cart) and no threadpool hop. Its usual requests
(``k`` and ``surface`` at most) are answered before FastAPI's routing by
``serving/middleware/recs_fast_path.py`` (issue 21), which calls the same service functions;
everything else, errors included, comes here.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from serving.api.deps import AdminUser, CallerDep, RecsDep, SessionId
from serving.api.schemas.common import MAX_DB_INT, PathId
from serving.api.schemas.recommendations import Recommendations
from serving.services.ml.catalog_view import ProductInfo
from serving.services.ml.recs import RecsServing, personal
from serving.services.ml.recs.answer import Surface, answer_json

router = APIRouter(prefix="/api/v1/recommendations", tags=["recommendations"])

K = Annotated[int, Query(ge=1, le=100, description="Number of items")]
CategoryKey = Annotated[
    str | None, Query(max_length=120, description="id or slug; includes descendants")
]
SurfaceQuery = Annotated[
    Surface | None,
    Query(description="Where the list is shown; counted per surface in online evaluation"),
]


def _answer(
    recs: RecsServing,
    items: list[tuple[int, ProductInfo, float]],
    strategy: str,
    version: str,
    surface: str,
) -> Response:
    """The list as JSON (``answer_json``: the personal fast path answers the same bytes)."""
    return Response(
        answer_json(recs, items, strategy, version, surface), media_type="application/json"
    )


@router.get(
    "/users/{user_id}",
    response_model=Recommendations,
    responses={401: {}, 403: {}, 404: {}},
)
async def for_user(
    caller: CallerDep,
    recs: RecsDep,
    request: Request,
    user_id: PathId,
    k: K = 10,
    category: CategoryKey = None,
    surface: SurfaceQuery = None,
    exclude: Annotated[
        list[Annotated[int, Query(ge=1, le=MAX_DB_INT)]] | None,
        Query(max_length=100, description="Product ids never to show, repeatable"),
    ] = None,
) -> Response:
    """Personal picks for the signed-in user (admins may ask for anyone).

    Fresh views, cart adds and purchases fold in at once, signed in or not; items the model
    does not know stand in through their category's known items; never an empty list while
    anything is for sale. A product bought a moment ago is excluded from the next answer.
    """
    items, strategy, version = await personal.for_user(
        recs,
        caller_id=caller.user_id,
        user_id=user_id,
        session_id=request.headers.get("x-session-id"),
        k=k,
        category=category,
        exclude=exclude or [],
    )
    return _answer(recs, items, strategy, version, surface or "home")


@router.get(
    "/users/{user_id}/buy-again",
    response_model=Recommendations,
    responses={401: {}, 403: {}},
)
def buy_again(
    caller: CallerDep,
    recs: RecsDep,
    user_id: PathId,
    k: K = 10,
    surface: SurfaceQuery = None,
) -> Response:
    """Consumables this user bought before, those due again first ("Buy it again").

    Consumable categories are learned from repeat purchases (docs/models.md); the list may be
    empty and is never topped up with other products.
    """
    cart = personal.own_or_admin(recs, caller_id=caller.user_id, user_id=user_id)
    return _answer(recs, *recs.buy_again(user_id, k, cart), surface or "home")


@router.get("/status", responses={401: {}, 403: {}})
async def status(admin: AdminUser, recs: RecsDep) -> dict[str, Any]:
    """Admins: the served model, refused versions, catalog freshness, cached candidates."""
    return recs.status()


@router.get("/session", response_model=Recommendations)
def for_session(
    recs: RecsDep, session_id: SessionId, k: K = 10, surface: SurfaceQuery = None
) -> Response:
    """Anonymous picks from this session's recent views and cart (``X-Session-Id``)."""
    items, strategy, version = recs.for_owner(
        user_id=None, session_id=session_id, k=k, category=None, exclude=[]
    )
    return _answer(recs, items, strategy, version, surface or "home")


@router.get("/products/{product_id}/similar", response_model=Recommendations, responses={404: {}})
def similar(recs: RecsDep, product_id: PathId, k: K = 10, surface: SurfaceQuery = None) -> Response:
    """Products like this one (the model's neighbours, else its category's best sellers)."""
    personal.check_product(recs, product_id)
    return _answer(recs, *recs.similar(product_id, k), surface or "product")


@router.get(
    "/products/{product_id}/bought-together",
    response_model=Recommendations,
    responses={404: {}},
)
def bought_together(
    recs: RecsDep, product_id: PathId, k: K = 10, surface: SurfaceQuery = None
) -> Response:
    """Products bought in the same orders, topped up with similar items."""
    personal.check_product(recs, product_id)
    return _answer(recs, *recs.bought_together(product_id, k), surface or "product")


@router.get("/popular", response_model=Recommendations, responses={404: {}})
def popular(
    recs: RecsDep, k: K = 10, category: CategoryKey = None, surface: SurfaceQuery = None
) -> Response:
    """Best sellers of recent weeks, optionally within a category, in stock only."""
    personal.check_category(recs, category)
    return _answer(recs, *recs.popular(k, category), surface or "home")


@router.get("/trending", response_model=Recommendations)
def trending(recs: RecsDep, k: K = 10, surface: SurfaceQuery = None) -> Response:
    """Products selling faster this week than before (topped up with best sellers)."""
    return _answer(recs, *recs.trending(k), surface or "home")
