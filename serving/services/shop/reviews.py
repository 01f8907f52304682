"""Reviews: one per user and product, with the product's average kept up to date."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from serving.core.clock import utcnow
from serving.core.errors import Conflict, NotFound
from serving.db.tables import Product, Review, User


def _review_dict(review: Review, author: str) -> dict[str, Any]:
    return {
        "id": review.id,
        "product_id": review.product_id,
        "user_id": review.user_id,
        "author": author,
        "rating": review.rating,
        "title": review.title,
        "body": review.body,
        "created_at": review.created_at,
    }


def _author(user: User) -> str:
    # Never the email: a first name or "Customer" keeps reviewers' addresses private.
    return (user.full_name or "").split(" ")[0] or "Customer"


def post_review(
    session: Session, *, product_id: int, user: User, rating: int, title: str, body: str
) -> dict[str, Any]:
    if session.get(Product, product_id) is None:
        raise NotFound("Product", product_id)
    review = Review(
        product_id=product_id,
        user_id=user.id,
        rating=rating,
        title=title,
        body=body,
        created_at=utcnow(),
    )
    session.add(review)
    try:
        session.flush()
    except IntegrityError as exc:
        session.rollback()
        raise Conflict("You have already reviewed this product") from exc
    # One statement, so concurrent reviews of the same product cannot lose an update.
    session.execute(
        update(Product)
        .where(Product.id == product_id)
        .values(
            rating_avg=(Product.rating_avg * Product.rating_count + rating)
            / (Product.rating_count + 1),
            rating_count=Product.rating_count + 1,
        )
    )
    session.commit()
    return _review_dict(review, _author(user))


def list_reviews(
    session: Session, *, product_id: int, limit: int, before_id: int | None
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    product = session.execute(
        select(Product.rating_avg, Product.rating_count).where(Product.id == product_id)
    ).first()
    if product is None:
        raise NotFound("Product", product_id)
    query = (
        select(Review, User.full_name)
        .join(User, User.id == Review.user_id)
        .where(Review.product_id == product_id)
    )
    if before_id is not None:
        query = query.where(Review.id < before_id)
    rows = session.execute(query.order_by(Review.id.desc()).limit(limit)).all()
    items = [
        _review_dict(review, (name or "").split(" ")[0] or "Customer") for review, name in rows
    ]
    summary = {
        "rating_avg": round(float(product.rating_avg), 3),
        "rating_count": product.rating_count,
    }
    return items, summary
