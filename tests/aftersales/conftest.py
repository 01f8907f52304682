"""Fixtures for sellers, membership, returns and disputes: sellers with products, orders
carried through to delivery."""

from __future__ import annotations

import itertools
import uuid

import pytest

from tests.checkout.conftest import make_product, order_body, place, tokenise  # noqa: F401

_n = itertools.count(1)


def user_id(actor) -> int:
    return actor.get("/api/v1/me").json()["id"]


@pytest.fixture
def category(admin) -> int:
    r = admin.post("/api/v1/categories", json={"slug": "market", "name": "Market"})
    assert r.status_code == 201, r.text
    return r.json()["id"]


@pytest.fixture
def make_seller(admin, make_customer):
    """A customer made a seller by an admin; returns the actor with ``seller_id`` set."""

    def _make(commission_bps: int = 1000):
        actor = make_customer()
        r = admin.post(
            "/api/v1/admin/sellers",
            json={
                "user_id": user_id(actor),
                "display_name": f"Seller {next(_n)}",
                "commission_bps": commission_bps,
            },
        )
        assert r.status_code == 201, r.text
        actor.seller_id = r.json()["id"]
        return actor

    return _make


def seller_product(seller, category: int, *, stock: int = 10, price: int = 1999) -> int:
    r = seller.post(
        "/api/v1/seller/products",
        json={
            "sku": f"SL-{uuid.uuid4().hex[:10]}",
            "title": f"Seller thing {next(_n)}",
            "category_id": category,
            "price_minor": price,
            "initial_stock": stock,
        },
    )
    assert r.status_code == 201, r.text
    return r.json()["id"]


def deliver(admin, order_id: str) -> None:
    r = admin.post(f"/api/v1/admin/orders/{order_id}/ship")
    assert r.status_code == 200, r.text
    r = admin.post(f"/api/v1/admin/orders/{order_id}/deliver")
    assert r.status_code == 200 and r.json()["status"] == "delivered", r.text


def settle(admin) -> dict:
    r = admin.post("/api/v1/admin/marketplace/settle")
    assert r.status_code == 200, r.text
    return r.json()
