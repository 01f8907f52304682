"""What some shoppers do besides browsing and buying: wishlists, a welcome coupon, membership.

These habits draw from their own random stream per visit (seeded by the visit's session id),
never from the visit's main one, so adding them changed none of the searches, clicks and
purchases a seed already produced; only what the shop records around them is new. The demo
data then has the facts the lakehouse and recommenders read: ``wishlist_add`` events,
promotion redemptions and memberships (``docs/synthetic.md``).
"""

from __future__ import annotations

import random
from datetime import datetime
from typing import Any, Protocol

from simulation.client import Api
from simulation.context import Context


class Visit(Protocol):
    """What a habit needs of the visit it happens in (``sessions.Visit``, which calls these:
    a protocol, so this module does not import the one that imports it)."""

    ctx: Context
    u: int
    token: str | None
    state: Any  # sessions.UserState
    habits: random.Random

    async def call(self, method: str, path: str, **kw: Any) -> Any: ...


#: The coupon the demo shop offers every customer once (created by :func:`ensure_coupon`).
WELCOME_COUPON = "WELCOME10"
#: Share of checkouts where a shopper who has not used it yet enters the welcome coupon.
COUPON_RATE = 0.05
#: Chance per product viewed and not put in the cart, scaled by how much the shopper likes it.
WISHLIST_RATE = 0.12
#: Chance per checkout that a loyal shopper (loyalty 1.0) joins the membership first.
MEMBERSHIP_RATE = 0.04


def habits_rng(session_id: str) -> random.Random:
    """The visit's stream for these habits (deterministic per seed, user, day and visit)."""
    return random.Random(f"{session_id}:habits")


async def ensure_coupon(api: Api, token: str, at: datetime, currency: str) -> None:
    """Create the welcome coupon unless the shop has it (a re-run of the demo finds it)."""
    r = await api.call("GET", "/api/v1/admin/promotions", at=at, token=token)
    if r.status_code != 200:
        raise RuntimeError(f"listing promotions failed: {r.status_code} {r.text[:200]}")
    if any(p.get("code") == WELCOME_COUPON for p in r.json()):
        return
    body = {
        "code": WELCOME_COUPON,
        "name": "10 % off your first order with this code",
        "kind": "percent",
        "percent_bp": 1000,
        "currency": currency,
        "max_uses_per_customer": 1,
    }
    r = await api.call("POST", "/api/v1/admin/promotions", at=at, token=token, json=body)
    if r.status_code != 201:
        raise RuntimeError(f"creating the welcome coupon failed: {r.status_code} {r.text[:200]}")


async def maybe_wishlist(visit: Visit, product_id: int, liking: float) -> None:
    """A signed-in shopper saves some products they like but do not buy now."""
    if visit.token is None or product_id in visit.state.wishlist:
        return
    if visit.habits.random() >= WISHLIST_RATE * liking:
        return
    r = await visit.call("PUT", f"/api/v1/me/wishlist/{product_id}")
    if r.status_code in (200, 201, 204):
        visit.state.wishlist.add(product_id)
        visit.ctx.stats.wishlist_adds += 1


def coupon_for(visit: Visit) -> str | None:
    """The welcome coupon for this checkout, or None (each shopper uses it at most once)."""
    if visit.state.coupon_used or visit.habits.random() >= COUPON_RATE:
        return None
    return WELCOME_COUPON


def coupon_taken(visit: Visit, order: dict[str, Any], code: str | None) -> None:
    """Remember a redeemed coupon so the shopper does not try it again."""
    if code is not None:
        visit.state.coupon_used = True
        visit.ctx.stats.coupon_orders += 1


async def maybe_join_membership(visit: Visit, card: str) -> None:
    """Before a checkout, a loyal signed-in shopper sometimes joins the membership (once)."""
    state = visit.state
    if visit.token is None or state.membership_tried:
        return
    if visit.habits.random() >= MEMBERSHIP_RATE * float(visit.ctx.pop.loyalty[visit.u]):
        return
    state.membership_tried = True
    r = await visit.call(
        "POST",
        "/api/v1/payments/methods",
        json={"card_number": card, "exp_month": 12, "exp_year": 2030, "cvc": "123"},
    )
    if r.status_code >= 400:
        return
    method = r.json().get("payment_method")
    r = await visit.call("POST", "/api/v1/membership", json={"payment_method": method})
    if r.status_code == 201:
        visit.ctx.stats.memberships += 1
