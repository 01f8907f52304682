"""Cart, checkout saga, payments, cancel and webhooks through the API (TestClient)."""

from __future__ import annotations

import contextlib
import uuid

from sqlalchemy import func, select

from serving.db.tables import Inventory
from serving.db.tables.orders import OrderTransition
from serving.db.tables.payments import Payment, SimPaymentIntent
from serving.services.checkout import recovery, saga
from serving.services.checkout.runtime import NoEvents, SimulatedCrash
from serving.services.checkout.service import runtime
from serving.services.shop import inventory

from .conftest import CARDS, order_body, place, tokenise


def _stock(app, product_id: int) -> dict:
    with app.state.components.db.session() as s:
        return inventory.stock_of(s, product_id)


def test_guest_cart_then_merge_at_login_caps_by_stock(client, make_customer, make_product):
    p1, p2 = make_product(5), make_product(3)
    actor = make_customer()
    actor.post("/api/v1/cart/items", json={"product_id": p2, "quantity": 2})
    guest = {"X-Session-Id": "guest-session-0123456789"}
    assert (
        client.post(
            "/api/v1/cart/items", json={"product_id": p1, "quantity": 2}, headers=guest
        ).status_code
        == 200
    )
    r = client.post("/api/v1/cart/items", json={"product_id": p2, "quantity": 3}, headers=guest)
    assert r.json()["item_count"] == 5 and r.json()["subtotal_minor"] == 5 * 2500
    too_many = client.post(
        "/api/v1/cart/items", json={"product_id": p1, "quantity": 9}, headers=guest
    )
    assert too_many.status_code == 409 and too_many.json()["type"].endswith("out-of-stock")
    assert (
        client.post(
            "/api/v1/cart/items", json={"product_id": 999999, "quantity": 1}, headers=guest
        ).status_code
        == 404
    )
    r = client.post(
        "/api/v1/auth/token",
        data={"username": actor.email, "password": actor.password},
        headers=guest,
    )
    merge = r.json()["cart_merge"]
    assert {"product_id": p2, "requested": 5, "kept": 3} in merge["cart_capped"]
    cart = actor.get("/api/v1/cart").json()
    assert {i["product_id"]: i["quantity"] for i in cart["items"]} == {p1: 2, p2: 3}
    assert client.get("/api/v1/cart", headers=guest).json()["items"] == []
    r = actor.patch(f"/api/v1/cart/items/{p1}", json={"quantity": 1})
    assert r.json()["item_count"] == 4
    r = actor.delete(f"/api/v1/cart/items/{p2}")
    assert [i["product_id"] for i in r.json()["items"]] == [p1]


def test_checkout_from_cart_happy_path(app, client, customer, make_product):
    pid = make_product(4, price=3000)
    customer.post("/api/v1/cart/items", json={"product_id": pid, "quantity": 2})
    r = place(customer, order_body(tokenise(client)))
    assert r.status_code == 201, r.text
    order = r.json()
    assert order["id"].startswith("ord_") and order["status"] == "fulfilled"
    assert order["subtotal_minor"] == 6000 and order["shipping_minor"] == 0
    assert order["payment"]["status"] == "succeeded" and order["payment"]["last4"] == "4242"
    assert order["shipment"]["status"] == "label_created"
    assert order["shipment"]["tracking_number"].startswith("SP")
    assert customer.get("/api/v1/cart").json()["items"] == []
    assert _stock(app, pid) == {"on_hand": 4, "reserved": 2, "available": 2}
    listed = customer.get("/api/v1/orders").json()
    assert [o["id"] for o in listed["data"]] == [order["id"]]
    runtime(app).dispatcher.drain()
    # The 201 body is built from memory, not read back: it must equal what the database says.
    assert customer.get(f"/api/v1/orders/{order['id']}").json() == order
    with app.state.components.db.session() as s:
        steps = s.execute(
            select(OrderTransition.from_status, OrderTransition.to_status)
            .where(OrderTransition.order_id == order["id"])
            .order_by(OrderTransition.id)
        ).all()
    assert [tuple(step) for step in steps] == [
        (None, "pending"),
        ("pending", "reserved"),
        ("reserved", "paid"),
        ("paid", "fulfilled"),
    ]


def test_orders_need_sign_in_and_are_private(client, make_customer, make_product):
    pid = make_product(4)
    anon = client.post(
        "/api/v1/orders", json=order_body("pm_x", [(pid, 1)]), headers={"Idempotency-Key": "k1"}
    )
    assert anon.status_code == 401
    alice, bob = make_customer(), make_customer()
    order = place(alice, order_body(tokenise(client), [(pid, 1)])).json()
    assert bob.get(f"/api/v1/orders/{order['id']}").status_code == 404
    assert bob.post(f"/api/v1/orders/{order['id']}/cancel").status_code == 404
    assert bob.get("/api/v1/orders").json()["data"] == []


def test_missing_idempotency_key_is_400(client, customer, make_product):
    pid = make_product(2)
    r = customer.post("/api/v1/orders", json=order_body(tokenise(client), [(pid, 1)]))
    assert r.status_code == 400
    assert r.headers["content-type"] == "application/problem+json"


def test_same_key_same_body_replays_and_different_body_is_422(client, customer, make_product):
    pid = make_product(5)
    body = order_body(tokenise(client), [(pid, 1)])
    first = place(customer, body, key="key-1")
    again = place(customer, body, key="key-1")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers.get("idempotent-replayed") == "true"
    other = place(customer, order_body(body["payment_method"], [(pid, 2)]), key="key-1")
    assert other.status_code == 422
    assert len(customer.get("/api/v1/orders").json()["data"]) == 1


def test_declines_are_402_with_code_and_release_stock(app, client, customer, make_product):
    pid = make_product(3)
    for outcome in ("generic_decline", "insufficient_funds", "expired_card", "processing_error"):
        r = place(customer, order_body(tokenise(client, outcome), [(pid, 2)]))
        assert r.status_code == 402, r.text
        problem = r.json()
        assert problem["type"].endswith("payment-declined")
        assert problem["decline_code"] == outcome
        assert _stock(app, pid)["reserved"] == 0
        order = customer.get(f"/api/v1/orders/{problem['order_id']}").json()
        assert order["status"] == "payment_failed"


def test_provider_timeout_ends_in_a_clear_state(app, client, customer, make_product):
    pid = make_product(3)
    r = place(customer, order_body(tokenise(client, "timeout"), [(pid, 1)]))
    assert r.status_code == 402
    assert r.json()["reason"] == "provider_timeout"
    order = customer.get(f"/api/v1/orders/{r.json()['order_id']}").json()
    assert order["status"] == "payment_failed"
    assert _stock(app, pid)["reserved"] == 0
    with app.state.components.db.session() as s:
        assert s.scalar(select(SimPaymentIntent.status)) == "canceled"


def test_out_of_stock_is_409_and_unknown_product_404(client, customer, make_product):
    pid = make_product(1)
    pm = tokenise(client)
    r = place(customer, order_body(pm, [(pid, 2)]))
    assert r.status_code == 409 and r.json()["type"].endswith("out-of-stock")
    assert place(customer, order_body(pm, [(999999, 1)])).status_code == 404


def test_cancel_releases_stock_refunds_and_is_409_after_shipping(
    app, client, customer, admin, make_product
):
    pid = make_product(5)
    pm = tokenise(client)
    order = place(customer, order_body(pm, [(pid, 2)])).json()
    r = customer.post(f"/api/v1/orders/{order['id']}/cancel")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "refunded"
    assert r.json()["payment"]["refunded_minor"] == order["total_minor"]
    assert _stock(app, pid)["reserved"] == 0
    assert customer.post(f"/api/v1/orders/{order['id']}/cancel").status_code == 409
    shipped = place(customer, order_body(pm, [(pid, 1)])).json()
    r = admin.post(f"/api/v1/admin/orders/{shipped['id']}/ship")
    assert r.status_code == 200 and r.json()["status"] == "shipped"
    assert _stock(app, pid) == {"on_hand": 4, "reserved": 0, "available": 4}
    r = customer.post(f"/api/v1/orders/{shipped['id']}/cancel")
    assert r.status_code == 409 and r.json()["type"].endswith("illegal-transition")
    r = admin.post(f"/api/v1/admin/orders/{shipped['id']}/deliver")
    assert r.json()["status"] == "delivered"
    assert [e["status"] for e in r.json()["shipment"]["events"]] == [
        "label_created",
        "in_transit",
        "delivered",
    ]


def test_regression_two_lines_of_same_product_draw_on_one_stock_twice(
    app, client, customer, make_product
):
    """Two lines each within stock must not both pass when together they exceed it."""
    pid = make_product(3)
    r = place(customer, order_body(tokenise(client), [(pid, 2), (pid, 2)]))
    assert r.status_code == 409
    assert _stock(app, pid)["reserved"] == 0
    r = place(customer, order_body(tokenise(client), [(pid, 1), (pid, 2)]))
    assert r.status_code == 201
    assert r.json()["items"][0]["quantity"] == 3
    assert _stock(app, pid)["reserved"] == 3


def test_no_card_data_in_any_table_or_log(app, client, customer, make_product, caplog, tmp_path):
    import logging

    caplog.set_level(logging.DEBUG)
    pid = make_product(3)
    r = client.post(
        "/api/v1/payments/methods",
        json={"card_number": CARDS["ok"], "exp_month": 7, "exp_year": 2031, "cvc": "987"},
    )
    pm = r.json()["payment_method"]
    assert place(customer, order_body(pm, [(pid, 1)])).status_code == 201
    bad = client.post(
        "/api/v1/payments/methods",
        json={"card_number": "4242424242424241", "exp_month": 7, "exp_year": 2031, "cvc": "987"},
    )
    assert bad.status_code == 422 and "4242424242424241" not in bad.text
    dump = []
    with app.state.components.db.session() as s:
        from serving.db.tables import Base

        for table in Base.metadata.sorted_tables:
            for row in s.execute(select(table)):
                dump.append(" ".join(str(v) for v in row))
    text = "\n".join(dump) + caplog.text
    for data_dir_file in app.state.components.settings.data_dir.rglob("*"):
        if data_dir_file.is_file() and data_dir_file.suffix != ".db":
            text += data_dir_file.read_bytes().decode(errors="ignore")
    assert pm in text  # the search does see the data
    import re

    # The full number in any spacing, the CVC and the expiry as standalone values or keys.
    assert "4242424242424242" not in text and "4242 4242" not in text
    for pattern in (r"\b987\b", r"\b2031\b", r"\b07/31\b", r"cvc", r"exp_month", r"card_number"):
        assert not re.search(pattern, text), pattern


def test_webhook_signature_replay_and_late_success_never_revives(
    app, client, customer, make_product
):
    """Regression: a late "paid" webhook must not revive a cancelled order (refund instead)."""
    import orjson

    from serving.core.clock import utcnow
    from serving.services.checkout.payments.webhooks import sign

    rt = runtime(app)
    pid = make_product(3)
    order = place(customer, order_body(tokenise(client), [(pid, 1)])).json()
    customer.post(f"/api/v1/orders/{order['id']}/cancel")
    with app.state.components.db.session() as s:
        intent = s.execute(select(SimPaymentIntent)).scalar_one()
    # The provider "forgets" the refund for a moment: replay an old succeeded event for it.
    event = {
        "id": "evt_late_1",
        "type": "payment_intent.succeeded",
        "created": 0,
        "data": {
            "object": {
                "id": intent.id,
                "status": "succeeded",
                "amount": intent.amount_minor,
                "amount_refunded": 0,
                "metadata": {"order_id": order["id"]},
            }
        },
    }
    body = orjson.dumps(event)
    now = int(utcnow().timestamp())
    secret = rt.settings.payment_webhook_secret
    bad = client.post(
        "/api/v1/payments/webhook", content=body, headers={"Storeloop-Signature": f"t={now},v1=00"}
    )
    assert bad.status_code == 400
    old = client.post(
        "/api/v1/payments/webhook",
        content=body,
        headers={"Storeloop-Signature": sign(secret, body, now - 301)},
    )
    assert old.status_code == 400
    ok = client.post(
        "/api/v1/payments/webhook",
        content=body,
        headers={"Storeloop-Signature": sign(secret, body, now)},
    )
    assert ok.status_code == 200 and ok.json() == {"received": True}
    replay = client.post(
        "/api/v1/payments/webhook",
        content=body,
        headers={"Storeloop-Signature": sign(secret, body, now)},
    )
    assert replay.json()["duplicate"] is True
    after = customer.get(f"/api/v1/orders/{order['id']}").json()
    assert after["status"] == "refunded"
    assert after["payment"]["refunded_minor"] == order["total_minor"]
    assert _stock(app, pid)["reserved"] == 0


def test_late_success_for_order_cancelled_before_payment_refunds(
    app, client, customer, make_product
):
    """An order cancelled while its charge is in flight gets the charge refunded, not revived."""
    rt = runtime(app)
    pid = make_product(2)
    rt.hooks["crash_after_reserve"] = ""
    try:
        r = None
        with contextlib.suppress(SimulatedCrash):
            place(customer, order_body(tokenise(client), [(pid, 1)]))
    finally:
        rt.hooks.pop("crash_after_reserve")
    assert r is None
    order_id = customer.get("/api/v1/orders").json()["data"][0]["id"]
    customer.post(f"/api/v1/orders/{order_id}/cancel")
    outcome = saga.pay_and_finish(rt, order_id, user_id=0, key=None, events=NoEvents())
    assert outcome.status == 409
    with app.state.components.db.session() as s:
        intent = s.execute(select(SimPaymentIntent)).scalar_one()
        assert intent.amount_refunded == intent.amount_minor
        assert s.scalar(select(Payment.status)) == "refunded"
    assert customer.get(f"/api/v1/orders/{order_id}").json()["status"] == "refunded"


def test_regression_half_made_order_after_crash_recovered_on_restart(
    app, client, customer, make_product
):
    """Stock reserved, no payment, process gone: recovery cancels it and gives stock back."""
    from datetime import timedelta

    from serving.core.clock import reset_simulated_now, set_simulated_now, utcnow

    rt = runtime(app)
    pid = make_product(2)
    rt.hooks["crash_after_reserve"] = ""
    try:
        with contextlib.suppress(SimulatedCrash):
            place(customer, order_body(tokenise(client), [(pid, 2)]), key="crash-key")
    finally:
        rt.hooks.pop("crash_after_reserve")
    assert _stock(app, pid)["reserved"] == 2
    # A retry within the lock is told the first request is still in flight.
    assert place(
        customer, order_body(tokenise(client), [(pid, 2)]), key="crash-key"
    ).status_code in (409, 422)
    token = set_simulated_now(
        utcnow() + timedelta(seconds=rt.settings.checkout_saga_timeout_seconds + 1)
    )
    try:
        report = recovery.run_once(rt)
    finally:
        reset_simulated_now(token)
    assert report["compensated"] == 1
    assert _stock(app, pid)["reserved"] == 0
    order = customer.get("/api/v1/orders").json()["data"][0]
    assert order["status"] == "cancelled" and order["payment"]["status"] == "void"


def test_regression_payment_processed_twice_on_retried_checkout(
    app, client, customer, make_product
):
    """A checkout retried after its request died charges once: the provider key is the order's."""
    from datetime import timedelta

    from serving.core.clock import reset_simulated_now, set_simulated_now, utcnow

    rt = runtime(app)
    pid = make_product(2)
    body = order_body(tokenise(client), [(pid, 1)])
    rt.hooks["crash_after_reserve"] = ""
    try:
        with contextlib.suppress(SimulatedCrash):
            place(customer, body, key="retry-key")
    finally:
        rt.hooks.pop("crash_after_reserve")
    placed = customer.get("/api/v1/orders").json()["data"][0]
    order_id = placed["id"]
    # The dead request had reached the provider: the charge exists under the derived key.
    rt.provider.charge(
        amount_minor=placed["total_minor"],
        currency="EUR",
        payment_method=body["payment_method"],
        idempotency_key=f"{order_id}:charge",
        metadata={"order_id": order_id},
    )
    token = set_simulated_now(utcnow() + timedelta(seconds=5))
    try:
        with app.state.components.db.session(write=True) as s:
            from sqlalchemy import update

            from serving.db.tables.idempotency import IdempotencyKey

            s.execute(update(IdempotencyKey).values(locked_until=utcnow() - timedelta(seconds=1)))
            s.commit()
        r = place(customer, body, key="retry-key")
    finally:
        reset_simulated_now(token)
    assert r.status_code == 201, r.text
    assert r.json()["id"] == order_id
    with app.state.components.db.session() as s:
        assert s.scalar(select(func.count()).select_from(SimPaymentIntent)) == 1
        assert s.scalar(select(Inventory.reserved).where(Inventory.product_id == pid)) == 1


def test_unknown_payment_method_is_422(client, customer, make_product):
    pid = make_product(1)
    r = place(customer, order_body("pm_doesnotexist", [(pid, 1)]), key=uuid.uuid4().hex)
    assert r.status_code == 422
