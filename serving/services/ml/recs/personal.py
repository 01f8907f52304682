"""Personal recommendations for a signed-in user (the hot path, issue 7), with its access rule.

Once products, purchases and best sellers are in memory, an answer needs two primary-key reads
on a bare connection (the caller's role, the cart) and is given on the event loop; otherwise
it leaves the loop for the threadpool.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.concurrency import run_in_threadpool

from serving.core.errors import Forbidden, NotFound, Unauthorized
from serving.services.ml.catalog_view import ProductInfo
from serving.services.ml.recs.service import RecsServing

Items = list[tuple[int, ProductInfo, float]]


def check_category(recs: RecsServing, category: str | None) -> None:
    if category is not None and recs.categories.lookup(category) is None:
        raise NotFound("Category", category)


def check_product(recs: RecsServing, product_id: int) -> None:
    if product_id not in recs.live.get([product_id]):
        raise NotFound("Product", product_id)


def own_or_admin(recs: RecsServing, *, caller_id: int, user_id: int) -> list[int]:
    """The cart of ``user_id`` after checking the caller may ask for that user's lists.

    The caller's check (an unknown or inactive user is a 401; the role comes from the
    database, not the token), the cart and the buyer's newest order share one pooled
    connection (``RecsServing.caller_and_cart``).
    """
    caller, cart = recs.caller_and_cart(caller_id, recs.cart_owner(user_id, None), buyer=user_id)
    if caller is None or not caller[1]:
        raise Unauthorized("Invalid access token")
    if caller_id != user_id and caller[0] != "admin":
        raise Forbidden("You can only ask for your own recommendations")
    return cart


async def for_user(
    recs: RecsServing,
    *,
    caller_id: int,
    user_id: int,
    session_id: str | None,
    k: int,
    category: str | None,
    exclude: Sequence[int],
) -> tuple[Items, str, str]:
    """(items, strategy, model version) for ``user_id``; the session's fresh activity counts
    only when the caller asks for itself."""
    cart = own_or_admin(recs, caller_id=caller_id, user_id=user_id)
    args = {
        "user_id": user_id,
        "cart": cart,
        "session_id": session_id if caller_id == user_id else None,
        "k": k,
        "category": category,
        "exclude": list(exclude),
    }
    if recs.in_memory(category):
        check_category(recs, category)
        return recs.for_owner(**args)
    # something must come from the database first: keep the event loop free
    await run_in_threadpool(check_category, recs, category)
    return await run_in_threadpool(lambda: recs.for_owner(**args))
