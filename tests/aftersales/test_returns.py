"""Returns: within the window of a delivered order, partial, authorized, received (restock or
write-off in the stock ledger), refunded once through the provider; the sellers' ledger too."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from serving.db.tables import StockMovement
from serving.db.tables.aftersales import ReturnRequest
from serving.db.tables.orders import OrderTransition
from serving.db.tables.payments import SimPaymentIntent, SimRefund
from serving.services.aftersales import returns
from serving.services.aftersales.runtime import aftersales_runtime
from serving.services.shop import inventory
from tests.aftersales.conftest import deliver, seller_product, settle
from tests.checkout.conftest import order_body, place, tokenise


def _delivered_order(client, admin, customer, items):
    r = place(customer, order_body(tokenise(client), items))
    assert r.status_code == 201, r.text
    order = r.json()
    deliver(admin, order["id"])
    return order


def test_partial_return_restocks_writes_off_and_refunds_once(
    app, client, admin, customer, make_product, make_seller, category
):
    alice = make_seller(1000)
    pa = seller_product(alice, category, stock=5, price=2000)
    own = make_product(5, price=700)
    order = _delivered_order(client, admin, customer, [(pa, 3), (own, 2)])
    settle(admin)
    r = customer.post(
        "/api/v1/returns",
        json={"order_id": order["id"]}
        | {
            "lines": [{"product_id": pa, "quantity": 2}, {"product_id": own, "quantity": 1}],
            "reason": "too big",
        },
    )
    assert r.status_code == 201, r.text
    ret = r.json()
    assert ret["status"] == "requested" and ret["amount_minor"] == 2 * 2000 + 700
    # Not more than was ordered, counting this open return.
    r = customer.post(
        "/api/v1/returns",
        json={"order_id": order["id"]} | {"lines": [{"product_id": pa, "quantity": 2}]},
    )
    assert r.status_code == 409 and r.json()["returnable"] == 1
    # Receiving before authorizing is refused; authorize, then receive.
    r = admin.post(f"/api/v1/admin/returns/{ret['id']}/receive", json={"lines": []})
    assert r.status_code == 409
    assert admin.post(f"/api/v1/admin/returns/{ret['id']}/authorize").status_code == 200
    r = admin.post(
        f"/api/v1/admin/returns/{ret['id']}/receive",
        json={"lines": [{"product_id": own, "disposition": "write_off"}]},
    )
    assert r.status_code == 200, r.text
    done = r.json()
    assert done["status"] == "refunded" and done["refunded_minor"] == 4700
    assert {line["product_id"]: line["disposition"] for line in done["lines"]} == {
        pa: "restock",
        own: "write_off",
    }
    with app.state.components.db.session() as s:
        assert inventory.stock_of(s, pa)["on_hand"] == 5 - 3 + 2
        assert inventory.stock_of(s, own)["on_hand"] == 5 - 2
        assert inventory.movement_totals(s, pa)["on_hand"] == 4
        assert inventory.movement_totals(s, own)["on_hand"] == 3
        reasons = set(
            s.scalars(select(StockMovement.reason).where(StockMovement.order_id == order["id"]))
        )
        assert {"return_restock", "return_write_off"} <= reasons
        refunds = s.scalars(select(SimRefund.amount_minor)).all()
        assert refunds == [4700]
    shown = customer.get(f"/api/v1/orders/{order['id']}").json()
    assert shown["payment"]["refunded_minor"] == 4700
    # The seller gives back the refunded sale and gets back the commission on it.
    ledger = alice.get("/api/v1/seller/ledger").json()
    assert ledger["by_kind"] == {
        "sale": 6000,
        "commission": -600,
        "refund": -4000,
        "commission_refund": 400,
    }
    # A second refund pass changes nothing (the return is refunded; the key is spent).
    rt = aftersales_runtime(app)
    assert returns.refund(rt.db, rt.provider, return_id=ret["id"]) is True
    with app.state.components.db.session() as s:
        assert s.scalars(select(SimRefund.amount_minor)).all() == [4700]


def test_crash_between_receiving_and_refunding_is_finished_once(
    app, client, admin, customer, make_product
):
    pid = make_product(5, price=1500)
    order = _delivered_order(client, admin, customer, [(pid, 2)])
    ret = customer.post(
        "/api/v1/returns",
        json={"order_id": order["id"]} | {"lines": [{"product_id": pid, "quantity": 1}]},
    ).json()
    admin.post(f"/api/v1/admin/returns/{ret['id']}/authorize")
    rt = aftersales_runtime(app)
    rt.provider.inner.down = True  # the provider is unreachable when the parcel arrives
    try:
        r = admin.post(f"/api/v1/admin/returns/{ret['id']}/receive", json={})
        assert r.status_code == 200 and r.json()["status"] == "received"
    finally:
        rt.provider.inner.down = False
    # The shop's own after-sales pass (every 30 s) may get there first, or run at the same
    # time; either way the return is refunded exactly once (the refund rows below).
    assert returns.finish_received(rt.db, rt.provider) in (0, 1)
    assert returns.finish_received(rt.db, rt.provider) == 0
    assert customer.get(f"/api/v1/returns/{ret['id']}").json()["status"] == "refunded"
    with app.state.components.db.session() as s:
        assert s.scalars(select(SimRefund.amount_minor)).all() == [1500]
        intent = s.scalar(select(SimPaymentIntent.amount_refunded))
        assert intent == 1500


def test_returns_need_a_delivered_order_inside_the_window(
    app, client, admin, customer, make_customer, make_product
):
    pid = make_product(5)
    pm = tokenise(client)
    fresh = place(customer, order_body(pm, [(pid, 1)])).json()
    r = customer.post(
        "/api/v1/returns",
        json={"order_id": fresh["id"]} | {"lines": [{"product_id": pid, "quantity": 1}]},
    )
    assert r.status_code == 409 and r.json()["type"].endswith("not-returnable")
    order = _delivered_order(client, admin, customer, [(pid, 1)])
    # Someone else's order does not exist for them.
    other = make_customer()
    r = other.post(
        "/api/v1/returns",
        json={"order_id": order["id"]} | {"lines": [{"product_id": pid, "quantity": 1}]},
    )
    assert r.status_code == 404
    r = customer.post(
        "/api/v1/returns",
        json={"order_id": order["id"]} | {"lines": [{"product_id": pid + 1000, "quantity": 1}]},
    )
    assert r.status_code == 422
    # Delivered 31 days ago: the window is closed.
    with app.state.components.db.session(write=True) as s:
        long_ago = returns.delivered_at(s, order["id"]) - timedelta(days=31)
        s.execute(
            update(OrderTransition)
            .where(OrderTransition.order_id == order["id"])
            .values(created_at=long_ago)
        )
        s.commit()
    r = customer.post(
        "/api/v1/returns",
        json={"order_id": order["id"]} | {"lines": [{"product_id": pid, "quantity": 1}]},
    )
    assert r.status_code == 409 and r.json()["type"].endswith("return-window-closed")
    with app.state.components.db.session() as s:
        assert s.scalar(select(ReturnRequest.id)) is None


def test_rejected_return_frees_its_units_and_customers_see_only_their_returns(
    client, admin, customer, make_customer, make_product
):
    pid = make_product(5)
    order = _delivered_order(client, admin, customer, [(pid, 1)])
    body = {"lines": [{"product_id": pid, "quantity": 1}]}
    ret = customer.post("/api/v1/returns", json={"order_id": order["id"]} | body).json()
    other = make_customer()
    assert other.get(f"/api/v1/returns/{ret['id']}").status_code == 404
    assert other.get("/api/v1/returns").json()["data"] == []
    assert customer.post(f"/api/v1/admin/returns/{ret['id']}/reject").status_code == 403
    assert admin.post(f"/api/v1/admin/returns/{ret['id']}/reject").json()["status"] == "rejected"
    again = customer.post("/api/v1/returns", json={"order_id": order["id"]} | body)
    assert again.status_code == 201
