"""What some shoppers do besides browsing and buying: wishlists, a welcome coupon, membership,
returns (and the shop's nightly handling of them).

These habits draw from their own random stream per visit (seeded by the visit's session id),
never from the visit's main one, so adding them changed none of the searches, clicks and
purchases a seed already produced; only what the shop records around them is new. The demo
data then has the facts the lakehouse and recommenders read: ``wishlist_add`` events,
promotion redemptions, memberships, returns and refunds (``docs/synthetic.md``).
"""

from __future__ import annotations

import math
import random
from datetime import datetime, timedelta
from typing import Any, Protocol

from simulation.client import Api
from simulation.context import Context
from simulation.marketplace import ship_store_parcels


class Visit(Protocol):
    """What a habit needs of the visit it happens in (``sessions.Visit``, which calls these:
    a protocol, so this module does not import the one that imports it)."""

    ctx: Context
    u: int
    token: str | None
    state: Any  # sessions.UserState
    habits: random.Random
    clock: datetime

    async def call(self, method: str, path: str, **kw: Any) -> Any: ...

    def utility_of(self, index: int) -> float: ...


#: The coupon the demo shop offers every customer once (created by :func:`ensure_coupon`).
WELCOME_COUPON = "WELCOME10"
#: Share of checkouts where a shopper who has not used it yet enters the welcome coupon.
COUPON_RATE = 0.05
#: Chance per product viewed and not put in the cart, scaled by how much the shopper likes it.
WISHLIST_RATE = 0.12
#: Chance per checkout that a loyal shopper (loyalty 1.0) joins the membership first.
MEMBERSHIP_RATE = 0.04


#: Chance that a bought line goes back, scaled by how little the shopper turned out to like it
#: (``1 - sigmoid(U - 3.5)``): a few percent of lines, mostly the marginal purchases.
RETURN_RATE = 0.15
#: A shopper considers returning an order once, at their first signed-in visit this long after
#: buying it (the shop's carrier has delivered it by then) and before the window closes.
RETURN_AFTER = timedelta(days=3)
RETURN_BEFORE = timedelta(days=25)
RETURN_REASONS = ("not as described", "changed my mind", "does not fit", "arrived damaged")


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


def order_placed(visit: Visit, order: dict[str, Any]) -> None:
    """Count marketplace orders and remember the order for a possible return later."""
    ctx = visit.ctx
    lines = [(int(item["product_id"]), int(item["quantity"])) for item in order.get("items") or []]
    shippers = {ctx.sellers.get(pid, 0) for pid, _ in lines}  # 0: the shop itself
    if shippers - {0}:
        ctx.stats.marketplace_orders += 1
    if len(shippers) > 1:
        ctx.stats.multi_seller_orders += 1
    if order.get("id") is not None and lines:
        visit.state.orders.append((str(order["id"]), visit.clock, lines))
        ctx.parcels.append((str(order["id"]), visit.clock, frozenset(shippers - {0})))


async def maybe_return(visit: Visit) -> None:
    """A signed-in shopper sends back some of what they liked least, once per order."""
    if visit.token is None:
        return
    due = [o for o in visit.state.orders if visit.clock - o[1] >= RETURN_AFTER]
    if not due:
        return
    visit.state.orders = [o for o in visit.state.orders if o not in due]
    ctx = visit.ctx
    for order_id, placed_at, lines in due:
        if visit.clock - placed_at > RETURN_BEFORE:
            continue
        back = []
        for product_id, quantity in lines:
            index = ctx.index_of.get(product_id)
            if index is None:
                continue
            dislike = 1.0 - 1.0 / (1.0 + math.exp(-(visit.utility_of(index) - 3.5)))
            if visit.habits.random() < RETURN_RATE * dislike:
                units = quantity if quantity == 1 or visit.habits.random() < 0.5 else 1
                back.append({"product_id": product_id, "quantity": units})
        if not back:
            continue
        reason = visit.habits.choice(RETURN_REASONS)
        r = await visit.call(
            "POST", "/api/v1/returns", json={"order_id": order_id, "lines": back, "reason": reason}
        )
        if r.status_code == 201:  # 409: not delivered (or cancelled): kept after all
            ctx.returns.append(str(r.json()["id"]))
            ctx.stats.returns_requested += 1
            ctx.stats.units_returned += sum(line["quantity"] for line in back)


#: The shop's carrier hands a parcel over the night after the order and delivers it the next.
DELIVERED_AFTER = timedelta(days=1)


async def deliver_parcels(ctx: Context, token: str, at: datetime) -> None:
    """The shop's carrier, nightly: this process's orders placed at least a day before are
    shipped and delivered (``/admin/orders/{id}/ship`` then ``…/deliver``), so a shopper who
    comes back days later finds the order delivered whatever the shop's own background carrier
    got to (a 409: cancelled, or moved on already, is left as it is)."""
    due = [p for p in ctx.parcels if at - p[1] >= DELIVERED_AFTER]
    if not due:
        return
    ctx.parcels = [p for p in ctx.parcels if p not in due]
    by_store: dict[int, list[str]] = {}
    for order_id, _, stores in due:  # the stores ship their parcels first
        for seller in sorted(stores):
            by_store.setdefault(seller, []).append(order_id)
    ctx.stats.store_parcels_shipped += await ship_store_parcels(
        ctx.api, ctx.store_logins, at, by_store
    )
    for order_id, _, _ in due:
        for step in ("ship", "deliver"):
            r = await ctx.api.call(
                "POST", f"/api/v1/admin/orders/{order_id}/{step}", at=at, token=token
            )
            if r.status_code == 200 and step == "deliver":
                ctx.stats.deliveries += 1


async def process_returns(ctx: Context, token: str, at: datetime) -> None:
    """The shop's nightly desk: authorize the day's returns, receive them (a damaged one is
    written off, the rest restocked) and so refund them through the provider."""
    todo, ctx.returns = ctx.returns, []
    for return_id in todo:
        r = await ctx.api.call(
            "POST", f"/api/v1/admin/returns/{return_id}/authorize", at=at, token=token
        )
        if r.status_code != 200:
            continue
        ret = r.json()
        damaged = ret.get("reason") == "arrived damaged"
        body = {
            "lines": [
                {
                    "product_id": line["product_id"],
                    "disposition": "write_off" if damaged else "restock",
                }
                for line in ret.get("lines") or []
            ]
        }
        r = await ctx.api.call(
            "POST", f"/api/v1/admin/returns/{return_id}/receive", at=at, token=token, json=body
        )
        if r.status_code == 200 and r.json().get("status") == "refunded":
            ctx.stats.returns_refunded += 1
