"""Sellers: own products and stock, one payment for a multi-seller order, a parcel per seller,
commission and the payout ledger (net of refunds and commission)."""

from __future__ import annotations

from sqlalchemy import select

from serving.db.tables import Inventory, StockMovement
from serving.db.tables.marketplace import SellerLedgerEntry
from serving.services.marketplace.fulfilment import commission_of
from serving.services.shop import inventory
from tests.aftersales.conftest import deliver, seller_product, settle
from tests.checkout.conftest import order_body, place, tokenise
from tests.conftest import login


def _ledger(actor) -> dict:
    r = actor.get("/api/v1/seller/ledger")
    assert r.status_code == 200, r.text
    return r.json()


def test_commission_rounds_half_up_in_minor_units():
    assert commission_of(1999, 1000) == 200  # 199.9 → 200
    assert commission_of(1995, 1000) == 200  # 199.5 → 200 (half up)
    assert commission_of(1994, 1000) == 199
    assert commission_of(0, 1000) == 0
    assert commission_of(12345, 0) == 0


def test_multi_seller_order_is_one_payment_and_a_parcel_per_seller(
    app, client, admin, customer, make_seller, make_product, category
):
    alice, bob = make_seller(1000), make_seller(1500)
    pa = seller_product(alice, category, price=1999)
    pb = seller_product(bob, category, price=3000)
    own = make_product(5, price=500)  # the platform's own product
    r = place(customer, order_body(tokenise(client), [(pa, 2), (pb, 1), (own, 1)]))
    assert r.status_code == 201, r.text
    order = r.json()
    assert order["payment"]["status"] == "succeeded"
    assert order["total_minor"] >= 2 * 1999 + 3000 + 500

    # The checkout opened both sellers' parcels with the order's label: no pass needed
    # (test_parcels_at_checkout.py), and the pass books nothing twice.
    assert settle(admin)["parcels_opened"] == 0

    a_view = alice.get(f"/api/v1/seller/orders/{order['id']}").json()
    assert [line["product_id"] for line in a_view["lines"]] == [pa]
    assert a_view["subtotal_minor"] == 2 * 1999
    assert a_view["parcel"]["status"] == "label_created"
    assert "payment" not in a_view and "total_minor" not in a_view
    b_view = bob.get(f"/api/v1/seller/orders/{order['id']}").json()
    assert [line["product_id"] for line in b_view["lines"]] == [pb]
    assert a_view["parcel"]["tracking_number"] != b_view["parcel"]["tracking_number"]

    a = _ledger(alice)
    assert a["by_kind"] == {"sale": 3998, "commission": -400}
    assert a["owed_minor"] == 3598
    b = _ledger(bob)
    assert b["by_kind"] == {"sale": 3000, "commission": -450}

    r = alice.post(f"/api/v1/seller/orders/{order['id']}/ship")
    assert r.status_code == 200 and r.json()["parcel"]["status"] == "shipped"
    r = alice.post(f"/api/v1/seller/orders/{order['id']}/ship")
    assert r.status_code == 409 and r.json()["type"].endswith("parcel-not-shippable")
    deliver(admin, order["id"])
    settle(admin)
    assert alice.get(f"/api/v1/seller/orders/{order['id']}").json()["parcel"]["status"] == (
        "delivered"
    )
    # The seller's stock is the shop's stock ledger: sold units left on_hand, books balance.
    with app.state.components.db.session() as s:
        stock = inventory.stock_of(s, pa)
        assert stock == {"on_hand": 8, "reserved": 0, "available": 8}
        assert inventory.movement_totals(s, pa) == {"on_hand": 8, "reserved": 0}


def test_cancelled_order_reverses_the_sellers_sale_and_commission(
    admin, client, customer, make_seller, category
):
    alice = make_seller(1000)
    pa = seller_product(alice, category, price=2500)
    order = place(customer, order_body(tokenise(client), [(pa, 1)])).json()
    settle(admin)
    assert _ledger(alice)["owed_minor"] == 2250
    r = customer.post(f"/api/v1/orders/{order['id']}/cancel")
    assert r.status_code == 200, r.text
    # Compensation undoes the sellers' sale in the cancel's own transaction, no pass needed.
    ledger = _ledger(alice)
    assert ledger["owed_minor"] == 0
    assert ledger["by_kind"] == {
        "sale": 2500,
        "commission": -250,
        "refund": -2500,
        "commission_refund": 250,
    }
    assert alice.get(f"/api/v1/seller/orders/{order['id']}").json()["parcel"]["status"] == (
        "cancelled"
    )
    assert settle(admin)["orders_reversed"] == 0


def test_payout_pays_the_balance_once(admin, client, customer, make_seller, category, app):
    alice = make_seller(1000)
    pa = seller_product(alice, category, price=1000)
    place(customer, order_body(tokenise(client), [(pa, 3)]))
    settle(admin)
    r = admin.post(f"/api/v1/admin/sellers/{alice.seller_id}/payouts")
    assert r.status_code == 200 and r.json() == {
        "seller_id": alice.seller_id,
        "paid_minor": 2700,
        "payout_no": 1,
    }
    r = admin.post(f"/api/v1/admin/sellers/{alice.seller_id}/payouts")
    assert r.status_code == 409 and r.headers["content-type"] == "application/problem+json"
    assert _ledger(alice)["owed_minor"] == 0
    with app.state.components.db.session() as s:
        refs = list(s.scalars(select(SellerLedgerEntry.ref).order_by(SellerLedgerEntry.id)))
    assert refs[-1] == f"payout:{alice.seller_id}:1"


def test_seller_stock_changes_are_movements_of_the_same_ledger(app, make_seller, category):
    alice = make_seller()
    pa = seller_product(alice, category, stock=4)
    r = alice.post(f"/api/v1/seller/products/{pa}/stock", json={"delta": 6, "reason": "restock"})
    assert r.status_code == 200 and r.json()["on_hand"] == 10
    r = alice.post(f"/api/v1/seller/products/{pa}/stock", json={"delta": -11})
    assert r.status_code == 409
    with app.state.components.db.session() as s:
        assert s.get(Inventory, pa).on_hand == 10
        reasons = list(
            s.scalars(
                select(StockMovement.reason)
                .where(StockMovement.product_id == pa)
                .order_by(StockMovement.id)
            )
        )
    assert reasons == ["initial", "restock"]
    listed = alice.get("/api/v1/seller/products").json()
    assert [p["id"] for p in listed["data"]] == [pa]
    assert listed["data"][0]["stock"]["on_hand"] == 10


def test_only_customers_become_sellers_and_admin_only(admin, make_customer, customer):
    me = customer.get("/api/v1/me").json()["id"]
    r = customer.post(
        "/api/v1/admin/sellers", json={"user_id": me, "display_name": "Me", "commission_bps": 0}
    )
    assert r.status_code == 403
    r = admin.post("/api/v1/admin/sellers", json={"user_id": me, "display_name": "Shop"})
    assert r.status_code == 201
    r = admin.post("/api/v1/admin/sellers", json={"user_id": me, "display_name": "Again"})
    assert r.status_code == 409
    r = admin.post(
        "/api/v1/admin/sellers",
        json={"user_id": me, "display_name": "X", "commission_bps": 10_001},
    )
    assert r.status_code == 422
    r = admin.post("/api/v1/admin/sellers", json={"user_id": 2**31 - 2, "display_name": "Nobody"})
    assert r.status_code == 404


def test_fulfilment_opens_the_sellers_parcels_in_its_own_transaction(
    app, client, customer, make_seller, category
):
    """The saga's general fulfilment step (webhook, recovery, fraud release) books the sellers'
    parcels and sale with the order's label, before any pass runs."""
    from sqlalchemy import delete, update

    from serving.db.tables.orders import Order
    from serving.db.tables.shipping import Shipment, ShipmentEvent
    from serving.services.checkout import steps

    alice = make_seller(1000)
    pa = seller_product(alice, category, price=3000)
    order = place(customer, order_body(tokenise(client), [(pa, 1)])).json()
    db = app.state.components.db
    with db.session(write=True) as s:  # back to "paid, not labelled", as a webhook finds it
        shipment = select(Shipment.id).where(Shipment.order_id == order["id"])
        s.execute(delete(ShipmentEvent).where(ShipmentEvent.shipment_id.in_(shipment)))
        s.execute(delete(Shipment).where(Shipment.order_id == order["id"]))
        s.execute(update(Order).where(Order.id == order["id"]).values(status="paid"))
        s.commit()
    with db.session(write=True) as s:
        steps.fulfil(s, order_id=order["id"])
        s.commit()
    view = alice.get(f"/api/v1/seller/orders/{order['id']}").json()
    assert view["status"] == "fulfilled" and view["parcel"]["status"] == "label_created"
    assert _ledger(alice)["by_kind"] == {"sale": 3000, "commission": -300}


def test_a_seller_signs_in_again_and_keeps_using_the_seller_routes(client, make_seller, category):
    """A sign-in after becoming a seller mints a token with the role ``seller``; it used to
    be refused on every request ("Invalid access token"), so a seller could never sign in."""
    alice = make_seller(1000)
    pid = seller_product(alice, category, price=1200)
    token = login(client, alice.email, alice.password)
    r = client.get("/api/v1/seller/products", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    assert [p["id"] for p in r.json()["data"]] == [pid]
    r = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200 and r.json()["role"] == "seller"


def test_admin_hands_existing_products_to_a_seller_all_or_nothing(
    admin, make_seller, make_product, category
):
    alice, bob = make_seller(1000), make_seller(800)
    own, other = make_product(5), make_product(5)
    path = f"/api/v1/admin/sellers/{alice.seller_id}/products"
    r = admin.post(path, json={"product_ids": [own, other]})
    assert r.status_code == 200 and r.json() == {
        "seller_id": alice.seller_id,
        "assigned": 2,
        "kept": 0,
    }
    assert admin.post(path, json={"product_ids": [own]}).json()["kept"] == 1
    # Another seller's product is a 409, an unknown one a 404, and then nothing is assigned.
    third = make_product(5)
    r = admin.post(
        f"/api/v1/admin/sellers/{bob.seller_id}/products", json={"product_ids": [third, own]}
    )
    assert r.status_code == 409 and r.json()["product_ids"] == [own]
    r = admin.post(
        f"/api/v1/admin/sellers/{bob.seller_id}/products", json={"product_ids": [third, 999_999]}
    )
    assert r.status_code == 404
    assert bob.get("/api/v1/seller/products").json()["count"] == 0
    assert [p["id"] for p in alice.get("/api/v1/seller/products").json()["data"]] == [own, other]
    r = admin.get("/api/v1/admin/sellers")
    assert r.status_code == 200
    rows = {row["id"]: row for row in r.json()["data"]}
    assert rows[alice.seller_id]["products"] == 2 and rows[bob.seller_id]["products"] == 0
