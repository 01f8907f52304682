"""The quote endpoint and the admin edits behind it, over HTTP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

PROBLEM = "application/problem+json"


def _quote(client, json, headers=None):
    return client.post("/api/v1/checkout/quote", json=json, headers=headers or {})


def test_quote_for_germany_vat_inclusive(client, small_catalog, rates):
    hp1 = small_catalog["products"]["HP-1"]["id"]  # 59.99
    r = _quote(client, {"items": [{"product_id": hp1, "quantity": 1}], "country": "de"})
    assert r.status_code == 200, r.text
    q = r.json()
    assert q["country"] == "DE"
    assert q["goods_minor"] == 5999
    assert q["shipping_speed"] == "standard" and q["shipping_minor"] == 0  # free from 50.00
    assert q["tax"] == {
        "name": "MwSt",
        "mode": "inclusive",
        "rate_ppm": 190_000,
        "base_minor": 5999,
        "included": True,
    }
    assert q["tax_minor"] == 958  # 5999 × 0.19 / 1.19 = 957.8
    assert q["duty_minor"] == 0  # domestic
    assert q["total_minor"] == 5999
    assert [o["speed"] for o in q["shipping_options"]] == ["standard", "express"]


def test_quote_for_the_us_adds_sales_tax_and_duty(client, small_catalog, rates):
    hp2 = small_catalog["products"]["HP-2"]["id"]  # 129.99, default weight 500 g
    r = _quote(
        client,
        {
            "items": [{"product_id": hp2, "quantity": 1}],
            "country": "US",
            "shipping_speed": "express",
        },
    )
    q = r.json()
    assert q["shipping_minor"] == 3999 + 500  # the "*" express row, 1 started kg
    assert q["tax"]["mode"] == "exclusive"
    assert q["tax_minor"] == 1154  # 12999 × 0.08875 = 1153.66, shipping untaxed
    assert q["customs_value_minor"] == 12999
    assert q["duty_minor"] == 650  # 5 % of 12999 = 649.95
    assert q["total_minor"] == 12999 + 4499 + 1154 + 650


def test_weight_from_the_admin_changes_the_price(client, admin, small_catalog, rates):
    sp1 = small_catalog["products"]["SP-1"]["id"]
    r = admin.client.put(
        f"/api/v1/admin/products/{sp1}/weight", json={"weight_g": 2500}, headers=admin.headers
    )
    assert r.status_code == 200
    q = _quote(client, {"items": [{"product_id": sp1, "quantity": 2}], "country": "JP"}).json()
    assert q["weight_g"] == 5000
    assert q["shipping_minor"] == 1499 + 5 * 250
    assert q["tax"]["mode"] == "none" and q["tax_minor"] == 0


def test_editing_a_rate_changes_later_quotes(client, admin, small_catalog, rates):
    hm1 = small_catalog["products"]["HM-1"]["id"]
    body = {"items": [{"product_id": hm1, "quantity": 1}], "country": "FR"}
    assert (
        _quote(client, body).json()["tax_minor"] == 958
    )  # (3999 + 1749 shipping) × 0.2 / 1.2 = 958
    r = admin.client.put(
        "/api/v1/admin/tax-rates/FR",
        json={"name": "TVA", "rate_ppm": 55_000, "mode": "inclusive", "taxes_shipping": False},
        headers=admin.headers,
    )
    assert r.status_code == 200
    assert _quote(client, body).json()["tax_minor"] == 208  # 3999 × 0.055 / 1.055 = 208.5


def test_cart_quote_for_a_guest(client, small_catalog, rates):
    hm1 = small_catalog["products"]["HM-1"]["id"]
    sid = {"X-Session-Id": "guest-session-0000001"}
    r = client.post("/api/v1/cart/items", json={"product_id": hm1, "quantity": 2}, headers=sid)
    assert r.status_code == 200, r.text
    q = _quote(client, {"country": "DE"}, sid).json()
    assert q["goods_minor"] == 7998 and q["lines"][0]["quantity"] == 2


def test_quote_problems(client, small_catalog, rates, customer):
    hp1 = small_catalog["products"]["HP-1"]["id"]
    r = _quote(client, {"items": [{"product_id": hp1, "quantity": 1}]})
    assert r.status_code == 422 and r.headers["content-type"] == PROBLEM
    assert r.json()["code"] == "destination_required"
    r = _quote(client, {"items": [{"product_id": 999_999, "quantity": 1}], "country": "DE"})
    assert r.status_code == 404 and r.headers["content-type"] == PROBLEM
    r = _quote(client, {"country": "DE"}, {"X-Session-Id": "empty-session-000001"})
    assert r.status_code == 422 and r.json()["code"] == "empty"
    r = _quote(client, {"items": [{"product_id": hp1, "quantity": 1}], "country": "D1"})
    assert r.status_code == 422
    r = _quote(
        client,
        {"items": [{"product_id": hp1, "quantity": 1}], "country": "DE", "coupon_code": "NOPE"},
    )
    assert r.status_code == 422 and r.json()["code"] == "coupon_unknown"
    r = _quote(client, {"items": [{"product_id": hp1, "quantity": 1}], "address_id": 5})
    assert r.status_code == 401
    r = customer.post(
        "/api/v1/checkout/quote",
        json={"items": [{"product_id": hp1, "quantity": 1}], "address_id": 5},
    )
    assert r.status_code == 404


def test_no_rate_for_a_destination_is_a_422_once_rates_exist(client, admin, small_catalog):
    hp1 = small_catalog["products"]["HP-1"]["id"]
    body = {"items": [{"product_id": hp1, "quantity": 1}], "country": "AU"}
    # Nothing configured: the shop's one flat standard option (settings), as before.
    q = _quote(client, body).json()
    assert [o["speed"] for o in q["shipping_options"]] == ["standard"]
    assert q["shipping_minor"] == 0  # 59.99 ≥ free_shipping_from_minor (50.00)
    admin.client.put(
        "/api/v1/admin/shipping-rates",
        json={
            "country": "DE",
            "speed": "standard",
            "currency": "EUR",
            "base_minor": 399,
            "min_days": 1,
            "max_days": 2,
        },
        headers=admin.headers,
    )
    r = _quote(client, body)
    assert r.status_code == 422 and r.json()["code"] == "no_shipping_option"


def _coupon(admin, **overrides):
    body = {
        "code": "save10",
        "name": "Ten off",
        "kind": "percent",
        "percent_bp": 1000,
        "currency": "EUR",
    } | overrides
    r = admin.post("/api/v1/admin/promotions", json=body)
    assert r.status_code == 201, r.text
    return r.json()


def test_coupons_in_the_quote(client, admin, small_catalog, rates):
    hp1 = small_catalog["products"]["HP-1"]["id"]
    coupon = _coupon(admin, min_subtotal_minor=5000)
    assert coupon["code"] == "SAVE10"
    body = {"items": [{"product_id": hp1, "quantity": 1}], "country": "DE", "coupon_code": "save10"}
    q = _quote(client, body).json()
    assert q["discount_minor"] == 600  # 599.9
    assert q["discounts"] == [
        {
            "promotion_id": coupon["id"],
            "code": "SAVE10",
            "name": "Ten off",
            "kind": "percent",
            "discount_minor": 600,
        }
    ]
    assert q["shipping_minor"] == 0  # 53.99 left after the coupon, still ≥ 50.00
    hm1 = small_catalog["products"]["HM-1"]["id"]
    r = _quote(client, {**body, "items": [{"product_id": hm1, "quantity": 1}]})
    assert r.status_code == 422 and r.json()["code"] == "coupon_min_spend"


def test_coupon_validity_window(client, admin, small_catalog, rates):
    hp1 = small_catalog["products"]["HP-1"]["id"]
    now = datetime.now(UTC)
    _coupon(admin, code="LATER", starts_at=(now + timedelta(days=1)).isoformat())
    _coupon(
        admin,
        code="GONE",
        ends_at=(now - timedelta(seconds=1)).isoformat(),
        starts_at=(now - timedelta(days=2)).isoformat(),
    )
    for code, problem in (("LATER", "coupon_not_started"), ("GONE", "coupon_expired")):
        r = _quote(
            client,
            {"items": [{"product_id": hp1, "quantity": 1}], "country": "DE", "coupon_code": code},
        )
        assert r.status_code == 422 and r.json()["code"] == problem


def test_automatic_category_promotion(client, admin, small_catalog, rates):
    audio = small_catalog["categories"]["audio"]
    r = admin.post(
        "/api/v1/admin/promotions",
        json={
            "name": "Audio week",
            "kind": "percent",
            "percent_bp": 2000,
            "currency": "EUR",
            "category_id": audio,
        },
    )
    assert r.status_code == 201, r.text
    hp1 = small_catalog["products"]["HP-1"]["id"]
    hm1 = small_catalog["products"]["HM-1"]["id"]
    q = _quote(
        client,
        {
            "items": [{"product_id": hp1, "quantity": 1}, {"product_id": hm1, "quantity": 1}],
            "country": "DE",
        },
    ).json()
    by_product = {ln["product_id"]: ln["discount_minor"] for ln in q["lines"]}
    assert by_product == {hp1: 1200, hm1: 0}  # 20 % of 59.99 = 11.998
    assert q["discounts"][0]["name"] == "Audio week"


def test_admin_endpoints_refuse_customers_and_bad_input(client, admin, customer, small_catalog):
    r = client.put(
        "/api/v1/admin/tax-rates/DE",
        json={"name": "x", "rate_ppm": 1, "mode": "inclusive"},
        headers=customer.headers,
    )
    assert r.status_code == 403 and r.headers["content-type"] == PROBLEM
    assert client.get("/api/v1/admin/promotions").status_code == 401
    bad = [
        ("/api/v1/admin/tax-rates/DE", {"name": "x", "rate_ppm": 1_000_001, "mode": "inclusive"}),
        ("/api/v1/admin/tax-rates/DE", {"name": "x", "rate_ppm": 1, "mode": "sometimes"}),
        ("/api/v1/admin/tax-rates/DE", {"name": "x", "rate_ppm": "19", "mode": "inclusive"}),
    ]
    for url, body in bad:
        r = admin.client.put(url, json=body, headers=admin.headers)
        assert r.status_code == 422 and r.headers["content-type"] == PROBLEM, r.text
    r = admin.client.put(
        "/api/v1/admin/shipping-rates",
        headers=admin.headers,
        json={
            "country": "DE",
            "speed": "standard",
            "currency": "EUR",
            "base_minor": 1,
            "min_days": 5,
            "max_days": 2,
        },
    )
    assert r.status_code == 422
    # automatic promotions need a category; a fixed coupon needs an amount
    r = admin.post(
        "/api/v1/admin/promotions",
        json={"name": "x", "kind": "percent", "percent_bp": 10, "currency": "EUR"},
    )
    assert r.status_code == 422
    r = admin.post(
        "/api/v1/admin/promotions",
        json={"code": "F", "name": "x", "kind": "fixed", "currency": "EUR"},
    )
    assert r.status_code == 422
    _coupon(admin, code="DUP")
    r = admin.post(
        "/api/v1/admin/promotions",
        json={"code": "dup", "name": "x", "kind": "free_shipping", "currency": "EUR"},
    )
    assert r.status_code == 409 and r.json()["code"] == "coupon_code_taken"
    assert (
        admin.client.delete("/api/v1/admin/tax-rates/ZZ", headers=admin.headers).status_code == 404
    )
    assert admin.get("/api/v1/admin/promotions/999").status_code == 404


def test_admin_lists_and_patches(admin, rates):
    assert [r["country"] for r in admin.get("/api/v1/admin/tax-rates").json()] == [
        "DE",
        "FR",
        "GB",
        "US",
    ]
    assert len(admin.get("/api/v1/admin/shipping-rates").json()) == 4
    coupon = _coupon(admin, max_uses=5)
    r = admin.patch(
        f"/api/v1/admin/promotions/{coupon['id']}",
        json={"active": False, "max_uses": None, "name": None},
    )
    assert r.status_code == 200, r.text
    assert (r.json()["active"], r.json()["max_uses"], r.json()["name"]) == (False, None, "Ten off")
    assert (
        admin.client.delete("/api/v1/admin/duty-rates/GB", headers=admin.headers).status_code == 204
    )
    assert [r["country"] for r in admin.get("/api/v1/admin/duty-rates").json()] == ["US"]


def test_one_snapshot_prices_many_orders_like_single_quotes(app, small_catalog, rates):
    """The checkout's batch reads the rate tables once (on its Connection) for all its orders;
    each order's totals equal the quote endpoint's for it."""
    from serving.services.pricing import service, snapshot

    hp1 = small_catalog["products"]["HP-1"]["id"]
    hm1 = small_catalog["products"]["HM-1"]["id"]
    orders = [({hp1: 1}, "DE"), ({hm1: 2}, "US"), ({hp1: 1, hm1: 1}, "GB"), ({hm1: 1}, "JP")]
    now = datetime.now(UTC)
    db = app.state.components.db
    with db.engine.connect() as conn:
        snap = snapshot.load(
            conn,
            app.state.components.settings,
            product_ids=[p for lines, _ in orders for p in lines],
            countries=[c for _, c in orders],
            coupon_codes=[],
            user_ids=[],
            now=now,
        )
    with db.session() as session:
        for lines, country in orders:
            single = service.quote(
                session,
                app.state.components.settings,
                lines=lines,
                country=country,
                speed=None,
                coupon_code=None,
                user_id=None,
                now=now,
            )
            batched = snap.quote(
                lines=lines, country=country, speed=None, coupon_code=None, user_id=None
            )
            assert batched.public() == single.public()
