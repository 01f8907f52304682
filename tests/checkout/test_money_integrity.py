"""Money and quantities: caps, one currency per cart, strict types, no NUL in text.

Each test runs on the database chosen by ``--db`` and, for checkouts, through both the fast
path and the route, since the two must refuse the same things the same way.
"""

from __future__ import annotations

import uuid

import pytest

from serving.app import create_app

from .conftest import ADDRESS, order_body, place, tokenise


@pytest.fixture(params=[True, False], ids=["fast_path", "route"])
def app(request, settings):
    return create_app(settings.model_copy(update={"checkout_fast_path": request.param}))


def _stock(admin, pid: int) -> dict:
    return admin.get(f"/api/v1/inventory/{pid}/movements").json()["stock"]


def test_lines_of_one_product_are_capped_together(admin, client, customer, make_product):
    """Regression (issue 18): ten lines of quantity 1000 for one product merged into one line
    of 10,000 (the cap is 1,000) and were charged. The merged quantity is capped: 422."""
    pid = make_product(20_000, price=2000)
    body = order_body(tokenise(client), [(pid, 1000)] * 10)
    r = place(customer, body)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    problem = r.json()
    assert problem["code"] == "quantity_too_large"
    assert (problem["quantity"], problem["max_quantity"]) == (10_000, 1000)
    assert _stock(admin, pid)["reserved"] == 0
    ok = place(customer, order_body(tokenise(client), [(pid, 400), (pid, 600)]))
    assert ok.status_code == 201, ok.text
    assert [(i["product_id"], i["quantity"]) for i in ok.json()["items"]] == [(pid, 1000)]


def test_an_order_total_above_the_cap_is_refused(app, client, customer, make_product):
    cap = app.state.components.settings.max_order_total_minor
    pid = make_product(10, price=2_000_000_000)  # €20M each: over the €1M default cap
    r = place(customer, order_body(tokenise(client), [(pid, 1)]))
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "order_total_too_large"
    assert r.json()["max_total_minor"] == cap


def test_orders_beyond_32_bits_are_stored_when_the_cap_allows(settings):
    """Regression (issue 18): on PostgreSQL the money columns were 32-bit, so a €20M order was
    an opaque 422. With 64-bit columns (migration 0003) a large total is stored exactly."""
    from fastapi.testclient import TestClient

    big = create_app(settings.model_copy(update={"max_order_total_minor": 10**12}))
    with TestClient(big) as client:
        from serving.services.shop.accounts import create_admin
        from tests.conftest import ShopActor, login

        with big.state.components.db.session(write=True) as session:
            create_admin(session, email="big@example.com", password="admin-password-1")
        admin = ShopActor(
            client,
            "big@example.com",
            "admin-password-1",
            login(client, "big@example.com", "admin-password-1"),
        )
        cat = admin.post("/api/v1/categories", json={"slug": "big", "name": "Big"}).json()["id"]
        pid = admin.post(
            "/api/v1/products",
            json={
                "sku": f"BIG-{uuid.uuid4().hex[:6]}",
                "title": "Yacht",
                "category_id": cat,
                "price_minor": 2_000_000_000,
                "initial_stock": 5,
            },
        ).json()["id"]
        email = f"rich-{uuid.uuid4().hex[:6]}@example.com"
        r = client.post(
            "/api/v1/auth/register",
            json={"email": email, "password": "correct-horse-1", "full_name": "Rich"},
        )
        assert r.status_code == 201, r.text
        buyer = ShopActor(client, email, "", login(client, email, "correct-horse-1"))
        r = place(buyer, order_body(tokenise(client), [(pid, 3)]))
        assert r.status_code == 201, r.text
        order = r.json()
        assert order["total_minor"] == 6_000_000_000
        assert buyer.get(f"/api/v1/orders/{order['id']}").json()["total_minor"] == 6_000_000_000


def test_a_cart_holds_one_currency(admin, client, customer, make_product):
    """Regression (issue 18): EUR 50.00 + USD 15,000.00 showed ``subtotal_minor: 1505000,
    currency: EUR``. A product in another currency is refused; a cart that still ends up mixed
    (re-priced by an admin) shows per-currency subtotals and no sum."""
    eur = make_product(5, price=5000)
    usd = make_product(5, price=1_500_000)
    assert admin.patch(f"/api/v1/products/{usd}", json={"currency": "USD"}).status_code == 200
    first = customer.post("/api/v1/cart/items", json={"product_id": eur, "quantity": 1})
    assert first.status_code == 200, first.text
    r = customer.post("/api/v1/cart/items", json={"product_id": usd, "quantity": 1})
    assert r.status_code == 409, r.text
    assert r.json()["code"] == "currency_mismatch"
    cart = customer.get("/api/v1/cart").json()
    assert (cart["subtotal_minor"], cart["currency"]) == (5000, "EUR")
    assert cart["subtotals"] == [{"currency": "EUR", "subtotal_minor": 5000}]

    other = make_product(5, price=700)
    customer.post("/api/v1/cart/items", json={"product_id": other, "quantity": 1})
    assert admin.patch(f"/api/v1/products/{other}", json={"currency": "USD"}).status_code == 200
    cart = customer.get("/api/v1/cart").json()
    assert cart["subtotal_minor"] is None and cart["currency"] is None
    assert cart["subtotals"] == [
        {"currency": "EUR", "subtotal_minor": 5000},
        {"currency": "USD", "subtotal_minor": 700},
    ]


def test_a_guest_cart_in_another_currency_is_not_merged(admin, client, make_customer, make_product):
    eur = make_product(5, price=5000)
    usd = make_product(5, price=900)
    admin.patch(f"/api/v1/products/{usd}", json={"currency": "USD"})
    shopper = make_customer()
    shopper.post("/api/v1/cart/items", json={"product_id": eur, "quantity": 1})
    guest = {"X-Session-Id": "guest-" + uuid.uuid4().hex}
    r = client.post("/api/v1/cart/items", json={"product_id": usd, "quantity": 2}, headers=guest)
    assert r.status_code == 200, r.text
    token = client.post(
        "/api/v1/auth/token",
        data={"username": shopper.email, "password": shopper.password},
        headers=guest,
    ).json()
    assert token["cart_merge"]["cart_dropped"] == [{"product_id": usd, "currency": "USD"}]
    cart = shopper.get("/api/v1/cart").json()
    assert [i["product_id"] for i in cart["items"]] == [eur]


@pytest.mark.parametrize("value", ["2", True, 2.0, "1e3"])
def test_quantities_and_money_are_strict_integers(admin, client, customer, make_product, value):
    """Regression (issue 18): ``"quantity": "2"`` and ``"quantity": true`` were accepted."""
    pid = make_product(5)
    body = order_body(tokenise(client))
    body["items"] = [{"product_id": pid, "quantity": value}]
    r = place(customer, body)
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["loc"][-1] == "quantity"
    r = customer.post("/api/v1/cart/items", json={"product_id": pid, "quantity": value})
    assert r.status_code == 422, r.text
    r = customer.post("/api/v1/cart/items", json={"product_id": str(pid), "quantity": 1})
    assert r.status_code == 422, r.text
    r = admin.patch(f"/api/v1/products/{pid}", json={"price_minor": value})
    assert r.status_code == 422, r.text
    assert _stock(admin, pid)["reserved"] == 0


def test_nul_characters_in_text_are_refused_alike_on_every_database(
    admin, client, customer, make_product
):
    """Regression (issue 18): NUL was stored on SQLite and refused with a misleading 422 on
    PostgreSQL. Both now refuse it before storage, naming the field and the reason."""
    pid = make_product(5)
    address = {**ADDRESS, "name": "Ada\u0000Shopper"}
    body = {
        "shipping_address": address,
        "payment_method": tokenise(client),
        "items": [{"product_id": pid, "quantity": 1}],
    }
    cases = [
        place(customer, body),
        admin.patch(f"/api/v1/products/{pid}", json={"title": "Lamp\u0000"}),
        customer.post(f"/api/v1/products/{pid}/reviews", json={"rating": 5, "body": "x\u0000"}),
        client.post(
            "/api/v1/auth/register",
            json={"email": "nul@example.com", "password": "correct-horse-1", "full_name": "\u0000"},
        ),
    ]
    for r in cases:
        assert r.status_code == 422, r.text
        assert r.headers["content-type"] == "application/problem+json"
        assert any("NUL" in e["msg"] for e in r.json()["errors"]), r.json()
    assert _stock(admin, pid)["reserved"] == 0


def test_a_cart_line_is_capped_like_an_order_line(client, customer, make_product):
    """Adding to a cart line one unit at a time cannot grow it past the per-line cap either."""
    pid = make_product(5000)
    r = customer.post("/api/v1/cart/items", json={"product_id": pid, "quantity": 1000})
    assert r.status_code == 200, r.text
    r = customer.post("/api/v1/cart/items", json={"product_id": pid, "quantity": 1})
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "quantity_too_large"
    assert customer.get("/api/v1/cart").json()["item_count"] == 1000
