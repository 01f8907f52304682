"""Coupon usage limits hold under 50 concurrent redemptions, and compensation gives uses back.

Each redemption runs as the checkout runs it: inside its own write transaction for its own
order (``service.fix_on_order``), all 50 released together by a barrier. On PostgreSQL the
promotion's row lock is what serialises them; on SQLite the write lock.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, insert, select

from serving.db.tables import Order, Promotion, PromotionRedemption, PromotionUsage
from serving.services.pricing import promotions, service

PARALLEL = 50


def _orders(app, user_ids: list[int], n: int) -> list[tuple[str, int]]:
    now = datetime.now(UTC)
    rows = [
        {
            "id": f"ord_limit_{i:03d}",
            "user_id": user_ids[i % len(user_ids)],
            "status": "reserved",
            "currency": "EUR",
            "subtotal_minor": 5999,
            "shipping_minor": 0,
            "total_minor": 5999,
            "shipping_address": {},
            "payment_method": "pm_test",
            "from_cart": False,
            "reserved_until": now + timedelta(minutes=5),
            "created_at": now,
            "updated_at": now,
        }
        for i in range(n)
    ]
    with app.state.components.db.transaction() as session:
        session.execute(insert(Order), rows)
    return [(r["id"], r["user_id"]) for r in rows]


def _user_id(actor) -> int:
    return actor.get("/api/v1/me").json()["id"]


def _quote(app, product_id: int, code: str, user_id: int):
    with app.state.components.db.session() as session:
        return service.quote(
            session,
            app.state.components.settings,
            lines={product_id: 1},
            country="DE",
            speed=None,
            coupon_code=code,
            user_id=user_id,
            now=datetime.now(UTC),
        )


def _race(app, orders: list[tuple[str, int]], quotes: dict[int, object]) -> tuple[int, list[str]]:
    barrier = threading.Barrier(len(orders))
    taken, refused, errors = [], [], []
    db = app.state.components.db

    def attempt(order_id: str, user_id: int) -> None:
        barrier.wait()
        try:
            with db.write_gate(), db.transaction() as session:
                service.fix_on_order(
                    session,
                    order_id=order_id,
                    user_id=user_id,
                    priced=quotes[user_id],
                    now=datetime.now(UTC),
                )
            taken.append(order_id)
        except promotions.CouponExhausted as exc:
            refused.append(exc.extensions["code"])
        except Exception as exc:  # noqa: BLE001 - any other failure fails the test below
            errors.append(repr(exc))

    threads = [threading.Thread(target=attempt, args=order) for order in orders]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    return len(taken), refused


def _counts(app, promotion_id: int) -> tuple[int, int]:
    with app.state.components.db.session() as session:
        uses = session.execute(select(Promotion.uses).where(Promotion.id == promotion_id))
        held = session.execute(
            select(func.count())
            .select_from(PromotionRedemption)
            .where(
                PromotionRedemption.promotion_id == promotion_id,
                PromotionRedemption.status == "held",
            )
        )
        return uses.scalar_one(), held.scalar_one()


@pytest.mark.timeout(300)
def test_global_limit_holds_under_50_parallel_orders(app, admin, make_customer, small_catalog):
    coupon = admin.post(
        "/api/v1/admin/promotions",
        json={
            "code": "FIRST7",
            "name": "First seven",
            "kind": "fixed",
            "amount_minor": 500,
            "currency": "EUR",
            "max_uses": 7,
        },
    ).json()
    users = [_user_id(make_customer()) for _ in range(5)]
    hp1 = small_catalog["products"]["HP-1"]["id"]
    quotes = {u: _quote(app, hp1, "first7", u) for u in users}  # all see a free use
    taken, refused = _race(app, _orders(app, users, PARALLEL), quotes)
    assert taken == 7
    assert refused == ["coupon_exhausted"] * (PARALLEL - 7)
    assert _counts(app, coupon["id"]) == (7, 7)


@pytest.mark.timeout(300)
def test_per_customer_limit_holds_under_50_parallel_orders(app, admin, customer, small_catalog):
    coupon = admin.post(
        "/api/v1/admin/promotions",
        json={
            "code": "TWICE",
            "name": "Twice each",
            "kind": "percent",
            "percent_bp": 1000,
            "currency": "EUR",
            "max_uses_per_customer": 2,
        },
    ).json()
    me = _user_id(customer)
    hp1 = small_catalog["products"]["HP-1"]["id"]
    taken, refused = _race(app, _orders(app, [me], PARALLEL), {me: _quote(app, hp1, "TWICE", me)})
    assert taken == 2
    assert refused == ["coupon_customer_limit"] * (PARALLEL - 2)
    assert _counts(app, coupon["id"]) == (2, 2)
    with app.state.components.db.session() as session:
        usage = session.get(PromotionUsage, (coupon["id"], me))
        assert usage is not None and usage.uses == 2
    # The quote now refuses it too (409 problem), before any order is written.
    r = customer.post(
        "/api/v1/checkout/quote",
        json={
            "items": [{"product_id": hp1, "quantity": 1}],
            "country": "DE",
            "coupon_code": "twice",
        },
    )
    assert r.status_code == 409 and r.json()["code"] == "coupon_customer_limit"


def test_release_gives_uses_back_once(app, admin, customer, small_catalog):
    coupon = admin.post(
        "/api/v1/admin/promotions",
        json={
            "code": "ONE",
            "name": "Just one",
            "kind": "free_shipping",
            "currency": "EUR",
            "max_uses": 1,
            "max_uses_per_customer": 1,
        },
    ).json()
    me = _user_id(customer)
    hp1 = small_catalog["products"]["HP-1"]["id"]
    first, second = _orders(app, [me], 2)
    priced = _quote(app, hp1, "ONE", me)
    db = app.state.components.db
    now = datetime.now(UTC)
    with db.transaction() as session:
        service.fix_on_order(session, order_id=first[0], user_id=me, priced=priced, now=now)
    with pytest.raises(promotions.CouponExhausted), db.transaction() as session:
        service.fix_on_order(session, order_id=second[0], user_id=me, priced=priced, now=now)
    assert _counts(app, coupon["id"]) == (1, 1)
    # compensation of the first order: the use comes back, a second compensation gives nothing
    for expected in (1, 0):
        with db.transaction() as session:
            assert promotions.release(session, order_id=first[0], now=now) == expected
    assert _counts(app, coupon["id"]) == (0, 0)
    with db.transaction() as session:
        service.fix_on_order(session, order_id=second[0], user_id=me, priced=priced, now=now)
    assert _counts(app, coupon["id"]) == (1, 1)


def test_charges_fixed_on_the_order_are_shown_to_its_owner_only(
    app, admin, customer, make_customer, client, small_catalog
):
    _coupon = admin.post(
        "/api/v1/admin/promotions",
        json={
            "code": "TEN",
            "name": "Ten",
            "kind": "fixed",
            "amount_minor": 1000,
            "currency": "EUR",
        },
    )
    assert _coupon.status_code == 201
    me = _user_id(customer)
    hp1 = small_catalog["products"]["HP-1"]["id"]
    ((order_id, _),) = _orders(app, [me], 1)
    priced = _quote(app, hp1, "TEN", me)
    with app.state.components.db.transaction() as session:
        service.fix_on_order(
            session, order_id=order_id, user_id=me, priced=priced, now=datetime.now(UTC)
        )
    # a later rate or coupon edit does not change what was fixed
    admin.patch(f"/api/v1/admin/promotions/{_coupon.json()['id']}", json={"amount_minor": 1})
    r = customer.get(f"/api/v1/orders/{order_id}/charges")
    assert r.status_code == 200, r.text
    charges = r.json()
    assert charges["goods_minor"] == 5999 and charges["discount_minor"] == 1000
    assert charges["shipping_minor"] == 499  # 49.99 after the coupon: below the free threshold
    assert charges["total_minor"] == 5999 - 1000 + 499
    assert charges["discounts"][0]["code"] == "TEN"
    other = make_customer()
    assert other.get(f"/api/v1/orders/{order_id}/charges").status_code == 404
    assert client.get(f"/api/v1/orders/{order_id}/charges").status_code == 401
    assert customer.get("/api/v1/orders/ord_missing/charges").status_code == 404
