"""Checkout with pricing: totals computed once and charged as one amount, coupon limits under
50 parallel orders on a real server, and compensation that gives a coupon's use back.

Every race checks the books afterwards: no coupon use beyond its limit, stock reserved only for
live orders, and no charge without an order (every provider intent belongs to a charged one).
"""

from __future__ import annotations

import secrets
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import func, insert, select

from devtools.shop_db import Shop
from serving.db.tables import Inventory, Promotion, PromotionRedemption, TaxRate
from serving.db.tables.orders import Order
from serving.db.tables.payments import SimPaymentIntent

from ..conftest import truncate_all
from .conftest import ADDRESS, order_body, place, tokenise
from .server import Server

PROBLEM = "application/problem+json"


# ------------------------------------------------------------------ in-process (TestClient)


def _quote(actor, body: dict) -> dict:
    q = {k: v for k, v in body.items() if k in ("items", "shipping_speed", "coupon_code")}
    r = actor.post(
        "/api/v1/checkout/quote", json={**q, "country": body["shipping_address"]["country"]}
    )
    assert r.status_code == 200, r.text
    return r.json()


def _tax(admin, country: str, **body) -> None:
    r = admin.client.put(f"/api/v1/admin/tax-rates/{country}", json=body, headers=admin.headers)
    assert r.status_code == 200, r.text


def _coupon(admin, **body) -> dict:
    r = admin.post("/api/v1/admin/promotions", json={"name": "c", "currency": "EUR", **body})
    assert r.status_code == 201, r.text
    return r.json()


def test_international_order_with_coupon_is_charged_its_quoted_total(
    app, admin, customer, make_product
):
    pid = make_product(stock=5, price=12999)
    _tax(admin, "US", name="Sales tax", rate_ppm=88_750, mode="exclusive", taxes_shipping=False)
    r = admin.client.put(
        "/api/v1/admin/duty-rates/US",
        json={"rate_ppm": 50_000, "de_minimis_minor": 0, "currency": "EUR"},
        headers=admin.headers,
    )
    assert r.status_code == 200
    _coupon(admin, code="WELCOME", kind="percent", percent_bp=1000)
    body = {
        **order_body(tokenise(customer.client), [(pid, 1)]),
        "shipping_address": {**ADDRESS, "country": "US"},
        "coupon_code": "welcome",
    }
    quoted = _quote(customer, body)
    assert quoted["tax_minor"] > 0 and quoted["duty_minor"] > 0 and quoted["discount_minor"] > 0
    r = place(customer, body)
    assert r.status_code == 201, r.text
    order = r.json()
    assert order["total_minor"] == quoted["total_minor"]
    assert order["subtotal_minor"] == quoted["goods_minor"]
    assert order["shipping_minor"] == quoted["shipping_minor"]
    charges = customer.get(f"/api/v1/orders/{order['id']}/charges").json()
    assert {
        k: charges[k] for k in ("tax_minor", "duty_minor", "discount_minor", "total_minor")
    } == {k: quoted[k] for k in ("tax_minor", "duty_minor", "discount_minor", "total_minor")}
    with app.state.components.db.session() as s:  # charged as one amount: the provider's intent
        amounts = s.execute(select(SimPaymentIntent.amount_minor)).scalars().all()
    assert amounts == [quoted["total_minor"]]


def test_batched_order_fixes_its_charges(app, admin, customer, make_product):
    """No coupon: the order may go through the batch, which writes the same charges."""
    pid = make_product(stock=5, price=2500)
    _tax(admin, "PT", name="IVA", rate_ppm=230_000, mode="inclusive")
    body = order_body(tokenise(customer.client), [(pid, 1)])
    quoted = _quote(customer, body)
    r = place(customer, body)
    assert r.status_code == 201, r.text
    assert r.json()["total_minor"] == quoted["total_minor"] == 2500 + 499  # VAT inside
    charges = customer.get(f"/api/v1/orders/{r.json()['id']}/charges").json()
    assert charges["tax_mode"] == "inclusive"
    assert charges["tax_minor"] == quoted["tax_minor"] == 561  # 2999 × 0.23 / 1.23 = 560.8


def test_no_shipping_option_leaves_nothing_behind_and_the_key_free(
    app, admin, customer, make_product
):
    pid = make_product(stock=3)
    admin.client.put(
        "/api/v1/admin/shipping-rates",
        headers=admin.headers,
        json={
            "country": "DE",
            "speed": "standard",
            "currency": "EUR",
            "base_minor": 399,
            "min_days": 1,
            "max_days": 2,
        },
    )
    body = order_body(tokenise(customer.client), [(pid, 1)])  # to PT: no option
    key = uuid.uuid4().hex
    r = place(customer, body, key)
    assert r.status_code == 422 and r.headers["content-type"] == PROBLEM
    assert r.json()["code"] == "no_shipping_option"
    with app.state.components.db.session() as s:
        assert s.scalar(select(func.count()).select_from(Order)) == 0
        assert s.scalar(select(Inventory.reserved).where(Inventory.product_id == pid)) == 0
        assert s.scalar(select(func.count()).select_from(SimPaymentIntent)) == 0
    admin.client.put(
        "/api/v1/admin/shipping-rates",
        headers=admin.headers,
        json={
            "country": "*",
            "speed": "standard",
            "currency": "EUR",
            "base_minor": 999,
            "min_days": 3,
            "max_days": 9,
        },
    )
    r = place(customer, body, key)  # the same key: it was never claimed
    assert r.status_code == 201, r.text
    assert r.json()["shipping_minor"] == 999


def test_duty_that_cannot_be_computed_leaves_nothing_behind_and_the_key_free(
    app, admin, customer, make_product
):
    """A failed duty calculation (the rate is configured in another currency) answers 422
    before anything is written: no order, no reservation, no charge, the key still free."""
    pid = make_product(stock=3)
    r = admin.client.put(
        "/api/v1/admin/duty-rates/PT",
        headers=admin.headers,
        json={"rate_ppm": 50_000, "de_minimis_minor": 0, "currency": "USD"},
    )
    assert r.status_code == 200, r.text
    body = order_body(tokenise(customer.client), [(pid, 1)])  # EUR goods to PT
    key = uuid.uuid4().hex
    r = place(customer, body, key)
    assert r.status_code == 422 and r.json()["code"] == "duty_unavailable", r.text
    with app.state.components.db.session() as s:
        assert s.scalar(select(func.count()).select_from(Order)) == 0
        assert s.scalar(select(Inventory.reserved).where(Inventory.product_id == pid)) == 0
        assert s.scalar(select(func.count()).select_from(SimPaymentIntent)) == 0
    r = admin.client.delete("/api/v1/admin/duty-rates/PT", headers=admin.headers)
    assert r.status_code in (200, 204), r.text
    r = place(customer, body, key)  # the same key: it was never claimed
    assert r.status_code == 201, r.text


def test_declined_payment_gives_the_coupon_and_the_stock_back(app, admin, customer, make_product):
    pid = make_product(stock=2)
    coupon = _coupon(admin, code="ONCE", kind="fixed", amount_minor=100, max_uses=1)
    declined = {
        **order_body(tokenise(customer.client, "generic_decline"), [(pid, 1)]),
        "coupon_code": "ONCE",
    }
    r = place(customer, declined)
    assert r.status_code == 402, r.text
    with app.state.components.db.session() as s:
        assert s.get(Promotion, coupon["id"]).uses == 0
        statuses = s.execute(select(PromotionRedemption.status)).scalars().all()
        assert statuses == ["released"]
        assert s.scalar(select(Inventory.reserved).where(Inventory.product_id == pid)) == 0
    ok = {**order_body(tokenise(customer.client), [(pid, 1)]), "coupon_code": "ONCE"}
    r = place(customer, ok)
    assert r.status_code == 201, r.text
    r = place(customer, ok)
    assert r.status_code == 409 and r.json()["code"] == "coupon_exhausted"


def test_cancelled_order_releases_its_coupon(app, admin, customer, make_product):
    pid = make_product(stock=2)
    coupon = _coupon(admin, code="SOLO", kind="free_shipping", max_uses_per_customer=1)
    body = {**order_body(tokenise(customer.client), [(pid, 1)]), "coupon_code": "SOLO"}
    order = place(customer, body).json()
    assert order["shipping_minor"] == 0
    r = customer.post(f"/api/v1/orders/{order['id']}/cancel")
    assert r.status_code == 200, r.text
    with app.state.components.db.session() as s:
        assert s.get(Promotion, coupon["id"]).uses == 0
    assert place(customer, body).status_code == 201  # the customer's one use is free again


def test_order_problems_from_pricing(customer, make_product, admin):
    pid = make_product(stock=2)
    pm = tokenise(customer.client)
    for extra, status, code in (
        ({"coupon_code": "NOPE"}, 422, "coupon_unknown"),
        ({"shipping_speed": "teleport"}, 422, "shipping_speed_unavailable"),
    ):
        r = place(customer, {**order_body(pm, [(pid, 1)]), **extra})
        assert r.status_code == status and r.json()["code"] == code, r.text
    r = place(customer, {**order_body(pm, [(pid, 1)]), "coupon_code": "bad code!"})
    assert r.status_code == 422


# ------------------------------------------------------------------ a real server, 50 at once


@pytest.fixture(scope="module")
def identity(tmp_path_factory):
    return secrets.token_urlsafe(48), tmp_path_factory.mktemp("pricing-races") / "data"


@pytest.fixture
def shop(db_url, identity):
    secret, _ = identity
    shop = Shop(db_url, secret)
    yield shop
    shop.close()
    truncate_all(db_url)


@pytest.fixture(scope="module")
def server(db_url, identity):
    secret, data_dir = identity
    srv = Server(db_url, data_dir, secret)
    srv.start()
    yield srv
    srv.stop()


def _race(n: int, fn) -> list:
    barrier = threading.Barrier(n)

    def run(i: int):
        barrier.wait()
        return fn(i)

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(run, range(n)))


def _promotion(shop: Shop, **values) -> int:
    now = datetime.now(UTC)
    row = {
        "name": "race",
        "kind": "fixed",
        "percent_bp": 0,
        "amount_minor": 100,
        "currency": "EUR",
        "min_subtotal_minor": 0,
        "uses": 0,
        "active": True,
        "created_at": now,
        "updated_at": now,
        **values,
    }
    with shop.db.transaction() as s:
        return s.execute(insert(Promotion).values(**row).returning(Promotion.id)).scalar_one()


def _order(base: str, token: str, pid: int, pm: str, coupon: str) -> httpx.Response:
    return httpx.post(
        f"{base}/api/v1/orders",
        json={
            "items": [{"product_id": pid, "quantity": 1}],
            "shipping_address": ADDRESS,
            "payment_method": pm,
            "coupon_code": coupon,
        },
        headers={"Authorization": f"Bearer {token}", "Idempotency-Key": uuid.uuid4().hex},
        timeout=120,
    )


def _pm(base: str) -> str:
    r = httpx.post(
        f"{base}/api/v1/payments/methods",
        json={"card_number": "4242424242424242", "exp_month": 12, "exp_year": 2099, "cvc": "123"},
    )
    assert r.status_code == 201, r.text
    return r.json()["payment_method"]


def _books(shop: Shop, pid: int, promotion_id: int) -> dict:
    with shop.db.session() as s:
        live = (
            s.execute(select(Order.id).where(Order.status.in_(("reserved", "paid", "fulfilled"))))
            .scalars()
            .all()
        )
        return {
            "uses": s.get(Promotion, promotion_id).uses,
            "held": s.scalar(
                select(func.count())
                .select_from(PromotionRedemption)
                .where(PromotionRedemption.status == "held")
            ),
            "orders": s.scalar(select(func.count()).select_from(Order)),
            "live": len(live),
            "reserved": s.scalar(select(Inventory.reserved).where(Inventory.product_id == pid)),
            # every intent the provider holds belongs to an order of the shop
            "intents": s.scalar(select(func.count()).select_from(SimPaymentIntent)),
            "orphan_intents": s.scalar(
                select(func.count())
                .select_from(SimPaymentIntent)
                .where(
                    ~select(Order.id)
                    .where(SimPaymentIntent.idempotency_key == Order.id + ":charge")
                    .exists()
                )
            ),
        }


@pytest.mark.timeout(600)
def test_global_coupon_limit_holds_under_50_parallel_orders(shop, server):
    pid = shop.product(100)
    promotion_id = _promotion(shop, code="FIRST7", max_uses=7)
    tokens = shop.customers(50)
    pm = _pm(server.url)
    responses = _race(50, lambda i: _order(server.url, tokens[i], pid, pm, "first7"))
    codes = sorted(r.status_code for r in responses)
    assert codes == [201] * 7 + [409] * 43, [r.text for r in responses if r.status_code >= 500]
    assert {r.json()["code"] for r in responses if r.status_code == 409} == {"coupon_exhausted"}
    books = _books(shop, pid, promotion_id)
    assert books == {
        "uses": 7,
        "held": 7,
        "orders": 7,
        "live": 7,
        "reserved": 7,
        "intents": 7,
        "orphan_intents": 0,
    }


@pytest.mark.timeout(600)
def test_per_customer_coupon_limit_holds_under_50_parallel_orders(shop, server):
    pid = shop.product(100)
    promotion_id = _promotion(shop, code="TWICE", max_uses_per_customer=2)
    (token,) = shop.customers(1)
    pm = _pm(server.url)
    responses = _race(50, lambda i: _order(server.url, token, pid, pm, "TWICE"))
    codes = sorted(r.status_code for r in responses)
    assert codes == [201] * 2 + [409] * 48
    assert {r.json()["code"] for r in responses if r.status_code == 409} == {
        "coupon_customer_limit"
    }
    books = _books(shop, pid, promotion_id)
    assert books == {
        "uses": 2,
        "held": 2,
        "orders": 2,
        "live": 2,
        "reserved": 2,
        "intents": 2,
        "orphan_intents": 0,
    }


def test_tax_rates_table_is_what_the_server_reads(shop, server):
    """A row written straight into the table is used by the next order (no restart)."""
    with shop.db.transaction() as s:
        s.execute(
            insert(TaxRate).values(
                country="PT",
                name="IVA",
                rate_ppm=230_000,
                mode="exclusive",
                taxes_shipping=True,
                updated_at=datetime.now(UTC),
            )
        )
    pid = shop.product(5, price=1000)
    (token,) = shop.customers(1)
    r = httpx.post(
        f"{server.url}/api/v1/orders",
        json={
            "items": [{"product_id": pid, "quantity": 1}],
            "shipping_address": ADDRESS,
            "payment_method": _pm(server.url),
        },
        headers={"Authorization": f"Bearer {token}", "Idempotency-Key": uuid.uuid4().hex},
        timeout=120,
    )
    assert r.status_code == 201, r.text
    assert r.json()["total_minor"] == 1000 + 499 + 345  # 23 % of 1499 = 344.77
