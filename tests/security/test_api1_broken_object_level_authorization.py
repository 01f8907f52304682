"""API1:2023 Broken Object Level Authorization: nobody reaches another user's objects.

Orders of others are 404 (not 403: the id's existence is not confirmed); carts are keyed by the
caller, never by an id in the request; reviews have no per-object write routes at all.
``tests/checkout/test_checkout_api.py::test_orders_need_sign_in_and_are_private`` covers GET and
cancel of another's order; this adds the list, every order route and the other objects.
"""

from __future__ import annotations

from tests.checkout.conftest import order_body, place, tokenise
from tests.security.conftest import route_operations


def test_api1_other_users_order_is_404_on_every_order_route(client, make_customer, make_product):
    pid = make_product(5)
    alice, bob = make_customer(), make_customer()
    order = place(alice, order_body(tokenise(client), [(pid, 1)]))
    assert order.status_code == 201, order.text
    oid = order.json()["id"]
    for method, path in sorted(route_operations(client.app)):
        if not path.startswith("/api/v1/orders/{order_id}"):
            continue
        url = path.replace("{order_id}", oid)
        r = bob.client.request(method, url, headers=bob.headers)
        assert r.status_code == 404, (method, path, r.status_code)
        assert "total_minor" not in r.text and "shipping_address" not in r.text
    assert bob.get("/api/v1/orders").json()["data"] == []
    # Alice's order is untouched by Bob's attempts.
    assert alice.get(f"/api/v1/orders/{oid}").json()["status"] == "fulfilled"


def test_api1_cart_is_the_callers_own(client, make_customer, make_product):
    pid = make_product(5)
    alice, bob = make_customer(), make_customer()
    assert (
        alice.post("/api/v1/cart/items", json={"product_id": pid, "quantity": 2}).status_code == 200
    )
    assert bob.get("/api/v1/cart").json()["items"] == []
    # Bob cannot change or remove Alice's line: in his cart it does not exist.
    assert bob.patch(f"/api/v1/cart/items/{pid}", json={"quantity": 5}).status_code == 404
    assert bob.delete(f"/api/v1/cart/items/{pid}").status_code == 404
    # No owner can be named in the body.
    r = bob.post("/api/v1/cart/items", json={"product_id": pid, "owner": "u:1", "user_id": 1})
    assert r.status_code == 422
    assert alice.get("/api/v1/cart").json()["items"][0]["quantity"] == 2


def test_api1_guest_cart_cannot_be_addressed_as_an_account_cart(client, customer, make_product):
    pid = make_product(5)
    customer.post("/api/v1/cart/items", json={"product_id": pid, "quantity": 1})
    # A session id shaped like an account key is refused and a fresh one minted instead.
    for forged in ("u:1", "u%3A1", "../u:1", "s:abc"):
        r = client.get("/api/v1/cart", headers={"X-Session-Id": forged})
        assert r.status_code == 200
        assert r.json()["items"] == []
        assert r.headers.get("x-session-id") not in (None, forged)


def test_api1_reviews_have_no_per_object_write_routes_and_are_attributed_by_token(
    client, make_customer, make_product
):
    review_writes = {
        (m, p)
        for m, p in route_operations(client.app)
        if "/reviews" in p and m in {"PUT", "PATCH", "DELETE"}
    }
    # If edit/delete routes are added, this test must grow ownership checks for them.
    assert review_writes == set()
    pid = make_product(1)
    alice, bob = make_customer(), make_customer()
    r = alice.post(f"/api/v1/products/{pid}/reviews", json={"rating": 5, "title": "Great"})
    assert r.status_code == 201
    alice_id = r.json()["user_id"]
    # Bob cannot post as Alice.
    r = bob.post(f"/api/v1/products/{pid}/reviews", json={"rating": 1, "user_id": alice_id})
    assert r.status_code == 422


def test_api1_recommendations_of_another_user_are_refused(client, make_customer):
    alice, bob = make_customer(), make_customer()
    alice_id = alice.get("/api/v1/me").json()["id"]
    assert bob.get(f"/api/v1/recommendations/users/{alice_id}").status_code == 403
    assert client.get(f"/api/v1/recommendations/users/{alice_id}").status_code == 401
    assert alice.get(f"/api/v1/recommendations/users/{alice_id}").status_code == 200
