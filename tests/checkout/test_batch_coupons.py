"""Coupons in the batched checkout: orders with a promotion stay in the batch, each takes its
uses in arrival order, and an exhausted coupon is answered 409 for that order alone, stored
under its key, with no stock, use or charge left behind."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select

from serving.db.tables import Promotion, PromotionRedemption, PromotionUsage
from serving.db.tables.idempotency import IdempotencyKey
from serving.db.tables.payments import SimPaymentIntent
from serving.services.checkout import order_states as st

from .conftest import order_body, tokenise
from .test_batch import _stock, run_batch
from .test_pricing_checkout import _coupon


def _with(body: dict, code: str) -> dict:
    return {**body, "coupon_code": code}


def test_a_global_limit_holds_inside_one_batch(app, client, admin, rt, user_id, make_product):
    coupon = _coupon(admin, code="THREE", kind="percent", percent_bp=1000, max_uses=3)
    pid = make_product(100, price=2000)
    pm = tokenise(client)
    requests = [(uuid.uuid4().hex, _with(order_body(pm, [(pid, 1)]), "three")) for _ in range(6)]
    outcomes, batcher = run_batch(rt, requests, user_id)

    assert [o.status for o in outcomes] == [201, 201, 201, 409, 409, 409]  # arrival order
    assert batcher.batches == 1 and batcher.batched_orders == 3  # none left for the saga
    assert all(o.body["status"] == st.FULFILLED for o in outcomes[:3])
    assert all(o.body["code"] == "coupon_exhausted" for o in outcomes[3:])
    assert all(o.body["total_minor"] < 2000 + o.body["shipping_minor"] for o in outcomes[:3])
    with app.state.components.db.session() as s:
        assert s.get(Promotion, coupon["id"]).uses == 3
        held = s.scalars(select(PromotionRedemption.order_id)).all()
        assert sorted(held) == sorted(o.body["id"] for o in outcomes[:3])
        for outcome, (key, _) in zip(outcomes, requests, strict=True):  # answers are stored
            stored = s.execute(
                select(IdempotencyKey.status, IdempotencyKey.response_status).where(
                    IdempotencyKey.key == key
                )
            ).one()
            assert tuple(stored) == ("done", outcome.status)
        assert s.scalar(select(func.count()).select_from(SimPaymentIntent)) == 3
    on_hand, reserved, moved_on_hand, moved_reserved = _stock(app, pid)
    assert (on_hand, reserved) == (100, 3) == (moved_on_hand, moved_reserved)


def test_a_per_customer_limit_holds_inside_one_batch(app, client, admin, rt, user_id, make_product):
    coupon = _coupon(admin, code="TWICE", kind="fixed", amount_minor=100, max_uses_per_customer=2)
    pid = make_product(100, price=2000)
    pm = tokenise(client)
    requests = [(uuid.uuid4().hex, _with(order_body(pm, [(pid, 1)]), "TWICE")) for _ in range(4)]
    outcomes, batcher = run_batch(rt, requests, user_id)

    assert [o.status for o in outcomes] == [201, 201, 409, 409]
    assert batcher.batched_orders == 2
    assert outcomes[2].body["code"] == "coupon_customer_limit"
    with app.state.components.db.session() as s:
        assert s.get(Promotion, coupon["id"]).uses == 2
        usage = s.get(PromotionUsage, (coupon["id"], user_id))
        assert usage is not None and usage.uses == 2
    assert _stock(app, pid)[1] == 2


def test_a_sold_out_order_takes_no_use_and_a_refused_one_no_stock(
    app, client, admin, rt, user_id, make_product
):
    coupon = _coupon(admin, code="ONE", kind="percent", percent_bp=500, max_uses=1)
    scarce, plenty = make_product(1), make_product(10)
    pm = tokenise(client)
    requests = [
        (uuid.uuid4().hex, _with(order_body(pm, [(scarce, 2)]), "ONE")),  # sold out: no use
        (uuid.uuid4().hex, _with(order_body(pm, [(plenty, 1)]), "ONE")),  # takes the use
        (uuid.uuid4().hex, _with(order_body(pm, [(scarce, 1)]), "ONE")),  # refused: no stock
        (uuid.uuid4().hex, order_body(pm, [(scarce, 1)])),  # no coupon: gets the unit
    ]
    outcomes, batcher = run_batch(rt, requests, user_id)

    assert [o.status for o in outcomes] == [409, 201, 409, 201]
    assert batcher.batched_orders == 2
    assert outcomes[0].body["type"].endswith("/out-of-stock")
    assert outcomes[2].body["code"] == "coupon_exhausted"
    with app.state.components.db.session() as s:
        assert s.get(Promotion, coupon["id"]).uses == 1
    assert _stock(app, scarce)[1] == 1 and _stock(app, plenty)[1] == 1


def test_cancelling_a_batched_coupon_order_gives_the_use_back(
    app, client, customer, admin, rt, user_id, make_product
):
    coupon = _coupon(admin, code="BACK", kind="free_shipping", max_uses=1)
    pid = make_product(5)
    outcomes, batcher = run_batch(
        rt, [(uuid.uuid4().hex, _with(order_body(tokenise(client), [(pid, 1)]), "BACK"))], user_id
    )
    assert outcomes[0].status == 201 and outcomes[0].body["shipping_minor"] == 0
    assert batcher.batched_orders == 1
    r = customer.post(f"/api/v1/orders/{outcomes[0].body['id']}/cancel")
    assert r.status_code == 200, r.text
    with app.state.components.db.session() as s:
        assert s.get(Promotion, coupon["id"]).uses == 0
    assert _stock(app, pid)[1] == 0
