"""API1/API5 for the marketplace: a seller reaches only their own products, stock, order lines
and parcels; another seller's (or the platform's) look like nothing at all (404, no data), and
a customer or an anonymous caller reaches no seller route. Routes are enumerated from the app,
so a new seller route is covered without editing this test."""

from __future__ import annotations

from tests.aftersales.conftest import seller_product, settle
from tests.checkout.conftest import order_body, place, tokenise
from tests.security.conftest import route_operations

PATCH_BODY = {"title": "Hijacked", "price_minor": 1}


def _seller_routes(app) -> list[tuple[str, str]]:
    return sorted((m, p) for m, p in route_operations(app) if p.startswith("/api/v1/seller"))


def test_api1_a_seller_cannot_touch_another_sellers_products_or_stock(
    client, admin, make_seller, make_product, category
):
    alice, mallory = make_seller(), make_seller()
    pa = seller_product(alice, category, stock=5, price=1000)
    own = make_product(5)
    for target in (pa, own):
        r = mallory.patch(f"/api/v1/seller/products/{target}", json=PATCH_BODY)
        assert r.status_code == 404, r.text
        assert r.headers["content-type"] == "application/problem+json"
        r = mallory.post(f"/api/v1/seller/products/{target}/stock", json={"delta": -5})
        assert r.status_code == 404
    assert mallory.get("/api/v1/seller/products").json()["data"] == []
    product = client.get(f"/api/v1/products/{pa}").json()
    assert product["title"] != "Hijacked" and product["price_minor"] == 1000
    assert product["stock"]["on_hand"] == 5
    # Her own product, the same routes work.
    r = alice.patch(f"/api/v1/seller/products/{pa}", json={"price_minor": 1200})
    assert r.status_code == 200 and r.json()["price_minor"] == 1200


def test_api1_a_seller_sees_only_their_own_lines_of_a_shared_order(
    client, admin, customer, make_seller, category
):
    alice, bob, mallory = make_seller(), make_seller(), make_seller()
    pa = seller_product(alice, category)
    pb = seller_product(bob, category)
    order = place(customer, order_body(tokenise(client), [(pa, 1), (pb, 1)])).json()
    settle(admin)
    a = alice.get(f"/api/v1/seller/orders/{order['id']}").json()
    assert {line["product_id"] for line in a["lines"]} == {pa}
    # Mallory has no line in the order: every order route is 404 and leaks nothing.
    for method, path in _seller_routes(client.app):
        if "{order_id}" not in path:
            continue
        r = mallory.client.request(
            method, path.replace("{order_id}", order["id"]), headers=mallory.headers
        )
        assert r.status_code == 404, (method, path, r.status_code)
        assert "shipping_address" not in r.text and "tracking_number" not in r.text
    assert mallory.get("/api/v1/seller/orders").json()["data"] == []
    assert mallory.get("/api/v1/seller/ledger").json()["owed_minor"] == 0
    # Bob cannot ship Alice's parcel by naming the order: his own parcel ships, hers does not.
    assert bob.post(f"/api/v1/seller/orders/{order['id']}/ship").status_code == 200
    assert alice.get(f"/api/v1/seller/orders/{order['id']}").json()["parcel"]["status"] == (
        "label_created"
    )


def test_api5_customers_and_anonymous_callers_reach_no_seller_route(client, customer):
    for method, path in _seller_routes(client.app):
        url = path.replace("{product_id}", "1").replace("{order_id}", "ord_0000000000")
        body = {} if method in {"POST", "PATCH", "PUT"} else None
        r = customer.client.request(method, url, headers=customer.headers, json=body)
        assert r.status_code == 403, (method, path, r.status_code)
        assert r.headers["content-type"] == "application/problem+json"
        r = client.request(method, url, json=body)
        assert r.status_code == 401, (method, path, r.status_code)


def test_api3_a_seller_cannot_name_an_owner_or_backdate(client, make_seller, category):
    alice = make_seller()
    body = {
        "sku": "SL-OWNER-1",
        "title": "Mine",
        "category_id": category,
        "price_minor": 100,
        "seller_id": 999,
    }
    assert alice.post("/api/v1/seller/products", json=body).status_code == 422
    del body["seller_id"]
    body["created_at"] = "2020-01-01T00:00:00Z"
    assert alice.post("/api/v1/seller/products", json=body).status_code == 403
