"""Checkout fixtures: a product with stock, tokenised cards, an order placer."""

from __future__ import annotations

import itertools
import uuid

import pytest

from devtools.shop_db import ADDRESS

CARDS = {
    "ok": "4242424242424242",
    "generic_decline": "4000000000000002",
    "insufficient_funds": "4000000000009995",
    "expired_card": "4000000000000069",
    "processing_error": "4000000000000119",
    "timeout": "4000000000000341",
}
_counter = itertools.count(1)


@pytest.fixture
def make_product(admin):
    """Create an active product with ``stock`` units; returns its id."""
    state: dict[str, int] = {}

    def _make(stock: int, price: int = 2500) -> int:
        if "category" not in state:
            r = admin.post("/api/v1/categories", json={"slug": "checkout", "name": "Checkout"})
            assert r.status_code == 201, r.text
            state["category"] = r.json()["id"]
        n = next(_counter)
        r = admin.post(
            "/api/v1/products",
            json={
                "sku": f"CK-{n}-{uuid.uuid4().hex[:6]}",
                "title": f"Checkout thing {n}",
                "category_id": state["category"],
                "price_minor": price,
                "initial_stock": stock,
            },
        )
        assert r.status_code == 201, r.text
        return r.json()["id"]

    return _make


def tokenise(client, outcome: str = "ok") -> str:
    r = client.post(
        "/api/v1/payments/methods",
        json={"card_number": CARDS[outcome], "exp_month": 12, "exp_year": 2099, "cvc": "123"},
    )
    assert r.status_code == 201, r.text
    return r.json()["payment_method"]


def order_body(pm: str, items: list[tuple[int, int]] | None = None) -> dict:
    body: dict = {"shipping_address": ADDRESS, "payment_method": pm}
    if items is not None:
        body["items"] = [{"product_id": p, "quantity": q} for p, q in items]
    return body


def place(actor, body: dict, key: str | None = None):
    return actor.post(
        "/api/v1/orders", json=body, headers={"Idempotency-Key": key or uuid.uuid4().hex}
    )


@pytest.fixture
def rt(app, client):
    """The app's checkout runtime (tests that drive the saga or a batcher by hand)."""
    from serving.services.checkout import service

    return service.runtime(app)


@pytest.fixture
def user_id(app, customer):
    """The ``customer`` fixture's user id."""
    from sqlalchemy import select

    from serving.db.tables import User

    with app.state.components.db.session() as s:
        return s.scalar(select(User.id).where(User.email == customer.email))
