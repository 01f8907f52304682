"""Product reviews: anyone reads, signed-in customers write one per product."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, status

from serving.api.deps import CurrentUser, EventsDep, SessionDep
from serving.api.schemas.catalog import ReviewCreate, ReviewPublic, ReviewsPublic
from serving.api.schemas.common import PathId
from serving.components import components_of
from serving.services.shop import reviews
from serving.services.shop.pagination import decode_cursor, encode_cursor

router = APIRouter(prefix="/api/v1/products/{product_id}/reviews", tags=["reviews"])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ReviewPublic,
    responses={401: {}, 404: {}, 409: {}, 429: {}},
)
def post_review(
    request: Request,
    product_id: PathId,
    body: ReviewCreate,
    session: SessionDep,
    user: CurrentUser,
    events: EventsDep,
) -> dict:
    """One review per product and account; at most ``review_burst`` at once per account,
    refilled at ``reviews_per_hour`` (429 with Retry-After beyond that)."""
    components_of(request).review_limiter.check(user.id)
    review = reviews.post_review(
        session,
        product_id=product_id,
        user=user,
        rating=body.rating,
        title=body.title,
        body=body.body,
    )
    components_of(request).read_cache.invalidate_product(product_id)
    events.emit(
        "review_posted", user_id=user.id, product_id=product_id, props={"rating": body.rating}
    )
    return review


@router.get("", response_model=ReviewsPublic, responses={404: {}})
def list_reviews(
    product_id: PathId,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> dict:
    """Newest first, with the product's average rating and count."""
    before = int(decode_cursor(cursor, 1)[0]) if cursor else None
    items, summary = reviews.list_reviews(
        session, product_id=product_id, limit=limit + 1, before_id=before
    )
    page = items[:limit]
    next_cursor = encode_cursor(page[-1]["id"]) if len(items) > limit else None
    return {"data": page, "count": len(page), **summary, "next_cursor": next_cursor}
