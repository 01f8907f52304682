"""One shopper's visit: arrive, search or browse, click, view, add to cart, maybe check out.

Every decision is a draw from the visit's own ``random.Random`` seeded by (seed, user, day,
visit), never from a shared generator, so a visit makes the same choices whatever else runs
concurrently; only what the server answers (search hits, stock) can change its course.

Click model: a position-based model. A listed product at 0-based position k is examined with
probability ``0.95 / (1 + k) ** 0.8`` and, once examined, clicked with probability
``sigmoid(U - 1.2)`` where U is the hidden utility (``truth.utility``); in search results U is
the search utility (``truth.search_utility``: what the product misses of the query's intent
costs 0.75 per grade point). A viewed product goes into the cart with probability
``0.3 * sigmoid(U - 3.5)`` (the same U, so a search click that missed the query is also bought
less); a visit with a cart checks out with probability ``0.30 + 0.35 * loyalty`` (less when an
account must first be created).

One module past 500 lines on purpose: a visit is one story (arrive, browse, click, buy) whose
steps share the visit's random stream and state; split, the order of draws would be hard to see.
"""

from __future__ import annotations

import math
import random
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from features.events import format_ts
from simulation import habits, truth
from simulation.context import Context

GOOD_CARD = "4242424242424242"
BAD_CARDS = {
    "card_declined": "4000000000000002",
    "insufficient_funds": "4000000000009995",
    "expired_card": "4000000000000069",
}
SORTS = ("rating", "id", "newest", "price_asc")
#: Add-to-cart model: P(add | view) = CART_RATE * sigmoid(U - CART_SHIFT).
CART_RATE = 0.3
CART_SHIFT = 3.5
#: Access tokens live 30 wall-clock minutes; a remembered sign-in is reused for 20 of them.
TOKEN_REUSE_SECONDS = 20 * 60


def sigmoid(x: float) -> float:
    """The logistic function, clipped so extreme utilities cannot overflow."""
    return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, x))))


def examine_probability(position: int) -> float:
    """Position bias: the chance a shopper even looks at the result at ``position`` (0-based)."""
    return 0.95 / (1 + position) ** 0.8


@dataclass
class UserState:
    """What a shopper (and their browser) remembers between visits."""

    registered: bool = False
    user_id: int | None = None
    token: str | None = None  # the browser's remembered sign-in
    token_at: float = 0.0
    visits: int = 0
    purchases: list[int] = field(default_factory=list)
    pending_reviews: list[int] = field(default_factory=list)
    reviewed: set[int] = field(default_factory=set)
    wishlist: set[int] = field(default_factory=set)  # server product ids saved
    coupon_used: bool = False
    membership_tried: bool = False
    #: Orders not yet considered for a return: (order id, when bought, [(product id, units)]).
    orders: list[tuple[str, datetime, list[tuple[int, int]]]] = field(default_factory=list)


class Visit:
    """A single session; ``run()`` drives it to the end and flushes its events."""

    def __init__(
        self, ctx: Context, user: int, state: UserState, start: datetime, rng: random.Random
    ) -> None:
        self.ctx = ctx
        self.u = user
        self.state = state
        self.clock = start
        self.rng = rng
        self.session_id = f"sim{rng.getrandbits(96):024x}"
        self.habits = habits.habits_rng(self.session_id)  # never draws from ``rng``
        self.token: str | None = None
        self.events: list[dict[str, Any]] = []
        self.cart: dict[int, int] = {}
        self.searches = 0
        self.pending: list[Any] = []

    # ------------------------------------------------------------------ plumbing

    def tick(self, mean_seconds: float) -> None:
        """Let simulated time pass, as a person reading a page would."""
        self.clock += timedelta(seconds=1 + self.rng.expovariate(1.0 / mean_seconds))

    async def call(self, method: str, path: str, **kw: Any):
        """A request in this visit's name; a remembered sign-in that expired is renewed once."""
        r = await self.ctx.api.call(
            method, path, at=self.clock, session_id=self.session_id, token=self.token, **kw
        )
        if r.status_code == 401 and self.token and not path.startswith("/api/v1/auth/"):
            self.token = self.state.token = None
            if await self.login():
                r = await self.ctx.api.call(
                    method, path, at=self.clock, session_id=self.session_id, token=self.token, **kw
                )
        return r

    def emit(self, type_: str, **fields: Any) -> None:
        """Queue a browser event; ids are drawn from the visit's generator (reproducible)."""
        event = {
            "event_id": str(uuid.UUID(int=self.rng.getrandbits(128), version=4)),
            "type": type_,
            "client_ts": format_ts(self.clock),
            "session_id": self.session_id,
            **{k: v for k, v in fields.items() if v is not None},
        }
        self.events.append(event)
        if self.ctx.trace is not None:
            self.ctx.trace.append(self.ctx.trace_record(self.u, event))

    async def flush(self) -> None:
        """Post queued events as one batch (the browser's beacon)."""
        if not self.events:
            return
        batch, self.events = self.events, []
        r = await self.call("POST", "/api/v1/events", json={"events": batch})
        if r.status_code == 202:
            self.ctx.stats.events += len(batch)
        else:
            self.ctx.stats.events_rejected += len(batch)

    def utility(self, products: list[int]) -> np.ndarray:
        return self.ctx.utility(self.u, np.asarray(products, dtype=np.int64))

    def utility_of(self, index: int) -> float:
        return float(self.ctx.utility_row(self.u)[index])

    # ------------------------------------------------------------------ the visit

    async def run(self) -> None:
        ctx, pop, rng = self.ctx, self.ctx.pop, self.rng
        stats = ctx.stats
        stats.sessions += 1
        self.state.visits += 1
        self.emit("page_view", props={"page": "home"})
        if self.state.visits == 1 and pop.has_account[self.u]:
            await self.register()
        if self.state.registered and rng.random() < pop.login_habit[self.u]:
            if self.state.token and time.monotonic() - self.state.token_at < TOKEN_REUSE_SECONDS:
                self.token = self.state.token  # still signed in from an earlier visit
            else:
                await self.login()
        if self.token and self.state.pending_reviews:
            await self.write_reviews()
        if self.token and self.state.orders:
            await habits.maybe_return(self)
        steps = 1
        while steps < 8 and rng.random() < 0.62:
            steps += 1
        for _ in range(steps):
            await self.step()
        if self.cart:
            stats.sessions_with_cart += 1
            if await self.maybe_checkout():
                stats.sessions_with_order += 1
            else:
                stats.abandoned_carts += 1
        await self.flush()
        for pending in self.pending:
            await pending

    async def step(self) -> None:
        rng, pop = self.rng, self.ctx.pop
        rebuy = 0.35 * pop.loyalty[self.u] if self.state.purchases else 0.0
        roll = rng.random() * (1.0 + rebuy)
        if roll < 0.45:
            await self.search()
        elif roll < 0.78:
            await self.browse()
        elif roll < 1.0:
            await self.recommendations()
        else:
            await self.rebuy()
        self.tick(20)
        if len(self.events) >= 100:
            await self.flush()

    def pick_leaf(self) -> int:
        cum = self.ctx.cat_cum[self.u]
        return int(min(len(cum) - 1, np.searchsorted(cum, self.rng.random() * cum[-1])))

    # ------------------------------------------------------------------ search

    async def search(self) -> None:
        ctx, rng = self.ctx, self.rng
        qs = ctx.queries
        self.searches += 1
        if rng.random() < 0.04:
            q = rng.choice(ctx.zero_queries)
        else:
            leaf = self.pick_leaf()
            options = qs.by_leaf.get(leaf) or [0]
            weights = [
                math.exp(ctx.pop.brand_aff[self.u, qs.brand[o]]) if qs.brand[o] >= 0 else 1.0
                for o in options
            ]
            q = rng.choices(options, weights=weights)[0]
        await self.run_query(q, retry=True)

    async def run_query(self, q: int, *, retry: bool) -> None:
        ctx, rng = self.ctx, self.rng
        text = ctx.queries.text[q]
        products, total, search_id, source = await self.search_results(text)
        ctx.stats.searches += 1
        if total == 0:
            ctx.stats.zero_result_searches += 1
        shown = [ctx.product_ids[i] for i in products]
        self.emit(
            "search",
            query=text,
            search_id=search_id,
            props={
                "results": ",".join(str(p) for p in shown)[:512],
                "total": total,
                "backend": source,
            },
        )
        self.emit("page_view", props={"page": "search"})
        self.tick(6)
        await self.examine(products, "search", search_id=search_id, query=q)
        if total == 0 and retry and rng.random() < 0.6 and ctx.queries.leaf[q] >= 0:
            # Reformulate: the plain noun of the intended category.
            alternatives = ctx.queries.by_leaf.get(ctx.queries.leaf[q], [])
            plain = [a for a in alternatives if ctx.queries.kind[a] == "noun"]
            if plain:
                await self.run_query(plain[0], retry=False)

    async def search_results(self, text: str) -> tuple[list[int], int, str, str]:
        """Result product indices, total, search id and which side produced them."""
        ctx = self.ctx
        if ctx.api.available("search"):
            r = await self.call("GET", "/api/v1/search", params={"q": text, "limit": 20})
            if ctx.api.mark("search", r) and r.status_code == 200:
                body = r.json()
                hits = [ctx.index_of.get(int(h["product_id"])) for h in body.get("hits", [])]
                products = [h for h in hits if h is not None]
                sid = str(body.get("search_id") or f"srv-{self.rng.getrandbits(64):016x}")
                return products, int(body.get("total", len(products))), sid, "server"
        products, total = ctx.keywords.search(text, limit=20)
        return products, total, f"cs-{self.rng.getrandbits(64):016x}", "client"

    # ------------------------------------------------------------------ browse and recs

    async def browse(self, sort: str | None = None) -> None:
        ctx, rng, pop = self.ctx, self.rng, self.ctx.pop
        leaf = self.pick_leaf()
        slug = ctx.catalog.leaf_slug(leaf)
        if sort is None:
            sort = (
                "price_asc" if rng.random() < 0.25 * pop.price_sens[self.u] else rng.choice(SORTS)
            )
        params: dict[str, Any] = {"category": slug, "sort": sort, "limit": 24}
        if rng.random() < 0.12 and "color" in ctx.catalog.leaves[leaf].attrs:
            params["attr"] = f"color:{rng.choice(ctx.catalog.leaves[leaf].attrs['color'])}"
        r = await self.call("GET", "/api/v1/products", params=params)
        if r.status_code != 200:
            return
        items = [ctx.index_of.get(int(p["id"])) for p in r.json()["data"]]
        self.emit(
            "category_view",
            category_id=str(ctx.category_ids[slug]),
            props={"sort": sort, "filtered": "attr" in params},
        )
        self.emit("page_view", props={"page": "category"})
        self.tick(8)
        await self.examine([i for i in items if i is not None], "category")

    async def recommendations(self) -> None:
        ctx = self.ctx
        if not ctx.api.available("recs"):
            await self.browse(sort="rating")
            return
        if self.token and self.state.user_id is not None:
            path = f"/api/v1/recommendations/users/{self.state.user_id}"
        else:
            path = "/api/v1/recommendations/popular"
        r = await self.call("GET", path, params={"k": 12})
        if not ctx.api.mark("recs", r) or r.status_code != 200:
            await self.browse(sort="rating")
            return
        body = r.json()
        rec_id = str(body.get("rec_id") or f"rec-{self.rng.getrandbits(64):016x}")
        version = str(body.get("model_version", ""))
        products = []
        for item in body.get("items", []):
            index = ctx.index_of.get(int(item["product_id"]))
            if index is None:
                continue
            self.emit(
                "rec_impression",
                rec_id=rec_id,
                product_id=str(item["product_id"]),
                position=len(products),
                props={"model_version": version},
            )
            products.append(index)
        ctx.stats.rec_lists += 1
        self.tick(5)
        await self.examine(products, "rec", rec_id=rec_id)

    async def rebuy(self) -> None:
        """Go straight back to something bought before (consumables above all)."""
        past = self.state.purchases
        leaves, leaf_of = self.ctx.catalog.leaves, self.ctx.catalog.leaf
        consumable = [p for p in past if leaves[leaf_of[p]].consumable]
        pool = consumable if consumable and self.rng.random() < 0.8 else past
        await self.view(self.rng.choice(pool), "history", None, boost=1.5)

    # ------------------------------------------------------------------ clicks and views

    async def examine(
        self,
        products: list[int],
        source: str,
        *,
        search_id: str | None = None,
        rec_id: str | None = None,
        query: int | None = None,
    ) -> None:
        """Scan a result list top-down under position bias; click what appeals.

        Search results (``query`` given) are judged by the search utility: a product that
        misses what was typed appeals less, however much the shopper likes it otherwise.
        """
        if not products:
            return
        rng = self.rng
        values = self.utility(products)
        shifts = np.zeros(len(products))
        if query is not None:
            grades = self.ctx.query_grade_row(query)[np.asarray(products, dtype=np.int64)]
            shifts = truth.search_utility(shifts, grades)  # the query's part of U_search
        values = values + shifts
        clicks = 0
        for position, (index, value, shift) in enumerate(
            zip(products, values, shifts, strict=True)
        ):
            if rng.random() >= examine_probability(position):
                continue
            if rng.random() >= sigmoid(float(value) - 1.2):
                continue
            pid = str(self.ctx.product_ids[index])
            if source == "search":
                self.emit("search_click", search_id=search_id, product_id=pid, position=position)
            elif source == "rec":
                self.emit("rec_click", rec_id=rec_id, product_id=pid, position=position)
            self.ctx.stats.clicks += 1
            await self.view(index, source, position, boost=float(shift))
            clicks += 1
            if clicks >= 3 or rng.random() < 0.45:
                break

    async def view(self, index: int, source: str, position: int | None, boost: float = 0.0):
        ctx, rng = self.ctx, self.rng
        pid = ctx.product_ids[index]
        r = await self.call("GET", f"/api/v1/products/{pid}")
        if r.status_code != 200:
            return
        available = r.json().get("stock", {}).get("available", 0)
        self.emit("product_view", product_id=str(pid), position=position, props={"source": source})
        self.emit("page_view", props={"page": "product"})
        ctx.stats.product_views += 1
        self.tick(25)
        value = self.utility_of(index) + boost
        if available <= 0 or rng.random() >= CART_RATE * sigmoid(value - CART_SHIFT):
            await habits.maybe_wishlist(self, pid, sigmoid(value - CART_SHIFT))
            return
        quantity = 2 if rng.random() < 0.1 else 1
        if ctx.api.available("cart"):
            r = await self.call(
                "POST", "/api/v1/cart/items", json={"product_id": pid, "quantity": quantity}
            )
            if ctx.api.mark("cart", r) and r.status_code >= 400:
                if r.status_code == 409:
                    ctx.stats.stockouts += 1
                return
        self.cart[index] = self.cart.get(index, 0) + quantity
        self.emit(
            "add_to_cart",
            product_id=str(pid),
            props={"quantity": quantity, "price_minor": int(ctx.catalog.price_minor[index])},
        )
        ctx.stats.add_to_carts += 1
        self.tick(5)

    # ------------------------------------------------------------------ accounts

    async def register(self) -> None:
        ctx, pop = self.ctx, self.ctx.pop
        r = await self.call(
            "POST",
            "/api/v1/auth/register",
            json={
                "email": pop.emails[self.u],
                "password": pop.passwords[self.u],
                "full_name": pop.names[self.u],
            },
        )
        if r.status_code == 201:
            self.state.user_id = int(r.json()["id"])
            ctx.stats.registrations += 1
        self.state.registered = r.status_code in (201, 409)

    async def login(self) -> bool:
        ctx, pop = self.ctx, self.ctx.pop
        r = await self.call(
            "POST",
            "/api/v1/auth/token",
            data={"username": pop.emails[self.u], "password": pop.passwords[self.u]},
        )
        if r.status_code != 200:
            return False
        self.token = r.json()["access_token"]
        self.state.token, self.state.token_at = self.token, time.monotonic()
        ctx.stats.logins += 1
        if self.state.user_id is None:
            me = await self.call("GET", "/api/v1/me")
            if me.status_code == 200:
                self.state.user_id = int(me.json()["id"])
        if self.state.user_id is not None:
            ctx.user_ids[self.u] = self.state.user_id
        return True

    async def write_reviews(self) -> None:
        ctx, rng = self.ctx, self.rng
        todo, self.state.pending_reviews = self.state.pending_reviews, []
        for index in todo:
            if index in self.state.reviewed:
                continue
            value = self.utility_of(index)
            rating = int(min(5, max(1, round(3.2 + 1.1 * (value - 1.5) + rng.gauss(0, 0.6)))))
            title, body = ctx.review_text(rating, index, rng)
            r = await self.call(
                "POST",
                f"/api/v1/products/{ctx.product_ids[index]}/reviews",
                json={"rating": rating, "title": title, "body": body},
            )
            if r.status_code in (201, 409):
                self.state.reviewed.add(index)
            if r.status_code == 201:
                ctx.stats.reviews += 1
                ctx.stats.rating_sum += rating
            self.tick(60)

    # ------------------------------------------------------------------ checkout

    async def maybe_checkout(self) -> bool:
        ctx, rng, pop = self.ctx, self.rng, self.ctx.pop
        chance = 0.30 + 0.35 * pop.loyalty[self.u]
        if not self.state.registered:
            chance *= 0.8  # having to create an account loses some buyers
        if rng.random() >= chance:
            return False
        value = sum(int(ctx.catalog.price_minor[i]) * q for i, q in self.cart.items())
        self.emit("checkout_start", props={"items": len(self.cart), "value_minor": value})
        ctx.stats.checkouts += 1
        if not self.state.registered:
            await self.register()
        if self.token is None and not await self.login():
            return False
        await self.flush()
        if not (ctx.api.available("payments") and ctx.api.available("orders")):
            ctx.stats.checkout_unavailable += 1
            return False
        await habits.maybe_join_membership(self, GOOD_CARD)
        card = GOOD_CARD
        if rng.random() < pop.card_risk[self.u]:
            card = BAD_CARDS[rng.choice(sorted(BAD_CARDS))]
        for _attempt in range(3):
            self.tick(30)
            order = await self.place_order(card)
            if order is None:
                return False
            if order.get("declined"):
                ctx.stats.declines += 1
                if rng.random() < 0.6:
                    card = GOOD_CARD
                    continue
                return False
            self.after_order(order)
            return True
        return False

    async def place_order(self, card: str) -> dict[str, Any] | None:
        ctx = self.ctx
        r = await self.call(
            "POST",
            "/api/v1/payments/methods",
            json={"card_number": card, "exp_month": 12, "exp_year": 2030, "cvc": "123"},
        )
        if not ctx.api.mark("payments", r) or r.status_code >= 400:
            return None
        method = r.json().get("payment_method")
        address = ctx.address(self.u)
        body: dict[str, Any] = {"shipping_address": address, "payment_method": method}
        key = f"sim-{self.rng.getrandbits(96):024x}"
        coupon = habits.coupon_for(self)
        if coupon is not None:
            r = await self.call(
                "POST",
                "/api/v1/orders",
                json={**body, "coupon_code": coupon},
                headers={"Idempotency-Key": f"{key}-coupon"},
            )
            if r.status_code not in (409, 422):  # a refused coupon: buy without it
                return self._order_answer(r, coupon)
            self.state.coupon_used = True
        r = await self.call("POST", "/api/v1/orders", json=body, headers={"Idempotency-Key": key})
        return self._order_answer(r, None)

    def _order_answer(self, r: Any, coupon: str | None) -> dict[str, Any] | None:
        ctx = self.ctx
        if not ctx.api.mark("orders", r):
            ctx.stats.checkout_unavailable += 1
            return None
        if r.status_code == 402:
            return {"declined": True}
        if r.status_code == 409:
            ctx.stats.stockouts += 1
            return None
        if r.status_code not in (200, 201):
            ctx.stats.order_errors += 1
            return None
        order = r.json()
        habits.coupon_taken(self, order, coupon)
        return order

    def after_order(self, order: dict[str, Any]) -> None:
        ctx, rng = self.ctx, self.rng
        ctx.stats.orders += 1
        habits.order_placed(self, order)
        total = int(order.get("total_minor") or 0)
        ctx.stats.revenue_minor += total
        bought = list(self.cart)
        for item in order.get("items") or []:
            index = ctx.index_of.get(int(item.get("product_id", -1)))
            if index is not None and index not in bought:
                bought.append(index)
        for index in bought:
            ctx.sold[index] = ctx.sold.get(index, 0) + self.cart.get(index, 1)
            self.state.purchases.append(index)
            ctx.purchases.append((self.u, index))
            if rng.random() < 0.3:
                self.state.pending_reviews.append(index)
        self.cart.clear()
        if rng.random() < 0.03 and order.get("id") is not None:
            self.pending.append(self.cancel(str(order["id"]), total))

    async def cancel(self, order_id: str, total: int) -> None:
        self.tick(600)
        r = await self.call("POST", f"/api/v1/orders/{order_id}/cancel")
        if r.status_code in (200, 202):
            self.ctx.stats.cancellations += 1
            self.ctx.stats.revenue_minor -= total
